#pragma once
// The frame table: what the hypervisor knows about every machine frame.
//
// Invariants (the whole of PV memory safety rests on them; core/mm.hpp keeps
// them, docs/memory-model.md explains them):
//  - A frame is mapped by a guest only if the guest owns it.
//  - A frame typed as a page table (L1..L4) has no writable mapping anywhere:
//    a writable mapping holds a `writable` type reference, and a frame has
//    exactly one type while its type count is non-zero or it is partial.
//  - A page-table frame is `validated` only when every entry in it holds its
//    references; while `partial`, exactly entries [0, valid_upto) do.
//  - `count` counts every reference (mappings, page-table links, pins, base
//    pointers, grant mappings); a frame leaves its domain only when nothing
//    references it: taking a domain apart frees a frame only at count 0 and
//    type_count 0, and holds it back (kOwnerHeld) otherwise.

#include <cstdint>

namespace core {

using Mfn = uint64_t;
using DomId = uint16_t;

constexpr DomId kOwnerNone = 0xFFFF;   // free or not RAM
constexpr DomId kOwnerXen = 0xFFFE;    // the hypervisor's own
// A frame of a domain already taken apart that something still referenced
// then (core/memory.hpp: hold_frame): nobody's, never mapped or handed out
// again; freed when its last reference goes. Only a bookkeeping error can
// make one.
constexpr DomId kOwnerHeld = 0xFFFD;

enum class PageType : uint8_t { none, writable, l1, l2, l3, l4, seg_desc };

struct FrameInfo {
    DomId owner;
    PageType type;
    uint8_t flags;          // kFrame* below
    uint32_t type_count;    // references holding `type`
    uint32_t count;         // all references
    uint16_t valid_upto;    // page tables: entries [0, valid_upto) hold references
    uint16_t reserved;
    uint32_t tlb_stamp;     // TLB clock when the last type reference went (see mm)
    uint32_t reserved2;
};
static_assert(sizeof(FrameInfo) == 24);

constexpr uint8_t kFrameValidated = 1u << 0;  // a page table whose entries all hold references
constexpr uint8_t kFramePinned = 1u << 1;     // holds one type reference for the pin
constexpr uint8_t kFramePartial = 1u << 2;    // (de)validation stopped half-way; no type references
constexpr uint8_t kFrameCleanup = 1u << 3;    // on its vCPU's list of unfinished devalidations
constexpr uint8_t kFrameScrubbed = 1u << 4;   // free, and zeroed when it was freed (core/memory.cpp)
constexpr uint8_t kFrameHvSlots = 1u << 5;    // an L4 holding the hypervisor's slots (written when it validated)

constexpr bool is_page_table(PageType t) {
    return t == PageType::l1 || t == PageType::l2 || t == PageType::l3 || t == PageType::l4;
}

class FrameTable {
public:
    void init(FrameInfo* info, uint64_t nframes);
    uint64_t nframes() const { return nframes_; }
    bool valid(Mfn mfn) const { return mfn < nframes_; }
    FrameInfo& operator[](Mfn mfn) { return info_[mfn]; }
    const FrameInfo& operator[](Mfn mfn) const { return info_[mfn]; }

private:
    FrameInfo* info_ = nullptr;
    uint64_t nframes_ = 0;
};

extern FrameTable g_frame_table;
inline FrameTable& frame_table() { return g_frame_table; }

// A machine frame through the hypervisor's direct map (core::set_direct_map
// is called once at boot with platform::phys_to_virt(0)); inline because every
// page-table operation needs it.
extern uintptr_t g_direct_map;
template <typename T = uint64_t>
inline T* frame_va(Mfn m) { return reinterpret_cast<T*>(g_direct_map + (m << 12)); }

}  // namespace core
