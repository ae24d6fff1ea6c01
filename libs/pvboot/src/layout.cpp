// The x86-64 PV start-of-day layout, step for step as Xen's libxenguest
// computes it (tools/libs/guest: xg_dom_core.c xc_dom_build_image,
// xc_dom_alloc_segment, xc_dom_alloc_pad, xc_dom_chk_alloc_pages;
// xg_dom_x86.c alloc_p2m_list_x86_64, alloc_magic_pages_pv,
// alloc_pgtables_pv, count_pgtables, setup_pgtables_pv, get_pg_prot). The
// function names below are Xen's; where Moat refuses what Xen would let fail
// later (a mapping in the hypervisor's slots, non-canonical addresses,
// arithmetic that wraps), it says so.

#include <pvboot/layout.hpp>

#include <base/bits.hpp>
#include <base/format.hpp>
#include <elf/elf.hpp>

namespace pvboot {

const char* describe(Error e) {
    switch (e) {
    case Error::image_below_base: return "the image starts below its VIRT_BASE";
    case Error::image_misaligned: return "the image does not start on a page boundary";
    case Error::does_not_fit: return "the image and its start-of-day data do not fit in the domain's memory";
    case Error::too_large: return "the initial region does not fit in the guest address space";
    case Error::hypervisor_range:
        return "its initial mappings would reach the hypervisor's addresses (0xffff800000000000-0xffff87ffffffffff)";
    case Error::mappings_overlap: return "its INIT_P2M mapping overlaps its initial region";
    }
    return "unknown layout error";
}

Kernel kernel_of(const elf::Image& image) {
    return Kernel{image.xen.virt_base, image.kstart, image.kend, image.xen.has_init_p2m, image.xen.init_p2m,
                  image.xen.mod_start_pfn};
}

namespace {

constexpr unsigned kLevels = 4;
constexpr uint64_t kVaddrMask = (uint64_t{1} << 48) - 1;   // bits_to_mask(VIRT_BITS_X86_64)
constexpr uint64_t k4MiBMask = (uint64_t{4} << 20) - 1;      // bits_to_mask(22)
constexpr uint64_t kLowerHalfEnd = uint64_t{1} << 47;
constexpr uint64_t kUpperHalfStart = ~uint64_t{0} << 47;

constexpr uint64_t bits_to_mask(unsigned bits) { return (uint64_t{1} << bits) - 1; }

// [from, to] (inclusive) lies in one canonical half and avoids the
// hypervisor's slots.
base::Status<Error> check_range(uint64_t from, uint64_t to) {
    if (to < from) return base::Err{Error::too_large};
    bool lower = to < kLowerHalfEnd;
    bool upper = from >= kUpperHalfStart;
    if (!lower && !upper) return base::Err{Error::too_large};
    if (upper && from < kHypervisorEnd) return base::Err{Error::hypervisor_range};
    return {};
}

// The state xc_dom_build_image threads through its steps.
struct Builder {
    const Options& o;
    Layout& l;
    uint64_t virt_alloc_end = 0;
    uint64_t pfn_alloc_end = 0;   // rambase_pfn is 0 on x86

    // xc_dom_chk_alloc_pages
    base::Status<Error> chk_alloc_pages(uint64_t pages) {
        if (pages > o.nr_pages || pfn_alloc_end > o.nr_pages || pages > o.nr_pages - pfn_alloc_end)
            return base::Err{Error::does_not_fit};
        // pages <= 2^36: the byte count cannot overflow, the sum can.
        if (base::add_overflows(virt_alloc_end, pages * kPageSize)) return base::Err{Error::too_large};
        pfn_alloc_end += pages;
        virt_alloc_end += pages * kPageSize;
        return {};
    }

    // xc_dom_alloc_pad
    base::Status<Error> alloc_pad(uint64_t boundary) {
        if (boundary & (kPageSize - 1)) return base::Err{Error::image_misaligned};
        if (boundary < virt_alloc_end) return base::Err{Error::image_below_base};
        const uint64_t pages = (boundary - virt_alloc_end) / kPageSize;
        // A gap of more pages than the domain has: nothing to add up.
        if (pages > o.nr_pages) return base::Err{Error::does_not_fit};
        return chk_alloc_pages(pages);
    }

