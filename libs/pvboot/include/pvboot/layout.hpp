#pragma once
// The x86-64 PV start-of-day layout, computed exactly as Xen's toolstack
// (libxenguest: xg_dom_core.c xc_dom_build_image, xg_dom_x86.c) lays out a
// new domain, without touching memory: shared by the kernel (which builds the
// builder domain and, with boot=all, the core's test domains) and the builder
// domain (which builds everyone else), and tested on the host.
//
// Pseudo-physical frames are handed out from 0 in this order, each piece's
// virtual address following the previous one's:
//
//   [virt_base, kstart)   padding (mapped, unused)
//   kernel                the image, placed by physical address (libs/elf)
//   ramdisk               here only if the kernel has no MOD_START_PFN note
//   P2M list              nr_pages 8-byte MFNs, unless INIT_P2M is usable
//   start_info            -> %rsi
//   xenstore page         ring, zeroed       } Xen's domU builder; the kernel's
//   console page          ring, zeroed       } builder (like Xen's dom0 one) has none
//   page tables           L4, L3s, L2s, L1s: map [virt_base, v_end), read-only
//   boot stack            one page           -> %rsp at its top
//   padding               >= 512 KiB; v_end 4 MiB aligned (Xen's rounding)
//   ---- v_end: the end of the bootstrap mapping (pfn (v_end - virt_base) / 4 KiB)
//   ramdisk               here (unmapped) with MOD_START_PFN: start_info.mod_start
//                         is its first pfn, flags has SIF_MOD_START_PFN
//   P2M list + its tables with a usable INIT_P2M (below VIRT_BASE, page aligned):
//                         mapped at INIT_P2M by page tables of its own (L3, L2,
//                         L1s after the list), start_info.first_p2m_pfn /
//                         nr_p2m_frames name them and mfn_list is INIT_P2M
//   ---- alloc_end: every later pfn is free memory the guest owns
//
// Nothing may be mapped in the hypervisor's L4 slots
// [0xffff800000000000, 0xffff880000000000), nor outside canonical space.

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <base/result.hpp>

namespace elf {
struct Image;
}

namespace pvboot {

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kNoPfn = ~uint64_t{0};
constexpr uint64_t kHypervisorStart = 0xffff800000000000ull;
constexpr uint64_t kHypervisorEnd = 0xffff880000000000ull;
// More pages than this and the address arithmetic is not worth trusting
// (256 TiB); builders have far lower limits of their own.
constexpr uint64_t kMaxPages = uint64_t{1} << 36;

// The XENFEAT bits a kernel may not require (its FEATURES note, '!'): only
// auto_translated_physmap, which Xen's toolstack refuses for PV guests
// (xg_dom_x86.c bootearly). Every other required feature it accepts:
// Linux requires writable_page_tables, which a PV MMU gives every guest by
// emulating its writes to its own page tables.
constexpr uint32_t kRefusedRequiredFeatures = 1u << 2;

// start_info.flags bits the layout sets (abi/start_info.hpp has them all).
constexpr uint32_t kSifModStartPfn = 1u << 3;
constexpr uint32_t kSifVirtP2m4Tools = 1u << 4;

// Page-table entry flags, as Xen's builder writes them: L1 entries
// present|rw|accessed (read-only for the page tables themselves), upper
// levels present|rw|accessed|dirty|user. (The hypervisor adds the user bit
// to every entry of a 64-bit PV guest when it validates the tables.)
constexpr uint64_t kL1Prot = 0x23;
constexpr uint64_t kUpperProt = 0x67;
constexpr uint64_t kPteRw = 0x2;

// What the layout needs of the kernel image.
struct Kernel {
    uint64_t virt_base;        // VIRT_BASE (0 when absent)
    uint64_t kstart;           // virt_kstart, page aligned
    uint64_t kend;             // virt_kend, rounded up to a page
    bool has_init_p2m;
    uint64_t init_p2m;         // INIT_P2M
    bool unmapped_initrd;      // MOD_START_PFN != 0
};
Kernel kernel_of(const elf::Image& image);

struct Options {
    uint64_t nr_pages;             // all of the domain's memory
    uint64_t ramdisk_bytes = 0;    // 0: none
    // As Xen's toolstack builds a domU: the xenstore and console pages after
    // start_info, and SIF_VIRT_P2M_4TOOLS in the flags. Without (the
    // kernel's own builder, like Xen's dom0 builder): neither.
    bool domu = true;
};

// A run of pfns and where the bootstrap mapping puts them (vstart is
// meaningless for pieces outside it: the unmapped ramdisk; with a virtual
// P2M, p2m.vstart is INIT_P2M).
struct Segment {
    uint64_t pfn = 0, pages = 0, vstart = 0;
    uint64_t vend() const { return vstart + pages * kPageSize; }
    bool has(uint64_t p) const { return p >= pfn && p - pfn < pages; }
};

// Xen's xc_dom_x86_mapping: a virtual range mapped onto consecutive pfns
// and, per level, the range its page tables of that level cover. Addresses
// are masked to 48 bits, `to` inclusive. lvl[3] is the L4 (the first
// mapping's only), lvl[0] the L1s.
struct Level {
    uint64_t from = 0, to = 0, pfn = 0, tables = 0;
};
struct Mapping {
    Level area;   // area.pfn: the pfn mapped at area.from; area.tables: all of its tables
    Level lvl[4];
};

enum class Error : uint8_t {
    image_below_base = 1,   // the image starts below VIRT_BASE
    image_misaligned,       // the image does not start on a page boundary
    does_not_fit,           // the pieces need more pages than the domain has
    too_large,              // address arithmetic leaves canonical space or wraps
    hypervisor_range,       // a mapping would reach the hypervisor's slots
    mappings_overlap,       // the INIT_P2M mapping overlaps the bootstrap one
};
const char* describe(Error e);

struct Layout {
    uint64_t nr_pages = 0;
    uint64_t virt_base = 0;
    uint64_t v_end = 0;            // end of the bootstrap mapping (virt_pgtab_end)
    Segment kernel;
    Segment ramdisk;               // pages == 0: none
    bool ramdisk_mapped = false;
    Segment p2m;                   // the P2M list (and, when virtual, its page tables after it)
    uint64_t p2m_list_pages = 0;   // the list alone
    bool p2m_virtual = false;
    uint64_t start_info_pfn = kNoPfn, xenstore_pfn = kNoPfn, console_pfn = kNoPfn;
    Segment pgtables;              // the bootstrap mapping's tables; pgtables.pfn is the L4
    uint64_t bootstack_pfn = kNoPfn;
    uint64_t alloc_end = 0;        // pfns [0, alloc_end) are laid out
    Mapping maps[2];
    unsigned nr_maps = 0;

