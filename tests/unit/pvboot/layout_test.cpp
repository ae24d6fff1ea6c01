// pvboot::compute / fill_page_table: Xen's x86-64 PV start-of-day layout.

#include <gtest/gtest.h>

#include <elf/elf.hpp>
#include <elf/xen.hpp>
#include <pvboot/layout.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "elf_builder.hpp"

namespace {

using pvboot::Error;
using pvboot::Kernel;
using pvboot::kNoPfn;
using pvboot::Layout;
using pvboot::Options;

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
constexpr uint64_t kPage = 4096;

Layout layout(const Kernel& k, const Options& o) {
    auto r = pvboot::compute(k, o);
    EXPECT_TRUE(r.ok()) << pvboot::describe(r.error());
    return r.ok() ? *r : Layout{};
}

Error refused(const Kernel& k, const Options& o) {
    auto r = pvboot::compute(k, o);
    EXPECT_FALSE(r.ok());
    return r.ok() ? Error{} : r.error();
}

// A Moat-style kernel: [kstart, kend) at VIRT_BASE `base`.
Kernel moat(uint64_t base, uint64_t kstart, uint64_t kend) { return Kernel{base, kstart, kend, false, 0, false}; }

// --- The tree the layout's page tables make, walked as the MMU walks it -----

constexpr uint64_t kMfnBase = 0x100000;   // mfn = pfn + kMfnBase: every frame traceable
uint64_t mfn_of(uint64_t pfn) { return pfn + kMfnBase; }

struct Tree {
    std::map<uint64_t, std::vector<uint64_t>> tables;   // pfn -> 512 entries

    explicit Tree(const Layout& l) {
        auto fill = [&](uint64_t pfn) {
            std::vector<uint64_t> e(512, 0xdead);
            EXPECT_TRUE(pvboot::fill_page_table(l, pfn, e.data(), [](uint64_t p) { return mfn_of(p); }));
            tables[pfn] = e;
        };
        for (uint64_t p = 0; p < l.pgtables.pages; ++p) fill(l.pgtables.pfn + p);
        pvboot::Segment t = l.p2m_tables();
        for (uint64_t p = 0; p < t.pages; ++p) fill(t.pfn + p);
    }

    // The pfn `va` maps to and its L1 flags, or kNoPfn. Checks every upper
    // entry on the way.
    uint64_t walk(uint64_t l4, uint64_t va, uint64_t* l1_flags = nullptr) const {
        uint64_t table = l4;
        for (int level = 4; level >= 1; --level) {
            auto it = tables.find(table);
            EXPECT_NE(it, tables.end()) << "pfn " << table << " is not a page table";
            if (it == tables.end()) return kNoPfn;
            uint64_t e = it->second[(va >> (12 + 9 * (level - 1))) & 511];
            if (!(e & 1)) return kNoPfn;
            uint64_t pfn = ((e & 0x000ffffffffff000ull) >> 12) - kMfnBase;
            if (level == 1) {
                if (l1_flags) *l1_flags = e & 0xfff;
                return pfn;
            }
            EXPECT_EQ(e & 0xfff, pvboot::kUpperProt) << std::hex << va;
            table = pfn;
        }
        return kNoPfn;
    }