    // xc_dom_alloc_segment (with start 0 for everything but the kernel)
    base::Status<Error> alloc_segment(Segment& seg, uint64_t start, uint64_t size) {
        if (start) TRY(alloc_pad(start));
        const uint64_t pages = size / kPageSize + (size % kPageSize != 0);
        const uint64_t vstart = virt_alloc_end;
        seg.pfn = pfn_alloc_end;
        seg.pages = pages;
        TRY(chk_alloc_pages(pages));
        seg.vstart = vstart;
        return {};
    }

    // xc_dom_alloc_page
    base::Status<Error> alloc_page(uint64_t& pfn) {
        pfn = pfn_alloc_end;
        return chk_alloc_pages(1);
    }

    // count_pgtables: mapping l.nr_maps of [from, to] (inclusive) onto pfns
    // from `pfn`, its tables numbered from pfn_alloc_end.
    base::Status<Error> count_pgtables(uint64_t from, uint64_t to, uint64_t pfn) {
        if (l.nr_maps == 2) return base::Err{Error::too_large};
        Mapping& map = l.maps[l.nr_maps];
        if ((to - from) >> 12 >= o.nr_pages || pfn + ((to - from) >> 12) >= o.nr_pages)
            return base::Err{Error::does_not_fit};
        // Canonical addresses masked to 48 bits keep their order, so this is
        // Xen's overlap test on the real ranges.
        for (unsigned m = 0; m < l.nr_maps; ++m) {
            const Mapping& cmp = l.maps[m];
            if ((from & kVaddrMask) <= cmp.area.to && (to & kVaddrMask) >= cmp.area.from)
                return base::Err{Error::mappings_overlap};
        }
        map = Mapping{};
        map.area.from = from & kVaddrMask;
        map.area.to = to & kVaddrMask;
        for (int lv = kLevels - 1; lv >= 0; --lv) {
            Level& lvl = map.lvl[lv];
            lvl.pfn = pfn_alloc_end + map.area.tables;
            if (lv == int(kLevels) - 1) {
                // Top level page table in the first mapping only.
                if (l.nr_maps == 0) {
                    lvl.from = 0;
                    lvl.to = kVaddrMask;
                    lvl.tables = 1;
                    map.area.tables++;
                }
                continue;
            }
            const unsigned bits = 12 + (lv + 1) * 9;
            const uint64_t mask = bits_to_mask(bits);
            lvl.from = map.area.from & ~mask;
            lvl.to = map.area.to | mask;
            for (unsigned m = 0; m < l.nr_maps; ++m) {
                const Level& c = l.maps[m].lvl[lv];
                if (c.from == c.to) continue;
                if (lvl.from >= c.from && lvl.to <= c.to) {
                    lvl.from = 0;
                    lvl.to = 0;
                    break;
                }
                if (lvl.from >= c.from && lvl.from <= c.to) lvl.from = c.to + 1;
                if (lvl.to >= c.from && lvl.to <= c.to) lvl.to = c.from - 1;
            }
            if (lvl.from < lvl.to) lvl.tables = ((lvl.to - lvl.from) >> bits) + 1;
            map.area.tables += lvl.tables;
        }
        return {};
    }

    // alloc_pgtables_pv
    base::Status<Error> alloc_pgtables() {
        const uint64_t extra_pages = 1 /* alloc_bootstack */ + (512 * 1024) / kPageSize;
        uint64_t pages = extra_pages, try_virt_end;
        Mapping& map = l.maps[l.nr_maps];
        for (;;) {
            if (base::add_overflows(virt_alloc_end, pages * kPageSize)) return base::Err{Error::too_large};
            try_virt_end = (virt_alloc_end + pages * kPageSize) | k4MiBMask;   // round_up(.., 4 MiB)
            if (try_virt_end == ~uint64_t{0}) return base::Err{Error::too_large};
            TRY(check_range(l.virt_base, try_virt_end));
            TRY(count_pgtables(l.virt_base, try_virt_end, 0));
            pages = map.area.tables + extra_pages;
            if (virt_alloc_end + pages * kPageSize <= try_virt_end + 1) break;
        }
        map.area.pfn = 0;
        l.nr_maps++;
        l.v_end = try_virt_end + 1;   // virt_pgtab_end
        return alloc_segment(l.pgtables, 0, map.area.tables * kPageSize);
    }

