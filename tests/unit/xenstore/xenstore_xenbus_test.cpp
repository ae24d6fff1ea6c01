// The runtime's xenbus client (rt::XsClient, libs/rt/src/xenbus.cpp compiled
// hosted) against the ring server and the engine: every operation, error
// names, watch events queued while a reply is awaited, timeouts, a hostile
// store, the event queue bound, and two threads.

#include <rt/xenbus.hpp>
#include <xenstore/hosted.hpp>
#include <xenstore/ring_server.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <new>
#include <memory>
#include <random>
#include <string>
#include <thread>

namespace {

using Ring = abi::XenstoreDomainInterface;
using rt::XsClient;
using rt::XsError;
using std::string;

constexpr xs::DomId kMaster = 0;

// An engine and its ring server, and clients whose waits run server passes
// (one thread, deterministic). Time is a counter: each wait is 1 ms.
struct Bus {
    std::unique_ptr<xs::HostedEngine> engine;
    std::unique_ptr<xs::PooledRingServer<16>> server;
    std::map<xs::DomId, std::unique_ptr<Ring>> rings;
    bool serving = true;
    uint64_t now = 1;
    unsigned waits = 0, notifies = 0, kicks = 0, broke = 0;

    Bus() {
        xs::Hooks hooks{this, [](void* b, xs::DomId d, uint64_t, uint32_t port) { static_cast<Bus*>(b)->connect(d, port); },
                        [](void* b, xs::DomId d) { static_cast<Bus*>(b)->server->detach(d); }};
        engine = std::make_unique<xs::HostedEngine>(kMaster, hooks);
        server = std::make_unique<xs::PooledRingServer<16>>(*engine);
    }
    Ring* ring(xs::DomId d) {
        auto& r = rings[d];
        if (!r) {
            r = std::make_unique<Ring>();
            memset(r.get(), 0, sizeof(Ring));
        }
        return r.get();
    }
    void connect(xs::DomId d, uint32_t port) { ASSERT_NE(server->attach(d, ring(d), port), nullptr); }
    void serve() {
        server->serve_all(
            this, [](void* b, xs::Connection&) { static_cast<Bus*>(b)->kicks++; },
            [](void* b, xs::Connection&) { static_cast<Bus*>(b)->broke++; });
        EXPECT_EQ(engine->check_invariants(), nullptr);
    }
    XsClient::Io io() {
        return XsClient::Io{this, [](void* b) { static_cast<Bus*>(b)->notifies++; },
                            [](void* ctx, uint64_t deadline) {
                                Bus* b = static_cast<Bus*>(ctx);
                                b->waits++;
                                if (b->serving) b->serve();
                                b->now += 1'000'000;
                                return deadline == 0 || b->now < deadline;
                            },
                            [](void* b) { return static_cast<Bus*>(b)->now; }};
    }
    // A client for d on d's ring (the master's is connected here; others
    // when introduced).
    std::unique_ptr<XsClient> client(xs::DomId d) {
        auto c = std::make_unique<XsClient>();
        c->init(ring(d), io());
        if (d == kMaster) connect(d, 1);
        return c;
    }
};

string str(const char* buf, size_t n) { return string(buf, n); }

// base::Result is not assignable: replace one in place.
template <typename T>
void reassign(T& dst, const T& src) {
    dst.~T();
    new (&dst) T(src);
}

struct XenbusTest : ::testing::Test {
    Bus bus;
    std::unique_ptr<XsClient> master = bus.client(kMaster);
    std::unique_ptr<XsClient> d1, d2;
    void SetUp() override {
        d1 = bus.client(1);
        d2 = bus.client(2);
        ASSERT_TRUE(master->introduce(1, 0x1234, 11).ok());
        ASSERT_TRUE(master->introduce(2, 0x5678, 12).ok());
        ASSERT_NE(bus.server->find(1), nullptr);
        EXPECT_EQ(bus.server->find(1)->port(), 11u);
    }
};

TEST_F(XenbusTest, WriteReadMkdirDirectoryRm) {
    char buf[256];
    EXPECT_TRUE(master->write("/tool/a/b", "hello").ok());
    auto r = master->read("/tool/a/b", buf, sizeof buf);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value(), 5u);
    EXPECT_STREQ(buf, "hello");
    // Values are bytes.
    EXPECT_TRUE(master->write_bytes("/tool/bin", "a\0b", 3).ok());
    reassign(r, master->read("/tool/bin", buf, sizeof buf));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(str(buf, r.value()), string("a\0b", 3));
    EXPECT_TRUE(master->mkdir("/tool/a/c").ok());
    EXPECT_TRUE(master->mkdir("/tool/a/d").ok());
    auto d = master->directory("/tool/a", buf, sizeof buf);
    ASSERT_TRUE(d.ok());
    std::vector<string> names;
    for (const char* n = rt::xs_next_name(buf, d.value(), nullptr); n; n = rt::xs_next_name(buf, d.value(), n))
        names.push_back(n);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<string>{"b", "c", "d"}));
    EXPECT_TRUE(master->rm("/tool/a").ok());
    reassign(r, master->read("/tool/a/b", buf, sizeof buf));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), XsError::noent);
    EXPECT_STREQ(rt::xs_error_name(r.error()), "ENOENT");
    reassign(d, master->directory("/tool", buf, sizeof buf));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(str(buf, d.value()), string("bin\0", 4));
    // An empty directory lists nothing.
    EXPECT_TRUE(master->mkdir("/tool/empty").ok());
    reassign(d, master->directory("/tool/empty", buf, sizeof buf));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d.value(), 0u);
    EXPECT_EQ(rt::xs_next_name(buf, 0, nullptr), nullptr);
}

