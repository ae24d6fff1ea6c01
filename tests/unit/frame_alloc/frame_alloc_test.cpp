#include <core/frame_alloc.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace {

using core::AllocError;
using core::FrameAllocator;
using core::FrameLink;

constexpr unsigned kMax = FrameAllocator::kMaxOrder;

struct Block {
    uint64_t first;
    unsigned order;
};

class FrameAllocTest : public ::testing::Test {
protected:
    void make(uint64_t nframes) {
        links_.assign(nframes, FrameLink{});
        fa_.init(links_.data(), nframes);
    }

    uint64_t add(uint64_t first, uint64_t count) {
        auto r = fa_.add_free(first, count);
        EXPECT_TRUE(r.ok());
        return r.ok() ? r.value() : 0;
    }

    uint64_t must_alloc(unsigned order) {
        auto r = fa_.alloc(order);
        EXPECT_TRUE(r.ok()) << "order " << order;
        return r.ok() ? r.value() : ~uint64_t{0};
    }

    // Everything observable, to show a rejected call changed nothing.
    struct Snapshot {
        std::vector<FrameLink> links;
        uint64_t free_frames, total_frames;
        std::vector<uint64_t> blocks;
    };
    Snapshot snap() const {
        Snapshot s{links_, fa_.free_frames(), fa_.total_frames(), {}};
        for (unsigned k = 0; k <= kMax; ++k) s.blocks.push_back(fa_.free_blocks(k));
        return s;
    }
    void expect_same(const Snapshot& s) const {
        ASSERT_EQ(s.links.size(), links_.size());
        EXPECT_EQ(0, std::memcmp(s.links.data(), links_.data(), links_.size() * sizeof(FrameLink)));
        EXPECT_EQ(s.free_frames, fa_.free_frames());
        EXPECT_EQ(s.total_frames, fa_.total_frames());
        for (unsigned k = 0; k <= kMax; ++k) EXPECT_EQ(s.blocks[k], fa_.free_blocks(k));
        EXPECT_TRUE(fa_.check_invariants());
    }

    std::vector<FrameLink> links_;
    FrameAllocator fa_;
};

TEST_F(FrameAllocTest, DefaultConstructedIsEmpty) {
    FrameAllocator fa;
    EXPECT_TRUE(fa.check_invariants());
    EXPECT_EQ(AllocError::out_of_memory, fa.alloc(0).error());
    EXPECT_EQ(AllocError::out_of_range, fa.free(0, 0).error());
    EXPECT_EQ(0u, fa.add_free(0, 100).value());
}

TEST_F(FrameAllocTest, InitStartsReserved) {
    make(256);
    EXPECT_EQ(0u, fa_.free_frames());
    EXPECT_EQ(0u, fa_.total_frames());
    EXPECT_EQ(AllocError::out_of_memory, fa_.alloc(0).error());
    EXPECT_EQ(AllocError::not_ram, fa_.free(0, 0).error());
    EXPECT_EQ(AllocError::not_free, fa_.claim(0, 1).error());
    EXPECT_TRUE(fa_.check_invariants());
}

TEST_F(FrameAllocTest, AlignedAllocationAtEveryOrder) {
    make(uint64_t{2} << kMax);  // room for two max-order blocks
    EXPECT_EQ(uint64_t{2} << kMax, add(0, uint64_t{2} << kMax));
    EXPECT_EQ(2u, fa_.free_blocks(kMax));
    std::vector<Block> live;
    uint64_t used = 0;
    for (unsigned order = 0; order <= kMax; ++order) {
        uint64_t f = must_alloc(order);
        EXPECT_EQ(0u, f & ((uint64_t{1} << order) - 1)) << "order " << order;
        EXPECT_LE(f + (uint64_t{1} << order), fa_.nframes());
        live.push_back({f, order});
        used += uint64_t{1} << order;
        EXPECT_EQ(fa_.total_frames() - used, fa_.free_frames());
    }
    EXPECT_TRUE(fa_.check_invariants());
    // No two blocks overlap.
    std::sort(live.begin(), live.end(), [](Block a, Block b) { return a.first < b.first; });
    for (size_t i = 1; i < live.size(); ++i)
        EXPECT_LE(live[i - 1].first + (uint64_t{1} << live[i - 1].order), live[i].first);
    for (Block b : live) ASSERT_TRUE(fa_.free(b.first, b.order).ok());
    EXPECT_EQ(2u, fa_.free_blocks(kMax));
    for (unsigned k = 0; k < kMax; ++k) EXPECT_EQ(0u, fa_.free_blocks(k));
    EXPECT_TRUE(fa_.check_invariants());
}

