// libs/blk: blkback's bounce page pool and its fairness between
// front-ends (who may start a request on the device).

#include <blk/fairness.hpp>
#include <blk/pool.hpp>

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace {

TEST(BlkPool, TakesAllOrNothing) {
    blk::PagePool<10> pool;
    EXPECT_EQ(pool.available(), 10u);
    uint16_t a[10], b[10];
    ASSERT_TRUE(pool.take(4, a));
    EXPECT_EQ(pool.available(), 6u);
    EXPECT_FALSE(pool.take(7, b));
    EXPECT_EQ(pool.available(), 6u);
    ASSERT_TRUE(pool.take(6, b));
    EXPECT_EQ(pool.available(), 0u);
    std::set<uint16_t> all(a, a + 4);
    all.insert(b, b + 6);
    EXPECT_EQ(all.size(), 10u);
    EXPECT_EQ(*all.rbegin(), 9);
    EXPECT_FALSE(pool.take(1, b + 6));
    EXPECT_TRUE(pool.take(0, b));
    pool.give(4, a);
    EXPECT_EQ(pool.available(), 4u);
    uint16_t c[4];
    ASSERT_TRUE(pool.take(4, c));
    EXPECT_EQ(std::set<uint16_t>(c, c + 4), std::set<uint16_t>(a, a + 4));  // the same pages again
}

TEST(BlkPool, IgnoresWhatItNeverGaveOut) {
    blk::PagePool<4> pool;
    uint16_t bad[3] = {4, 1000, 65535};
    pool.give(3, bad);
    EXPECT_EQ(pool.available(), 4u);
    uint16_t a[4];
    ASSERT_TRUE(pool.take(4, a));
    uint16_t extra[6] = {0, 1, 2, 3, 0, 1};
    pool.give(6, extra);  // more than the pool holds: the list does not overflow
    EXPECT_EQ(pool.available(), 4u);
}

TEST(BlkFairness, PerFrontendLimits) {
    blk::Fairness f(8, 104);
    EXPECT_TRUE(f.admit(0, {0, 0}, 32, 208));
    EXPECT_TRUE(f.admit(0, {7, 72}, 32, 208));
    EXPECT_FALSE(f.admit(0, {8, 0}, 1, 208));    // requests
    EXPECT_FALSE(f.admit(0, {8, 0}, 0, 208));    // a flush too
    EXPECT_FALSE(f.admit(0, {3, 96}, 9, 208));   // pages
    EXPECT_TRUE(f.admit(0, {3, 96}, 8, 208));
    EXPECT_TRUE(f.admit(0, {3, 104}, 0, 0));     // no pages needed, none free
    EXPECT_FALSE(f.waiting());                   // none of that waits for the pool
}

TEST(BlkFairness, AWaiterIsNotStarvedBySmallRequests) {
    blk::Fairness f(8, 104);
    // 1 and 2 hold the pool between them; 0 wants 32 pages.
    EXPECT_FALSE(f.admit(0, {0, 0}, 32, 10));
    ASSERT_TRUE(f.waiting());
    EXPECT_EQ(f.waiter(), 0u);
    // Small requests of the others may not eat into what 0 waits for...
    EXPECT_FALSE(f.admit(1, {2, 60}, 1, 10));
    EXPECT_FALSE(f.admit(2, {2, 60}, 1, 32));
    EXPECT_TRUE(f.admit(2, {2, 60}, 1, 33));     // ...only into what is left beyond it
    EXPECT_TRUE(f.admit(1, {2, 60}, 0, 0));      // a flush holds no page
    // A second front-end short of pages does not take 0's place.
    EXPECT_FALSE(f.admit(3, {0, 0}, 32, 20));
    EXPECT_EQ(f.waiter(), 0u);
    // Pages came back: 0 starts, and the others are free again.
    EXPECT_TRUE(f.admit(0, {0, 0}, 32, 32));
    f.started(0);
    EXPECT_FALSE(f.waiting());
    EXPECT_TRUE(f.admit(1, {2, 60}, 1, 1));
}

TEST(BlkFairness, AWaiterThatGoesAwayReservesNothing) {
    blk::Fairness f(8, 104);
    EXPECT_FALSE(f.admit(5, {0, 0}, 20, 4));
    EXPECT_TRUE(f.waiting());
    f.started(4);  // someone else: nothing changes
    EXPECT_EQ(f.waiter(), 5u);
    f.forget(5);
    EXPECT_FALSE(f.waiting());
    EXPECT_TRUE(f.admit(1, {0, 0}, 4, 4));
}

// Four front-ends, each always with a request ready, on a pool that their
// shares over-commit: three send the largest requests, one sends single
// pages. Requests finish in the order they started, one now and then.
// Whatever order the front-ends are looked at in, the pool and the limits
// are never exceeded, and nobody waits much longer than it takes what is
// on the device to finish (without the waiter's reservation a large
// request here waits more than twice as long, now and then).
TEST(BlkFairness, NobodyStarvesInASimulation) {
    constexpr unsigned kPool = 208, kReq = 8, kShare = 104, kFrontends = 4;
    const unsigned need[kFrontends] = {32, 32, 32, 1};
    for (unsigned seed = 1; seed <= 40; ++seed) {
        blk::Fairness f(kReq, kShare);
        blk::Fairness::Share share[kFrontends] = {};
        unsigned free = kPool, served[kFrontends] = {}, waited[kFrontends] = {}, longest[kFrontends] = {};
        struct Running {
            unsigned fe, pages;
        };
        std::vector<Running> running;
        uint64_t x = seed * 0x9E3779B97F4A7C15ull;
        for (unsigned step = 0; step < 20000; ++step) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (!running.empty() && x % 3 == 0) {
                Running r = running.front();
                running.erase(running.begin());
                free += r.pages;
                --share[r.fe].requests;
                share[r.fe].pages -= r.pages;
            }
            // A pass: every front-end looked at once, from a varying start.
            for (unsigned k = 0; k < kFrontends; ++k) {
                unsigned fe = unsigned((x >> 8) + k) % kFrontends;
                if (!f.admit(fe, share[fe], need[fe], free)) {
                    if (++waited[fe] > longest[fe]) longest[fe] = waited[fe];
                    continue;
                }
                f.started(fe);
                ASSERT_LE(need[fe], free);
                free -= need[fe];
                ++share[fe].requests;
                share[fe].pages += need[fe];
                ASSERT_LE(share[fe].requests, kReq);
                ASSERT_LE(share[fe].pages, kShare);
                running.push_back({fe, need[fe]});
                ++served[fe];
                waited[fe] = 0;
            }
        }
        for (unsigned fe = 0; fe < kFrontends; ++fe) {
            EXPECT_GT(served[fe], 500u) << "seed " << seed << " front-end " << fe;
            EXPECT_LT(longest[fe], 120u) << "seed " << seed << " front-end " << fe;
        }
    }
}

}  // namespace
