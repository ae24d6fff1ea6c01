#pragma once
// FrameAllocator: a binary buddy allocator over machine frames (4 KiB).
//
// The hypervisor owns every frame of RAM; this is the one place that hands
// them out. It uses no heap: the caller supplies one FrameLink per frame
// number in [0, nframes), placed in memory the kernel reserves at boot, and
// the allocator threads its free lists through that array.
//
// LOCKING: the allocator has no lock of its own. Every call, including the
// const queries, must be made with the allocator's lock held by the caller
// (or before other CPUs are started). Nothing here blocks or allocates, so
// the lock may be a spinlock taken with interrupts disabled.
//
// Frame states. Every frame in [0, nframes) is in exactly one of:
//   reserved   never handed to the allocator (not RAM, or excluded at boot);
//   free       part of a free block on the free list of its order;
//   allocated  part of a block returned by alloc() and not yet freed;
//   claimed    taken out of the pool by claim(); returned only by add_free().
// Blocks (free or allocated) are 2^k frames aligned to 2^k, k <= kMaxOrder.
//
// Per-frame metadata invariants (checked by check_invariants()):
//   * the head frame of a free block has state free_head and its order;
//     it is on the list free_[order] and on no other list;
//   * the head frame of an allocated block has state alloc_head and its
//     order, which lets free() reject a wrong order or a non-head frame;
//   * every other frame of a block (free or allocated) has state tail;
//   * claimed frames have state claimed, reserved frames state reserved;
//   * free blocks are fully coalesced: the buddy of a free block of order
//     k < kMaxOrder is never also a free block of order k of the same zone;
//   * every block (free or allocated) lies wholly in one zone, and a free
//     block is on a list of that zone.
// Because only true heads carry a head state, "is frame f free?" is answered
// in O(kMaxOrder) by looking for a free head of order k at align_down(f, 2^k)
// for each k, without touching every frame of a block on alloc or free.
//
// Frame numbers are uint64_t in the API; internally they are 32-bit, so
// nframes is capped at kMaxFrames (2^32 - 2, i.e. 16 TiB of RAM). Frames at
// or beyond the cap are treated like frames beyond the end of the array.
//
// Zones. Frames below `low_end` (init's third argument; 4 GiB on the
// machine) form the low zone, the rest the high zone; each zone has its own
// free lists and no block ever straddles the boundary (add_free carves at it
// and buddies of different zones never merge). alloc() takes from the high
// zone first and falls back to the low one; alloc_low() takes only low
// frames. So frames a 32-bit device (or a guest asking for memory below
// 4 GiB for one) can reach stay free for as long as anything else is, as in
// Xen's heap, which serves domains from the highest zone and keeps a pool
// of DMA-able low memory. On a machine with no RAM above 4 GiB the high zone
// is empty and alloc() behaves exactly as one zone would.

#include <cstddef>
#include <cstdint>

#include <base/result.hpp>

namespace core {

enum class AllocError : uint8_t {
    out_of_memory,   // alloc: no free block of that order or larger
    bad_order,       // order > kMaxOrder
    out_of_range,    // a frame number >= nframes (free, claim)
    misaligned,      // free: first is not aligned to 2^order
    double_free,     // free: the frame is already free
    not_ram,         // free: the frame was never handed to add_free
    not_allocated,   // free: the frame is allocated/claimed but not the head of a block
    wrong_order,     // free: head of an allocated block of another order
    already_free,    // add_free: a frame in the range is already free
    in_use,          // add_free: a frame in the range is allocated
    not_free,        // claim: a frame in the range is not free
};

// One per frame number. The layout is part of the contract with the boot
// code that sizes and places the array: 12 bytes per frame.
struct FrameLink {
    uint32_t next;   // free list link; meaningful only for a free_head
    uint32_t prev;
    uint8_t order;   // meaningful only for free_head and alloc_head
    uint8_t state;   // FrameAllocator::State
    uint16_t pad;
};
static_assert(sizeof(FrameLink) == 12);

class FrameAllocator {
public:
    static constexpr unsigned kMaxOrder = 18;  // 2^18 frames = 1 GiB
    static constexpr uint64_t kMaxFrames = (uint64_t{1} << 32) - 2;
    // The machine's zone boundary: 4 GiB, what a 32-bit DMA address reaches.
    static constexpr uint64_t kLowZoneFrames = uint64_t{1} << 20;

    enum State : uint8_t { reserved = 0, free_head, alloc_head, tail, claimed };
    enum Zone : uint8_t { low = 0, high = 1 };
    static constexpr unsigned kZones = 2;

    constexpr FrameAllocator() = default;
    FrameAllocator(const FrameAllocator&) = delete;
    FrameAllocator& operator=(const FrameAllocator&) = delete;