TEST_F(FrameAllocTest, BadOrder) {
    make(64);
    add(0, 64);
    auto s = snap();
    EXPECT_EQ(AllocError::bad_order, fa_.alloc(kMax + 1).error());
    EXPECT_EQ(AllocError::bad_order, fa_.alloc(1000).error());
    EXPECT_EQ(AllocError::bad_order, fa_.free(0, kMax + 1).error());
    expect_same(s);
    // Larger than anything available is out of memory, not a bad order.
    EXPECT_EQ(AllocError::out_of_memory, fa_.alloc(7).error());
}

TEST_F(FrameAllocTest, CoalescingStopsAtMaxOrder) {
    make(uint64_t{4} << kMax);
    add(0, uint64_t{4} << kMax);
    EXPECT_EQ(4u, fa_.free_blocks(kMax));
    EXPECT_TRUE(fa_.check_invariants());
    EXPECT_EQ(AllocError::bad_order, fa_.alloc(kMax + 1).error());
}

TEST_F(FrameAllocTest, ExhaustionAndRecovery) {
    make(1024);
    add(0, 1024);
    std::vector<uint64_t> got;
    for (;;) {
        auto r = fa_.alloc(0);
        if (!r.ok()) {
            EXPECT_EQ(AllocError::out_of_memory, r.error());
            break;
        }
        got.push_back(r.value());
    }
    EXPECT_EQ(1024u, got.size());
    EXPECT_EQ(0u, fa_.free_frames());
    std::sort(got.begin(), got.end());
    for (uint64_t i = 0; i < got.size(); ++i) EXPECT_EQ(i, got[i]);
    EXPECT_TRUE(fa_.check_invariants());

    std::mt19937_64 rng(42);
    std::shuffle(got.begin(), got.end(), rng);
    for (uint64_t f : got) ASSERT_TRUE(fa_.free(f, 0).ok());
    EXPECT_EQ(1024u, fa_.free_frames());
    EXPECT_EQ(1u, fa_.free_blocks(10));
    for (unsigned k = 0; k < 10; ++k) EXPECT_EQ(0u, fa_.free_blocks(k));
    EXPECT_TRUE(fa_.check_invariants());

    // Mixed orders: exhaust with big blocks first, then smaller ones.
    std::vector<Block> live;
    for (unsigned order = 9;; order = order ? order - 1 : 0) {
        auto r = fa_.alloc(order);
        if (!r.ok()) {
            if (order == 0) break;
            continue;
        }
        live.push_back({r.value(), order});
    }
    EXPECT_EQ(0u, fa_.free_frames());
    std::shuffle(live.begin(), live.end(), rng);
    for (Block b : live) ASSERT_TRUE(fa_.free(b.first, b.order).ok());
    EXPECT_EQ(1u, fa_.free_blocks(10));
    EXPECT_EQ(1024u, fa_.free_frames());
    EXPECT_TRUE(fa_.check_invariants());
}