    uint64_t present_l1_entries(const Layout& l) const {
        uint64_t n = 0;
        for (const auto& [pfn, e] : tables) {
            bool is_l1 = false;
            for (unsigned m = 0; m < l.nr_maps; ++m) {
                const pvboot::Level& x = l.maps[m].lvl[0];
                is_l1 |= x.tables && pfn >= x.pfn && pfn < x.pfn + x.tables;
            }
            if (is_l1)
                for (uint64_t v : e) n += v & 1;
        }
        return n;
    }
};

// Every property the builders and the guest rely on, and the tree checked
// against the layout: the bootstrap region maps pfn (va - VIRT_BASE) / 4 KiB,
// read-only exactly for the page tables; a virtual P2M maps its list; nothing
// else is mapped.
void check(const Layout& l, const Kernel& k, const Options& o) {
    EXPECT_EQ(l.v_start, k.virt_base);
    EXPECT_EQ(l.nr_pages, o.nr_pages);
    EXPECT_EQ(l.kernel.vstart, k.kstart);
    EXPECT_EQ(l.kernel.pfn, (k.kstart - k.virt_base) / kPage);
    EXPECT_EQ(l.kernel.vend(), k.kend);
    EXPECT_EQ(l.p2m_list_pages, (o.nr_pages * 8 + kPage - 1) / kPage);
    EXPECT_EQ(l.pt_va, l.va(l.pgtables.pfn));
    EXPECT_EQ(l.stack_va, l.pt_va + l.nr_pt_frames * kPage);
    EXPECT_EQ(l.bootstack_pfn, l.pgtables.pfn + l.pgtables.pages);
    EXPECT_EQ(l.nr_pt_frames, l.pgtables.pages);
    // Xen's rounding (alloc_pgtables_pv): first try the 4 MiB boundary
    // strictly above the stack and padding alone (round_up(x) is
    // x | (4 MiB - 1)); if the tables do not fit below it, the one strictly
    // above everything. At least 512 KiB of padding either way.
    const uint64_t first = ((l.pt_va + 129 * kPage) | (4 * MiB - 1)) + 1;
    const uint64_t all = l.stack_va + kPage + 512 * KiB;
    EXPECT_EQ(l.v_end, all <= first ? first : (all | (4 * MiB - 1)) + 1);
    EXPECT_EQ(l.v_end % (4 * MiB), 0u);
    EXPECT_GE(l.v_end, all);
    EXPECT_EQ(l.mapped_pages, (l.v_end - l.v_start) / kPage);
    EXPECT_LE(l.mapped_pages, o.nr_pages);
    EXPECT_LE(l.alloc_end, o.nr_pages);
    if (o.domu) {
        EXPECT_EQ(l.xenstore_pfn, l.start_info_pfn + 1);
        EXPECT_EQ(l.console_pfn, l.start_info_pfn + 2);
        EXPECT_EQ(l.pgtables.pfn, l.start_info_pfn + 3);
        EXPECT_TRUE(l.flags & pvboot::kSifVirtP2m4Tools);
    } else {
        EXPECT_EQ(l.xenstore_pfn, kNoPfn);
        EXPECT_EQ(l.console_pfn, kNoPfn);
        EXPECT_EQ(l.pgtables.pfn, l.start_info_pfn + 1);
        EXPECT_FALSE(l.flags & pvboot::kSifVirtP2m4Tools);
    }
    if (l.p2m_virtual) {
        EXPECT_EQ(l.p2m.pfn, l.ramdisk.pages && !l.ramdisk_mapped ? l.ramdisk.pfn + l.ramdisk.pages : l.mapped_pages);
        EXPECT_EQ(l.p2m.vstart, k.init_p2m);
        EXPECT_EQ(l.first_p2m_pfn, l.p2m.pfn);
        EXPECT_EQ(l.nr_p2m_frames, l.p2m.pages);
        EXPECT_EQ(l.alloc_end, l.p2m.pfn + l.p2m.pages);
    } else {
        EXPECT_EQ(l.p2m.vstart, l.va(l.p2m.pfn));
        EXPECT_EQ(l.first_p2m_pfn, 0u);
        EXPECT_EQ(l.nr_p2m_frames, 0u);
        EXPECT_EQ(l.start_info_pfn, l.p2m.pfn + l.p2m.pages);
    }

    Tree t(l);
    uint64_t rw = 0, ro = 0;
    for (uint64_t va = l.v_start; va < l.v_end; va += kPage) {
        uint64_t flags = 0, pfn = t.walk(l.l4_pfn(), va, &flags);
        ASSERT_EQ(pfn, l.pfn(va)) << std::hex << va;
        if (l.pgtables.has(pfn)) {
            EXPECT_EQ(flags, pvboot::kL1Prot & ~pvboot::kPteRw) << std::hex << va;
            ++ro;
        } else {
            EXPECT_EQ(flags, pvboot::kL1Prot) << std::hex << va;
            ++rw;
        }
    }
    EXPECT_EQ(ro, l.nr_pt_frames);
    if (l.p2m_virtual) {
        for (uint64_t i = 0; i < l.p2m_list_pages; ++i) {
            uint64_t flags = 0;
            ASSERT_EQ(t.walk(l.l4_pfn(), l.p2m.vstart + i * kPage, &flags), l.p2m.pfn + i);
            EXPECT_EQ(flags, pvboot::kL1Prot);
        }
        EXPECT_EQ(t.walk(l.l4_pfn(), l.p2m.vstart + l.p2m_list_pages * kPage), kNoPfn);
    }
    EXPECT_EQ(t.walk(l.l4_pfn(), l.v_end), kNoPfn);
    if (l.v_start >= 4 * MiB) EXPECT_EQ(t.walk(l.l4_pfn(), l.v_start - kPage), kNoPfn);
    EXPECT_EQ(t.present_l1_entries(l), l.mapped_pages + (l.p2m_virtual ? l.p2m_list_pages : 0));
    // Every table the layout counted is used, and none of the hypervisor's slots.
    for (const auto& [pfn, e] : t.tables) {
        bool any = false;
        for (uint64_t v : e) any |= (v & 1);
        EXPECT_TRUE(any) << "page table pfn " << pfn << " is empty";
        if (pfn == l.l4_pfn())
            for (unsigned i = 256; i < 272; ++i) EXPECT_EQ(e[i], 0u);
    }
}

// --- Debian's Linux 6.1 (linux-image-6.1.0-57-amd64, 6.1.192) ---------------
//
// Its ELF (unpacked from vmlinuz): PT_LOADs at p_paddr 0x1000000 (text,
// 0x18eacdc bytes), 0x2a00000 (data, 0x644000), 0x3044000 (per-CPU, p_vaddr 0,
// 0x35000), 0x3079000 (init+bss, 0x1987000); VIRT_BASE 0xffffffff80000000,
// PADDR_OFFSET 0, ENTRY 0xffffffff830791c0, INIT_P2M 0x8000000000,
// MOD_START_PFN 1, no HYPERCALL_PAGE. So (elf_parse_binary) pstart 0x1000000,
// pend 0x3079000 + 0x1987000 = 0x4a00000, and (elf_xen_addr_calc_check)
// virt_offset 0xffffffff80000000, virt_kstart 0xffffffff81000000, virt_kend
// 0xffffffff84a00000.
constexpr uint64_t kLinuxBase = 0xffffffff80000000;
constexpr Kernel kLinux{kLinuxBase, 0xffffffff81000000, 0xffffffff84a00000, true, 0x8000000000, true};

// Xen's builder on it with 256 MiB (total_pages = p2m_size = 0x10000), by
// hand through xc_dom_build_image (virt_alloc_end starts at VIRT_BASE,
// pfn_alloc_end at 0):
//   kernel:      xc_dom_alloc_segment(start 0xffffffff81000000) pads
//                0x1000000 / 4K = 0x1000 pages, then 0x3a00000 / 4K = 0x3a00
//                pages: pfn 0x1000, 0xffffffff81000000-0xffffffff84a00000.
//   ramdisk:     none in the mapping (MOD_START_PFN).
//   P2M:         p2m_base 0x8000000000 < virt_base and page aligned: later.
//   start_info:  pfn 0x4a00 (0xffffffff84a00000); xenstore 0x4a01; console 0x4a02.
//   page tables: virt_alloc_end 0xffffffff84a03000; extra_pages = 1 + 128;
//                try_virt_end = (0xffffffff84a03000 + 129 * 4K) | (4M - 1)
//                = 0xffffffff84bfffff; count_pgtables(virt_base, that, 0)
//                on 48-bit masked addresses 0xffff80000000..0xffff84bfffff:
//                L4 1; L3 (512 GiB each) 1; L2 (1 GiB) 1; L1 (2 MiB)
//                (0x4bfffff >> 21) + 1 = 38: 41 tables. 41 + 129 pages fit
//                below 0xffffffff84c00000: done. Tables at pfn 0x4a03: L4
//                0x4a03, L3 0x4a04, L2 0x4a05, L1s 0x4a06-0x4a2b; pt_base
//                0xffffffff84a03000, nr_pt_frames 41.
//   boot stack:  pfn 0x4a2c (0xffffffff84a2c000): %rsp 0xffffffff84a2d000.
//   padding:     to virt_pgtab_end 0xffffffff84c00000: 0x4c00 pages mapped.
//   P2M:         alloc_p2m_list_x86_64: 0x10000 * 8 = 0x80000 bytes, 0x80
//                pages at INIT_P2M 0x8000000000..0x800007ffff; its
//                count_pgtables (pfn 0x4c00, tables from 0x4c00, moved past
//                the list): L3 1 (L4 slot 1 is not the bootstrap L3's), L2 1,
//                L1 1: L3 0x4c80, L2 0x4c81, L1 0x4c82. p2m_seg: pfn 0x4c00,
//                0x83 pages; first_p2m_pfn 0x4c00, nr_p2m_frames 0x83,
//                mfn_list 0x8000000000.
//   flags:       SIF_VIRT_P2M_4TOOLS (xc_dom_allocate's default), 0x10.
// 0x4c83 pages laid out; 0x10000 - 0x4c83 free.
TEST(LinuxLayout, Debian61With256MiBIsXens) {
    const Options o{256 * MiB / kPage};
    Layout l = layout(kLinux, o);
    check(l, kLinux, o);
    EXPECT_EQ(l.kernel.pfn, 0x1000u);
    EXPECT_EQ(l.kernel.pages, 0x3a00u);
    EXPECT_EQ(l.kernel.vstart, 0xffffffff81000000u);
    EXPECT_EQ(l.ramdisk.pages, 0u);
    EXPECT_EQ(l.start_info_pfn, 0x4a00u);
    EXPECT_EQ(l.start_info_va, 0xffffffff84a00000u);
    EXPECT_EQ(l.xenstore_pfn, 0x4a01u);
    EXPECT_EQ(l.console_pfn, 0x4a02u);
    EXPECT_EQ(l.pgtables.pfn, 0x4a03u);
    EXPECT_EQ(l.pt_va, 0xffffffff84a03000u);
    EXPECT_EQ(l.nr_pt_frames, 41u);
    EXPECT_EQ(l.maps[0].lvl[3].pfn, 0x4a03u);
    EXPECT_EQ(l.maps[0].lvl[2].pfn, 0x4a04u);
    EXPECT_EQ(l.maps[0].lvl[1].pfn, 0x4a05u);
    EXPECT_EQ(l.maps[0].lvl[0].pfn, 0x4a06u);
    EXPECT_EQ(l.maps[0].lvl[0].tables, 38u);
    EXPECT_EQ(l.bootstack_pfn, 0x4a2cu);
    EXPECT_EQ(l.stack_va + kPage, 0xffffffff84a2d000u);
    EXPECT_EQ(l.v_end, 0xffffffff84c00000u);
    EXPECT_EQ(l.mapped_pages, 0x4c00u);
    EXPECT_TRUE(l.p2m_virtual);
    EXPECT_EQ(l.p2m.pfn, 0x4c00u);
    EXPECT_EQ(l.p2m.pages, 0x83u);
    EXPECT_EQ(l.p2m_list_pages, 0x80u);
    EXPECT_EQ(l.p2m_va, 0x8000000000u);
    EXPECT_EQ(l.maps[1].lvl[2].pfn, 0x4c80u);
    EXPECT_EQ(l.maps[1].lvl[1].pfn, 0x4c81u);
    EXPECT_EQ(l.maps[1].lvl[0].pfn, 0x4c82u);
    EXPECT_EQ(l.maps[1].area.tables, 3u);
    EXPECT_EQ(l.first_p2m_pfn, 0x4c00u);
    EXPECT_EQ(l.nr_p2m_frames, 0x83u);
    EXPECT_EQ(l.flags, pvboot::kSifVirtP2m4Tools);
    EXPECT_EQ(l.mod_start, 0u);
    EXPECT_EQ(l.mod_len, 0u);
    EXPECT_EQ(l.alloc_end, 0x4c83u);
    // The L4's slot 511 holds the bootstrap L3, slot 1 the P2M's.
    Tree t(l);
    const auto& l4 = t.tables.at(0x4a03);
    EXPECT_EQ(l4[511], (mfn_of(0x4a04) << 12) | pvboot::kUpperProt);
    EXPECT_EQ(l4[1], (mfn_of(0x4c80) << 12) | pvboot::kUpperProt);
    for (unsigned i = 0; i < 512; ++i)
        if (i != 1 && i != 511) EXPECT_EQ(l4[i], 0u) << i;
    char pieces[200], addresses[200];
    pvboot::describe(l, pieces, sizeof pieces, addresses, sizeof addresses);
    EXPECT_EQ(std::string(pieces),
              "pfn: kernel 0x1000+0x3a00, ramdisk none, p2m 0x4c00+0x83*, start_info 0x4a00, rings 0x4a01,0x4a02, "
              "tables 0x4a03+0x29, stack 0x4a2c");
    EXPECT_EQ(std::string(addresses),
              "mapped 0xffffffff80000000-0xffffffff84c00000, pt_base 0xffffffff84a03000, mfn_list 0x8000000000, "
              "used 0x4c83/0x10000 pages");
    EXPECT_LT(std::strlen(pieces) + std::strlen("linux: "), 160u);
    EXPECT_LT(std::strlen(addresses) + std::strlen("linux: entry 0xffffffff830791c0, "), 160u);
}

// With a ramdisk (0x1234567 bytes = 0x1235 pages): MOD_START_PFN puts it
// after the mapping (xc_dom_build_image's second module loop), before the
// virtual P2M: pfn 0x4c00, mod_start 0x4c00 with SIF_MOD_START_PFN, mod_len
// page-rounded (page_size * seg.pages) 0x1235000. The P2M moves to pfn
// 0x5e35 (tables 0x5eb5-0x5eb7), 0x5eb8 pages laid out.
TEST(LinuxLayout, RamdiskUnmappedWithModStartPfn) {
    const Options o{256 * MiB / kPage, 0x1234567};
    Layout l = layout(kLinux, o);
    check(l, kLinux, o);
    EXPECT_FALSE(l.ramdisk_mapped);
    EXPECT_EQ(l.ramdisk.pfn, 0x4c00u);
    EXPECT_EQ(l.ramdisk.pages, 0x1235u);
    EXPECT_EQ(l.flags, pvboot::kSifVirtP2m4Tools | pvboot::kSifModStartPfn);
    EXPECT_EQ(l.mod_start, 0x4c00u);
    EXPECT_EQ(l.mod_len, 0x1235000u);
    EXPECT_EQ(l.start_info_pfn, 0x4a00u);   // the mapping does not change
    EXPECT_EQ(l.v_end, 0xffffffff84c00000u);
    EXPECT_EQ(l.p2m.pfn, 0x5e35u);
    EXPECT_EQ(l.maps[1].lvl[2].pfn, 0x5eb5u);
    EXPECT_EQ(l.maps[1].lvl[0].pfn, 0x5eb7u);
    EXPECT_EQ(l.first_p2m_pfn, 0x5e35u);
    EXPECT_EQ(l.alloc_end, 0x5eb8u);
}

// Without MOD_START_PFN the ramdisk is the module right after the kernel:
// pfn 0x4a00, 0xffffffff84a00000-0xffffffff85c35000, mod_start its address,
// mod_len its size (seg.vend - seg.vstart, and xc_dom_alloc_segment sets
// vend = start + size since Xen 4.19's "Correct the length calculation"; it
// was the page-rounded size before).
// start_info 0x5c35, xenstore 0x5c36, console 0x5c37; virt_alloc_end
// 0xffffffff85c38000, try_virt_end (0xffffffff85c38000 + 129 pages) | (4M-1)
// = 0xffffffff85ffffff: L1s (0x5ffffff >> 21) + 1 = 48, 51 tables at
// 0x5c38; stack 0x5c6b; mapping to 0xffffffff86000000 (0x6000 pages); the
// P2M at 0x6000.
TEST(LinuxLayout, RamdiskMappedWithoutModStartPfn) {
    Kernel k = kLinux;
    k.unmapped_initrd = false;
    const Options o{256 * MiB / kPage, 0x1234567};
    Layout l = layout(k, o);
    check(l, k, o);
    EXPECT_TRUE(l.ramdisk_mapped);
    EXPECT_EQ(l.ramdisk.pfn, 0x4a00u);
    EXPECT_EQ(l.ramdisk.vstart, 0xffffffff84a00000u);
    EXPECT_EQ(l.ramdisk.vend(), 0xffffffff85c35000u);
    EXPECT_EQ(l.mod_start, 0xffffffff84a00000u);
    EXPECT_EQ(l.mod_len, 0x1234567u);
    EXPECT_EQ(l.flags, pvboot::kSifVirtP2m4Tools);
    EXPECT_EQ(l.start_info_pfn, 0x5c35u);
    EXPECT_EQ(l.console_pfn, 0x5c37u);
    EXPECT_EQ(l.pgtables.pfn, 0x5c38u);
    EXPECT_EQ(l.nr_pt_frames, 51u);
    EXPECT_EQ(l.bootstack_pfn, 0x5c6bu);
    EXPECT_EQ(l.v_end, 0xffffffff86000000u);
    EXPECT_EQ(l.p2m.pfn, 0x6000u);
    EXPECT_EQ(l.alloc_end, 0x6083u);
    // The ramdisk's pages are mapped where mod_start says.
    Tree t(l);
    EXPECT_EQ(t.walk(l.l4_pfn(), l.mod_start), 0x4a00u);
    EXPECT_EQ(t.walk(l.l4_pfn(), l.mod_start + l.mod_len - 1), 0x4a00u + 0x1234);
}

// Without INIT_P2M (or one Xen will not use: at or above VIRT_BASE, or not
// page aligned) the P2M is the segment after the kernel: pfn 0x4a00, 0x80
// pages at 0xffffffff84a00000 = mfn_list; start_info 0x4a80, xenstore
// 0x4a81, console 0x4a82, 41 tables at 0x4a83, stack 0x4aac, the same
// 0xffffffff84c00000 end, and nothing after it.
TEST(LinuxLayout, P2mInTheMappingWithoutUsableInitP2m) {
    for (Kernel k : {Kernel{kLinux.virt_base, kLinux.kstart, kLinux.kend, false, 0, true},
                     Kernel{kLinux.virt_base, kLinux.kstart, kLinux.kend, true, 0xffffffffc0000000, true},
                     Kernel{kLinux.virt_base, kLinux.kstart, kLinux.kend, true, 0x8000000800, true}}) {
        const Options o{256 * MiB / kPage};
        Layout l = layout(k, o);
        check(l, k, o);
        EXPECT_FALSE(l.p2m_virtual);
        EXPECT_EQ(l.p2m.pfn, 0x4a00u);
        EXPECT_EQ(l.p2m.pages, 0x80u);
        EXPECT_EQ(l.p2m_va, 0xffffffff84a00000u);
        EXPECT_EQ(l.start_info_pfn, 0x4a80u);
        EXPECT_EQ(l.console_pfn, 0x4a82u);
        EXPECT_EQ(l.pgtables.pfn, 0x4a83u);
        EXPECT_EQ(l.nr_pt_frames, 41u);
        EXPECT_EQ(l.bootstack_pfn, 0x4aacu);
        EXPECT_EQ(l.v_end, 0xffffffff84c00000u);
        EXPECT_EQ(l.alloc_end, 0x4c00u);
        EXPECT_EQ(l.nr_maps, 1u);
    }
}

TEST(LinuxLayout, OneGiB) {
    // 0x40000 pages: the P2M is 0x200 pages, still one L1 at INIT_P2M.
    const Options o{GiB / kPage};
    Layout l = layout(kLinux, o);
    check(l, kLinux, o);
    EXPECT_EQ(l.v_end, 0xffffffff84c00000u);   // the mapping is the same
    EXPECT_EQ(l.p2m.pfn, 0x4c00u);
    EXPECT_EQ(l.p2m.pages, 0x203u);
    EXPECT_EQ(l.alloc_end, 0x4e03u);
}

TEST(LinuxLayout, SmallestMemoryItFitsIn) {
    // The smallest domain Xen builds it in uses every page.
    uint64_t n = 0x4000;
    while (!pvboot::compute(kLinux, Options{n}).ok()) ++n;
    Layout l = layout(kLinux, Options{n});
    EXPECT_EQ(l.alloc_end, n);
    EXPECT_EQ(refused(kLinux, Options{n - 1}), Error::does_not_fit);
    EXPECT_EQ(refused(kLinux, Options{64 * MiB / kPage}), Error::does_not_fit);
    // A ramdisk that does not fit.
    EXPECT_EQ(refused(kLinux, Options{256 * MiB / kPage, 250 * MiB}), Error::does_not_fit);
}

// --- Moat's own guests (VIRT_BASE 4 MiB, no INIT_P2M) -----------------------

TEST(MoatLayout, SmallGuestAsTheKernelBuildsIt) {
    // A 20 KiB image at 4 MiB in a 1024-page domain, without the rings (the
    // kernel's builder, like Xen's dom0 one): P2M 2 pages at 0x405000,
    // start_info 0x407000, L4 L3 L2 and two L1s for [4 MiB, 8 MiB) at
    // 0x408000, stack 0x40d000, region to 8 MiB.
    const Kernel k = moat(4 * MiB, 4 * MiB, 4 * MiB + 0x5000);
    const Options o{1024, 0, false};
    Layout l = layout(k, o);
    check(l, k, o);
    EXPECT_EQ(l.p2m_va, 0x405000u);
    EXPECT_EQ(l.p2m_pages, 2u);
    EXPECT_EQ(l.start_info_va, 0x407000u);
    EXPECT_EQ(l.pt_va, 0x408000u);
    EXPECT_EQ(l.nr_pt_frames, 5u);
    EXPECT_EQ(l.stack_va, 0x40d000u);
    EXPECT_EQ(l.v_end, 8 * MiB);
    EXPECT_EQ(l.mapped_pages, 1024u);
    EXPECT_EQ(l.flags, 0u);
}

TEST(MoatLayout, SmallGuestAsTheBuilderBuildsIt) {
    // The same with the xenstore and console pages after start_info.
    const Kernel k = moat(4 * MiB, 4 * MiB, 4 * MiB + 0x5000);
    const Options o{1024};
    Layout l = layout(k, o);
    check(l, k, o);
    EXPECT_EQ(l.start_info_va, 0x407000u);
    EXPECT_EQ(l.xenstore_pfn, 8u);
    EXPECT_EQ(l.console_pfn, 9u);
    EXPECT_EQ(l.pt_va, 0x40a000u);
    EXPECT_EQ(l.stack_va, 0x40f000u);
    EXPECT_EQ(l.v_end, 8 * MiB);
    EXPECT_EQ(l.alloc_end, 1024u);
}

TEST(MoatLayout, ImageAboveVirtBase) {
    // VIRT_BASE below the image: the gap is mapped, pfns count from VIRT_BASE.
    const Kernel k = moat(2 * MiB, 3 * MiB, 3 * MiB + 0x3000);
    Layout l = layout(k, Options{2048});
    check(l, k, Options{2048});
    EXPECT_EQ(l.pfn(3 * MiB), 256u);
    EXPECT_EQ(l.kernel.pfn, 256u);
}

TEST(MoatLayout, RegionEndAsXenRoundsIt) {
    // 4096 pages: P2M 8, start_info 1, the domU rings 2, then 5 tables and
    // the stack: 17 pages after kend, the stack and padding ending 512 KiB
    // past the stack.
    // Stack and padding ending exactly at 8 MiB: the region ends there.
    uint64_t kend = 8 * MiB - 512 * KiB - 17 * kPage;
    Layout l = layout(moat(4 * MiB, 4 * MiB, kend), Options{4096});
    check(l, moat(4 * MiB, 4 * MiB, kend), Options{4096});
    EXPECT_EQ(l.stack_va + kPage + 512 * KiB, 8 * MiB);
    EXPECT_EQ(l.v_end, 8 * MiB);
    // A page further and it takes the next 4 MiB.
    kend += kPage;
    Layout m = layout(moat(4 * MiB, 4 * MiB, kend), Options{4096});
    check(m, moat(4 * MiB, 4 * MiB, kend), Options{4096});
    EXPECT_EQ(m.v_end, 12 * MiB);
    // The first try (the tables' start + 129 pages) exactly on 8 MiB: Xen's
    // x | (4 MiB - 1) takes the boundary strictly above, 12 MiB. (The end
    // is also the first 4 MiB boundary at or above the stack's end + 512
    // KiB, the rule libs/rt uses, unless the tables alone were over 4 MiB.)
    kend = 8 * MiB - 129 * kPage - 11 * kPage;
    Layout n = layout(moat(4 * MiB, 4 * MiB, kend), Options{4096});
    check(n, moat(4 * MiB, 4 * MiB, kend), Options{4096});
    EXPECT_EQ(n.pt_va + 129 * kPage, 8 * MiB);
    EXPECT_EQ(n.v_end, 12 * MiB);
}

TEST(MoatLayout, FixedPointWhenTablesAddAnL1) {
    // Sweep image sizes so that some layouts need the page tables themselves
    // to spill into another 2 MiB / 4 MiB block.
    for (uint64_t kend = 4 * MiB + 4096; kend < 40 * MiB; kend += 61 * 4096) {
        const Kernel k = moat(4 * MiB, 4 * MiB, kend);
        auto r = pvboot::compute(k, Options{1u << 16});
        ASSERT_TRUE(r.ok()) << std::hex << kend;
        const Layout& l = *r;
        // The count is the smallest that maps the region, tables included.
        uint64_t l1s = ((l.v_end - 1) >> 21) - (l.v_start >> 21) + 1;
        EXPECT_EQ(l.nr_pt_frames, 3 + l1s) << std::hex << kend;
        if (kend % (61 * 4096 * 16) == 4096) check(l, k, Options{1u << 16});
    }
}

TEST(MoatLayout, LargeDomainP2m) {
    // 4 GiB domain: the P2M alone is 8 MiB (2048 pages).
    const Kernel k = moat(4 * MiB, 4 * MiB, 6 * MiB);
    Layout l = layout(k, Options{1u << 20});
    EXPECT_EQ(l.p2m_pages, 2048u);
    EXPECT_EQ(l.start_info_va, 6 * MiB + 8 * MiB);
}

TEST(MoatLayout, CrossingOneGiBAndHalfTiB) {
    for (uint64_t top : {GiB, 512 * GiB}) {
        uint64_t base = top - 4 * MiB;
        const Kernel k = moat(base, base, top - 8192);
        Layout l = layout(k, Options{4096});
        check(l, k, Options{4096});
        EXPECT_GT(l.v_end, top);
        uint64_t l1s = (l.v_end - 1) / (2 * MiB) - base / (2 * MiB) + 1;
        EXPECT_EQ(l.nr_pt_frames, 1u + (top == GiB ? 1 : 2) + 2 + l1s);
    }
}

TEST(MoatLayout, InitP2mBelowTheImage) {
    // A lower-half INIT_P2M sharing the bootstrap mapping's L3 and L2: Xen's
    // count_pgtables gives it only an L1 of its own.
    Kernel k = moat(8 * MiB, 8 * MiB, 8 * MiB + 0x5000);
    k.has_init_p2m = true;
    k.init_p2m = 2 * MiB;
    const Options o{4096};
    Layout l = layout(k, o);
    check(l, k, o);
    EXPECT_TRUE(l.p2m_virtual);
    EXPECT_EQ(l.maps[1].lvl[2].tables, 0u);
    EXPECT_EQ(l.maps[1].lvl[1].tables, 0u);
    EXPECT_EQ(l.maps[1].lvl[0].tables, 1u);
    EXPECT_EQ(l.p2m.pages, 8u + 1);
}

// --- Refusals ----------------------------------------------------------------

TEST(Refused, DoesNotFit) {
    const Kernel k = moat(4 * MiB, 4 * MiB, 4 * MiB + 0x5000);
    EXPECT_TRUE(pvboot::compute(k, Options{1024, 0, false}).ok());
    EXPECT_EQ(refused(k, Options{1023, 0, false}), Error::does_not_fit);
    EXPECT_EQ(refused(k, Options{0}), Error::does_not_fit);
    // An image far above VIRT_BASE: the padding alone is more than the domain.
    EXPECT_EQ(refused(moat(0, 0xffffffff81000000, 0xffffffff81001000), Options{4096}), Error::does_not_fit);
}

TEST(Refused, ImageBelowBaseOrMisaligned) {
    EXPECT_EQ(refused(moat(4 * MiB, 4 * MiB - kPage, 5 * MiB), Options{4096}), Error::image_below_base);
    EXPECT_EQ(refused(moat(4 * MiB, 4 * MiB + 0x10, 5 * MiB), Options{4096}), Error::image_misaligned);
}

TEST(Refused, HypervisorRange) {
    // An image in the hypervisor's slots, at either end of them.
    for (uint64_t base : {pvboot::kHypervisorStart, pvboot::kHypervisorEnd - 4 * MiB, uint64_t{0xffff840000000000}}) {
        EXPECT_EQ(refused(moat(base, base, base + 0x5000), Options{4096}), Error::hypervisor_range) << std::hex << base;
    }
    // Just past them is fine.
    const Kernel ok = moat(pvboot::kHypervisorEnd, pvboot::kHypervisorEnd, pvboot::kHypervisorEnd + 0x5000);
    Layout l = layout(ok, Options{4096});
    check(l, ok, Options{4096});
    // A Linux whose INIT_P2M points into them.
    Kernel k = kLinux;
    k.init_p2m = 0xffff800000000000;
    EXPECT_EQ(refused(k, Options{65536}), Error::hypervisor_range);
    k.init_p2m = 0xffff87ffffff0000;   // the list runs out of them, but starts inside
    EXPECT_EQ(refused(k, Options{65536}), Error::hypervisor_range);
}

TEST(Refused, NonCanonical) {
    constexpr uint64_t kTop = 1ull << 47;
    // The image reaches past the lower half.
    EXPECT_EQ(refused(moat(kTop - 4 * MiB, kTop - 4 * MiB, kTop + 4096), Options{4096}), Error::too_large);
    // The image fits but the start-of-day data would not.
    EXPECT_EQ(refused(moat(kTop - 8 * MiB, kTop - 8 * MiB, kTop - 4096), Options{1u << 20}), Error::too_large);
    // VIRT_BASE in the hole.
    EXPECT_EQ(refused(moat(kTop, kTop, kTop + 0x5000), Options{4096}), Error::too_large);
    // At the very top: the region would wrap.
    EXPECT_EQ(refused(moat(~0ull - 4 * MiB + 1, ~0ull - 4 * MiB + 1, ~0ull - 4 * MiB + 0x5001), Options{4096}),
              Error::too_large);
    // An absurd page count.
    EXPECT_EQ(refused(moat(4 * MiB, 4 * MiB, 5 * MiB), Options{~0ull}), Error::too_large);
    // An INIT_P2M in the hole (below VIRT_BASE, so Xen would use it).
    Kernel k = kLinux;
    k.init_p2m = 0x0000900000000000;
    EXPECT_EQ(refused(k, Options{65536}), Error::too_large);
}

TEST(Refused, InitP2mOverlappingTheRegion) {
    // Below VIRT_BASE, so used, but 2 pages long from one page below it.
    Kernel k = moat(4 * MiB, 4 * MiB, 4 * MiB + 0x5000);
    k.has_init_p2m = true;
    k.init_p2m = 4 * MiB - kPage;
    EXPECT_EQ(refused(k, Options{4096}), Error::mappings_overlap);
}

// Refusals that come from the image itself, through elf::parse: what makes
// an image unusable before any layout is computed.
TEST(Refused, ImagesThatNeverReachTheLayout) {
    using namespace elftest;
    namespace xn = elf::xen_note;
    auto base_image = [] {
        Builder b;
        b.entry = kLinuxBase + 0x1000000;
        b.segs.push_back(Seg{kLinuxBase + 0x1000000, pattern(0x2000, 1), 0, PF_R | PF_X, 4096, true, 0x1000000});
        b.segs.push_back(Seg{0, pattern(0x1000, 2), 0, PF_R | PF_W, 4096, true, 0x1002000});
        b.notes = {note_str(xn::kGuestOs, "linux"), note_str(xn::kXenVersion, "xen-3.0"),
                   note_u64(xn::kVirtBase, kLinuxBase), note_u64(xn::kPaddrOffset, 0),
                   note_u64(xn::kEntry, kLinuxBase + 0x1000000)};
        return b;
    };
    auto good = base_image().build();
    auto img = elf::parse(good.data(), good.size());
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    Kernel k = pvboot::kernel_of(*img);
    EXPECT_EQ(k.kstart, kLinuxBase + 0x1000000);
    EXPECT_EQ(k.kend, kLinuxBase + 0x1003000);
    EXPECT_TRUE(pvboot::compute(k, Options{8192}).ok());
    // Overlapping segments: the per-CPU segment's p_paddr inside the text.
    Builder b = base_image();
    b.segs[1].paddr = 0x1001000;
    auto v = b.build();
    auto r = elf::parse(v.data(), v.size());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), elf::Error::OverlappingSegments);
    // p_paddr + p_memsz wrapping.
    b = base_image();
    b.segs[1].paddr = ~uint64_t{0} - 0x800;
    b.segs[1].vaddr = 0x7ff;   // same offset within its page
    b.segs[1].align = 1;
    v = b.build();
    auto r2 = elf::parse(v.data(), v.size());
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.error(), elf::Error::AddressOverflow);
    // p_paddr fine, but VIRT_BASE + p_paddr past 2^64.
    b = base_image();
    b.segs[1].paddr = 0x80000000;
    v = b.build();
    auto r3 = elf::parse(v.data(), v.size());
    ASSERT_FALSE(r3.ok());
    EXPECT_EQ(r3.error(), elf::Error::AddressOverflow);
}

