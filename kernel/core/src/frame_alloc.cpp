// Binary buddy allocator over machine frames. See core/frame_alloc.hpp for
// the states, invariants and the locking rule (the caller holds the lock).

#include <core/frame_alloc.hpp>

namespace core {

namespace {

constexpr uint64_t block_size(unsigned order) { return uint64_t{1} << order; }

// Largest order k <= kMaxOrder such that a block of 2^k frames starting at
// `first` is aligned and fits in `room` (> 0) frames.
unsigned max_block_order(uint64_t first, uint64_t room) {
    unsigned k = FrameAllocator::kMaxOrder;
    if (first != 0) {
        unsigned align = static_cast<unsigned>(__builtin_ctzll(first));
        if (align < k) k = align;
    }
    unsigned fit = 63 - static_cast<unsigned>(__builtin_clzll(room));
    return fit < k ? fit : k;
}

}  // namespace

void FrameAllocator::init(FrameLink* links, uint64_t nframes, uint64_t low_end) {
    if (links == nullptr) nframes = 0;
    if (nframes > kMaxFrames) nframes = kMaxFrames;
    links_ = links;
    nframes_ = nframes;
    low_end_ = low_end;
    total_frames_ = 0;
    for (unsigned z = 0; z < kZones; ++z) {
        free_frames_[z] = 0;
        for (unsigned k = 0; k <= kMaxOrder; ++k) {
            free_[z][k] = kNone;
            nfree_[z][k] = 0;
        }
    }
    for (uint64_t f = 0; f < nframes; ++f)
        links_[f] = FrameLink{kNone, kNone, 0, reserved, 0};
}

void FrameAllocator::push(uint32_t frame, unsigned order) {
    FrameLink& l = links_[frame];
    Zone z = zone_of(frame);
    l.state = free_head;
    l.order = static_cast<uint8_t>(order);
    l.prev = kNone;
    l.next = free_[z][order];
    if (l.next != kNone) links_[l.next].prev = frame;
    free_[z][order] = frame;
    ++nfree_[z][order];
}

// Remove a free head from its list. The caller gives the frame a new state.
void FrameAllocator::unlink(uint32_t frame, unsigned order) {
    FrameLink& l = links_[frame];
    Zone z = zone_of(frame);
    if (l.prev != kNone) links_[l.prev].next = l.next; else free_[z][order] = l.next;
    if (l.next != kNone) links_[l.next].prev = l.prev;
    l.next = l.prev = kNone;
    --nfree_[z][order];
}

void FrameAllocator::insert_free(uint64_t frame, unsigned order) {
    // Merge upward while the buddy is a free block of the same order. The
    // buddy is aligned to 2^order, so if its head is a free_head of that
    // order the whole buddy lies in [0, nframes) and is free. Buddies in
    // different zones never merge: the block would straddle low_end.
    while (order < kMaxOrder) {
        uint64_t buddy = frame ^ block_size(order);
        if (buddy >= nframes_ || zone_of(buddy) != zone_of(frame)) break;
        const FrameLink& b = links_[buddy];
        if (b.state != free_head || b.order != order) break;
        unlink(static_cast<uint32_t>(buddy), order);
        // The upper of the two heads becomes an interior frame.
        uint64_t upper = frame > buddy ? frame : buddy;
        links_[upper].state = tail;
        frame = frame < buddy ? frame : buddy;
        ++order;
    }
    push(static_cast<uint32_t>(frame), order);
}

bool FrameAllocator::find_free_block(uint64_t f, uint64_t* head, unsigned* order) const {
    if (f >= nframes_) return false;
    for (unsigned k = 0; k <= kMaxOrder; ++k) {
        uint64_t h = f & ~(block_size(k) - 1);
        const FrameLink& l = links_[h];
        if (l.state == free_head && l.order == k) {
            *head = h;
            *order = k;
            return true;
        }
    }
    return false;
}

bool FrameAllocator::is_free(uint64_t frame) const {
    uint64_t h;
    unsigned k;
    return find_free_block(frame, &h, &k);
}

base::Result<uint64_t, AllocError> FrameAllocator::add_free(uint64_t first, uint64_t count) {
    // Clip to [0, nframes) without overflowing first + count.
    if (first >= nframes_) return uint64_t{0};
    uint64_t end = count > nframes_ - first ? nframes_ : first + count;

    // Validate everything before changing anything, so that a bad range
    // (e.g. a memory map with overlapping entries) leaves the state intact.
    for (uint64_t f = first; f < end; ++f) {
        uint8_t s = links_[f].state;
        if (s == reserved || s == claimed) continue;
        return base::Err{is_free(f) ? AllocError::already_free : AllocError::in_use};
    }

    uint64_t added = 0;
    for (uint64_t f = first; f < end; ++f) {
        if (links_[f].state == reserved) ++added;  // claimed frames are already counted
        links_[f].state = tail;
    }
    total_frames_ += added;

    // Carve the range into maximal aligned blocks, none across low_end, and
    // free each one; the merging in insert_free joins them with each other
    // and with blocks from earlier ranges.
    for (uint64_t f = first; f < end;) {
        uint64_t stop = f < low_end_ && low_end_ < end ? low_end_ : end;
        unsigned k = max_block_order(f, stop - f);
        free_frames_[zone_of(f)] += block_size(k);
        insert_free(f, k);
        f += block_size(k);
    }
    return end - first;
}

base::Result<uint64_t, AllocError> FrameAllocator::alloc(unsigned order) {
    auto r = alloc_from(high, order);
    if (r || r.error() != AllocError::out_of_memory) return r;
    return alloc_from(low, order);
}

base::Result<uint64_t, AllocError> FrameAllocator::alloc_low(unsigned order) { return alloc_from(low, order); }

base::Result<uint64_t, AllocError> FrameAllocator::alloc_from(Zone z, unsigned order) {
    if (order > kMaxOrder) return base::Err{AllocError::bad_order};
    unsigned k = order;
    while (k <= kMaxOrder && nfree_[z][k] == 0) ++k;
    if (k > kMaxOrder) return base::Err{AllocError::out_of_memory};

    uint32_t head = free_[z][k];
    unlink(head, k);
    // Split down to the requested order; the upper halves go back free.
    // Their buddy (the lower half, which we keep) is not free, so no merge.
    while (k > order) {
        --k;
        push(static_cast<uint32_t>(head + block_size(k)), k);
    }
    links_[head].state = alloc_head;
    links_[head].order = static_cast<uint8_t>(order);
    free_frames_[z] -= block_size(order);
    return uint64_t{head};
}

base::Status<AllocError> FrameAllocator::free(uint64_t first, unsigned order) {
    if (order > kMaxOrder) return base::Err{AllocError::bad_order};
    if (first >= nframes_) return base::Err{AllocError::out_of_range};
    if (first & (block_size(order) - 1)) return base::Err{AllocError::misaligned};
    const FrameLink& l = links_[first];
    switch (l.state) {
    case alloc_head:
        if (l.order != order) return base::Err{AllocError::wrong_order};
        break;
    case reserved:
        return base::Err{AllocError::not_ram};
    case free_head:
        return base::Err{AllocError::double_free};
    case tail:
        // Interior of a free block (double free of part of it) or of an
        // allocated block (not its head).
        return base::Err{is_free(first) ? AllocError::double_free : AllocError::not_allocated};
    default:  // claimed
        return base::Err{AllocError::not_allocated};
    }
    links_[first].state = tail;
    free_frames_[zone_of(first)] += block_size(order);
    insert_free(first, order);
    return {};
}

base::Status<AllocError> FrameAllocator::claim(uint64_t first, uint64_t count) {
    if (count == 0) return {};
    if (first >= nframes_ || count > nframes_ - first) return base::Err{AllocError::out_of_range};
    uint64_t end = first + count;

    // Pass 1: every frame must be free. Step a whole free block at a time.
    for (uint64_t f = first; f < end;) {
        uint64_t h;
        unsigned k;
        if (!find_free_block(f, &h, &k)) return base::Err{AllocError::not_free};
        f = h + block_size(k);
    }

    // Pass 2: cannot fail. For the free block holding f, split until the
    // part holding f lies inside [first, end). The halves set aside go back
    // free without merging: their buddy at each level is the half holding
    // f, which contains a claimed frame. A half set aside above f may still
    // overlap the range; it is found again when f gets there.
    for (uint64_t f = first; f < end;) {
        uint64_t h;
        unsigned k;
        bool found = find_free_block(f, &h, &k);
        (void)found;  // guaranteed by pass 1
        unlink(static_cast<uint32_t>(h), k);
        links_[h].state = tail;
        while (h < first || h + block_size(k) > end) {
            --k;
            uint64_t half = block_size(k);
            if (f < h + half) {
                push(static_cast<uint32_t>(h + half), k);
            } else {
                push(static_cast<uint32_t>(h), k);
                h += half;
                links_[h].state = tail;
            }
        }
        for (uint64_t g = h; g < h + block_size(k); ++g) links_[g].state = claimed;
        free_frames_[zone_of(h)] -= block_size(k);
        f = h + block_size(k);
    }
    return {};
}

uint64_t FrameAllocator::free_blocks(unsigned order) const {
    return free_blocks(order, low) + free_blocks(order, high);
}

uint64_t FrameAllocator::free_blocks(unsigned order, Zone z) const {
    return order <= kMaxOrder && z < kZones ? nfree_[z][order] : 0;
}

bool FrameAllocator::check_invariants() const {
    if (links_ == nullptr) {
        if (nframes_ != 0 || free_frames() != 0 || total_frames_ != 0) return false;
        for (unsigned z = 0; z < kZones; ++z)
            for (unsigned k = 0; k <= kMaxOrder; ++k)
                if (nfree_[z][k] != 0) return false;
        return true;
    }

    // Lists: each node is an aligned, in-range free head of that order and
    // of the list's zone, with consistent back links, and not fully
    // mergeable with its buddy. The walk is bounded so a cycle is reported
    // rather than looped on.
    uint64_t listed_frames[kZones] = {};
    uint64_t listed_blocks = 0;
    for (unsigned z = 0; z < kZones; ++z)
        for (unsigned k = 0; k <= kMaxOrder; ++k) {
            uint64_t n = 0;
            uint32_t prev = kNone;
            for (uint32_t f = free_[z][k]; f != kNone; f = links_[f].next) {
                if (f >= nframes_ || n >= nframes_) return false;
                const FrameLink& l = links_[f];
                if (l.state != free_head || l.order != k || l.prev != prev) return false;
                if (f & (block_size(k) - 1)) return false;
                if (uint64_t{f} + block_size(k) > nframes_) return false;
                if (zone_of(f) != z) return false;
                if (k < kMaxOrder) {
                    uint64_t buddy = f ^ block_size(k);
                    if (buddy < nframes_ && zone_of(buddy) == z && links_[buddy].state == free_head &&
                        links_[buddy].order == k)
                        return false;
                }
                prev = f;
                ++n;
            }
            if (n != nfree_[z][k]) return false;
            listed_blocks += n;
            listed_frames[z] += n * block_size(k);
        }

    // Frames: the array partitions into reserved frames, claimed frames and
    // blocks (a head followed by 2^order - 1 tails), none across low_end. A
    // tail anywhere else is an orphan. Counting free heads here and matching
    // the number of list nodes above shows every free head is on exactly one
    // list.
    uint64_t free_frames[kZones] = {}, free_heads = 0, managed = 0;
    for (uint64_t f = 0; f < nframes_;) {
        const FrameLink& l = links_[f];
        switch (l.state) {
        case reserved:
            ++f;
            break;
        case claimed:
            ++managed;
            ++f;
            break;
        case free_head:
        case alloc_head: {
            if (l.order > kMaxOrder) return false;
            uint64_t size = block_size(l.order);
            if ((f & (size - 1)) || f + size > nframes_) return false;
            if (zone_of(f) != zone_of(f + size - 1)) return false;
            for (uint64_t g = f + 1; g < f + size; ++g)
                if (links_[g].state != tail) return false;
            if (l.state == free_head) {
                free_frames[zone_of(f)] += size;
                ++free_heads;
            }
            managed += size;
            f += size;
            break;
        }
        default:
            return false;
        }
    }
    for (unsigned z = 0; z < kZones; ++z)
        if (free_frames[z] != listed_frames[z] || free_frames[z] != free_frames_[z]) return false;
    return free_heads == listed_blocks && managed == total_frames_;
}

}  // namespace core
