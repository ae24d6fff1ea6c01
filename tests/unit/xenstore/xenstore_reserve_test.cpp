// Reserves and the shared remainder (config.hpp, domains.hpp): a domain
// filling every pool it can reach gets EQUOTA and changes nothing by it,
// while every other domain can still use its whole reserve, a domain
// introduced afterwards (a restart) gets one, the builder goes on writing
// what it writes for a domain, and a release gives everything back.

#include "harness.hpp"

#include <algorithm>
#include <map>

namespace {

using namespace xstest;
using std::string;
using xs::Res;

constexpr Res kAllRes[] = {Res::records, Res::blocks, Res::watches, Res::events, Res::transactions};
const char* res_name(Res r) {
    static const char* const names[] = {"records", "blocks", "watches", "events", "transactions"};
    return names[size_t(r)];
}

// Everything the store holds, per domain and in all: equal before and after
// a refused request.
struct Snapshot {
    std::map<xs::DomId, std::vector<uint32_t>> doms;  // used[...] and nodes
    size_t records, blocks;
    std::vector<uint32_t> shared;
    bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(const Store& s) {
    Snapshot sn;
    for (size_t i = 0; i < s.e->domains().high(); ++i) {
        const xs::Domain* d = s.e->domains().at(i);
        if (!d->in_use) continue;
        std::vector<uint32_t> v(d->used.v, d->used.v + xs::kResCount);
        v.push_back(d->nodes);
        sn.doms[d->id] = v;
    }
    sn.records = s.e->tree().used_nodes();
    sn.blocks = s.e->blobs().used_blocks();
    for (Res r : kAllRes) sn.shared.push_back(s.e->domains().shared_used(r));
    return sn;
}

uint32_t used(const Store& s, xs::DomId d, Res r) {
    const xs::Domain* dom = s.e->domains().find(d);
    return dom ? dom->used[r] : 0;
}

// A request that must be refused with EQUOTA and change nothing.
#define EXPECT_REFUSED(s, call)                          \
    do {                                                 \
        Snapshot before_ = snapshot(s);                  \
        EXPECT_EQ((call), "EQUOTA") << #call;            \
        EXPECT_TRUE(snapshot(s) == before_) << #call;    \
    } while (0)

string name(const char* prefix, size_t i) { return prefix + std::to_string(i); }

// Takes domain d from what it holds to exactly its reserve of every
// resource, every request succeeding: nodes, watches, open transactions,
// queued events (it reads none), then bytes as values. The domain must hold
// no more than its reserve of anything to start with.
void fill_reserve(Store& s, xs::DomId d) {
    const xs::Amounts& R = xs::kReserve;
    for (Res r : kAllRes) ASSERT_LE(used(s, d, r), R[r]) << res_name(r);
    for (size_t i = 0; used(s, d, Res::records) < R[Res::records]; ++i)
        ASSERT_EQ(s.write(d, name("r", i), ""), "OK") << i;
    // Watches on the first nodes (registration events taken at once).
    for (size_t i = 0; used(s, d, Res::watches) < R[Res::watches]; ++i) {
        ASSERT_EQ(s.watch(d, name("r", i), "t"), "OK") << i;
        s.events(d);
    }
    while (used(s, d, Res::transactions) < R[Res::transactions]) ASSERT_NE(s.tx_start(d), 0u);
    // Events it never reads: each write of r0 queues one (r0's watch).
    while (used(s, d, Res::events) < R[Res::events]) ASSERT_EQ(s.write(d, "r0", ""), "OK");
    // Bytes: values on nodes nobody watches, a block (60 bytes) at a time
    // up to 34 blocks per value.
    for (size_t i = R[Res::watches]; used(s, d, Res::blocks) < R[Res::blocks]; ++i) {
        ASSERT_LT(i, R[Res::records]) << "no node left for values";
        uint32_t k = std::min<uint32_t>(34, R[Res::blocks] - used(s, d, Res::blocks));
        ASSERT_EQ(s.write(d, name("r", i), string(xs::kBlobBlockBytes * k, 'v')), "OK") << i;
    }
    for (Res r : kAllRes) EXPECT_EQ(used(s, d, r), R[r]) << res_name(r);
    EXPECT_EQ(s.e->check_invariants(), nullptr);
}

// With its reserve full and the shared remainder gone, d is refused one
// more of anything, and the refusal changes nothing.
void expect_nothing_beyond_reserve(Store& s, xs::DomId d) {
    EXPECT_REFUSED(s, s.write(d, "one-more", ""));
    EXPECT_REFUSED(s, s.write(d, "r1", string(2048, 'x')));
    EXPECT_REFUSED(s, s.watch(d, "r1", "another"));
    EXPECT_REFUSED(s, s.res(s.op(d, XsType::transaction_start, z(""))));
    EXPECT_EQ(s.e->check_invariants(), nullptr);
}

struct ReserveTest : ::testing::Test {
    Store s;
    void SetUp() override {
        s.introduce(1);  // the filler
        s.introduce(2);  // the victim
        s.events(kBuilder);
    }
};

TEST(ReserveConfig, ReservesAndOneQuotaFitEveryPool) {
    for (Res r : kAllRes) {
        uint64_t reserved = xs::kPrivReserve[r] + uint64_t(xs::kDomainSlots) * xs::kReserve[r];
        EXPECT_EQ(reserved + xs::kStandard.shared_of(r), xs::kPool[r]) << res_name(r);
        EXPECT_GE(xs::kStandard.shared_of(r) + xs::kReserve[r], xs::kQuota[r]) << res_name(r);
    }
}

// One filler, one pool at a time: EQUOTA at its quota, nothing changed by
// the refusal, and the victim gets all of its reserve after each.
TEST_F(ReserveTest, FillerOfNodesGetsEquotaAndTheVictimItsReserve) {
    string r;
    size_t made = 0;
    for (; made < 2000; ++made) {
        r = s.write(1, name("n", made), "");
        if (r != "OK") break;
    }
    EXPECT_EQ(r, "EQUOTA");
    EXPECT_EQ(made + 1, xs::kQuotaNodes);  // its home is the first
    EXPECT_REFUSED(s, s.write(1, "n-again", ""));
    EXPECT_REFUSED(s, s.mkdir(1, "deeper/still"));
    fill_reserve(s, 2);
}

TEST_F(ReserveTest, FillerOfBigValuesGetsEquotaAtItsByteQuota) {
    string r;
    size_t made = 0;
    for (; made < 1000; ++made) {
        r = s.write(1, name("big", made), string(xs::kQuotaValueSize, 'b'));
        if (r != "OK") break;
    }
    EXPECT_EQ(r, "EQUOTA");
    // 2,048 bytes are 35 blocks, the path one more: far fewer than 1,000 nodes.
    EXPECT_LT(made, xs::kQuota[Res::blocks] / 36 + 1);
    EXPECT_LE(used(s, 1, Res::blocks), xs::kQuota[Res::blocks]);
    EXPECT_GT(used(s, 1, Res::blocks) + 36, xs::kQuota[Res::blocks]);
    // Growing a value it has is refused too; rewriting it at its size is not.
    EXPECT_EQ(s.write(1, "big0", string(60, 's')), "OK");
    EXPECT_EQ(s.write(1, "big0", string(xs::kQuotaValueSize, 'b')), "OK");
    EXPECT_REFUSED(s, s.write(1, "big-again", string(xs::kQuotaValueSize, 'b')));
    fill_reserve(s, 2);
}

TEST_F(ReserveTest, FillerOfWatchesWithLongPathsAndTokens) {
    // Long tokens: the bytes run out before the watch quota.
    string path = "w/" + string(1000, 'p');
    string r;
    size_t made = 0;
    for (; made < 200; ++made) {
        r = s.watch(1, path, name("t", made) + string(1500, 't'));
        if (r != "OK") break;
    }
    EXPECT_EQ(r, "EQUOTA");
    EXPECT_LT(made, xs::kQuotaWatches);
    EXPECT_REFUSED(s, s.watch(1, path, "short"));
    EXPECT_EQ(s.unwatch(1, path, "t0" + string(1500, 't')), "OK");
    // Short ones: the watch quota.
    Store t;
    t.introduce(1);
    for (made = 0; made < 200; ++made) {
        r = t.watch(1, "w", name("t", made));
        if (r != "OK") break;
    }
    EXPECT_EQ(r, "EQUOTA");
    EXPECT_EQ(made, xs::kQuotaWatches);
    fill_reserve(s, 2);
}

TEST_F(ReserveTest, QueuedEventsItNeverReadsAreBoundedAndItsWritesGoOn) {
    ASSERT_EQ(s.watch(1, "/local/domain/1", "all"), "OK");  // its whole home
    for (size_t i = 0; i < 2 * xs::kQuotaPendingEvents; ++i) ASSERT_EQ(s.write(1, "e", name("v", i % 10)), "OK");
    EXPECT_EQ(used(s, 1, Res::events), xs::kQuotaPendingEvents);
    // Long event paths fill its bytes instead.
    Store t;
    t.introduce(1);
    ASSERT_EQ(t.watch(1, "/local/domain/1", string(2000, 'k')), "OK");
    string deep = string(1500, 'd');
    for (size_t i = 0; i < xs::kQuotaPendingEvents; ++i) ASSERT_EQ(t.write(1, deep, name("v", i % 10)), "OK");
    EXPECT_LT(used(t, 1, Res::events), xs::kQuotaPendingEvents);
    EXPECT_LE(used(t, 1, Res::blocks), xs::kQuota[Res::blocks]);
    EXPECT_EQ(t.e->check_invariants(), nullptr);
    fill_reserve(s, 2);
    // The events it had are the ones it gets, oldest first.
    auto ev = s.events(1);
    ASSERT_EQ(ev.size(), xs::kQuotaPendingEvents);
    EXPECT_EQ(ev[0], "/local/domain/1|all");
    EXPECT_EQ(used(s, 1, Res::events), 0u);
}

TEST_F(ReserveTest, TransactionsWithManyRecords) {
    std::vector<uint32_t> txs;
    for (size_t i = 0; i < 20; ++i) {
        Rep r = s.op(1, XsType::transaction_start, z(""));
        if (r.err()) {
            EXPECT_EQ(r.error(), "EQUOTA");
            break;
        }
        txs.push_back(uint32_t(std::stoul(r.body)));
    }
    ASSERT_EQ(txs.size(), xs::kQuotaTransactions);
    // Records: each transaction to its own limit, all of them to the domain's.
    for (uint32_t tx : txs) {
        string r;
        for (size_t i = 0; i < xs::kQuotaTxRecords + 1 && r != "EQUOTA"; ++i) r = s.read(1, name("q", i), tx);
        EXPECT_EQ(r, "EQUOTA");  // at the transaction's limit or the domain's
    }
    EXPECT_EQ(used(s, 1, Res::records), xs::kQuota[Res::records]);
    EXPECT_REFUSED(s, s.read(1, "one-more", txs[0]));
    EXPECT_REFUSED(s, s.write(1, "one-more", "", txs.back()));
    fill_reserve(s, 2);
    for (uint32_t tx : txs) EXPECT_EQ(s.tx_end(1, tx, false), "OK");
    EXPECT_EQ(used(s, 1, Res::records), 1u);  // its home
    EXPECT_EQ(used(s, 1, Res::transactions), 0u);
}

// A transaction's records are its domain's to hold; what it gives an owner
// at commit must fit that owner, or the commit is EQUOTA and changes nothing.
TEST_F(ReserveTest, CommitThatWouldOverfillTheOwnerIsRefused) {
    ASSERT_EQ(s.write(2, "shared", "small"), "OK");
    ASSERT_EQ(s.set_perms(2, "shared", {"n2", "b1"}), "OK");
    uint32_t tx = s.tx_start(1);
    ASSERT_EQ(s.write(1, "/local/domain/2/shared", string(2048, 'x'), tx), "OK");
    // Held by domain 1 until the commit.
    EXPECT_EQ(s.read(2, "shared"), "small");
    // Domain 2 fills its byte quota meanwhile (beside the node), to the
    // last two blocks (a node of one block costs its path's too).
    size_t i = 0;
    for (uint32_t k : {34u, 8u, 1u})
        while (s.write(2, name("fill", i), string(xs::kBlobBlockBytes * k, 'f')) == "OK") ++i;
    EXPECT_GT(used(s, 2, Res::blocks) + 2, xs::kQuota[Res::blocks]);
    ASSERT_EQ(s.write(2, "shared", "small"), "OK");  // the same: no conflict
    uint32_t tx2 = s.tx_start(1);
    ASSERT_EQ(s.write(1, "/local/domain/2/shared", string(2048, 'x'), tx2), "OK");
    Snapshot before = snapshot(s);
    EXPECT_EQ(s.tx_end(1, tx2, true), "EQUOTA");
    Snapshot after = snapshot(s);
    // Only the transaction itself went.
    EXPECT_EQ(after.doms[2], before.doms[2]);
    EXPECT_EQ(s.read(2, "shared"), "small");
    EXPECT_EQ(s.tx_end(1, tx, true), "EAGAIN");  // the rewrite above conflicts
    EXPECT_EQ(used(s, 1, Res::transactions), 0u);
}

// Many fillers together take every shared pool to its last unit; the victim
// and a domain introduced afterwards still get all of their reserves, the
// builder writes a new domain's nodes as it does (services/builder), and
// each filler was refused with EQUOTA, never ENOMEM.
TEST_F(ReserveTest, ManyFillersExhaustEverySharedPool) {
    s.check = false;
    std::vector<xs::DomId> fillers = {1};
    std::map<string, size_t> errors;
    auto note = [&](const string& r) {
        if (r != "OK") errors[r]++;
        return r == "OK";
    };
    auto exhausted = [&] {
        for (Res r : kAllRes)
            if (s.e->domains().shared_used(r) < xs::kStandard.shared_of(r)) return false;
        return true;
    };
    // Enough to take every shared pool: the transactions need the most
    // (252 shared, 8 each beyond the reserve).
    for (xs::DomId f = 10; f < 50; ++f) {
        fillers.push_back(f);
        s.introduce(f);
    }
    // Phase by phase over all fillers, each going until refused.
    std::map<xs::DomId, size_t> nodes_of;
    for (xs::DomId f : fillers) {
        size_t i = 0;
        while (note(s.write(f, name("n", i), ""))) ++i;
        nodes_of[f] = i;
    }
    for (xs::DomId f : fillers) {
        for (size_t t = 0; t < xs::kQuotaTransactions + 1; ++t) {
            Rep r = s.op(f, XsType::transaction_start, z(""));
            if (!note(r.err() ? r.error() : "OK")) break;
            uint32_t tx = uint32_t(std::stoul(r.body));
            string got;
            for (size_t i = 0; i < xs::kQuotaTxRecords + 1 && got != "EQUOTA"; ++i) got = s.read(f, name("q", i), tx);
            note(got);
        }
    }
    for (xs::DomId f : fillers) {
        ASSERT_EQ(s.watch(f, "/local/domain/" + std::to_string(f), "all"), "OK") << f;  // within its reserve
        for (size_t i = 0; note(s.watch(f, "n0", name("w", i))); ++i) {
        }
    }
    // Events they never read: every write of n0 fires all their watches.
    for (xs::DomId f : fillers)
        for (size_t i = 0; i < 3; ++i) ASSERT_EQ(s.write(f, "n0", ""), "OK");
    // Bytes to the last block: big values, then smaller ones, on the nodes
    // they have (nobody watches n1...).
    for (xs::DomId f : fillers) {
        std::vector<bool> full(nodes_of[f], false);
        for (uint32_t k : {34u, 8u, 1u})
            for (size_t i = 1; i < nodes_of[f]; ++i)
                if (!full[i]) full[i] = note(s.write(f, name("n", i), string(xs::kBlobBlockBytes * k, 'b')));
    }
    ASSERT_EQ(s.e->check_invariants(), nullptr);
    EXPECT_TRUE(exhausted()) << "records " << s.e->domains().shared_used(Res::records) << " blocks "
                             << s.e->domains().shared_used(Res::blocks) << " watches "
                             << s.e->domains().shared_used(Res::watches) << " events "
                             << s.e->domains().shared_used(Res::events) << " tx "
                             << s.e->domains().shared_used(Res::transactions);
    EXPECT_EQ(errors.count("ENOMEM"), 0u);
    EXPECT_GT(errors["EQUOTA"], 0u);
    for (auto& [e, n] : errors) EXPECT_EQ(e, "EQUOTA") << " x" << n;
    for (xs::DomId f : fillers)
        for (Res r : kAllRes) EXPECT_LE(used(s, f, r), xs::kQuota[r]);

    fill_reserve(s, 2);
    expect_nothing_beyond_reserve(s, 2);
    // A domain restarted meanwhile: the builder writes its nodes and hands
    // them over as services/builder does (store_introduce, store_device),
    // then introduces it; it gets all of its reserve.
    const xs::DomId fresh = 200, console = 1;  // domain 1 stands for the console here
    string home = "/local/domain/" + std::to_string(fresh);
    EXPECT_EQ(s.mkdir(kBuilder, home + "/device"), "OK");
    EXPECT_EQ(s.set_perms(kBuilder, home + "/device", {"n" + std::to_string(fresh)}), "OK");
    EXPECT_EQ(s.mkdir(kBuilder, home + "/device/ring/0"), "OK");
    EXPECT_EQ(s.write(kBuilder, home + "/device/ring/0/state", "1"), "OK");
    EXPECT_EQ(s.set_perms(kBuilder, home, {"n0", "r" + std::to_string(fresh), "r1"}), "OK");
    for (const char* leaf : {"name", "domid", "console/type", "console/ring-ref", "console/port", "moat/boot-tsc"})
        EXPECT_EQ(s.write(kBuilder, home + "/" + leaf, "12345678901234567890"), "OK") << leaf;
    EXPECT_EQ(s.set_perms(kBuilder, home, {"n" + std::to_string(fresh)}), "OK");
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::introduce, z(std::to_string(fresh)) + z("1234") + z("5"))), "OK");
    // It and the console can read what the builder wrote, nobody else.
    EXPECT_EQ(s.read(fresh, home + "/console/port"), "12345678901234567890");
    EXPECT_EQ(s.read(console, home + "/console/port"), "12345678901234567890");
    EXPECT_EQ(s.read(10, home + "/console/port"), "EACCES");
    fill_reserve(s, fresh);
    expect_nothing_beyond_reserve(s, fresh);
    // A release gives back everything it held, and the reserve waits for the next.
    Snapshot with = snapshot(s);
    ASSERT_EQ(s.rm(kBuilder, home), "OK");
    ASSERT_EQ(s.res(s.op(kBuilder, XsType::release, z(std::to_string(fresh)))), "OK");
    EXPECT_EQ(s.e->domains().find(fresh), nullptr);
    Snapshot without = snapshot(s);
    EXPECT_EQ(without.shared, with.shared);  // the shared remainder did not grow into it
    s.introduce(fresh);
    fill_reserve(s, fresh);
    EXPECT_EQ(s.e->check_invariants(), nullptr);
}