TEST_F(FrameAllocTest, HolesInRam) {
    make(1000);
    EXPECT_EQ(97u, add(3, 97));       // [3, 100)
    EXPECT_EQ(387u, add(130, 387));   // [130, 517)
    EXPECT_EQ(399u, add(600, 399));   // [600, 999)
    EXPECT_EQ(883u, fa_.total_frames());
    EXPECT_TRUE(fa_.check_invariants());

    // Overlapping a range already added: rejected, nothing changes.
    auto s = snap();
    EXPECT_EQ(AllocError::already_free, fa_.add_free(990, 1010).error());
    expect_same(s);
    // The tail that lies beyond the array is reported as not added.
    EXPECT_EQ(1u, add(999, 1001));
    EXPECT_EQ(884u, fa_.total_frames());

    std::vector<bool> seen(1000, false);
    for (;;) {
        auto r = fa_.alloc(0);
        if (!r.ok()) break;
        uint64_t f = r.value();
        ASSERT_LT(f, 1000u);
        EXPECT_FALSE(seen[f]);
        seen[f] = true;
        bool ram = (f >= 3 && f < 100) || (f >= 130 && f < 517) || f >= 600;
        EXPECT_TRUE(ram) << f;
    }
    EXPECT_EQ(884, std::count(seen.begin(), seen.end(), true));
    for (uint64_t f = 0; f < 1000; ++f)
        if (seen[f]) ASSERT_TRUE(fa_.free(f, 0).ok());
    EXPECT_EQ(884u, fa_.free_frames());
    EXPECT_TRUE(fa_.check_invariants());

    // Frames in the holes were never RAM.
    EXPECT_EQ(AllocError::not_ram, fa_.free(0, 0).error());
    EXPECT_EQ(AllocError::not_ram, fa_.free(100, 0).error());
    EXPECT_EQ(AllocError::not_ram, fa_.free(520, 3).error());
}

TEST_F(FrameAllocTest, RangeOrderDoesNotMatter) {
    // The fully coalesced decomposition of a free set is unique, so adding
    // the same ranges in any order, split any way, gives the same blocks.
    struct R { uint64_t first, count; };
    std::vector<R> ranges = {{1, 6}, {7, 1}, {8, 57}, {65, 1000}, {1100, 3}, {1103, 900}, {2003, 45}};
    make(4096);
    for (R r : ranges) add(r.first, r.count);
    std::vector<uint64_t> fwd;
    for (unsigned k = 0; k <= kMax; ++k) fwd.push_back(fa_.free_blocks(k));

    std::mt19937_64 rng(7);
    for (int round = 0; round < 20; ++round) {
        std::shuffle(ranges.begin(), ranges.end(), rng);
        make(4096);
        for (R r : ranges) add(r.first, r.count);
        EXPECT_TRUE(fa_.check_invariants());
        for (unsigned k = 0; k <= kMax; ++k) EXPECT_EQ(fwd[k], fa_.free_blocks(k)) << "order " << k;
    }
    // Frame by frame, backwards.
    make(4096);
    for (R r : ranges)
        for (uint64_t f = r.first + r.count; f-- > r.first;) add(f, 1);
    for (unsigned k = 0; k <= kMax; ++k) EXPECT_EQ(fwd[k], fa_.free_blocks(k));
    EXPECT_TRUE(fa_.check_invariants());
}

TEST_F(FrameAllocTest, AddFreeBeyondEnd) {
    make(100);
    EXPECT_EQ(0u, add(100, 10));
    EXPECT_EQ(0u, add(1000, 10));
    EXPECT_EQ(0u, add(~uint64_t{0}, ~uint64_t{0}));  // no overflow
    EXPECT_EQ(2u, add(98, ~uint64_t{0}));
    EXPECT_EQ(0u, add(5, 0));
    EXPECT_EQ(2u, fa_.total_frames());
    EXPECT_TRUE(fa_.check_invariants());
}

