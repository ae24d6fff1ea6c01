#pragma once
// The Trace capability (abi/trace.hpp, docs/control.md "moat trace"): the
// kernel gives it to the builder at boot with its other root capabilities;
// the builder copies it to the TOOLSTACK domain, the system's trace reader,
// each time it builds it. No manifest field names the reader yet.

#include <cstdint>

namespace builder {

// Copies our Trace capability into the last slot of domain `dom`'s CSpace
// (of `cspace_slots`: the builder fills slots from the first up and sizes
// every CSpace with spare ones, so the last stays free). False, said on the
// console with `name`, if we hold none or the copy is refused.
[[nodiscard]] bool give_trace_capability(uint16_t dom, uint32_t cspace_slots, const char* name);

}  // namespace builder
