// RAM above 4 GiB (issue 16): the allocator's low and high zones, and the
// firmware memory map read into usable RAM (arch/ram_map.hpp) with 64-bit
// bases and holes, handed to the allocator the way memory_init does.

#include <arch/ram_map.hpp>
#include <core/frame_alloc.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace arch {
// Found by argument-dependent lookup from gtest's EXPECT_EQ.
bool operator==(const MemRegion& a, const MemRegion& b) { return a.base == b.base && a.length == b.length; }
}  // namespace arch

namespace {

using arch::kMapRam;
using arch::MapEntry;
using arch::MemRegion;
using core::AllocError;
using core::FrameAllocator;
using core::FrameLink;

constexpr unsigned kMax = FrameAllocator::kMaxOrder;
constexpr uint64_t k4G = FrameAllocator::kLowZoneFrames;   // in frames
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint32_t kReserved = 2;

std::vector<MemRegion> ram_of(const std::vector<MapEntry>& map, unsigned cap = 64) {
    std::vector<MemRegion> out(cap);
    unsigned n = arch::usable_ram(map.data(), unsigned(map.size()), out.data(), cap);
    out.resize(std::min(n, cap));
    return out;
}


// The e820 map QEMU's pc machine (SeaBIOS) gives a 6 GiB guest: 3 GiB below
// the PCI hole, the other 3 GiB from 4 GiB.
const std::vector<MapEntry> kQemu6G = {
    {0x0, 0x9fc00, kMapRam},
    {0x9fc00, 0x400, kReserved},
    {0xf0000, 0x10000, kReserved},
    {0x100000, 0xbfee0000, kMapRam},
    {0xbffe0000, 0x20000, kReserved},
    {0xfeffc000, 0x4000, kReserved},
    {0xfffc0000, 0x40000, kReserved},
    {0x100000000, 0xc0000000, kMapRam},
};

TEST(RamMap, QemuSixGiB) {
    auto ram = ram_of(kQemu6G);
    ASSERT_EQ(3u, ram.size());
    EXPECT_EQ((MemRegion{0, 0x9f000}), ram[0]);   // the partial frame below 0x9fc00 is not RAM
    EXPECT_EQ((MemRegion{0x100000, 0xbfee0000}), ram[1]);
    EXPECT_EQ((MemRegion{0x100000000, 0xc0000000}), ram[2]);   // 64-bit base kept
}

TEST(RamMap, UnsortedOverlappingAndTouchingMerge) {
    auto ram = ram_of({{0x5000000, 0x1000000, kMapRam},
                       {0x0, 0x2000000, kMapRam},
                       {0x1000000, 0x1800000, kMapRam},   // overlaps the first and touches the next
                       {0x2800000, 0x1000, kMapRam},
                       {0x180000000, 0x1000, kMapRam}});
    ASSERT_EQ(3u, ram.size());
    EXPECT_EQ((MemRegion{0, 0x2801000}), ram[0]);
    EXPECT_EQ((MemRegion{0x5000000, 0x1000000}), ram[1]);
    EXPECT_EQ((MemRegion{0x180000000, 0x1000}), ram[2]);
}

TEST(RamMap, ReservedWinsOverRam) {
    // Inside one RAM entry (split), over the tail of one and the head of the
    // next (both cut), over a whole one (gone), partial frames growing out.
    auto ram = ram_of({{0x0, 0x1000000, kMapRam},
                       {0x400064, 0x100000, kReserved},
                       {0x2000000, 0x1000000, kMapRam},
                       {0x4000000, 0x1000000, kMapRam},
                       {0x2f00000, 0x1200000, kReserved},
                       {0x6000000, 0x1000, kMapRam},
                       {0x5fff000, 0x3000, 7}});
    ASSERT_EQ(4u, ram.size());
    EXPECT_EQ((MemRegion{0, 0x400000}), ram[0]);
    EXPECT_EQ((MemRegion{0x501000, 0x1000000 - 0x501000}), ram[1]);
    EXPECT_EQ((MemRegion{0x2000000, 0xf00000}), ram[2]);
    EXPECT_EQ((MemRegion{0x4100000, 0xf00000}), ram[3]);
}

TEST(RamMap, OnlyWholeFrames) {
    auto ram = ram_of({{0x1001, 0x2ffe, kMapRam}, {0x10000, 0xfff, kMapRam}, {0x20000, 0, kMapRam}});
    ASSERT_EQ(1u, ram.size());
    EXPECT_EQ((MemRegion{0x2000, 0x1000}), ram[0]);
}

TEST(RamMap, HugeEntriesClipped) {
    auto ram = ram_of({{0x100000000, ~uint64_t{0}, kMapRam}, {~uint64_t{0} - 5, 100, kMapRam}});
    ASSERT_EQ(1u, ram.size());
    EXPECT_EQ((MemRegion{0x100000000, arch::kMaxPhysAddr - 0x100000000}), ram[0]);
}

TEST(RamMap, MoreRegionsThanRoomSaysSo) {
    std::vector<MapEntry> map;
    for (uint64_t i = 0; i < 10; ++i) map.push_back({i * 0x10000, 0x1000, kMapRam});
    std::vector<MemRegion> out(4);
    EXPECT_EQ(10u, arch::usable_ram(map.data(), unsigned(map.size()), out.data(), 4));
    EXPECT_EQ((MemRegion{0x30000, 0x1000}), out[3]);   // the lowest four
}

TEST(RamMap, RandomMapsAgainstAByteModel) {
    // Frames 0..kN: RAM where some RAM entry covers the whole frame and no
    // other entry touches any byte of it.
    constexpr uint64_t kN = 512;
    std::mt19937_64 rng(3);
    for (int round = 0; round < 300; ++round) {
        std::vector<MapEntry> map;
        unsigned n = 1 + rng() % 20;
        for (unsigned i = 0; i < n; ++i) {
            uint64_t base = rng() % (kN * 4096), len = rng() % (64 * 4096);
            map.push_back({base, len, rng() % 3 ? kMapRam : kReserved});
        }
        std::vector<int> want(kN);
        for (uint64_t f = 0; f < kN; ++f) {
            bool ram = false, other = false;
            for (const MapEntry& e : map) {
                if (e.length == 0) continue;
                uint64_t lo = f * 4096, hi = lo + 4096;
                if (e.type == kMapRam && e.base <= lo && e.base + e.length >= hi) ram = true;
                if (e.type != kMapRam && e.base < hi && lo < e.base + e.length) other = true;
            }
            want[f] = ram && !other;
        }
        auto ram = ram_of(map, 64);
        std::vector<int> got(kN);
        for (size_t i = 0; i < ram.size(); ++i) {
            ASSERT_EQ(0u, ram[i].base % 4096);
            ASSERT_EQ(0u, ram[i].length % 4096);
            ASSERT_GT(ram[i].length, 0u);
            // Sorted, and merged: a gap between any two.
            if (i) ASSERT_LT(ram[i - 1].base + ram[i - 1].length, ram[i].base);
            for (uint64_t a = ram[i].base; a < ram[i].base + ram[i].length; a += 4096)
                if (a / 4096 < kN) got[a / 4096] = 1;
        }
        ASSERT_EQ(want, got) << "round " << round;
    }
}

class ZoneTest : public ::testing::Test {
protected:
    void make(uint64_t nframes, uint64_t low_end) {
        links_.assign(nframes, FrameLink{});
        fa_.init(links_.data(), nframes, low_end);
    }
    uint64_t add(uint64_t first, uint64_t count) {
        auto r = fa_.add_free(first, count);
        EXPECT_TRUE(r.ok());
        return r.ok() ? r.value() : 0;
    }
    std::vector<FrameLink> links_;
    FrameAllocator fa_;
};

TEST_F(ZoneTest, HighFramesFirstThenLow) {
    make(1000, 600);
    add(10, 990);
    EXPECT_EQ(590u, fa_.free_frames(FrameAllocator::low));
    EXPECT_EQ(990u, fa_.free_frames());
    std::vector<uint64_t> got;
    for (;;) {
        auto r = fa_.alloc(0);
        if (!r.ok()) break;
        got.push_back(r.value());
    }
    ASSERT_EQ(990u, got.size());
    // Every high frame before any low one.
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(i < 400, got[i] >= 600) << i << ": " << got[i];
    EXPECT_TRUE(fa_.check_invariants());
}

TEST_F(ZoneTest, AllocLowTakesOnlyLowFrames) {
    make(1024, 512);
    add(0, 1024);
    for (int i = 0; i < 512; ++i) {
        auto r = fa_.alloc_low(0);
        ASSERT_TRUE(r.ok());
        EXPECT_LT(r.value(), 512u);
    }
    EXPECT_EQ(AllocError::out_of_memory, fa_.alloc_low(0).error());
    EXPECT_EQ(512u, fa_.free_frames());   // the high zone untouched
    EXPECT_EQ(512u, fa_.free_frames(FrameAllocator::high));
    EXPECT_EQ(AllocError::bad_order, fa_.alloc_low(kMax + 1).error());
    EXPECT_TRUE(fa_.check_invariants());
}

TEST_F(ZoneTest, NoBlockAcrossTheBoundary) {
    // 600 is not aligned to anything large: frames [512, 600) and [600, 640)
    // would be buddies' parts of the order-7 block at 512.
    make(1024, 600);
    add(512, 128);
    EXPECT_EQ(0u, fa_.free_blocks(7));
    EXPECT_EQ(88u, fa_.free_frames(FrameAllocator::low));
    EXPECT_EQ(40u, fa_.free_frames(FrameAllocator::high));
    EXPECT_EQ(1u, fa_.free_blocks(6, FrameAllocator::low));    // [512, 576)
    EXPECT_EQ(1u, fa_.free_blocks(4, FrameAllocator::low));    // [576, 592)
    EXPECT_EQ(1u, fa_.free_blocks(3, FrameAllocator::low));    // [592, 600)
    EXPECT_EQ(1u, fa_.free_blocks(3, FrameAllocator::high));   // [600, 608)
    EXPECT_EQ(1u, fa_.free_blocks(5, FrameAllocator::high));   // [608, 640)
    EXPECT_EQ(AllocError::out_of_memory, fa_.alloc(7).error());
    EXPECT_TRUE(fa_.check_invariants());

    // Freed one frame at a time in random order, they merge back to the same
    // blocks, never into one across 600.
    std::vector<uint64_t> got;
    for (;;) {
        auto r = fa_.alloc(0);
        if (!r.ok()) break;
        got.push_back(r.value());
    }
    ASSERT_EQ(128u, got.size());
    std::mt19937_64 rng(5);
    std::shuffle(got.begin(), got.end(), rng);
    for (uint64_t f : got) ASSERT_TRUE(fa_.free(f, 0).ok());
    EXPECT_EQ(0u, fa_.free_blocks(7));
    EXPECT_EQ(1u, fa_.free_blocks(6, FrameAllocator::low));
    EXPECT_EQ(1u, fa_.free_blocks(5, FrameAllocator::high));
    EXPECT_TRUE(fa_.check_invariants());

    // A claim across the boundary splits blocks of both zones.
    ASSERT_TRUE(fa_.claim(590, 20).ok());
    EXPECT_EQ(78u, fa_.free_frames(FrameAllocator::low));
    EXPECT_EQ(30u, fa_.free_frames(FrameAllocator::high));
    EXPECT_TRUE(fa_.check_invariants());
    EXPECT_EQ(20u, add(590, 20));
    EXPECT_EQ(128u, fa_.free_frames());
    EXPECT_TRUE(fa_.check_invariants());
}

TEST_F(ZoneTest, BoundaryAtZeroOrPastTheEndIsOneZone) {
    make(256, 0);
    add(0, 256);
    EXPECT_EQ(0u, fa_.free_frames(FrameAllocator::low));
    EXPECT_EQ(1u, fa_.free_blocks(8, FrameAllocator::high));
    EXPECT_EQ(AllocError::out_of_memory, fa_.alloc_low(0).error());
    EXPECT_TRUE(fa_.check_invariants());
    make(256, 256);
    add(0, 256);
    EXPECT_EQ(1u, fa_.free_blocks(8, FrameAllocator::low));
    EXPECT_EQ(0u, fa_.alloc(0).value());   // low frames when there is nothing else
    EXPECT_TRUE(fa_.check_invariants());
}

// The machine: QEMU's 6 GiB map read as memory_init reads it, frames given
// to an allocator with the real 4 GiB boundary (1.5 M frames of links).
TEST_F(ZoneTest, QemuSixGiBEveryFrameUsable) {
    auto ram = ram_of(kQemu6G);
    uint64_t top = ram.back().base + ram.back().length;
    ASSERT_EQ(7 * kGiB, top);
    make(top >> 12, k4G);
    uint64_t total = 0;
    for (const MemRegion& r : ram) {
        // What memory_init keeps (low memory) stays out, as there.
        uint64_t lo = std::max<uint64_t>(r.base, 0x100000), hi = r.base + r.length;
        if (lo < hi) total += add(lo >> 12, (hi - lo) >> 12);
    }
    EXPECT_EQ((6 * kGiB - 0x100000 - 0x20000) >> 12, total);
    EXPECT_EQ(3 * kGiB >> 12, fa_.free_frames(FrameAllocator::high));
    EXPECT_EQ(3u, fa_.free_blocks(kMax, FrameAllocator::high));   // 1 GiB blocks from 4 GiB
    EXPECT_TRUE(fa_.check_invariants());

    // 1 GiB blocks come from above 4 GiB, then below; the rest in 2 MiB
    // blocks. Every frame handed out is RAM, none twice, all of them.
    std::vector<bool> seen(top >> 12);
    auto take = [&](uint64_t f, unsigned order) {
        for (uint64_t g = f; g < f + (uint64_t{1} << order); ++g) {
            bool in_ram = std::any_of(ram.begin(), ram.end(), [&](const MemRegion& r) {
                return g >= std::max<uint64_t>(r.base, 0x100000) >> 12 && g < (r.base + r.length) >> 12;
            });
            ASSERT_TRUE(in_ram) << g;
            ASSERT_FALSE(seen[g]) << g;
            seen[g] = true;
        }
    };
    for (int i = 0; i < 3; ++i) {
        uint64_t f = fa_.alloc(kMax).value();
        EXPECT_GE(f, k4G);
        take(f, kMax);
    }
    EXPECT_EQ(0u, fa_.free_frames(FrameAllocator::high));
    uint64_t got = 3 * (uint64_t{1} << kMax);
    for (unsigned order = 9;; order = 0) {
        for (;;) {
            auto r = fa_.alloc(order);
            if (!r.ok()) break;
            EXPECT_LT(r.value(), k4G);
            take(r.value(), order);
            got += uint64_t{1} << order;
        }
        if (order == 0) break;
    }
    EXPECT_EQ(total, got);
    EXPECT_EQ(0u, fa_.free_frames());
    EXPECT_TRUE(fa_.check_invariants());
}

}  // namespace
