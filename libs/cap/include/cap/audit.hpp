#pragma once
// Checks every derivation-tree invariant stated in cspace.hpp over every
// registered CSpace, then each one's lookup index against a full scan of its
// slots. O(n * (depth + siblings)): for tests, fuzzers and debug builds, not
// for hypercall paths.

#include <cap/cspace.hpp>

namespace cap {

// nullptr when every invariant holds, else what is broken.
const char* audit(const Registry& reg);

}  // namespace cap
