#pragma once
// The kernel's side of capabilities (libs/cap): one CSpace per domain, all of
// them in one registry so revoke reaches every copy; the lookup every
// cross-domain operation makes; the capabilities the first domain gets at boot.

#include <cstdint>

#include <abi/errno.hpp>
#include <abi/moat.hpp>
#include <core/budget.hpp>
#include <cap/capability.hpp>
#include <cap/cspace.hpp>
#include <cap/error.hpp>

namespace core {
struct Domain;
}

namespace core::caps {

// The builder holds three capabilities for every domain it made (Domain,
// Grant, Event): 3 x 4,096 domains and its own. 16,384 slots of 88 bytes are
// 1.375 MiB, a 2 MiB kmem block (order 9), only the first domain's.
constexpr uint32_t kMaxSlots = abi::kMaxCspaceSlots;
// A domain whose creator names no size: as many slots as fill one frame
// (46 of 88 bytes; it was 64 of 64 bytes before the index).
constexpr uint32_t kDefaultSlots = uint32_t(4096 / sizeof(cap::Slot));

cap::Registry& registry();

// Gives a new domain an empty CSpace of `nslots` slots (at most kMaxSlots).
[[nodiscard]] bool init_domain(Domain& d, uint32_t nslots);

// Deletes every capability naming `d` and every one it holds, then drops its
// CSpace: as much as `budget` allows (core/budget.hpp); true when done.
[[nodiscard]] bool destroy_domain(Domain& d, Budget& budget);

// Does `d` hold a capability of type `t` naming `object` with every right in
// `rights`? O(1) expected (the CSpace's index, libs/cap cspace.hpp), as are
// holds_type, give_root and covers (for range types: O(ranges of that type held)).
bool allows(const Domain& d, cap::Type t, uint64_t object, uint32_t rights);

// Does `d` hold any capability of type `t` with `rights`?
bool holds_type(const Domain& d, cap::Type t, uint32_t rights);
// Whether one capability of type t (a range: object, object2 = length)
// with these rights covers all of [first, first + len).
bool covers(const Domain& d, cap::Type t, uint64_t first, uint64_t len, uint32_t rights);

// The domain an operation naming `domid` acts on: the caller itself
// (DOMID_SELF or its own id), or a running domain it holds a Domain
// capability for with `right`. nullptr: refused.
Domain* acting_on(Domain& caller, uint64_t domid, uint32_t right);

// A new root capability in the first free slot of `d`'s CSpace: its index, or -1.
long give_root(Domain& d, const cap::Capability& c);

// Bumped whenever any CSpace changes, so per-domain views derived from
// capabilities (the I/O port bitmap) know when to recompute. Also asks this
// CPU to take the slow exit path, where those views are applied.
extern uint64_t g_generation;
inline uint64_t generation() { return g_generation; }
void changed();

// The domain's I/O permission bitmap (a set bit denies the port), from the
// IoPorts capabilities it holds; nullptr when it holds none. Recomputes it
// (see io_bitmap in core/domain.hpp for the inline check).
const uint8_t* io_bitmap_recompute(Domain& d);

// The errno a capability error becomes at the hypercall boundary.
long to_errno(cap::Error e);

}  // namespace core::caps