TEST_F(FrameAllocTest, AddFreeTwiceRejected) {
    make(128);
    add(0, 64);
    auto s = snap();
    EXPECT_EQ(AllocError::already_free, fa_.add_free(32, 8).error());
    EXPECT_EQ(AllocError::already_free, fa_.add_free(63, 10).error());
    EXPECT_EQ(AllocError::already_free, fa_.add_free(0, 1).error());
    expect_same(s);

    uint64_t a = must_alloc(2);
    s = snap();
    EXPECT_EQ(AllocError::in_use, fa_.add_free(a, 4).error());
    EXPECT_EQ(AllocError::in_use, fa_.add_free(a + 3, 1).error());
    expect_same(s);
}

TEST_F(FrameAllocTest, DoubleFreeRejected) {
    make(64);
    add(0, 64);
    uint64_t a = must_alloc(2);
    uint64_t b = must_alloc(2);
    ASSERT_TRUE(fa_.free(a, 2).ok());
    auto s = snap();
    EXPECT_EQ(AllocError::double_free, fa_.free(a, 2).error());
    expect_same(s);
    ASSERT_TRUE(fa_.free(b, 2).ok());  // merges: a and b are now interior frames
    EXPECT_EQ(1u, fa_.free_blocks(6));
    s = snap();
    EXPECT_EQ(AllocError::double_free, fa_.free(a, 2).error());
    EXPECT_EQ(AllocError::double_free, fa_.free(b, 2).error());
    EXPECT_EQ(AllocError::double_free, fa_.free(b + 1, 0).error());
    expect_same(s);
}

TEST_F(FrameAllocTest, BadFreeRejected) {
    make(256);
    add(0, 128);  // [128, 256) is not RAM
    uint64_t a = must_alloc(3);
    auto s = snap();
    EXPECT_EQ(AllocError::misaligned, fa_.free(a + 1, 3).error());
    EXPECT_EQ(AllocError::misaligned, fa_.free(a + 4, 3).error());
    EXPECT_EQ(AllocError::not_allocated, fa_.free(a + 1, 0).error());
    EXPECT_EQ(AllocError::not_allocated, fa_.free(a + 4, 2).error());
    EXPECT_EQ(AllocError::wrong_order, fa_.free(a, 2).error());
    EXPECT_EQ(AllocError::wrong_order, fa_.free(a, 0).error());
    if ((a & 15) == 0)
        EXPECT_EQ(AllocError::wrong_order, fa_.free(a, 4).error());
    else
        EXPECT_EQ(AllocError::misaligned, fa_.free(a, 4).error());
    EXPECT_EQ(AllocError::not_ram, fa_.free(128, 0).error());
    EXPECT_EQ(AllocError::not_ram, fa_.free(192, 6).error());
    EXPECT_EQ(AllocError::out_of_range, fa_.free(256, 0).error());
    EXPECT_EQ(AllocError::out_of_range, fa_.free(~uint64_t{0}, 0).error());
    EXPECT_EQ(AllocError::out_of_range, fa_.free(uint64_t{1} << 40, 0).error());
    expect_same(s);
    EXPECT_TRUE(fa_.free(a, 3).ok());
    EXPECT_EQ(128u, fa_.free_frames());
    EXPECT_EQ(1u, fa_.free_blocks(7));
}