    // alloc_p2m_list_x86_64
    base::Status<Error> alloc_p2m_list() {
        uint64_t size = base::align_up(o.nr_pages * 8, kPageSize);   // round_pg_up(p2m_size * sizeof_pfn)
        l.p2m_list_pages = size / kPageSize;
        if (l.p2m_virtual) {
            const uint64_t from = l.p2m.vstart, to = from + size - 1;
            if (base::add_overflows(from, size - 1)) return base::Err{Error::too_large};
            TRY(check_range(from, to));
            TRY(count_pgtables(from, to, pfn_alloc_end));
            Mapping& map = l.maps[l.nr_maps];
            map.area.pfn = pfn_alloc_end;
            for (unsigned lv = 0; lv < kLevels; ++lv) map.lvl[lv].pfn += size / kPageSize;
            l.nr_maps++;
            size += map.area.tables * kPageSize;
        }
        return alloc_segment(l.p2m, 0, size);
    }

    // xc_dom_build_image, from "load kernel" on.
    base::Status<Error> build(const Kernel& k) {
        l.nr_pages = o.nr_pages;
        l.virt_base = k.virt_base;
        virt_alloc_end = k.virt_base;
        if (k.kstart < k.virt_base) return base::Err{Error::image_below_base};
        if (k.kstart & (kPageSize - 1)) return base::Err{Error::image_misaligned};
        if (k.kend < k.kstart) return base::Err{Error::too_large};
        TRY(check_range(k.virt_base, k.virt_base));

        // The kernel, padded up to its first byte.
        TRY(alloc_segment(l.kernel, k.kstart, k.kend - k.kstart));

        // A ramdisk in the initial mapping, unless the kernel takes it unmapped.
        if (o.ramdisk_bytes && !k.unmapped_initrd) {
            TRY(alloc_segment(l.ramdisk, 0, o.ramdisk_bytes));
            l.ramdisk_mapped = true;
            l.mod_start = l.ramdisk.vstart;
            // seg.vend - seg.vstart: the size itself since Xen 4.19 (backported
            // to 4.17.5), the size rounded up to a page before.
            l.mod_len = o.ramdisk_bytes;
        }

        // INIT_P2M is used only below VIRT_BASE and page aligned.
        l.p2m_virtual = k.has_init_p2m && k.init_p2m < k.virt_base && !(k.init_p2m & (kPageSize - 1));
        if (!l.p2m_virtual) TRY(alloc_p2m_list());

        // alloc_magic_pages_pv
        TRY(alloc_page(l.start_info_pfn));
        if (o.domu) {
            TRY(alloc_page(l.xenstore_pfn));
            TRY(alloc_page(l.console_pfn));
        }

        TRY(alloc_pgtables());
        TRY(alloc_page(l.bootstack_pfn));

        // Make sure all memory mapped by initial page tables is available.
        TRY(alloc_pad(l.v_end));

        if (o.ramdisk_bytes && k.unmapped_initrd) {
            TRY(alloc_segment(l.ramdisk, 0, o.ramdisk_bytes));
            l.flags |= kSifModStartPfn;
            l.mod_start = l.ramdisk.pfn;
            l.mod_len = l.ramdisk.pages * kPageSize;   // page_size * seg.pages: whole pages
        }

        if (l.p2m_virtual) {
            l.p2m.vstart = k.init_p2m;
            TRY(alloc_p2m_list());
            l.p2m.vstart = k.init_p2m;
            l.first_p2m_pfn = l.p2m.pfn;
            l.nr_p2m_frames = l.p2m.pages;
        }
        if (o.domu) l.flags |= kSifVirtP2m4Tools;   // xc_dom_allocate's default
        l.alloc_end = pfn_alloc_end;

        l.v_start = l.virt_base;
        l.kstart = l.kernel.vstart;
        l.kend = l.kernel.vend();
        l.p2m_va = l.p2m.vstart;
        l.p2m_pages = l.p2m_list_pages;
        l.start_info_va = l.va(l.start_info_pfn);
        l.pt_va = l.pgtables.vstart;
        l.nr_pt_frames = l.maps[0].area.tables;
        l.stack_va = l.va(l.bootstack_pfn);
        l.mapped_pages = (l.v_end - l.v_start) / kPageSize;
        return {};
    }
};

// get_pg_prot
uint64_t pg_prot(const Layout& l, unsigned lv, uint64_t pfn) {
    if (lv > 0) return kUpperProt;
    for (unsigned m = 0; m < l.nr_maps; ++m) {
        const Mapping& map = l.maps[m];
        const uint64_t s = map.lvl[kLevels - 1].pfn, e = s + map.area.tables;
        if (pfn >= s && pfn < e) return kL1Prot & ~kPteRw;
    }
    return kL1Prot;
}

uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }
uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

}  // namespace

