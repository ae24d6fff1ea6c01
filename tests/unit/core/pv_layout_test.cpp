// compute_pv_layout / page_tables_needed: Xen's x86-64 PV start-of-day layout.

#include <gtest/gtest.h>

#include <core/pv_layout.hpp>

#include <cstring>

namespace {

using core::LayoutError;
using core::PvLayout;
using core::compute_pv_layout;
using core::page_tables_needed;

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

PvLayout layout(uint64_t base, uint64_t kstart, uint64_t kend, uint64_t pages) {
    auto r = compute_pv_layout(base, kstart, kend, pages);
    EXPECT_TRUE(r.ok()) << "error " << int(r.error());
    return r.ok() ? *r : PvLayout{};
}

// Every property the builder and the guest rely on.
void check_invariants(const PvLayout& l, uint64_t base, uint64_t kstart, uint64_t kend, uint64_t pages) {
    EXPECT_EQ(l.v_start, base);
    EXPECT_EQ(l.kstart, kstart);
    EXPECT_EQ(l.kend, (kend + 4095) & ~4095ull);
    EXPECT_EQ(l.nr_pages, pages);
    // Order: image, P2M, start_info, page tables, stack, padding.
    EXPECT_EQ(l.p2m_va, l.kend);
    EXPECT_EQ(l.p2m_pages, (pages * 8 + 4095) / 4096);
    EXPECT_EQ(l.start_info_va, l.p2m_va + l.p2m_pages * 4096);
    EXPECT_EQ(l.pt_va, l.start_info_va + 4096);
    EXPECT_EQ(l.stack_va, l.pt_va + l.nr_pt_frames * 4096);
    for (uint64_t va : {l.p2m_va, l.start_info_va, l.pt_va, l.stack_va}) EXPECT_EQ(va % 4096, 0u);
    // The region ends 4 MiB aligned, at least 512 KiB past the stack, and no
    // further than needed for that.
    uint64_t stack_end = l.stack_va + 4096;
    EXPECT_EQ(l.v_end % (4 * MiB), 0u);
    EXPECT_GE(l.v_end - stack_end, 512 * KiB);
    EXPECT_LT(l.v_end - stack_end, 512 * KiB + 4 * MiB);
    EXPECT_EQ(l.mapped_pages, (l.v_end - l.v_start) / 4096);
    EXPECT_LE(l.mapped_pages, pages);
    // The page tables map the whole region, themselves included: a fixed point.
    EXPECT_EQ(page_tables_needed(l.v_start, l.v_end), l.nr_pt_frames);
    EXPECT_EQ(l.pfn(l.pt_va), (l.pt_va - base) / 4096);
    EXPECT_TRUE(l.is_page_table_pfn(l.pfn(l.pt_va)));
    EXPECT_TRUE(l.is_page_table_pfn(l.pfn(l.pt_va) + l.nr_pt_frames - 1));
    EXPECT_FALSE(l.is_page_table_pfn(l.pfn(l.pt_va) + l.nr_pt_frames));
    EXPECT_FALSE(l.is_page_table_pfn(l.pfn(l.start_info_va)));
}

TEST(PageTablesNeeded, CountsEveryLevel) {
    // [4 MiB, 8 MiB): one L3, one L2, two L1s, plus the L4.
    EXPECT_EQ(page_tables_needed(4 * MiB, 8 * MiB), 5u);
    // One page.
    EXPECT_EQ(page_tables_needed(4 * MiB, 4 * MiB + 4096), 4u);
    // Exactly one 2 MiB block, aligned.
    EXPECT_EQ(page_tables_needed(2 * MiB, 4 * MiB), 4u);
    // A 2 MiB range straddling a 2 MiB boundary needs two L1s.
    EXPECT_EQ(page_tables_needed(3 * MiB, 5 * MiB), 5u);
    // Crossing 1 GiB: two L2s and the L1s on either side.
    EXPECT_EQ(page_tables_needed(GiB - 2 * MiB, GiB + 2 * MiB), 1u + 1 + 2 + 2);
    // Crossing 512 GiB: two L3s as well.
    EXPECT_EQ(page_tables_needed(512 * GiB - 2 * MiB, 512 * GiB + 2 * MiB), 1u + 2 + 2 + 2);
    // A full GiB needs 512 L1s.
    EXPECT_EQ(page_tables_needed(GiB, 2 * GiB), 1u + 1 + 1 + 512);
}

TEST(PvLayout, SmallGuestFollowsXenOrder) {
    // A 20 KiB image at 4 MiB in a 1024-page (4 MiB) domain.
    PvLayout l = layout(4 * MiB, 4 * MiB, 4 * MiB + 0x5000, 1024);
    check_invariants(l, 4 * MiB, 4 * MiB, 4 * MiB + 0x5000, 1024);
    EXPECT_EQ(l.p2m_va, 0x405000u);
    EXPECT_EQ(l.p2m_pages, 2u);
    EXPECT_EQ(l.start_info_va, 0x407000u);
    EXPECT_EQ(l.pt_va, 0x408000u);
    EXPECT_EQ(l.nr_pt_frames, 5u);
    EXPECT_EQ(l.stack_va, 0x40d000u);
    EXPECT_EQ(l.v_end, 8 * MiB);
    EXPECT_EQ(l.mapped_pages, 1024u);
}

TEST(PvLayout, UnalignedImageEndRoundsUp) {
    PvLayout l = layout(4 * MiB, 4 * MiB, 4 * MiB + 0x4001, 2048);
    check_invariants(l, 4 * MiB, 4 * MiB, 4 * MiB + 0x4001, 2048);
    EXPECT_EQ(l.kend, 4 * MiB + 0x5000);
}

TEST(PvLayout, ImageAboveVirtBase) {
    // VIRT_BASE below the image: the gap is mapped, pfns count from VIRT_BASE.
    PvLayout l = layout(2 * MiB, 3 * MiB, 3 * MiB + 0x3000, 2048);
    check_invariants(l, 2 * MiB, 3 * MiB, 3 * MiB + 0x3000, 2048);
    EXPECT_EQ(l.pfn(3 * MiB), 256u);
}

TEST(PvLayout, PaddingIsAtLeast512KiB) {
    // Choose kend so that the stack ends just under a 4 MiB boundary: the
    // region must grow by a whole 4 MiB to keep 512 KiB of padding.
    // 4096 pages: P2M 8 pages, start_info 1, 5 tables for [4 MiB, 8 MiB),
    // stack 1: 15 pages after kend, so the stack ends 4 KiB below 8 MiB.
    uint64_t kend = 8 * MiB - 16 * 4096;
    PvLayout l = layout(4 * MiB, 4 * MiB, kend, 4096);
    check_invariants(l, 4 * MiB, 4 * MiB, kend, 4096);
    EXPECT_EQ(l.v_end, 12 * MiB);
}

TEST(PvLayout, FixedPointWhenTablesAddAnL1) {
    // Sweep image sizes so that some layouts need the page tables themselves
    // to spill into another 2 MiB / 4 MiB block.
    for (uint64_t kend = 4 * MiB + 4096; kend < 40 * MiB; kend += 61 * 4096) {
        auto r = compute_pv_layout(4 * MiB, 4 * MiB, kend, 1u << 16);
        ASSERT_TRUE(r.ok()) << std::hex << kend;
        check_invariants(*r, 4 * MiB, 4 * MiB, kend, 1u << 16);
    }
}

TEST(PvLayout, LargeDomainP2m) {
    // 4 GiB domain: the P2M alone is 8 MiB (2048 pages).
    PvLayout l = layout(4 * MiB, 4 * MiB, 6 * MiB, 1u << 20);
    check_invariants(l, 4 * MiB, 4 * MiB, 6 * MiB, 1u << 20);
    EXPECT_EQ(l.p2m_pages, 2048u);
    EXPECT_EQ(l.start_info_va, 6 * MiB + 8 * MiB);
}

TEST(PvLayout, DoesNotFit) {
    // The 4 MiB region needs 1024 pages.
    auto ok = compute_pv_layout(4 * MiB, 4 * MiB, 4 * MiB + 0x5000, 1024);
    ASSERT_TRUE(ok.ok());
    auto r = compute_pv_layout(4 * MiB, 4 * MiB, 4 * MiB + 0x5000, 1023);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), LayoutError::does_not_fit);
    auto r0 = compute_pv_layout(4 * MiB, 4 * MiB, 4 * MiB + 0x5000, 0);
    ASSERT_FALSE(r0.ok());
    EXPECT_EQ(r0.error(), LayoutError::does_not_fit);
}