TEST(Describe, EveryError) {
    for (int e = 1; e <= int(Error::mappings_overlap); ++e) {
        const char* s = pvboot::describe(Error(e));
        ASSERT_NE(s, nullptr);
        EXPECT_GT(std::strlen(s), 10u);
        EXPECT_STRNE(s, "unknown layout error");
    }
    EXPECT_EQ(pvboot::describe(pvboot::Error::does_not_fit),
              std::string("the image and its start-of-day data do not fit in the domain's memory"));
}

TEST(FillPageTable, RefusesOtherFrames) {
    Layout l = layout(kLinux, Options{65536});
    uint64_t e[512];
    EXPECT_FALSE(pvboot::fill_page_table(l, l.start_info_pfn, e, [](uint64_t p) { return p; }));
    EXPECT_FALSE(pvboot::fill_page_table(l, l.p2m.pfn, e, [](uint64_t p) { return p; }));
    EXPECT_TRUE(pvboot::fill_page_table(l, l.p2m.pfn + l.p2m_list_pages, e, [](uint64_t p) { return p; }));
}

// --- The real image, when the test is given it ------------------------------

struct FileSource {
    FILE* f;
    static bool read(void* ctx, uint64_t off, void* dst, size_t len) {
        FILE* f = static_cast<FileSource*>(ctx)->f;
        return std::fseek(f, long(off), SEEK_SET) == 0 && std::fread(dst, 1, len, f) == len;
    }
};

