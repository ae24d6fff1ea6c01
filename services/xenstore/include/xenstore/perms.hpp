#pragma once
// Node permissions as Xen has them: entry 0 names the owner and, in its bits,
// what every domain not listed gets; entries 1.. grant listed domains their
// own bits. The owner and the privileged domain always have full access.

#include <xenstore/config.hpp>
#include <xenstore/error.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

enum : uint8_t {
    kPermNone = 0,
    kPermRead = 1,
    kPermWrite = 2,
    kPermOwner = 4,
};

struct PermEntry {
    DomId dom;
    uint8_t bits;  // kPermRead | kPermWrite
};

// Invariant: 1 <= count <= kMaxPermEntries.
struct Perms {
    uint8_t count;
    PermEntry e[kMaxPermEntries];

    DomId owner() const { return e[0].dom; }
    static Perms make(DomId owner, uint8_t others) {
        Perms p;
        p.count = 1;
        p.e[0] = {owner, others};
        return p;
    }
};

// What `caller` may do with a node carrying p.
uint8_t access(const Perms& p, DomId caller, DomId privileged);

// Parses `count` permission strings ("r5", "n0", "b12", "w3"); EINVAL if
// malformed, E2BIG if more than kMaxPermEntries.
struct Args;
[[nodiscard]] Result<Perms> parse_perms(const Args& args, size_t first);

// Writes "n0\0r5\0..." into out; returns the length (always fits 4096 bytes).
size_t format_perms(const Perms& p, char* out);

}  // namespace xs
