#pragma once
// The frame table: what the hypervisor knows about every machine frame.
//
// Invariants (the whole of PV memory safety rests on them):
//  - A frame is mapped by a guest only if the guest owns it.
//  - A frame typed as a page table (L1..L4) has no writable mapping anywhere:
//    a writable mapping holds a `writable` type reference, and a frame has
//    exactly one type while its type count is non-zero.
//  - `count` counts every reference (mappings, page-table links, pins); a
//    frame goes back to the allocator only when its owner is gone and
//    nothing references it.
// The full validator (mmu_update, pinning, devalidation) builds on this.

#include <cstdint>

namespace core {

using Mfn = uint64_t;
using DomId = uint16_t;

constexpr DomId kOwnerNone = 0xFFFF;   // free or not RAM
constexpr DomId kOwnerXen = 0xFFFE;    // the hypervisor's own

enum class PageType : uint8_t { none, writable, l1, l2, l3, l4, seg_desc };

struct FrameInfo {
    DomId owner;
    PageType type;
    uint8_t flags;          // kFrame* below
    uint32_t type_count;    // references holding `type`
    uint32_t count;         // all references
    uint32_t reserved;
};
static_assert(sizeof(FrameInfo) == 16);

constexpr uint8_t kFrameValidated = 1u << 0;  // a page table whose entries all validated
constexpr uint8_t kFramePinned = 1u << 1;

class FrameTable {
public:
    void init(FrameInfo* info, uint64_t nframes);
    uint64_t nframes() const { return nframes_; }
    bool valid(Mfn mfn) const { return mfn < nframes_; }
    FrameInfo& operator[](Mfn mfn) { return info_[mfn]; }
    const FrameInfo& operator[](Mfn mfn) const { return info_[mfn]; }

    // Takes a reference of `type` on a frame owned by `owner`. Fails if the
    // frame has another type with references outstanding, or another owner.
    [[nodiscard]] bool get_type(Mfn mfn, DomId owner, PageType type);
    void put_type(Mfn mfn);

private:
    FrameInfo* info_ = nullptr;
    uint64_t nframes_ = 0;
};

FrameTable& frame_table();

}  // namespace core