TEST_F(FrameAllocTest, Claim) {
    make(4096);
    add(0, 4096);
    ASSERT_TRUE(fa_.claim(1000, 37).ok());
    EXPECT_EQ(4096u - 37, fa_.free_frames());
    EXPECT_EQ(4096u, fa_.total_frames());
    EXPECT_TRUE(fa_.check_invariants());
    for (uint64_t f = 990; f < 1050; ++f) EXPECT_EQ(f < 1000 || f >= 1037, fa_.is_free(f)) << f;

    auto s = snap();
    EXPECT_EQ(AllocError::not_free, fa_.claim(1010, 1).error());
    EXPECT_EQ(AllocError::not_free, fa_.claim(900, 200).error());  // partly claimed
    EXPECT_EQ(AllocError::out_of_range, fa_.claim(4090, 10).error());
    EXPECT_EQ(AllocError::out_of_range, fa_.claim(~uint64_t{0}, 2).error());
    EXPECT_EQ(AllocError::not_allocated, fa_.free(1000, 0).error());
    EXPECT_EQ(AllocError::not_allocated, fa_.free(1024, 2).error());
    EXPECT_TRUE(fa_.claim(5, 0).ok());
    expect_same(s);

    // Claim something allocated: rejected.
    uint64_t a = must_alloc(4);
    s = snap();
    EXPECT_EQ(AllocError::not_free, fa_.claim(a + 3, 2).error());
    expect_same(s);
    ASSERT_TRUE(fa_.free(a, 4).ok());

    // Nothing later allocated overlaps the claimed frames.
    std::vector<uint64_t> got;
    for (;;) {
        auto r = fa_.alloc(0);
        if (!r.ok()) break;
        got.push_back(r.value());
    }
    EXPECT_EQ(4096u - 37, got.size());
    for (uint64_t f : got) EXPECT_TRUE(f < 1000 || f >= 1037) << f;
    for (uint64_t f : got) ASSERT_TRUE(fa_.free(f, 0).ok());

    // Claimed frames go back with add_free; total is unchanged.
    EXPECT_EQ(37u, add(1000, 37));
    EXPECT_EQ(4096u, fa_.total_frames());
    EXPECT_EQ(4096u, fa_.free_frames());
    EXPECT_EQ(1u, fa_.free_blocks(12));
    EXPECT_TRUE(fa_.check_invariants());
}

TEST_F(FrameAllocTest, ClaimAcrossHolesAndBlocks) {
    make(4096);
    add(0, 512);
    add(600, 3000);
    auto s = snap();
    EXPECT_EQ(AllocError::not_free, fa_.claim(500, 200).error());  // spans the hole
    expect_same(s);
    ASSERT_TRUE(fa_.claim(0, 512).ok());  // exactly one block
    ASSERT_TRUE(fa_.claim(601, 1).ok());
    ASSERT_TRUE(fa_.claim(1023, 2050).ok());  // crosses several block boundaries
    EXPECT_EQ(3000u - 1 - 2050, fa_.free_frames());
    EXPECT_TRUE(fa_.check_invariants());
    for (uint64_t f = 0; f < 4096; ++f) {
        bool expect = (f >= 600 && f < 3600) && f != 601 && !(f >= 1023 && f < 3073);
        ASSERT_EQ(expect, fa_.is_free(f)) << f;
    }
}