    // start_info fields the layout decides.
    uint32_t flags = 0;
    uint64_t mod_start = 0, mod_len = 0;
    uint64_t first_p2m_pfn = 0, nr_p2m_frames = 0;

    // The same facts under the names builders and tests use.
    uint64_t v_start = 0;          // virt_base
    uint64_t kstart = 0, kend = 0; // the kernel segment's virtual range
    uint64_t p2m_va = 0;           // start_info.mfn_list
    uint64_t p2m_pages = 0;        // p2m_list_pages
    uint64_t start_info_va = 0;    // %rsi
    uint64_t pt_va = 0;            // start_info.pt_base
    uint64_t nr_pt_frames = 0;     // start_info.nr_pt_frames (the bootstrap mapping's tables)
    uint64_t stack_va = 0;         // %rsp = stack_va + 4096
    uint64_t mapped_pages = 0;     // (v_end - virt_base) / 4096

    // The pfn the bootstrap mapping maps at `va` (inside [v_start, v_end)).
    uint64_t pfn(uint64_t va) const { return (va - v_start) >> 12; }
    uint64_t va(uint64_t pfn) const { return v_start + (pfn << 12); }
    // Frames that are page tables: the bootstrap mapping's and, with a
    // virtual P2M, the P2M mapping's.
    bool is_page_table_pfn(uint64_t pfn) const {
        return pgtables.has(pfn) || (p2m_virtual && pfn >= p2m.pfn + p2m_list_pages && p2m.has(pfn));
    }
    // The second run of page-table frames (empty without a virtual P2M).
    Segment p2m_tables() const {
        Segment s;
        if (p2m_virtual) s = Segment{p2m.pfn + p2m_list_pages, p2m.pages - p2m_list_pages, 0};
        return s;
    }
    uint64_t l4_pfn() const { return pgtables.pfn; }
};

[[nodiscard]] base::Result<Layout, Error> compute(const Kernel& k, const Options& o);

// The 512 entries of page-table frame `pfn` (one with is_page_table_pfn),
// as Xen's setup_pgtables_pv writes them: each entry is
// mfn_of(ctx, target pfn) << 12 | its flags; unused entries 0. False for a
// pfn that is not one of the layout's page tables.
using MfnOf = uint64_t (*)(void* ctx, uint64_t pfn);
bool fill_page_table(const Layout& l, uint64_t pfn, uint64_t* entries, MfnOf mfn_of, void* ctx);
template <typename F>
bool fill_page_table(const Layout& l, uint64_t pfn, uint64_t* entries, F&& mfn_of) {
    using Fn = typename std::remove_reference<F>::type;
    return fill_page_table(l, pfn, entries, [](void* c, uint64_t p) { return (*static_cast<Fn*>(c))(p); },
                           const_cast<void*>(static_cast<const void*>(&mfn_of)));
}

// Where everything went, for a builder's log (a failed boot is diagnosed
// from it), in two lines of under 140 characters for Linux: the pieces by
// pfn ("p2m ...*" is a P2M with tables of its own at INIT_P2M), and the
// addresses the guest is told.
void describe(const Layout& l, char* pieces, size_t pieces_cap, char* addresses, size_t addresses_cap);

}  // namespace pvboot
