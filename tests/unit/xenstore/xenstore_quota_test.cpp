// Per-domain quotas: nodes, watches, outstanding requests, transactions and
// node size. Exceeding one fails that domain's request only.

#include "harness.hpp"

namespace {

using namespace xstest;
using std::string;

struct QuotaTest : ::testing::Test {
    Store s;
    void SetUp() override {
        s.introduce(1);
        s.introduce(2);
    }
};

TEST_F(QuotaTest, Nodes) {
    // The home node is already domain 1's.
    EXPECT_EQ(s.e->domains().find(1)->nodes, 1u);
    for (uint32_t i = 1; i < xs::kQuotaNodes; ++i) ASSERT_EQ(s.write(1, "n" + std::to_string(i), ""), "OK") << i;
    EXPECT_EQ(s.write(1, "one-more", ""), "EQUOTA");
    EXPECT_EQ(s.mkdir(1, "one/more"), "EQUOTA");
    EXPECT_EQ(s.write(1, "n1", "changing is fine"), "OK");
    uint32_t tx = s.tx_start(1);
    EXPECT_EQ(s.write(1, "n2", "also in a transaction", tx), "OK");
    EXPECT_EQ(s.write(1, "tx-new", "", tx), "EQUOTA");
    EXPECT_EQ(s.tx_end(1, tx, true), "OK");
    // The builder cannot push domain 1 past it either.
    EXPECT_EQ(s.write(kBuilder, "/local/domain/1/byb", ""), "EQUOTA");
    // Domain 2 is unaffected.
    EXPECT_EQ(s.write(2, "fine", ""), "OK");
    EXPECT_EQ(s.rm(1, "n5"), "OK");
    EXPECT_EQ(s.write(1, "one-more", ""), "OK");
}

TEST_F(QuotaTest, Watches) {
    for (uint32_t i = 0; i < xs::kQuotaWatches; ++i) ASSERT_EQ(s.watch(1, "w", std::to_string(i)), "OK");
    EXPECT_EQ(s.watch(1, "w", "x"), "EQUOTA");
    EXPECT_EQ(s.watch(2, "w", "x"), "OK");
    EXPECT_EQ(s.unwatch(1, "w", "0"), "OK");
    EXPECT_EQ(s.watch(1, "w", "x"), "OK");
    for (uint32_t i = 0; i < 200; ++i) ASSERT_EQ(s.watch(kBuilder, "/w", std::to_string(i)), "OK");
}

TEST_F(QuotaTest, Transactions) {
    for (uint32_t i = 0; i < xs::kQuotaTransactions; ++i) ASSERT_NE(s.tx_start(1), 0u);
    Rep r = s.op(1, XsType::transaction_start, z(""));
    EXPECT_EQ(r.error(), "EQUOTA");
    EXPECT_NE(s.tx_start(2), 0u);
}

TEST_F(QuotaTest, OutstandingRequests) {
    for (uint32_t i = 0; i < xs::kQuotaOutstanding; ++i) ASSERT_TRUE(s.e->begin_request(1).ok());
    auto st = s.e->begin_request(1);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error(), xs::Error::quota);
    EXPECT_TRUE(s.e->begin_request(2).ok());
    s.e->end_request(1);
    EXPECT_TRUE(s.e->begin_request(1).ok());
    // The ring layer's error reply echoes the ids.
    auto m = msg(XsType::read, z("a"), 0, 42);
    xs::Reply out;
    xs::Engine::error_reply(m.data(), m.size(), xs::Error::quota, out);
    EXPECT_EQ(out.hdr.req_id, 42u);
    EXPECT_EQ(string(out.payload, out.hdr.len), z("EQUOTA"));
    EXPECT_EQ(s.e->check_invariants(), nullptr);
}

TEST_F(QuotaTest, NodeSize) {
    EXPECT_EQ(s.write(1, "big", string(xs::kQuotaValueSize + 1, 'x')), "E2BIG");
    EXPECT_EQ(s.write(2, "big", string(xs::kQuotaValueSize, 'x')), "OK");
}

TEST_F(QuotaTest, TransactionRecords) {
    uint32_t tx = s.tx_start(1);
    string last;
    for (uint32_t i = 0; i < xs::kQuotaTxRecords + 1; ++i) {
        last = s.read(1, "r" + std::to_string(i), tx);
        if (last == "EQUOTA") break;
    }
    EXPECT_EQ(last, "EQUOTA");
    EXPECT_EQ(s.tx_end(1, tx, false), "OK");
}

TEST_F(QuotaTest, PoolExhaustionIsAnErrorNotACrash) {
    // The builder has no quota, but past its reserve it draws from the
    // shared remainder like everybody: at its end, EQUOTA (never ENOMEM).
    string r;
    for (size_t i = 0; i < xs::kMaxNodes + 10 && r != "EQUOTA"; ++i) r = s.write(kBuilder, "/f/" + std::to_string(i), "");
    EXPECT_EQ(r, "EQUOTA");
    EXPECT_EQ(s.write(1, "meanwhile", "ok"), "OK");  // its reserve is its own
    EXPECT_EQ(s.rm(kBuilder, "/f"), "OK");
    EXPECT_EQ(s.write(1, "after", "ok"), "OK");
}

}  // namespace