TEST_F(XenbusTest, RelativePathsAndPermissions) {
    char buf[64];
    EXPECT_TRUE(d1->write("dev/state", "4").ok());
    auto r = master->read("/local/domain/1/dev/state", buf, sizeof buf);
    ASSERT_TRUE(r.ok());
    EXPECT_STREQ(buf, "4");
    reassign(r, d2->read("/local/domain/1/dev/state", buf, sizeof buf));
    EXPECT_EQ(r.error(), XsError::acces);
    // Domain 1 lets domain 2 read.
    rt::XsPerm p[] = {{1, 'n'}, {2, 'r'}};
    EXPECT_TRUE(d1->set_perms("dev/state", p, 2).ok());
    rt::XsPerm got[4];
    auto n = d2->get_perms("/local/domain/1/dev/state", got, 4);
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(n.value(), 2u);
    EXPECT_EQ(got[0].dom, 1);
    EXPECT_EQ(got[0].access, 'n');
    EXPECT_EQ(got[1].dom, 2);
    EXPECT_EQ(got[1].access, 'r');
    reassign(r, d2->read("/local/domain/1/dev/state", buf, sizeof buf));
    ASSERT_TRUE(r.ok());
    EXPECT_STREQ(buf, "4");
    EXPECT_EQ(d2->write("/local/domain/1/dev/state", "5").error(), XsError::acces);
    // Too few slots for the entries.
    EXPECT_EQ(d2->get_perms("/local/domain/1/dev/state", got, 1).error(), XsError::range);
    EXPECT_EQ(d1->mkdir("/top").error(), XsError::acces);
    char path[32];
    auto pn = d1->get_domain_path(7, path, sizeof path);
    ASSERT_TRUE(pn.ok());
    EXPECT_STREQ(path, "/local/domain/7");
    EXPECT_EQ(pn.value(), 15u);
}

TEST_F(XenbusTest, SmallBufferIsErangeAndTheConnectionGoesOn) {
    EXPECT_TRUE(master->write("/tool/v", "0123456789").ok());
    char small[10];
    EXPECT_EQ(master->read("/tool/v", small, sizeof small).error(), XsError::range);  // 10 bytes + NUL
    char buf[11];
    auto r = master->read("/tool/v", buf, sizeof buf);
    ASSERT_TRUE(r.ok());
    EXPECT_STREQ(buf, "0123456789");
    EXPECT_EQ(master->read("/tool/v", buf, 0).error(), XsError::range);
}