TEST(LinuxImage, DebianVmlinuxIfGiven) {
    const char* path = std::getenv("MOAT_LINUX_ELF");
    if (!path) GTEST_SKIP() << "MOAT_LINUX_ELF not set (the ELF unpacked from vmlinuz-6.1.0-*-amd64)";
    FileSource fs{std::fopen(path, "rb")};
    ASSERT_NE(fs.f, nullptr) << path;
    std::fseek(fs.f, 0, SEEK_END);
    elf::Source src{uint64_t(std::ftell(fs.f)), nullptr, &FileSource::read, &fs};
    auto img = elf::parse(src);
    ASSERT_TRUE(img.ok()) << elf::describe(img.error());
    EXPECT_STREQ(img->xen.guest_os, "linux");
    EXPECT_EQ(img->xen.entry, 0xffffffff830791c0u);
    EXPECT_EQ(img->xen.required_features, 1u);
    EXPECT_FALSE(img->xen.has_hypercall_page);
    ASSERT_EQ(img->nsegments, 4u);
    EXPECT_EQ(img->segments[2].paddr, 0x3044000u);
    EXPECT_EQ(img->segments[2].vaddr, 0xffffffff83044000u);
    Kernel k = pvboot::kernel_of(*img);
    EXPECT_EQ(k.virt_base, kLinux.virt_base);
    EXPECT_EQ(k.kstart, kLinux.kstart);
    EXPECT_EQ(k.kend, kLinux.kend);
    EXPECT_EQ(k.init_p2m, kLinux.init_p2m);
    EXPECT_TRUE(k.unmapped_initrd);
    Layout l = layout(k, Options{65536});
    EXPECT_EQ(l.alloc_end, 0x4c83u);
    std::fclose(fs.f);
}

}  // namespace
