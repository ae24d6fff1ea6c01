#pragma once
// Front-ends' ring pages in blkback's address space. Entry i (a front-end
// entry, 0..kMaxFrontends-1) owns blk::kMaxRingPages consecutive pages of a
// window in blkback's image, so a ring of several pages (ring-page-order)
// is one contiguous range, as the ring code wants. While a ring is not
// mapped there, the window's pages are blkback's own frames.

#include <cstdint>

#include <blk/blk.hpp>

namespace blkback {

// Maps the `n` pages `dom` granted as refs[0..n) (n <= kMaxRingPages), in
// order, at entry `entry`; all of them or none. The ring's address, or
// nullptr with the first failing status (a GntStatus, or a negative errno
// from the hypercall) in *error. handles[0..n) are for ring_unmap.
void* ring_map(unsigned entry, uint16_t dom, const uint32_t* refs, unsigned n, uint32_t* handles, long* error);
// Unmaps what ring_map mapped at `entry` and puts our own frames back. A
// mapping the hypervisor already took away (the granter was destroyed)
// counts as unmapped.
void ring_unmap(unsigned entry, const uint32_t* handles, unsigned n);

// The page-fault handler's part: a fault inside the window (a front-end's
// domain was destroyed and the hypervisor took its pages away under us)
// puts our own frame back at that page, so the access is repeated on it and
// reads garbage the ring code refuses. True if `va` was ours to fix.
bool ring_window_fault(uint64_t va);

}  // namespace blkback