TEST_F(XenbusTest, TransactionsConflictAndQuota) {
    EXPECT_TRUE(d1->write("x", "0").ok());
    auto t = d1->transaction_start();
    ASSERT_TRUE(t.ok());
    EXPECT_NE(t.value(), 0u);
    char buf[8];
    EXPECT_TRUE(d1->read("x", buf, sizeof buf, t.value()).ok());
    EXPECT_TRUE(d1->write("x", "1", t.value()).ok());
    // Outside the transaction the old value stays until commit.
    ASSERT_TRUE(d1->read("x", buf, sizeof buf).ok());
    EXPECT_STREQ(buf, "0");
    EXPECT_TRUE(d1->transaction_end(t.value(), true).ok());
    ASSERT_TRUE(d1->read("x", buf, sizeof buf).ok());
    EXPECT_STREQ(buf, "1");
    // A conflicting change makes the commit fail with EAGAIN.
    reassign(t, d1->transaction_start());
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE(d1->read("x", buf, sizeof buf, t.value()).ok());
    EXPECT_TRUE(d1->write("x", "2", t.value()).ok());
    EXPECT_TRUE(master->write("/local/domain/1/x", "master").ok());
    auto e = d1->transaction_end(t.value(), true);
    EXPECT_EQ(e.error(), XsError::again);
    EXPECT_STREQ(rt::xs_error_name(e.error()), "EAGAIN");
    // Ten transactions at once, not eleven.
    uint32_t ids[10];
    for (auto& id : ids) {
        auto s = d1->transaction_start();
        ASSERT_TRUE(s.ok());
        id = s.value();
    }
    auto over = d1->transaction_start();
    EXPECT_EQ(over.error(), XsError::quota);
    EXPECT_STREQ(rt::xs_error_name(over.error()), "EQUOTA");
    for (auto id : ids) EXPECT_TRUE(d1->transaction_end(id, false).ok());
    EXPECT_EQ(d1->transaction_end(ids[0], false).error(), XsError::noent);
}

TEST_F(XenbusTest, LargeValuesGoThroughInPieces) {
    string v(4000, 'x');
    for (size_t i = 0; i < v.size(); ++i) v[i] = char('!' + i % 90);
    EXPECT_TRUE(master->write_bytes("/tool/big", v.data(), v.size()).ok());
    std::vector<char> buf(4097);
    auto r = master->read("/tool/big", buf.data(), buf.size());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(string(buf.data(), r.value()), v);
    // An unprivileged domain's values are limited to 2048 bytes.
    EXPECT_EQ(d1->write_bytes("big", v.data(), v.size()).error(), XsError::too_big);
    EXPECT_TRUE(d1->write_bytes("big", v.data(), 2048).ok());
    // More than a payload is refused before anything is sent.
    string huge(5000, 'h');
    EXPECT_EQ(master->write_bytes("/tool/huge", huge.data(), huge.size()).error(), XsError::too_big);
    EXPECT_TRUE(master->connected());
}

TEST_F(XenbusTest, WatchEventsQueuedWhileAwaitingAReply) {
    EXPECT_TRUE(d1->watch("dev", "tok").ok());
    // Changes by the master land on domain 1's ring while it is not reading.
    EXPECT_TRUE(master->write("/local/domain/1/dev/a", "1").ok());
    EXPECT_TRUE(master->write("/local/domain/1/dev/b", "2").ok());
    ASSERT_GT(bus.ring(1)->rsp_prod - bus.ring(1)->rsp_cons, 0u);
    // Domain 1's next request finds them ahead of its reply.
    char buf[8];
    auto r = d1->read("dev/a", buf, sizeof buf);
    ASSERT_TRUE(r.ok());
    EXPECT_STREQ(buf, "1");
    rt::XsWatchEvent ev;
    std::vector<string> got;
    while (d1->next_watch_event(ev)) got.push_back(string(ev.path) + "|" + ev.token);
    EXPECT_EQ(got, (std::vector<string>{"dev|tok", "dev/a|tok", "dev/b|tok"}));
    // Nothing more: a wait with a deadline times out.
    EXPECT_EQ(d1->wait_watch_event(ev, bus.now + 5'000'000).error(), XsError::timedout);
    // A blocking wait returns the next one.
    EXPECT_TRUE(master->rm("/local/domain/1/dev/b").ok());
    ASSERT_TRUE(d1->wait_watch_event(ev).ok());
    EXPECT_STREQ(ev.path, "dev/b");
    EXPECT_STREQ(ev.token, "tok");
    EXPECT_TRUE(d1->unwatch("dev", "tok").ok());
    EXPECT_EQ(d1->unwatch("dev", "tok").error(), XsError::noent);
    EXPECT_TRUE(master->write("/local/domain/1/dev/c", "3").ok());
    EXPECT_EQ(d1->wait_watch_event(ev, bus.now + 5'000'000).error(), XsError::timedout);
}