base::Result<Layout, Error> compute(const Kernel& k, const Options& o) {
    if (o.nr_pages > kMaxPages) return base::Err{Error::too_large};
    Layout l{};
    Builder b{o, l};
    TRY(b.build(k));
    return l;
}

bool fill_page_table(const Layout& l, uint64_t pfn, uint64_t* pg, MfnOf mfn_of, void* ctx) {
    // Which mapping's which level this frame is, and which of its tables.
    const Mapping* map1 = nullptr;
    unsigned lv = 0;
    for (unsigned m = 0; m < l.nr_maps && !map1; ++m)
        for (unsigned i = 0; i < kLevels; ++i) {
            const Level& x = l.maps[m].lvl[i];
            if (x.tables && pfn >= x.pfn && pfn - x.pfn < x.tables) {
                map1 = &l.maps[m];
                lv = i;
                break;
            }
        }
    if (!map1) return false;
    const Level& me = map1->lvl[lv];
    const uint64_t first = (pfn - me.pfn) * 512, last = first + 511;   // this table's entries
    for (unsigned i = 0; i < 512; ++i) pg[i] = 0;

    // setup_pgtables_pv, for the entries of this one table.
    const unsigned shift = 12 + lv * 9;
    const uint64_t from = me.from, to = me.to;
    for (unsigned m2 = 0; m2 < l.nr_maps; ++m2) {
        const Level& lvl = lv > 0 ? l.maps[m2].lvl[lv - 1] : l.maps[m2].area;
        if (lv > 0 && lvl.tables == 0) continue;
        if (lvl.from >= to || lvl.to <= from) continue;
        const uint64_t p_s = (max64(from, lvl.from) - from) >> shift;
        const uint64_t p_e = (min64(to, lvl.to) - from) >> shift;
        const uint64_t target = ((max64(from, lvl.from) - lvl.from) >> shift) + lvl.pfn;
        const uint64_t lo = max64(p_s, first), hi = min64(p_e, last);
        for (uint64_t p = lo; p <= hi && lo <= hi; ++p) {
            const uint64_t t = target + (p - p_s);
            pg[p - first] = (mfn_of(ctx, t) << 12) | pg_prot(l, lv, t);
        }
    }
    return true;
}

void describe(const Layout& l, char* pieces, size_t pieces_cap, char* addresses, size_t addresses_cap) {
    char rd[48] = "none";
    if (l.ramdisk.pages)
        base::snformat(rd, sizeof rd, "%#lx+%#lx%s", l.ramdisk.pfn, l.ramdisk.pages,
                       l.ramdisk_mapped ? "" : " unmapped");
    char rings[40] = "none";
    if (l.xenstore_pfn != kNoPfn) base::snformat(rings, sizeof rings, "%#lx,%#lx", l.xenstore_pfn, l.console_pfn);
    base::snformat(pieces, pieces_cap,
                   "pfn: kernel %#lx+%#lx, ramdisk %s, p2m %#lx+%#lx%s, start_info %#lx, rings %s, tables %#lx+%#lx, "
                   "stack %#lx",
                   l.kernel.pfn, l.kernel.pages, rd, l.p2m.pfn, l.p2m.pages, l.p2m_virtual ? "*" : "",
                   l.start_info_pfn, rings, l.pgtables.pfn, l.pgtables.pages, l.bootstack_pfn);
    base::snformat(addresses, addresses_cap, "mapped %#lx-%#lx, pt_base %#lx, mfn_list %#lx, used %#lx/%#lx pages",
                   l.v_start, l.v_end, l.pt_va, l.p2m_va, l.alloc_end, l.nr_pages);
}

}  // namespace pvboot