TEST_F(ReserveTest, ReleaseGivesBackEverythingChargedToTheDomain) {
    Snapshot baseline = snapshot(s);
    s.introduce(3);
    ASSERT_EQ(s.write(3, "a/b/c", string(500, 'v')), "OK");
    ASSERT_EQ(s.watch(3, "a", "t"), "OK");
    ASSERT_EQ(s.write(3, "a/b/c", "changed"), "OK");  // an event it leaves queued
    uint32_t tx = s.tx_start(3);
    ASSERT_EQ(s.write(3, "a/in-tx", "x", tx), "OK");
    // A node it owns outside its home (where the builder let it write).
    ASSERT_EQ(s.mkdir(kBuilder, "/shared"), "OK");
    ASSERT_EQ(s.set_perms(kBuilder, "/shared", {"n0", "b3"}), "OK");
    ASSERT_EQ(s.write(3, "/shared/mine", "y"), "OK");
    ASSERT_EQ(s.get_perms(kBuilder, "/shared/mine"), z("n3") + z("b3"));
    for (Res r : kAllRes) EXPECT_GT(used(s, 3, r), 0u) << res_name(r);
    ASSERT_EQ(s.res(s.op(kBuilder, XsType::release, z("3"))), "OK");
    EXPECT_EQ(s.e->domains().find(3), nullptr);
    EXPECT_EQ(s.read(kBuilder, "/shared/mine"), "ENOENT");   // Xen removes what it owned (XSA-419)
    EXPECT_EQ(s.read(kBuilder, "/local/domain/3"), "ENOENT");
    ASSERT_EQ(s.rm(kBuilder, "/shared"), "OK");
    EXPECT_TRUE(snapshot(s) == baseline);
}