TEST_F(XenbusTest, IntroduceAndReleaseFireTheSpecialWatches) {
    EXPECT_TRUE(master->watch("@introduceDomain", "i").ok());
    EXPECT_TRUE(master->watch("@releaseDomain", "r").ok());
    rt::XsWatchEvent ev;
    std::vector<string> got;
    while (master->next_watch_event(ev)) got.push_back(string(ev.path) + "|" + ev.token);
    EXPECT_EQ(got, (std::vector<string>{"@introduceDomain|i", "@releaseDomain|r"}));  // on registration

    auto d3 = bus.client(3);
    auto before = master->is_domain_introduced(3);
    ASSERT_TRUE(before.ok());
    EXPECT_FALSE(before.value());
    ASSERT_TRUE(master->introduce(3, 99, 13).ok());
    ASSERT_TRUE(master->wait_watch_event(ev, bus.now + 50'000'000).ok());
    EXPECT_STREQ(ev.path, "@introduceDomain");
    auto in = master->is_domain_introduced(3);
    ASSERT_TRUE(in.ok());
    EXPECT_TRUE(in.value());
    EXPECT_TRUE(d3->write("x", "1").ok());
    ASSERT_TRUE(master->release(3).ok());
    EXPECT_EQ(bus.server->find(3), nullptr);
    ASSERT_TRUE(master->wait_watch_event(ev, bus.now + 50'000'000).ok());
    EXPECT_STREQ(ev.path, "@releaseDomain");
    EXPECT_STREQ(ev.token, "r");
    reassign(in, master->is_domain_introduced(3));
    ASSERT_TRUE(in.ok());
    EXPECT_FALSE(in.value());
    // Only the master may.
    EXPECT_EQ(d1->introduce(4, 1, 1).error(), XsError::acces);
    EXPECT_EQ(d1->release(2).error(), XsError::acces);
    EXPECT_EQ(master->release(42).error(), XsError::noent);
}

TEST_F(XenbusTest, TimeoutThenTheLateReplyIsDropped) {
    EXPECT_TRUE(master->write("/tool/t", "late").ok());
    master->set_timeout(5'000'000);
    bus.serving = false;
    char buf[16];
    auto r = master->read("/tool/t", buf, sizeof buf);
    EXPECT_EQ(r.error(), XsError::timedout);
    EXPECT_GE(bus.waits, 5u);
    bus.serving = true;
    EXPECT_TRUE(master->write("/tool/t", "new").ok());  // the read's reply comes first, and is skipped
    reassign(r, master->read("/tool/t", buf, sizeof buf));
    ASSERT_TRUE(r.ok());
    EXPECT_STREQ(buf, "new");
}

