#pragma once
// Where Xen's x86-64 PV start-of-day puts things in a new domain's initial
// virtual region, computed without touching memory (so it is unit-tested on
// the host and shared by every domain builder):
//
//   [v_start .. kstart)   mapped, unused (VIRT_BASE below the image)
//   kernel image          [kstart, kend)
//   P2M list              nr_pages 8-byte entries          -> start_info.mfn_list
//   start_info            one page                         -> %rsi
//   bootstrap page tables nr_pt_frames pages, read-only    -> start_info.pt_base
//   bootstrap stack       one page                         -> %rsp at its top
//   padding               at least 512 KiB, region ends 4 MiB aligned
//
// The whole region [v_start, v_end) is mapped 1:1 onto pseudo-physical frames
// 0.., so pfn = (va - v_start) / 4096.

#include <cstdint>

#include <base/result.hpp>

namespace core {

struct PvLayout {
    uint64_t v_start, v_end;
    uint64_t kstart, kend;
    uint64_t p2m_va, p2m_pages;
    uint64_t start_info_va;
    uint64_t pt_va, nr_pt_frames;
    uint64_t stack_va;
    uint64_t mapped_pages;   // (v_end - v_start) / 4096
    uint64_t nr_pages;

    uint64_t pfn(uint64_t va) const { return (va - v_start) >> 12; }
    bool is_page_table_pfn(uint64_t pfn) const {
        uint64_t first = (pt_va - v_start) >> 12;
        return pfn >= first && pfn < first + nr_pt_frames;
    }
};

enum class LayoutError : uint8_t {
    image_below_base,     // the image starts below VIRT_BASE
    does_not_fit,         // the region needs more pages than the domain has
    too_large,            // address arithmetic would leave the lower half / overflow
};

const char* describe(LayoutError e);

// Page-table frames (L4 + L3s + L2s + L1s) needed to map [start, end).
uint64_t page_tables_needed(uint64_t start, uint64_t end);

[[nodiscard]] base::Result<PvLayout, LayoutError> compute_pv_layout(uint64_t virt_base, uint64_t kstart,
                                                                    uint64_t kend, uint64_t nr_pages);

}  // namespace core