TEST_F(ReserveTest, EveryRecordHoldsAReserveAndTheyAreBounded) {
    // Domains 1 and 2 hold two; the rest can be introduced, no more.
    xs::DomId d = 3;
    for (; d < 3 + xs::kDomainSlots - 2; ++d) s.introduce(d);
    EXPECT_EQ(s.res(s.op(kBuilder, XsType::introduce, z(std::to_string(d)) + z("1") + z("1"))), "ENOSPC");
    // Nor may the builder give a node to yet another domain.
    ASSERT_EQ(s.write(kBuilder, "/gift", ""), "OK");
    EXPECT_EQ(s.set_perms(kBuilder, "/gift", {"n" + std::to_string(d)}), "ENOSPC");
    ASSERT_EQ(s.res(s.op(kBuilder, XsType::release, z("5"))), "OK");
    s.introduce(d);
    fill_reserve(s, d);
}

TEST_F(ReserveTest, TheBuilderHasItsOwnReserve) {
    // Fillers take the shared nodes; the builder still writes its reserve's worth.
    s.check = false;
    for (xs::DomId f : {1, 3, 4}) {
        if (f != 1) s.introduce(f);
        for (size_t i = 0; s.write(f, name("n", i), "") == "OK"; ++i) {
        }
    }
    EXPECT_EQ(s.e->domains().shared_used(Res::records), xs::kStandard.shared_of(Res::records));
    for (size_t i = 0; used(s, kBuilder, Res::records) < xs::kPrivReserve[Res::records]; ++i)
        ASSERT_EQ(s.write(kBuilder, name("/tool/n", i), ""), "OK") << i;
    EXPECT_EQ(s.write(kBuilder, "/tool/one-more", ""), "EQUOTA");
    EXPECT_EQ(s.e->check_invariants(), nullptr);
}

}  // namespace
