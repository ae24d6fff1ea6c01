#pragma once
// Machine memory: the frame allocator and the frame table together.

#include <cstdint>

#include <base/result.hpp>
#include <core/frame_alloc.hpp>
#include <core/frame_table.hpp>

namespace core {

FrameAllocator& frame_allocator();

// A zeroed frame owned by `owner` (type none, no references), or an error.
// With `address_bits` (Xen's mem_flags limit; 0 or 64 = none) the frame lies
// below 2^address_bits: taken from the low zone (below 4 GiB) when the limit
// is below the top of RAM, and refused (out_of_memory) when the frame the low
// zone gives is not below it (a limit under 4 GiB is not searched for: no
// guest of ours asks for one).
[[nodiscard]] base::Result<Mfn, AllocError> alloc_domain_frame(DomId owner, unsigned address_bits = 0);

// Gives a frame back: owner cleared, references must already be gone.
void free_domain_frame(Mfn mfn);

// Frames of domains already taken apart that something still referenced
// then: held back (owner kOwnerHeld), never handed out again until their last
// reference goes. Zero unless the hypervisor's own bookkeeping is wrong.
uint64_t held_frames();
// Holds `mfn` back (its domain is being taken apart and it is still referenced).
void hold_frame(Mfn mfn);
// A held frame whose last reference just went: frees it.
void release_held_frame(Mfn mfn);

}  // namespace core