TEST_F(XenbusTest, StoreNotServingYetOnlyTimesOut) {
    // Domain 3 talks before it is introduced (as the console domain may):
    // every request times out, the ring fills up, the client stays usable.
    auto d3 = bus.client(3);
    d3->set_timeout(3'000'000);
    char buf[16];
    for (int i = 0; i < 100; ++i) {
        auto r = d3->read("domid", buf, sizeof buf);
        ASSERT_EQ(r.error(), XsError::timedout) << i;
        ASSERT_TRUE(d3->connected()) << i;
    }
    Ring* ring = bus.ring(3);
    EXPECT_GT(ring->req_prod - ring->req_cons, abi::kXenstoreRingSize - 30);  // full: whole requests only
    EXPECT_EQ((ring->req_prod - ring->req_cons) % 22, 0u);                     // 16 + "domid\0"
    // Introduced: the old requests are answered (and their replies skipped).
    ASSERT_TRUE(master->introduce(3, 1, 13).ok());
    ASSERT_TRUE(master->write("/local/domain/3/domid", "3").ok());
    auto r = d3->read("domid", buf, sizeof buf);
    ASSERT_TRUE(r.ok()) << rt::xs_error_name(r.error());
    EXPECT_STREQ(buf, "3");
    // A request longer than the ring that cannot go on whole breaks the
    // connection when given up halfway.
    auto d4 = bus.client(4);
    d4->set_timeout(3'000'000);
    string big(2000, 'b');
    EXPECT_EQ(d4->write_bytes("x", big.data(), big.size()).error(), XsError::timedout);
    EXPECT_FALSE(d4->connected());
    EXPECT_EQ(d4->read("x", buf, sizeof buf).error(), XsError::proto);
}

TEST_F(XenbusTest, HostileStoreIndicesBreakTheClient) {
    Ring* ring = bus.ring(1);
    bus.serving = false;
    ring->rsp_prod = ring->rsp_cons + 2000;
    char buf[8];
    EXPECT_EQ(d1->read("x", buf, sizeof buf).error(), XsError::proto);
    EXPECT_FALSE(d1->connected());
    EXPECT_EQ(d1->write("x", "1").error(), XsError::proto);
    rt::XsWatchEvent ev;
    EXPECT_FALSE(d1->next_watch_event(ev));
    // A reply header with len > 4096.
    Ring* r2 = bus.ring(2);
    uint32_t h[4] = {uint32_t(abi::XsType::read), 1, 0, 5000};
    for (int i = 0; i < 16; ++i) r2->rsp[abi::xenstore_ring_slot(r2->rsp_prod + i)] = reinterpret_cast<char*>(h)[i];
    r2->rsp_prod += 16;
    EXPECT_EQ(d2->read("x", buf, sizeof buf).error(), XsError::proto);
    EXPECT_FALSE(d2->connected());
}

TEST_F(XenbusTest, StoreMarkingTheRingBrokenEndsTheWait) {
    // Domain 1's connection breaks (a bogus consumer index), and the store
    // says so in the error field; the client stops waiting.
    Ring* ring = bus.ring(1);
    ring->rsp_cons = 500;
    bus.serve();
    EXPECT_EQ(bus.broke, 1u);
    EXPECT_EQ(ring->error, abi::kXenstoreErrorRingidx);
    ring->rsp_cons = 0;
    char buf[8];
    d1->set_timeout(50'000'000);
    EXPECT_EQ(d1->read("x", buf, sizeof buf).error(), XsError::proto);
    EXPECT_LT(bus.waits, 10u);
    // Domain 2 is unaffected.
    EXPECT_TRUE(d2->write("y", "1").ok());
}

TEST_F(XenbusTest, EventQueueIsBoundedAndKeepsTheOldest) {
    EXPECT_TRUE(d1->watch("w", "t").ok());
    // Events pile up on domain 1's side while it only sends requests (500
    // nodes, its node quota being 1000).
    char buf[8];
    for (int i = 0; i < 2000; ++i) {
        ASSERT_TRUE(master->write(("/local/domain/1/w/n" + std::to_string(i % 500)).c_str(), "v").ok()) << i;
        if (i % 10 == 0) ASSERT_TRUE(d1->read("w", buf, sizeof buf).ok());
    }
    EXPECT_GT(d1->dropped_watch_events(), 0u);
    rt::XsWatchEvent ev;
    ASSERT_TRUE(d1->next_watch_event(ev));
    EXPECT_STREQ(ev.path, "w");  // registration first
    // What was kept is the changes in the order they happened (with gaps
    // where the queue was full).
    int j = 0;
    size_t count = 0;
    while (d1->next_watch_event(ev)) {
        string p = ev.path;
        ASSERT_EQ(p.rfind("w/n", 0), 0u) << p;
        int n = std::stoi(p.substr(3));
        while (j < 2000 && j % 500 != n) ++j;
        ASSERT_LT(j, 2000) << "event " << count << " (" << p << ") out of order";
        ++j;
        ++count;
    }
    EXPECT_GT(count, 300u);
    EXPECT_STREQ(ev.token, "t");
}