TEST(PvLayout, ImageBelowBase) {
    auto r = compute_pv_layout(4 * MiB, 4 * MiB - 4096, 5 * MiB, 4096);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), LayoutError::image_below_base);
}

TEST(PvLayout, TooLarge) {
    constexpr uint64_t kTop = 1ull << 47;
    // The image reaches past the lower half.
    auto a = compute_pv_layout(kTop - 4 * MiB, kTop - 4 * MiB, kTop + 4096, 4096);
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.error(), LayoutError::too_large);
    // The image fits but the start-of-day data would not.
    auto b = compute_pv_layout(kTop - 8 * MiB, kTop - 8 * MiB, kTop - 4096, 1u << 20);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.error(), LayoutError::too_large);
    // An absurd page count.
    auto c = compute_pv_layout(4 * MiB, 4 * MiB, 5 * MiB, ~0ull);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error(), LayoutError::too_large);
    auto e = compute_pv_layout(4 * MiB, 4 * MiB, ~0ull, 4096);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error(), LayoutError::too_large);
}

TEST(PvLayout, CrossingOneGiBNeedsSecondL2) {
    // Image ends just below 1 GiB: the start-of-day data crosses it.
    uint64_t base = GiB - 4 * MiB;
    PvLayout l = layout(base, base, GiB - 8192, 4096);
    check_invariants(l, base, base, GiB - 8192, 4096);
    EXPECT_GT(l.v_end, GiB);
    uint64_t l1s = (l.v_end - 1) / (2 * MiB) - base / (2 * MiB) + 1;
    EXPECT_EQ(l.nr_pt_frames, 1u + 1 + 2 + l1s);
}

TEST(PvLayout, CrossingHalfTiBNeedsSecondL3) {
    uint64_t base = 512 * GiB - 4 * MiB;
    PvLayout l = layout(base, base, 512 * GiB - 8192, 4096);
    check_invariants(l, base, base, 512 * GiB - 8192, 4096);
    EXPECT_GT(l.v_end, 512 * GiB);
    uint64_t l1s = (l.v_end - 1) / (2 * MiB) - base / (2 * MiB) + 1;
    EXPECT_EQ(l.nr_pt_frames, 1u + 2 + 2 + l1s);
}

TEST(PvLayout, DescribeNamesEveryError) {
    for (auto e : {LayoutError::image_below_base, LayoutError::does_not_fit, LayoutError::too_large}) {
        const char* s = core::describe(e);
        ASSERT_NE(s, nullptr);
        EXPECT_GT(std::strlen(s), 10u);
    }
}

}  // namespace