// Randomised property test against a per-frame reference model.
TEST_F(FrameAllocTest, RandomisedAgainstModel) {
    constexpr uint64_t N = 5003;
    enum : uint8_t { M_RES, M_FREE, M_ALLOC, M_CLAIM };
    for (uint64_t seed = 1; seed <= 4; ++seed) {
        std::mt19937_64 rng(seed);
        make(N);
        std::vector<uint8_t> model(N, M_RES);
        // RAM with holes, added in random order.
        std::vector<std::pair<uint64_t, uint64_t>> ranges;
        for (uint64_t f = rng() % 16; f < N;) {
            uint64_t len = 1 + rng() % 700;
            ranges.push_back({f, len});
            f += len + rng() % 50;
        }
        std::shuffle(ranges.begin(), ranges.end(), rng);
        uint64_t added = 0;
        for (auto [f, len] : ranges) {
            uint64_t n = add(f, len);
            for (uint64_t g = f; g < f + n; ++g) model[g] = M_FREE;
            added += n;
        }
        ASSERT_EQ(added, fa_.total_frames());
        ASSERT_TRUE(fa_.check_invariants());

        std::vector<Block> live;
        uint64_t allocated = 0, claimed = 0;
        for (int step = 0; step < 6000; ++step) {
            unsigned op = rng() % 100;
            if (op < 50) {
                unsigned order = static_cast<unsigned>(std::min<uint64_t>(rng() % 10, rng() % 10));
                auto r = fa_.alloc(order);
                uint64_t size = uint64_t{1} << order;
                if (r.ok()) {
                    uint64_t f = r.value();
                    ASSERT_EQ(0u, f & (size - 1));
                    ASSERT_LE(f + size, N);
                    for (uint64_t g = f; g < f + size; ++g) {
                        ASSERT_EQ(M_FREE, model[g]) << "overlap at " << g;
                        model[g] = M_ALLOC;
                    }
                    live.push_back({f, order});
                    allocated += size;
                } else {
                    ASSERT_EQ(AllocError::out_of_memory, r.error());
                    // A buddy allocator fails only if no aligned run is free.
                    for (uint64_t f = 0; f + size <= N; f += size)
                        ASSERT_FALSE(std::all_of(&model[f], &model[f] + size,
                                                 [](uint8_t m) { return m == M_FREE; }))
                            << "order " << order << " at " << f;
                }
            } else if (op < 92) {
                if (live.empty()) continue;
                size_t i = rng() % live.size();
                Block b = live[i];
                live[i] = live.back();
                live.pop_back();
                ASSERT_TRUE(fa_.free(b.first, b.order).ok());
                for (uint64_t g = b.first; g < b.first + (uint64_t{1} << b.order); ++g) model[g] = M_FREE;
                allocated -= uint64_t{1} << b.order;
                // Sometimes try a double free: must be rejected.
                if (rng() % 4 == 0) ASSERT_EQ(AllocError::double_free, fa_.free(b.first, b.order).error());
            } else if (op < 97) {
                uint64_t f = rng() % N, len = 1 + rng() % 40;
                bool ok = f + len <= N &&
                          std::all_of(&model[f], &model[f] + len, [](uint8_t m) { return m == M_FREE; });
                auto st = fa_.claim(f, len);
                ASSERT_EQ(ok, st.ok()) << f << "+" << len;
                if (ok) {
                    for (uint64_t g = f; g < f + len; ++g) model[g] = M_CLAIM;
                    claimed += len;
                }
            } else {
                // Return a run of claimed frames, if one starts here.
                uint64_t f = rng() % N;
                if (model[f] != M_CLAIM) continue;
                uint64_t e = f;
                while (e < N && model[e] == M_CLAIM) ++e;
                ASSERT_EQ(e - f, add(f, e - f));
                for (uint64_t g = f; g < e; ++g) model[g] = M_FREE;
                claimed -= e - f;
            }
            ASSERT_EQ(added, fa_.total_frames());
            ASSERT_EQ(added - allocated - claimed, fa_.free_frames());
            ASSERT_TRUE(fa_.check_invariants()) << "step " << step;
        }
        for (uint64_t f = 0; f < N; ++f) ASSERT_EQ(model[f] == M_FREE, fa_.is_free(f)) << f;

        // Free everything and return claims: back to fully coalesced RAM.
        for (Block b : live) ASSERT_TRUE(fa_.free(b.first, b.order).ok());
        for (uint64_t f = 0; f < N;) {
            if (model[f] != M_CLAIM) { ++f; continue; }
            uint64_t e = f;
            while (e < N && model[e] == M_CLAIM) ++e;
            add(f, e - f);
            f = e;
        }
        EXPECT_EQ(added, fa_.free_frames());
        std::vector<uint64_t> blocks;
        for (unsigned k = 0; k <= kMax; ++k) blocks.push_back(fa_.free_blocks(k));
        // Compare with a fresh allocator given the same RAM in one go.
        std::vector<FrameLink> fresh_links(N);
        FrameAllocator fresh;
        fresh.init(fresh_links.data(), N);
        for (auto [f, len] : ranges) (void)fresh.add_free(f, len);
        for (unsigned k = 0; k <= kMax; ++k) EXPECT_EQ(fresh.free_blocks(k), blocks[k]) << "order " << k;
        EXPECT_TRUE(fa_.check_invariants());
    }
}

}  // namespace
