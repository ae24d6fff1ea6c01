// The CSpace lookup index (cspace.hpp): random churn over CSpaces of sizes
// that exercise every bitmap depth, with every lookup compared against a
// brute-force scan and cap::audit (which checks the index against the slots)
// after every step; the lowest-slot rules the scans had; a CSpace of the
// kernel's largest size; and audit catching a forged index.

#include <cap/audit.hpp>
#include <cap/ops.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "world.hpp"

namespace {

using namespace cap;
using captest::World;

constexpr uint64_t kObjects = 6;   // few, so copies of one key pile up in a bucket

// Every lookup of the index against a scan of the slots.
void expect_lookups_match_scan(const CSpace& cs) {
    uint32_t empty = 0, lowest_empty = kNoSlot;
    // One scan from slot 0: (type, object) -> (slot, capability), slots ascending.
    std::map<std::pair<Type, uint64_t>, std::vector<std::pair<uint32_t, Capability>>> held;
    for (uint32_t i = 0; i < cs.size(); ++i) {
        const Capability& c = cs.slot(i)->cap();
        if (c.empty()) {
            ++empty;
            lowest_empty = std::min(lowest_empty, i);
            continue;
        }
        held[{c.type, c.object}].push_back({i, c});
    }
    ASSERT_EQ(cs.free_count(), empty);
    ASSERT_EQ(cs.all_empty(), empty == cs.size());
    auto fe = find_empty(cs);
    ASSERT_EQ(fe.ok(), lowest_empty != kNoSlot);
    if (fe.ok()) ASSERT_EQ(*fe, lowest_empty);

    for (unsigned ti = 0; ti <= kTypeCount; ++ti) {
        auto t = static_cast<Type>(ti);
        uint32_t v = valid_rights(t);
        // Every subset of the type's rights, and one right it cannot hold.
        std::vector<uint32_t> wants;
        for (uint32_t r = 0; r <= 0xff; ++r)
            if ((r & ~v) == 0) wants.push_back(r);
        wants.push_back(v | (~v & 0xff ? (~v & 0xff) & -(~v & 0xff) : 0x100));
        for (uint32_t want : wants) {
            bool any = false;
            for (auto& [key, slots] : held)
                for (auto& [i, c] : slots) any |= key.first == t && c.allows(want);
            ASSERT_EQ(cs.holds(t, want), any) << "type " << ti << " rights " << want;
            for (uint64_t o = 0; o < kObjects + 1; ++o) {
                // What the scan from slot 0 the index replaced would give.
                uint32_t expect = kNoSlot;
                if (auto it = held.find({t, o}); it != held.end())
                    for (auto& [i, c] : it->second)
                        if (c.allows(want)) {
                            expect = i;
                            break;
                        }
                auto got = find_slot(cs, t, o, want);
                ASSERT_EQ(got.ok(), expect != kNoSlot) << "type " << ti << " object " << o;
                if (got.ok()) ASSERT_EQ(*got, expect);
                ASSERT_EQ(find(cs, t, o, want), expect != kNoSlot);
            }
        }
        if (!is_range(t)) continue;
        for (uint64_t first = 0; first < kObjects + 3; ++first)
            for (uint64_t count = 0; count < 4; ++count) {
                bool expect = false;
                for (auto& [key, slots] : held)
                    for (auto& [i, c] : slots)
                        expect |= key.first == t && c.covers(first, count) && c.allows(right::use);
                ASSERT_EQ(find_range(cs, t, first, count, right::use), expect);
            }
    }
}

Capability random_root(std::mt19937& rng) {
    auto t = static_cast<Type>(1 + rng() % (kTypeCount - 1));
    uint64_t object = rng() % kObjects;
    uint32_t rights = valid_rights(t) & rng();
    return Capability::make(t, rights, object, is_range(t) ? 1 + rng() % 3 : 0);
}

TEST(Index, RandomChurnMatchesAScanAfterEveryStep) {
    // 1 and 32 slots: a one-word bitmap; 33: two levels; 1,100: two levels
    // with a partial top; spaces 2 and 3 share nothing but the registry.
    const uint32_t sizes[] = {1, 32, 33, 7, 1100};
    std::mt19937 rng(16);
    unsigned applied[8] = {};
    for (unsigned round = 0; round < 6; ++round) {
        World w(0);
        for (uint32_t n : sizes) w.add(n);
        const size_t nspaces = w.spaces.size();
        auto any_slot = [&](size_t sp) {
            // Low slots mostly, so the small buckets fill and empty again.
            uint32_t n = w[sp].size();
            return uint32_t(rng() % 4 == 0 ? rng() % n : rng() % std::min<uint32_t>(n, 40));
        };
        for (unsigned step = 0; step < 400; ++step) {
            size_t a = rng() % nspaces, b = rng() % nspaces;
            uint32_t ia = any_slot(a), ib = any_slot(b);
            unsigned op = rng() % 8;
            bool ok = false;
            switch (op) {
            case 0: case 1: ok = create_root(w[a], ia, random_root(rng)).ok(); break;
            case 2: ok = copy(w[a], ia, w[b], ib, rng()).ok(); break;
            case 3: ok = mint(w[a], ia, w[b], ib, rng(), 1 + rng() % 3).ok(); break;
            case 4: ok = move(w[a], ia, w[b], ib).ok(); break;
            case 5: ok = remove(w[a], ia).ok(); break;
            case 6: {
                Budget bud{1 + uint32_t(rng() % 3)};
                auto r = revoke(w[a], ia, bud);
                ok = r.ok();
                break;
            }
            case 7: {
                Budget bud{1 + uint32_t(rng() % 4)};
                auto r = rng() % 2 ? revoke_object(w.reg, random_root(rng).type, rng() % kObjects, bud)
                                   : destroy_domain_caps(w.reg, 1 + rng() % (nspaces + 1), bud);
                ok = r.ok();
                break;
            }
            }
            applied[op] += ok;
            const char* why = audit(w.reg);
            ASSERT_EQ(why, nullptr) << why << " after op " << op << " at step " << step;
            for (size_t sp = 0; sp < nspaces; ++sp) {
                expect_lookups_match_scan(w[sp]);
                if (testing::Test::HasFatalFailure()) FAIL() << "space " << sp << " after op " << op << " at step " << step;
            }
        }
    }
    // The churn did churn: every kind of operation succeeded many times.
    for (unsigned op = 0; op < 8; ++op) EXPECT_GT(applied[op], 20u) << "op " << op;
}

TEST(Index, FindSlotAndFindEmptyKeepTheLowestSlot) {
    World w(1, 64);
    // Copies of one key, filled high to low: the index chains them newest
    // first, a scan would meet slot 10 first.
    ASSERT_TRUE(create_root(w[0], 50, Capability::grant(3, right::map_ro | right::copy)).ok());
    for (uint32_t i : {40u, 30u, 20u, 10u}) ASSERT_TRUE(copy(w[0], 50, w[0], i, ~0u).ok());
    ASSERT_TRUE(copy(w[0], 50, w[0], 5, right::copy).ok());   // the lowest, but without map_ro
    EXPECT_EQ(*find_slot(w[0], Type::grant, 3, right::map_ro), 10u);
    EXPECT_EQ(*find_slot(w[0], Type::grant, 3, right::copy), 5u);
    EXPECT_EQ(find_slot(w[0], Type::grant, 3, right::map_rw).error(), Error::not_found);
    // Empty slots: 0-4, then whatever is freed, lowest first.
    EXPECT_EQ(*find_empty(w[0]), 0u);
    for (uint32_t i = 0; i < 5; ++i) ASSERT_TRUE(create_root(w[0], i, Capability::irq(i)).ok());
    EXPECT_EQ(*find_empty(w[0]), 6u);
    ASSERT_TRUE(remove(w[0], 30).ok());
    ASSERT_TRUE(remove(w[0], 3).ok());
    EXPECT_EQ(*find_empty(w[0]), 3u);
    EXPECT_EQ(w[0].free_count(), 64u - 9u);
    w.expect_sound();
}

TEST(Index, TheKernelsLargestCSpaceStaysFlat) {
    // The builder's CSpace: 16,384 slots, three per domain it made.
    constexpr uint32_t kSlots = 16384;
    World w(0);
    CSpace& cs = w.add(kSlots);
    const Type types[] = {Type::domain, Type::grant, Type::event};
    for (uint32_t i = 0; i < kSlots; ++i)
        ASSERT_TRUE(create_root(cs, i, Capability::make(types[i % 3], valid_rights(types[i % 3]), i / 3)).ok());
    EXPECT_EQ(cs.free_count(), 0u);
    EXPECT_EQ(find_empty(cs).error(), Error::not_found);
    // Every lookup walks one bucket; with domain ids as objects (the worst
    // case for a weak hash: dense and regular) no bucket is long.
    uint32_t longest = 0;
    for (uint32_t i = 0; i < kSlots; ++i) {
        const Capability& c = cs.slot(i)->cap();
        uint32_t len = 0;
        for (const Slot* s = cs.first_candidate(c.type, c.object); s; s = cs.next_candidate(s)) ++len;
        longest = std::max(longest, len);
        ASSERT_EQ(*find_slot(cs, c.type, c.object, c.rights), i);
    }
    EXPECT_LE(longest, 12u);
    EXPECT_FALSE(find(cs, Type::domain, kSlots, 0));
    EXPECT_TRUE(cs.holds(Type::grant, right::copy));
    EXPECT_FALSE(cs.holds(Type::untyped, 0));
    // Freed slots come back lowest first.
    ASSERT_TRUE(remove(cs, 9000).ok());
    ASSERT_TRUE(remove(cs, 16383).ok());
    ASSERT_TRUE(remove(cs, 4097).ok());
    EXPECT_EQ(*find_empty(cs), 4097u);
    EXPECT_EQ(cs.free_count(), 3u);
    w.expect_sound();
    // Destroying domain 7 deletes its three capabilities here through the index.
    Budget b{100};
    ASSERT_EQ(*destroy_domain_caps(w.reg, 7, b), Progress::done);
    EXPECT_EQ(b.remaining, 97u);
    EXPECT_EQ(*find_empty(cs), 21u);
    w.expect_sound();
}

TEST(Index, AuditCatchesAForgedIndex) {
    World w(1, 8);
    ASSERT_TRUE(create_root(w[0], 2, Capability::domain(4, right::control)).ok());
    ASSERT_TRUE(create_root(w[0], 5, Capability::irq(9)).ok());
    EXPECT_EQ(audit(w.reg), nullptr);
    auto forged = [&](uint32_t i) { return reinterpret_cast<Capability*>(static_cast<void*>(w[0].slot(i))); };
    // A root (no links, so the tree is sound) whose object changed behind
    // the library's back: filed in the wrong bucket.
    uint64_t other = 5;
    while (w[0].bucket_of(Type::domain, other) == w[0].bucket_of(Type::domain, 4)) ++other;
    forged(2)->object = other;
    EXPECT_STREQ(audit(w.reg), "slot chained in another bucket");
    forged(2)->object = 4;
    EXPECT_EQ(audit(w.reg), nullptr);
    // Rights changed: the per-type counts no longer match.
    forged(2)->rights = right::build;
    EXPECT_STREQ(audit(w.reg), "per-type count does not match the slots");
    forged(2)->rights = right::control;
    // A capability that appeared without the index hearing of it.
    *forged(3) = Capability::irq(9);
    EXPECT_STREQ(audit(w.reg), "full slot marked empty in the free bitmap");
    *forged(3) = Capability{};
    // One that vanished the same way.
    *forged(5) = Capability{};
    EXPECT_STREQ(audit(w.reg), "empty slot missing from the free bitmap");
    *forged(5) = Capability::irq(9);
    EXPECT_EQ(audit(w.reg), nullptr);
}

}  // namespace
