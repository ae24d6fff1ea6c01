#pragma once
// The kernel's object allocator: memory for the hypervisor's own per-domain
// state (Domain and vCPU, event-channel buckets, maptrack chunks, CSpace
// slots, I/O bitmaps, the domain id table), on top of the frame allocator.
// No general heap: every object has a size its caller knows and gives back.
//
// Sizes up to kMaxSlabObject come from page-sized slabs of one size class
// each; larger ones take a block of whole frames (a buddy block: 2^k frames).
// Every frame it holds, slab or block, is owned by kOwnerXen in the frame
// table: never a guest's, never mappable by one. A slab frame goes back to
// the frame allocator when its last object is freed, a block when it is, so
// with no object live the allocator holds no frame.
//
// A slab is one frame: objects of its class packed from offset 0, then its
// header in the last kSlabHeader bytes. Invariants (check_invariants):
//  - a slab is on its class's partial list iff 0 < used < the class's
//    objects per slab (full slabs are on no list; an empty one is freed);
//  - its free objects form a list through their first two bytes (an index,
//    kNoObject at the end) of exactly (per slab - used) entries;
//  - stats().frames counts slab frames plus block frames, stats().objects
//    and stats().bytes the live objects and the sum of their footprints.
// Objects are zeroed when handed out. Freed memory is not scrubbed: a frame
// given back to the frame allocator is zeroed before a guest gets it
// (alloc_domain_frame zeroes every frame not marked scrubbed).
//
// LOCKING: none of its own; callers run on the one CPU with interrupts off,
// as the frame allocator's callers do.

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace core::kmem {

constexpr size_t kSlabHeader = 32;
constexpr size_t kMaxSlabObject = 2032;   // two per slab

// What an allocation of `bytes` takes: its size class, or its block of
// whole frames. 0 for 0 bytes or more than a 1 GiB block.
[[nodiscard]] size_t footprint(size_t bytes);

// `bytes` (> 0) of zeroed memory, 16-byte aligned (page aligned for a
// block); nullptr when memory ran out.
[[nodiscard]] void* alloc(size_t bytes);
// Gives back what alloc(bytes) returned, with the same `bytes`.
void free(void* p, size_t bytes);

struct Stats {
    uint64_t frames = 0;    // frames held: slabs and blocks
    uint64_t objects = 0;   // live objects
    uint64_t bytes = 0;     // the sum of their footprints
};
[[nodiscard]] Stats stats();

// Walks every slab; for tests. true when every invariant above holds.
[[nodiscard]] bool check_invariants();

// A T constructed in memory from alloc (nullptr when out of memory), and
// its destruction.
template <typename T, typename... A>
T* make(A&&... args) {
    void* p = alloc(sizeof(T));
    return p ? new (p) T(std::forward<A>(args)...) : nullptr;
}
template <typename T>
void destroy(T* p) {
    if (!p) return;
    p->~T();
    free(p, sizeof(T));
}

#if MOAT_HOSTED
// Tests: forget every slab and block (the fake machine's memory was reset
// under them).
void reset_for_tests();
#endif

}  // namespace core::kmem
