#include <core/pv_layout.hpp>

#include <base/bits.hpp>

namespace core {

const char* describe(LayoutError e) {
    switch (e) {
    case LayoutError::image_below_base: return "the image starts below its VIRT_BASE";
    case LayoutError::does_not_fit: return "the image and its start-of-day data do not fit in the domain's memory";
    case LayoutError::too_large: return "the initial region does not fit in the guest address space";
    }
    return "unknown layout error";
}

uint64_t page_tables_needed(uint64_t start, uint64_t end) {
    if (end <= start) return 1;
    auto span = [&](unsigned shift) { return ((end - 1) >> shift) - (start >> shift) + 1; };
    return 1 + span(39) + span(30) + span(21);
}

base::Result<PvLayout, LayoutError> compute_pv_layout(uint64_t virt_base, uint64_t kstart, uint64_t kend,
                                                      uint64_t nr_pages) {
    constexpr uint64_t kLowerHalfEnd = 1ull << 47;
    constexpr uint64_t kPad = 512 * 1024, kAlign = 4 * 1024 * 1024;
    if (kstart < virt_base) return base::Err{LayoutError::image_below_base};
    // Guest images live in the lower half; everything below stays far from
    // overflowing as long as the pieces are bounded like this.
    if (kend > kLowerHalfEnd || nr_pages > (1ull << 36)) return base::Err{LayoutError::too_large};

    PvLayout l{};
    l.v_start = virt_base;
    l.kstart = kstart;
    l.kend = base::align_up(kend, 4096);
    l.nr_pages = nr_pages;
    l.p2m_va = l.kend;
    l.p2m_pages = base::pages_for(nr_pages * 8);
    l.start_info_va = l.p2m_va + l.p2m_pages * 4096;
    l.pt_va = l.start_info_va + 4096;

    // The tables must map themselves too: grow until the count is stable.
    uint64_t pts = 1;
    for (;;) {
        l.stack_va = l.pt_va + pts * 4096;
        uint64_t end = l.stack_va + 4096;
        l.v_end = base::align_up(end + kPad, kAlign);
        if (l.v_end > kLowerHalfEnd) return base::Err{LayoutError::too_large};
        uint64_t need = page_tables_needed(l.v_start, l.v_end);
        if (need <= pts) break;
        pts = need;
    }
    l.nr_pt_frames = pts;
    l.mapped_pages = (l.v_end - l.v_start) >> 12;
    if (l.mapped_pages > nr_pages) return base::Err{LayoutError::does_not_fit};
    return l;
}

}  // namespace core
