// Transactions: isolation, commit, abort, conflicts (EAGAIN), and their watches.

#include "harness.hpp"

#include <algorithm>

namespace {

using namespace xstest;
using std::string;

struct TxTest : ::testing::Test {
    Store s;
    void SetUp() override {
        s.introduce(1);
        s.introduce(2);
        ASSERT_EQ(s.set_perms(kBuilder, "/local/domain/1", {"n1", "b2"}), "OK");
    }
};

TEST_F(TxTest, IsolatedUntilCommit) {
    ASSERT_EQ(s.write(1, "a", "old"), "OK");
    uint32_t tx = s.tx_start(1);
    ASSERT_NE(tx, 0u);
    EXPECT_EQ(s.write(1, "a", "new", tx), "OK");
    EXPECT_EQ(s.write(1, "b/c", "made", tx), "OK");
    EXPECT_EQ(s.read(1, "a", tx), "new");
    EXPECT_EQ(s.read(1, "b/c", tx), "made");
    EXPECT_EQ(s.read(1, "a"), "old");
    EXPECT_EQ(s.read(1, "b/c"), "ENOENT");
    string d = s.dir(1, "/local/domain/1", tx);
    EXPECT_TRUE(d == z("a") + z("b") || d == z("b") + z("a"));
    EXPECT_EQ(s.dir(1, "/local/domain/1"), z("a"));
    EXPECT_EQ(s.tx_end(1, tx, true), "OK");
    EXPECT_EQ(s.read(1, "a"), "new");
    EXPECT_EQ(s.read(1, "b/c"), "made");
}

TEST_F(TxTest, AbortDiscards) {
    uint32_t tx = s.tx_start(1);
    EXPECT_EQ(s.write(1, "x", "1", tx), "OK");
    size_t nodes = s.e->domains().find(1)->nodes;
    EXPECT_EQ(s.tx_end(1, tx, false), "OK");
    EXPECT_EQ(s.read(1, "x"), "ENOENT");
    EXPECT_EQ(s.e->domains().find(1)->nodes, nodes - 1);
    EXPECT_EQ(s.tx_end(1, tx, false), "ENOENT");
}

TEST_F(TxTest, RmAndRecreateInTransaction) {
    ASSERT_EQ(s.write(1, "t/a", "1"), "OK");
    ASSERT_EQ(s.write(1, "t/b", "2"), "OK");
    uint32_t tx = s.tx_start(1);
    EXPECT_EQ(s.rm(1, "t", tx), "OK");
    EXPECT_EQ(s.read(1, "t/a", tx), "ENOENT");
    EXPECT_EQ(s.read(1, "t/a"), "1");
    EXPECT_EQ(s.write(1, "t/c", "3", tx), "OK");
    EXPECT_EQ(s.dir(1, "t", tx), z("c"));
    EXPECT_EQ(s.tx_end(1, tx, true), "OK");
    EXPECT_EQ(s.dir(1, "t"), z("c"));
    EXPECT_EQ(s.read(1, "t/a"), "ENOENT");
}

TEST_F(TxTest, ConflictGivesEagain) {
    ASSERT_EQ(s.write(1, "c", "0"), "OK");
    uint32_t tx = s.tx_start(1);
    EXPECT_EQ(s.read(1, "c", tx), "0");
    EXPECT_EQ(s.write(1, "d", "1", tx), "OK");
    EXPECT_EQ(s.write(2, "/local/domain/1/c", "other"), "OK");  // outside, meanwhile
    EXPECT_EQ(s.tx_end(1, tx, true), "EAGAIN");
    EXPECT_EQ(s.read(1, "d"), "ENOENT");
    EXPECT_EQ(s.read(1, "c"), "other");
    EXPECT_EQ(s.tx_end(1, tx, true), "ENOENT");  // gone either way
}

TEST_F(TxTest, ConcurrentCreateAndDeleteConflict) {
    uint32_t tx = s.tx_start(1);
    EXPECT_EQ(s.read(1, "new", tx), "ENOENT");
    EXPECT_EQ(s.write(2, "/local/domain/1/new", "x"), "OK");
    EXPECT_EQ(s.tx_end(1, tx, true), "EAGAIN");

    ASSERT_EQ(s.write(1, "p/q", "x"), "OK");
    tx = s.tx_start(1);
    EXPECT_EQ(s.write(1, "p/q/r", "y", tx), "OK");
    EXPECT_EQ(s.rm(2, "/local/domain/1/p"), "OK");
    EXPECT_EQ(s.tx_end(1, tx, true), "EAGAIN");
    EXPECT_EQ(s.read(1, "p/q/r"), "ENOENT");
}

TEST_F(TxTest, UnrelatedChangesDoNotConflict) {
    ASSERT_EQ(s.write(1, "mine", "0"), "OK");
    ASSERT_EQ(s.write(2, "other", "0"), "OK");
    uint32_t tx = s.tx_start(1);
    EXPECT_EQ(s.write(1, "mine", "1", tx), "OK");
    EXPECT_EQ(s.write(2, "other", "1"), "OK");
    EXPECT_EQ(s.tx_end(1, tx, true), "OK");
    EXPECT_EQ(s.read(1, "mine"), "1");
}

TEST_F(TxTest, TwoTransactionsFirstCommitWins) {
    ASSERT_EQ(s.write(1, "k", "0"), "OK");
    uint32_t t1 = s.tx_start(1), t2 = s.tx_start(2);
    EXPECT_NE(t1, t2);
    EXPECT_EQ(s.write(1, "k", "1", t1), "OK");
    EXPECT_EQ(s.write(2, "/local/domain/1/k", "2", t2), "OK");
    EXPECT_EQ(s.tx_end(1, t1, true), "OK");
    EXPECT_EQ(s.tx_end(2, t2, true), "EAGAIN");
    EXPECT_EQ(s.read(1, "k"), "1");
    // A domain cannot use another's transaction.
    uint32_t t3 = s.tx_start(1);
    EXPECT_EQ(s.read(2, "/local/domain/1/k", t3), "ENOENT");
    EXPECT_EQ(s.tx_end(2, t3, true), "ENOENT");
    EXPECT_EQ(s.tx_end(1, t3, true), "OK");
}

TEST_F(TxTest, WatchesFireAtCommitOnly) {
    EXPECT_EQ(s.watch(2, "/local/domain/1", "t"), "OK");
    s.events(2);
    uint32_t tx = s.tx_start(1);
    EXPECT_EQ(s.write(1, "w", "1", tx), "OK");
    EXPECT_TRUE(s.events(2).empty());
    EXPECT_EQ(s.tx_end(1, tx, true), "OK");
    EXPECT_EQ(s.events(2), std::vector<string>{"/local/domain/1/w|t"});
    tx = s.tx_start(1);
    EXPECT_EQ(s.write(1, "w", "2", tx), "OK");
    EXPECT_EQ(s.tx_end(1, tx, false), "OK");
    EXPECT_TRUE(s.events(2).empty());
}

TEST_F(TxTest, SetPermsInTransaction) {
    ASSERT_EQ(s.write(1, "sp", "v"), "OK");
    uint32_t tx = s.tx_start(1);
    EXPECT_EQ(s.set_perms(1, "sp", {"n1"}, tx), "OK");
    EXPECT_EQ(s.read(2, "/local/domain/1/sp"), "v");
    EXPECT_EQ(s.tx_end(1, tx, true), "OK");
    EXPECT_EQ(s.read(2, "/local/domain/1/sp"), "EACCES");
    // The builder hands a node to domain 2 inside a transaction.
    tx = s.tx_start(kBuilder);
    EXPECT_EQ(s.set_perms(kBuilder, "/local/domain/1/sp", {"n2"}, tx), "OK");
    EXPECT_EQ(s.tx_end(kBuilder, tx, true), "OK");
    EXPECT_EQ(s.read(2, "/local/domain/1/sp"), "v");
    EXPECT_EQ(s.read(1, "sp"), "EACCES");
}

TEST_F(TxTest, BadTransactionEnds) {
    uint32_t tx = s.tx_start(1);
    EXPECT_EQ(s.res(s.raw(1, msg(XsType::transaction_end, z("X"), tx))), "EINVAL");
    EXPECT_EQ(s.res(s.raw(1, msg(XsType::transaction_end, "T", tx))), "EINVAL");
    EXPECT_EQ(s.res(s.raw(1, msg(XsType::transaction_end, z("T"), 0))), "ENOENT");
    EXPECT_EQ(s.res(s.raw(1, msg(XsType::transaction_start, z(""), tx))), "EBUSY");
    EXPECT_EQ(s.tx_end(1, tx, true), "OK");
}

}  // namespace