TEST(XenbusErrors, NamesRoundTripAndMatchTheEngine) {
    for (int i = 0; i <= int(XsError::notconn); ++i) {
        XsError e = XsError(i);
        const char* n = rt::xs_error_name(e);
        EXPECT_EQ(rt::xs_error_from_name(n, strlen(n)), e) << n;
    }
    for (int i = 0; i <= int(xs::Error::quota); ++i) {
        const char* n = xs::error_name(xs::Error(i));
        EXPECT_STREQ(rt::xs_error_name(rt::xs_error_from_name(n, strlen(n))), n);
    }
    EXPECT_EQ(rt::xs_error_from_name("EWHATEVER", 9), XsError::inval);
}

TEST(XenbusUnconnected, EverythingIsEnotconn) {
    auto c = std::make_unique<XsClient>();
    char buf[8];
    EXPECT_FALSE(c->connected());
    EXPECT_EQ(c->read("x", buf, sizeof buf).error(), XsError::notconn);
    EXPECT_EQ(c->write("x", "y").error(), XsError::notconn);
    rt::XsWatchEvent ev;
    EXPECT_FALSE(c->next_watch_event(ev));
    EXPECT_EQ(c->wait_watch_event(ev).error(), XsError::notconn);
}

// Server and client on two threads, sharing only the ring pages.
TEST(XenbusThreads, ConcurrentClientsAgainstAServerThread) {
    auto engine = std::make_unique<xs::HostedEngine>(kMaster);
    auto server = std::make_unique<xs::PooledRingServer<16>>(*engine);
    auto r0 = std::make_unique<Ring>(), r1 = std::make_unique<Ring>();
    memset(r0.get(), 0, sizeof(Ring));
    memset(r1.get(), 0, sizeof(Ring));
    ASSERT_TRUE(engine->introduce(1).ok());
    server->attach(kMaster, r0.get(), 1);
    server->attach(1, r1.get(), 2);
    std::atomic<bool> stop{false};
    std::thread srv([&] {
        while (!stop.load()) {
            if (!server->serve_all(nullptr, nullptr, nullptr)) std::this_thread::yield();
        }
    });
    XsClient::Io io{nullptr, nullptr, [](void*, uint64_t) { std::this_thread::yield(); return true; }, nullptr};
    auto run = [&](Ring* ring, string prefix, unsigned seed, std::atomic<int>& failures) {
        auto c = std::make_unique<XsClient>();
        c->init(ring, io);
        std::mt19937 rng(seed);
        std::vector<char> buf(4097);
        for (int i = 0; i < 1500; ++i) {
            string path = prefix + std::to_string(rng() % 20);
            string v(rng() % 1500, char('a' + rng() % 26));
            if (!c->write_bytes(path.c_str(), v.data(), v.size()).ok()) failures++;
            auto r = c->read(path.c_str(), buf.data(), buf.size());
            if (!r.ok() || string(buf.data(), r.value()) != v) failures++;
        }
    };
    std::atomic<int> f0{0}, f1{0};
    std::thread a([&] { run(r0.get(), "/tool/m", 1, f0); });
    std::thread b([&] { run(r1.get(), "d", 2, f1); });
    a.join();
    b.join();
    stop = true;
    srv.join();
    EXPECT_EQ(f0.load(), 0);
    EXPECT_EQ(f1.load(), 0);
    EXPECT_EQ(engine->check_invariants(), nullptr);
}

}  // namespace
