// libs/net learning switch: learning, flooding, never back to the source,
// aging, bounded table.

#include <net/switch.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace {

using namespace net;

Mac mac(unsigned n) { return Mac{{0x00, 0x16, 0x3e, uint8_t(n >> 16), uint8_t(n >> 8), uint8_t(n)}}; }

struct Frame {
    uint8_t b[60] = {};
    Frame(const Mac& dst, const Mac& src) {
        __builtin_memcpy(b, dst.b, 6);
        __builtin_memcpy(b + 6, src.b, 6);
        b[12] = 0x08;
    }
};

constexpr uint64_t kAge = 1000;

TEST(Switch, UnknownFloodsThenLearnedIsUnicast) {
    LearningSwitch sw(kAge);
    Forward f = sw.decide(Frame(mac(2), mac(1)).b, 60, 1, 0);
    EXPECT_EQ(f.kind, Forward::flood);
    EXPECT_EQ(sw.lookup(mac(1), 0), 1u);
    f = sw.decide(Frame(mac(1), mac(2)).b, 60, 2, 1);
    EXPECT_EQ(f.kind, Forward::unicast);
    EXPECT_EQ(f.port, 1u);
    f = sw.decide(Frame(mac(2), mac(1)).b, 60, 1, 2);
    EXPECT_EQ(f.kind, Forward::unicast);
    EXPECT_EQ(f.port, 2u);
}

TEST(Switch, BroadcastAndMulticastFlood) {
    LearningSwitch sw(kAge);
    (void)sw.decide(Frame(mac(9), mac(1)).b, 60, 1, 0);
    EXPECT_EQ(sw.decide(Frame(kBroadcastMac, mac(2)).b, 60, 2, 1).kind, Forward::flood);
    Mac mcast{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
    EXPECT_EQ(sw.decide(Frame(mcast, mac(2)).b, 60, 2, 1).kind, Forward::flood);
}

TEST(Switch, NeverBackToSource) {
    LearningSwitch sw(kAge);
    (void)sw.decide(Frame(mac(9), mac(1)).b, 60, 1, 0);
    (void)sw.decide(Frame(mac(9), mac(2)).b, 60, 1, 0);   // both behind port 1
    EXPECT_EQ(sw.decide(Frame(mac(2), mac(1)).b, 60, 1, 1).kind, Forward::drop);
    EXPECT_EQ(sw.decide(Frame(mac(1), mac(1)).b, 60, 1, 1).kind, Forward::drop);
}

TEST(Switch, MovesWhenSeenElsewhere) {
    LearningSwitch sw(kAge);
    (void)sw.decide(Frame(mac(9), mac(1)).b, 60, 1, 0);
    (void)sw.decide(Frame(mac(9), mac(1)).b, 60, 3, 1);
    EXPECT_EQ(sw.lookup(mac(1), 1), 3u);
    EXPECT_EQ(sw.size(1), 1u);
}

TEST(Switch, GroupAndZeroSourcesNotLearned) {
    LearningSwitch sw(kAge);
    (void)sw.decide(Frame(mac(9), kBroadcastMac).b, 60, 1, 0);
    (void)sw.decide(Frame(mac(9), Mac{}).b, 60, 1, 0);
    EXPECT_EQ(sw.size(0), 0u);
}

TEST(Switch, ShortFramesDropped) {
    LearningSwitch sw(kAge);
    EXPECT_EQ(sw.decide(Frame(mac(9), mac(1)).b, 13, 1, 0).kind, Forward::drop);
    EXPECT_EQ(sw.size(0), 0u);
}

TEST(Switch, EntriesAge) {
    LearningSwitch sw(kAge);
    (void)sw.decide(Frame(mac(9), mac(1)).b, 60, 1, 0);
    EXPECT_EQ(sw.lookup(mac(1), kAge - 1), 1u);
    EXPECT_EQ(sw.lookup(mac(1), kAge), LearningSwitch::kNoPort);
    EXPECT_EQ(sw.decide(Frame(mac(1), mac(2)).b, 60, 2, kAge).kind, Forward::flood);
}

TEST(Switch, FullSetReplacesLeastRecentlySeen) {
    LearningSwitch sw(1'000'000);
    // kWays + 1 addresses that share a set.
    unsigned want = LearningSwitch::set_of(mac(0));
    std::vector<unsigned> same;
    for (unsigned i = 0; same.size() < LearningSwitch::kWays + 1; ++i)
        if (LearningSwitch::set_of(mac(i)) == want) same.push_back(i);
    uint64_t t = 0;
    for (unsigned k = 0; k < LearningSwitch::kWays; ++k) (void)sw.decide(Frame(kBroadcastMac, mac(same[k])).b, 60, 1 + k % 4, t++);
    EXPECT_EQ(sw.size(t), LearningSwitch::kWays);
    (void)sw.decide(Frame(kBroadcastMac, mac(same[0])).b, 60, 1, t++);   // seen again: same[1] is now the oldest
    (void)sw.decide(Frame(kBroadcastMac, mac(same.back())).b, 60, 2, t++);
    EXPECT_EQ(sw.size(t), LearningSwitch::kWays);
    EXPECT_EQ(sw.lookup(mac(same.back()), t), 2u);
    EXPECT_EQ(sw.lookup(mac(same[0]), t), 1u);
    EXPECT_EQ(sw.lookup(mac(same[1]), t), LearningSwitch::kNoPort);
    EXPECT_EQ(sw.lookup(mac(same[2]), t), 3u);
}

TEST(Switch, FloodOfSourcesStaysBounded) {
    LearningSwitch sw(1'000'000);
    (void)sw.decide(Frame(kBroadcastMac, mac(7)).b, 60, 1, 0);
    // A flood of made-up sources never grows the table past its size.
    for (unsigned i = 0; i < 20 * LearningSwitch::kEntries; ++i)
        (void)sw.decide(Frame(mac(7), mac(100000 + i)).b, 60, 3, 1 + i);
    EXPECT_LE(sw.size(1'000'000 - 1), LearningSwitch::kEntries);
    // Frames still go somewhere sensible: unicast or flood, never back to port 3.
    Forward f = sw.decide(Frame(mac(7), mac(100000)).b, 60, 3, 999'999);
    EXPECT_TRUE(f.kind == Forward::flood || (f.kind == Forward::unicast && f.port == 1));
}

TEST(Switch, SpreadsOverSets) {
    // Guests' MACs (same prefix, last bytes counting) use many sets.
    bool used[LearningSwitch::kSets] = {};
    for (unsigned i = 0; i < 64; ++i) used[LearningSwitch::set_of(mac(i))] = true;
    unsigned n = 0;
    for (bool u : used) n += u;
    EXPECT_GE(n, LearningSwitch::kSets / 2);
}

TEST(Switch, ForgetPort) {
    LearningSwitch sw(kAge);
    (void)sw.decide(Frame(mac(9), mac(1)).b, 60, 1, 0);
    (void)sw.decide(Frame(mac(9), mac(2)).b, 60, 2, 0);
    sw.forget_port(1);
    EXPECT_EQ(sw.lookup(mac(1), 0), LearningSwitch::kNoPort);
    EXPECT_EQ(sw.lookup(mac(2), 0), 2u);
}

}  // namespace