    // Take over links[0, nframes): every frame starts reserved. nframes is
    // clamped to kMaxFrames (see nframes()). Frames below low_end are the
    // low zone (any value: 0 makes every frame high, nframes or more every
    // frame low). O(nframes).
    void init(FrameLink* links, uint64_t nframes, uint64_t low_end = kLowZoneFrames);

    // Hand frames [first, first+count) of usable RAM to the allocator. Ranges
    // may come in any order and need not be aligned; buddies are coalesced.
    // Every frame must be reserved or claimed (claimed frames are returned to
    // the pool). Frames >= nframes are ignored: the result is the number of
    // frames actually added, so a short count tells the caller some RAM lies
    // beyond the metadata array. If any frame in range is already free
    // (already_free) or allocated (in_use), nothing is changed.
    // O(count + (count / 2^kMaxOrder + kMaxOrder) * kMaxOrder).
    [[nodiscard]] base::Result<uint64_t, AllocError> add_free(uint64_t first, uint64_t count);

    // 2^order contiguous frames aligned to 2^order; returns the first frame
    // number. From the high zone if it has such a block, else from the low
    // one. O(kMaxOrder).
    [[nodiscard]] base::Result<uint64_t, AllocError> alloc(unsigned order);
    // The same, from the low zone only (frames below low_end): for callers
    // that need frames a 32-bit address reaches. O(kMaxOrder).
    [[nodiscard]] base::Result<uint64_t, AllocError> alloc_low(unsigned order);

    // Return a block from alloc(). Rejects (with no change of state) a bad
    // order, a frame out of range, a misaligned first, a double free, a frame
    // that was never RAM, a frame inside a block rather than at its head, and
    // an order other than the one allocated. O(kMaxOrder).
    [[nodiscard]] base::Status<AllocError> free(uint64_t first, unsigned order);

    // Take frames [first, first+count) out of the free pool, e.g. for things
    // at fixed physical addresses found at boot. Succeeds only if every frame
    // is free (otherwise not_free / out_of_range and nothing changes); the
    // blocks containing them are split as needed. The frames become claimed:
    // they are not freeable with free(), only returnable with add_free().
    // count == 0 succeeds trivially. O(count + blocks touched * kMaxOrder).
    [[nodiscard]] base::Status<AllocError> claim(uint64_t first, uint64_t count);

    // Is frame f currently free? O(kMaxOrder).
    [[nodiscard]] bool is_free(uint64_t frame) const;

    [[nodiscard]] uint64_t free_frames() const { return free_frames_[low] + free_frames_[high]; }
    [[nodiscard]] uint64_t free_frames(Zone z) const { return free_frames_[z]; }
    // The first frame of the high zone, as given to init().
    [[nodiscard]] uint64_t low_end() const { return low_end_; }
    [[nodiscard]] Zone zone_of(uint64_t frame) const { return frame < low_end_ ? low : high; }
    // Frames ever added and still managed: free + allocated + claimed.
    [[nodiscard]] uint64_t total_frames() const { return total_frames_; }
    // Effective size of the frame space after clamping to kMaxFrames.
    [[nodiscard]] uint64_t nframes() const { return nframes_; }
    // Number of free blocks of the given order (0 if order > kMaxOrder), in
    // both zones or in one.
    [[nodiscard]] uint64_t free_blocks(unsigned order) const;
    [[nodiscard]] uint64_t free_blocks(unsigned order, Zone z) const;

    // Full consistency check, O(nframes); for tests and debug builds. See the
    // invariants at the top of this file; also that the counters add up.
    [[nodiscard]] bool check_invariants() const;

private:
    static constexpr uint32_t kNone = 0xffffffffu;  // "no frame" in links

    // The free lists of frame's zone.
    void push(uint32_t frame, unsigned order);
    void unlink(uint32_t frame, unsigned order);
    base::Result<uint64_t, AllocError> alloc_from(Zone z, unsigned order);
    // Insert block [frame, frame + 2^order) as free, merging with free
    // buddies. Its frames must already carry tail/head states of a block.
    void insert_free(uint64_t frame, unsigned order);
    // If f lies in a free block, its head and order; O(kMaxOrder).
    bool find_free_block(uint64_t f, uint64_t* head, unsigned* order) const;

    FrameLink* links_ = nullptr;
    uint64_t nframes_ = 0;
    uint64_t low_end_ = kLowZoneFrames;
    uint64_t free_frames_[kZones] = {};
    uint64_t total_frames_ = 0;
    uint32_t free_[kZones][kMaxOrder + 1] = {};   // list heads; kNone when empty
    uint64_t nfree_[kZones][kMaxOrder + 1] = {};  // blocks on each list
};

}  // namespace core
