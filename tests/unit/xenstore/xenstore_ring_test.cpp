// The ring server: requests off xenstore_domain_interface pages, replies
// and watch events back, in ring space only, with the outstanding-request
// quota, and hostile indices or lengths breaking only the offender.

#include "ring_harness.hpp"

#include <random>

namespace {

using namespace xstest;
using std::string;

struct RingTest : ::testing::Test {
    World w;
    void SetUp() override {
        ASSERT_NE(w.attach(kBuilder), nullptr);
        w.introduce(1);
        w.introduce(2);
    }
};

TEST_F(RingTest, WriteThenReadRoundTrip) {
    Msg r = w.call(kBuilder, XsType::write, z("/tool/x") + "hello", 41, 0);
    EXPECT_EQ(r.type, uint32_t(XsType::write));
    EXPECT_EQ(r.req_id, 41u);
    EXPECT_EQ(r.body, z("OK"));
    r = w.call(kBuilder, XsType::read, z("/tool/x"), 42);
    EXPECT_EQ(r.type, uint32_t(XsType::read));
    EXPECT_EQ(r.req_id, 42u);
    EXPECT_EQ(r.body, "hello");
    // Every request and reply went through the ring, and the client was kicked.
    EXPECT_GT(w.notifies[kBuilder], 0u);
    EXPECT_EQ(w.c(kBuilder).ring->req_cons, w.c(kBuilder).ring->req_prod);
    EXPECT_EQ(w.server->find(kBuilder)->outstanding(), 0u);
    // Unprivileged domain: relative paths, its own home, errors by name.
    r = w.call(1, XsType::write, z("data") + "v", 5);
    EXPECT_EQ(r.body, z("OK"));
    r = w.call(1, XsType::read, z("/local/domain/1/data"), 6);
    EXPECT_EQ(r.body, "v");
    r = w.call(2, XsType::read, z("/local/domain/1/data"), 7);
    EXPECT_EQ(r.error(), "EACCES");
    EXPECT_EQ(r.req_id, 7u);
    r = w.call(2, XsType::read, z("nothing"), 8);
    EXPECT_EQ(r.error(), "ENOENT");
}

TEST_F(RingTest, ServerAdvertisesErrorFieldAndNotifiesOnlyWhenIndicesMove) {
    EXPECT_EQ(w.c(1).ring->server_features & abi::kXenstoreServerFeatureError, abi::kXenstoreServerFeatureError);
    EXPECT_EQ(w.c(1).ring->error, abi::kXenstoreErrorNone);
    xs::ServeResult r = w.serve(1);
    EXPECT_FALSE(r.notify);
    EXPECT_FALSE(r.progress);
    EXPECT_FALSE(r.broke);
}

TEST_F(RingTest, WatchEventFollowsTheWatchReplyAndOthersChanges) {
    Msg r = w.call(1, XsType::watch, z("/local/domain/1/dev") + z("tok"), 9);
    EXPECT_EQ(r.body, z("OK"));
    // The registration event comes after the reply.
    auto ev = w.drain(1);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(event_str(ev[0]), "/local/domain/1/dev|tok");
    EXPECT_EQ(ev[0].req_id, 0u);
    // A change by the builder reaches domain 1 without domain 1 sending anything.
    EXPECT_EQ(w.call(kBuilder, XsType::write, z("/local/domain/1/dev/x") + "1").body, z("OK"));
    ev = w.drain(1);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_TRUE(ev[0].is_event());
    EXPECT_EQ(event_str(ev[0]), "/local/domain/1/dev/x|tok");
    EXPECT_GT(w.notifies[1], 0u);
}

TEST_F(RingTest, HeaderAndPayloadArriveInPieces) {
    FakeClient& c = w.c(kBuilder);
    c.queue(request(XsType::write, z("/tool/p") + "pieces", 77));
    // 7 bytes of header: consumed, nothing answered.
    ASSERT_EQ(c.push(7), 7u);
    xs::ServeResult r = w.serve(kBuilder);
    EXPECT_TRUE(r.progress);
    EXPECT_TRUE(r.notify);  // req_cons moved
    EXPECT_EQ(c.ring->req_cons, 7u);
    EXPECT_EQ(c.ring->rsp_prod, 0u);
    EXPECT_EQ(w.server->find(kBuilder)->partial_request_bytes(), 7u);
    // The rest of the header and part of the payload.
    ASSERT_EQ(c.push(12), 12u);
    w.serve(kBuilder);
    EXPECT_EQ(c.ring->rsp_prod, 0u);
    // The last byte.
    c.push();
    w.serve(kBuilder);
    c.take();
    auto m = c.messages();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].req_id, 77u);
    EXPECT_EQ(m[0].body, z("OK"));
    EXPECT_EQ(w.call(kBuilder, XsType::read, z("/tool/p")).body, "pieces");
}

// Messages that straddle the end of the ring, at slot wrap and at the wrap
// of the 32-bit indices.
class RingWrap : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RingWrap, MessagesAcrossTheWrap) {
    World w;
    w.c(kBuilder).start_at(GetParam());
    ASSERT_NE(w.attach(kBuilder), nullptr);
    for (int i = 0; i < 40; ++i) {
        string path = "/tool/w" + std::to_string(i);
        string value(37 * i % 300, char('a' + i % 26));
        Msg r = w.call(kBuilder, XsType::write, z(path) + value, 1000 + i);
        ASSERT_EQ(r.body, z("OK")) << i;
        ASSERT_EQ(r.req_id, uint32_t(1000 + i));
        r = w.call(kBuilder, XsType::read, z(path), 2000 + i);
        ASSERT_EQ(r.body, value) << i;
    }
    EXPECT_EQ(w.breaks[kBuilder], 0u);
}

INSTANTIATE_TEST_SUITE_P(Starts, RingWrap, ::testing::Values(0u, 1000u, 1023u, 0xfffffff0u, 0xffffffffu));

TEST_F(RingTest, RequestAndReplyLargerThanTheRing) {
    string value(4000, 'v');
    for (size_t i = 0; i < value.size(); ++i) value[i] = char('A' + i % 61);
    // The request (16 + 8 + 4000 bytes) goes on in ring-sized pieces.
    Msg r = w.call(kBuilder, XsType::write, z("/tool/big") + value, 3);
    EXPECT_EQ(r.body, z("OK"));
    // The reply (16 + 4000 bytes) needs the client to take it in pieces.
    FakeClient& c = w.c(kBuilder);
    c.queue(request(XsType::read, z("/tool/big"), 4));
    c.push();
    w.serve(kBuilder);
    EXPECT_EQ(c.rsp_unconsumed(), kRingSize);  // filled, not more
    int rounds = 0;
    std::vector<Msg> m;
    while (m.empty() && rounds++ < 20) {
        c.take(300);  // a slow reader
        w.serve(kBuilder);
        EXPECT_LE(c.rsp_unconsumed(), kRingSize);
        m = c.messages();
    }
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].req_id, 4u);
    EXPECT_EQ(m[0].body, value);
    EXPECT_GE(rounds, 13);  // 4016 bytes at 300 a round
}

TEST_F(RingTest, LargestPayloadIsServedAndOneMoreBreaksTheConnection) {
    // len == 4096 is legal: a write whose path and value fill the payload.
    string path = "/tool/max";
    string value(xs::kPayloadMax - path.size() - 1, 'm');
    EXPECT_EQ(w.call(kBuilder, XsType::write, z(path) + value).body, z("OK"));
    EXPECT_EQ(w.call(kBuilder, XsType::read, z(path)).body, value);
    // Domain 1 sends a header claiming 4097 bytes.
    FakeClient& c = w.c(1);
    uint32_t h[4] = {uint32_t(XsType::write), 1, 0, 4097};
    std::vector<uint8_t> bad(16);
    memcpy(bad.data(), h, 16);
    c.queue(bad);
    c.push();
    w.serve_all();
    EXPECT_EQ(w.breaks[1], 1u);
    xs::Connection* conn = w.server->find(1);
    ASSERT_NE(conn, nullptr);
    EXPECT_TRUE(conn->broken());
    EXPECT_EQ(conn->break_reason(), xs::BreakReason::oversized);
    EXPECT_EQ(conn->break_detail(), 4097u);
    EXPECT_EQ(c.ring->error, abi::kXenstoreErrorProto);
    // Not served any more, and reported once only.
    c.queue(request(XsType::read, z("x"), 2));
    c.push();
    w.serve_all();
    w.serve_all();
    EXPECT_EQ(w.breaks[1], 1u);
    EXPECT_EQ(c.ring->rsp_prod, 0u);
    // Everyone else goes on.
    EXPECT_EQ(w.call(2, XsType::write, z("still") + "fine").body, z("OK"));
    EXPECT_EQ(w.call(kBuilder, XsType::read, z("/local/domain/2/still")).body, "fine");
}

TEST_F(RingTest, ProducerIndexTooFarAheadBreaksOnlyThatConnection) {
    FakeClient& c = w.c(1);
    c.ring->req_prod = c.ring->req_cons + kRingSize + 1;
    w.serve_all();
    EXPECT_EQ(w.breaks[1], 1u);
    EXPECT_EQ(w.server->find(1)->break_reason(), xs::BreakReason::request_index);
    EXPECT_EQ(w.server->find(1)->break_detail(), kRingSize + 1);
    EXPECT_EQ(c.ring->error, abi::kXenstoreErrorRingidx);
    EXPECT_EQ(c.ring->rsp_prod, 0u);  // nothing was written into its ring
    EXPECT_EQ(w.call(2, XsType::write, z("a") + "b").body, z("OK"));
    EXPECT_EQ(w.breaks[2], 0u);
    // Exactly a ring ahead is fine (a full ring of requests).
    FakeClient& c2 = w.c(2);
    std::vector<uint8_t> stream;
    while (stream.size() < kRingSize) {
        auto m = request(XsType::read, z("a"), 9);
        stream.insert(stream.end(), m.begin(), m.end());
    }
    c2.queue(stream);
    ASSERT_EQ(c2.push(kRingSize), kRingSize);
    w.serve(2);
    EXPECT_FALSE(w.server->find(2)->broken());
}

TEST_F(RingTest, ProducerIndexGoingBackwardsBreaks) {
    EXPECT_EQ(w.call(1, XsType::write, z("a") + "b").body, z("OK"));
    FakeClient& c = w.c(1);
    c.ring->req_prod -= 1;  // behind what the server consumed: "4 billion ahead"
    w.serve_all();
    EXPECT_EQ(w.breaks[1], 1u);
    EXPECT_EQ(w.server->find(1)->break_reason(), xs::BreakReason::request_index);
}

TEST_F(RingTest, ConsumerIndexBeyondWhatWasProducedBreaks) {
    FakeClient& c = w.c(1);
    c.ring->rsp_cons = 5;  // the server produced nothing yet
    w.serve_all();
    EXPECT_EQ(w.breaks[1], 1u);
    EXPECT_EQ(w.server->find(1)->break_reason(), xs::BreakReason::response_index);
    EXPECT_EQ(w.server->find(1)->break_detail(), 5u);
    EXPECT_EQ(w.call(2, XsType::write, z("a") + "b").body, z("OK"));
}

TEST_F(RingTest, PeerScribblingOnTheStoresIndicesChangesNothing) {
    EXPECT_EQ(w.call(1, XsType::write, z("a") + "b", 1).body, z("OK"));
    FakeClient& c = w.c(1);
    uint32_t real_cons = c.ring->req_cons;
    // The peer rewrites the index only the store owns; the store never
    // reads it back (it keeps its own count), it only overwrites it.
    c.ring->req_cons = 12345;
    c.queue(request(XsType::read, z("a"), 2));
    c.push(SIZE_MAX);
    w.serve_all();
    EXPECT_EQ(c.ring->req_cons, real_cons + 16 + 2);  // the store's own count, written back
    c.take();
    auto m = c.messages();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].body, "b");
    EXPECT_FALSE(w.server->find(1)->broken());
}

TEST_F(RingTest, FullResponseRingIsNeverOverwrittenAndQuotaStopsReading) {
    FakeClient& c = w.c(1);
    // 200 small writes; the client never takes a reply until the end.
    for (uint32_t i = 0; i < 200; ++i) c.queue(request(XsType::write, z("k" + std::to_string(i % 7)) + "x", i + 1));
    string snapshot;
    for (int round = 0; round < 100; ++round) {
        c.push();
        // Bytes the client has not consumed must survive the pass.
        string before(c.ring->rsp, kRingSize);
        uint32_t cons = c.ring->rsp_cons, prod = c.ring->rsp_prod;
        w.serve_all();
        EXPECT_LE(c.ring->rsp_prod - c.ring->rsp_cons, kRingSize);
        for (uint32_t k = cons; k != prod; ++k)
            ASSERT_EQ(c.ring->rsp[abi::xenstore_ring_slot(k)], before[abi::xenstore_ring_slot(k)]);
    }
    xs::Connection* conn = w.server->find(1);
    // The ring is full, 20 more replies are queued, and the rest of the
    // requests wait in the request ring.
    EXPECT_EQ(c.rsp_unconsumed(), kRingSize);
    EXPECT_EQ(conn->outstanding(), xs::kQuotaOutstanding);
    EXPECT_EQ(w.engine->domains().find(1)->outstanding, xs::kQuotaOutstanding);
    EXPECT_NE(c.ring->req_cons, c.ring->req_prod);
    // Now the client drains; every reply arrives once, in order.
    std::vector<Msg> got;
    for (int round = 0; round < 1000 && got.size() < 200; ++round) {
        c.push();
        w.serve_all();
        c.take(100);
        for (auto& m : c.messages()) got.push_back(m);
    }
    ASSERT_EQ(got.size(), 200u);
    for (uint32_t i = 0; i < 200; ++i) {
        EXPECT_EQ(got[i].req_id, i + 1);
        EXPECT_EQ(got[i].body, z("OK"));
    }
    EXPECT_EQ(conn->outstanding(), 0u);
    EXPECT_EQ(w.engine->domains().find(1)->outstanding, 0u);
    EXPECT_EQ(w.breaks[1], 0u);
}

TEST_F(RingTest, PrivilegedClientHasNoQuotaButTheQueueIsBounded) {
    FakeClient& c = w.c(kBuilder);
    for (uint32_t i = 0; i < 300; ++i) c.queue(request(XsType::write, z("/tool/k") + "x", i + 1));
    for (int round = 0; round < 50; ++round) {
        c.push();
        w.serve_all();
    }
    xs::Connection* conn = w.server->find(kBuilder);
    EXPECT_EQ(c.rsp_unconsumed(), kRingSize);
    EXPECT_GT(conn->outstanding(), xs::kQuotaOutstanding);
    EXPECT_LE(conn->outstanding(), xs::kConnOutMsgs);
    EXPECT_LE(conn->queued_bytes(), xs::kConnOutBytes);
    std::vector<Msg> got;
    for (int round = 0; round < 2000 && got.size() < 300; ++round) {
        c.push();
        w.serve_all();
        c.take(64);
        for (auto& m : c.messages()) got.push_back(m);
    }
    ASSERT_EQ(got.size(), 300u);
    for (uint32_t i = 0; i < 300; ++i) EXPECT_EQ(got[i].req_id, i + 1);
}

TEST_F(RingTest, WatchEventsWaitForRoomAndKeepTheirOrder) {
    EXPECT_EQ(w.call(1, XsType::watch, z("/local/domain/1") + z("t")).body, z("OK"));
    FakeClient& c = w.c(1);
    ASSERT_EQ(w.drain(1).size(), 1u);  // the registration event
    // 100 changes while domain 1 does not read: its ring fills, the rest wait.
    for (int i = 0; i < 100; ++i)
        ASSERT_EQ(w.call(kBuilder, XsType::write, z("/local/domain/1/n" + std::to_string(i)) + "v").body, z("OK"));
    EXPECT_EQ(c.rsp_unconsumed(), kRingSize);
    EXPECT_GT(w.engine->domains().find(1)->used[xs::Res::events], 0u);  // the rest wait in the engine
    std::vector<string> got;
    for (int round = 0; round < 200 && got.size() < 100; ++round) {
        for (auto& m : w.drain(1, 50)) {
            EXPECT_TRUE(m.is_event());
            got.push_back(event_str(m));
        }
    }
    ASSERT_EQ(got.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], "/local/domain/1/n" + std::to_string(i) + "|t");
}

TEST_F(RingTest, UnknownTypeGetsEnosysAndTheConnectionGoesOn) {
    Msg r = w.call(1, XsType(999), z("x"), 12);
    EXPECT_EQ(r.error(), "ENOSYS");
    EXPECT_EQ(r.req_id, 12u);
    // An empty payload (len 0) is a complete message too.
    r = w.call(1, XsType::read, "", 13);
    EXPECT_EQ(r.error(), "EINVAL");
    EXPECT_EQ(w.call(1, XsType::write, z("ok") + "1").body, z("OK"));
}

TEST_F(RingTest, ReleaseDropsQueuedRepliesAndTheirRequests) {
    FakeClient& c = w.c(1);
    for (uint32_t i = 0; i < 100; ++i) c.queue(request(XsType::write, z("k") + "x", i + 1));
    for (int round = 0; round < 20; ++round) {
        c.push();
        w.serve_all();
    }
    ASSERT_EQ(w.server->find(1)->outstanding(), xs::kQuotaOutstanding);
    ASSERT_TRUE(w.engine->release(1).ok());
    w.server->detach(1);
    EXPECT_EQ(w.server->find(1), nullptr);
    // Nothing is counted against domain 1 any more.
    const xs::Domain* d = w.engine->domains().find(1);
    EXPECT_TRUE(d == nullptr || d->outstanding == 0);
    EXPECT_EQ(w.engine->check_invariants(), nullptr);
    // Re-introduced on a fresh page: served from scratch.
    w.c(1).start_at(0);
    c.pending.clear();
    c.in.clear();
    w.introduce(1);
    // Its nodes went with the release (Xen, XSA-419); the new home is empty.
    EXPECT_EQ(w.call(1, XsType::read, z("k"), 5).error(), "ENOENT");
    EXPECT_EQ(w.call(1, XsType::write, z("k") + "y", 6).body, z("OK"));
    EXPECT_EQ(w.call(1, XsType::read, z("k"), 7).body, "y");
}

TEST_F(RingTest, ReattachResetsABrokenConnection) {
    FakeClient& c = w.c(1);
    c.ring->rsp_cons = 77;
    w.serve_all();
    ASSERT_TRUE(w.server->find(1)->broken());
    c.start_at(0);
    c.ring->error = 0;
    ASSERT_NE(w.attach(1), nullptr);
    EXPECT_FALSE(w.server->find(1)->broken());
    EXPECT_EQ(w.server->connections(), 3u);
    EXPECT_EQ(w.call(1, XsType::write, z("a") + "b").body, z("OK"));
}

TEST_F(RingTest, TableIsBounded) {
    std::vector<std::unique_ptr<Ring>> rings;
    size_t attached = w.server->connections();
    for (size_t i = attached; i < kConnections; ++i) {
        rings.push_back(std::make_unique<Ring>());
        memset(rings.back().get(), 0, sizeof(Ring));
        ASSERT_NE(w.server->attach(xs::DomId(100 + i), rings.back().get(), 1), nullptr);
    }
    Ring extra{};
    EXPECT_EQ(w.server->attach(999, &extra, 1), nullptr);
    w.server->detach(100 + xs::DomId(attached));
    EXPECT_NE(w.server->attach(999, &extra, 1), nullptr);
}

// Random chunking of both directions against a reference engine fed the same
// requests directly: byte-identical replies.
TEST(RingDifferential, RandomChunkingMatchesTheEngine) {
    std::mt19937 rng(12345);
    for (int trial = 0; trial < 20; ++trial) {
        World w;
        w.c(kBuilder).start_at(rng());
        ASSERT_NE(w.attach(kBuilder), nullptr);
        auto ref = std::make_unique<xs::HostedEngine>(kBuilder);
        auto out = std::make_unique<xs::Reply>();
        FakeClient& c = w.c(kBuilder);
        std::string expect;
        const char* ops[] = {"write", "read", "mkdir", "rm", "directory"};
        for (uint32_t i = 0; i < 150; ++i) {
            string path = "/t/" + std::to_string(rng() % 5) + (rng() % 2 ? "/" + std::to_string(rng() % 3) : "");
            string op = ops[rng() % 5];
            std::vector<uint8_t> m;
            if (op == "write") m = request(XsType::write, z(path) + string(rng() % 3000, char('a' + rng() % 26)), i);
            else if (op == "read") m = request(XsType::read, z(path), i);
            else if (op == "mkdir") m = request(XsType::mkdir, z(path), i);
            else if (op == "rm") m = request(XsType::rm, z(path), i);
            else m = request(XsType::directory, z(path), i);
            c.queue(m);
            ref->handle(kBuilder, m.data(), m.size(), *out);
            expect.append(reinterpret_cast<const char*>(out->bytes()), out->size());
        }
        std::string got;
        for (int round = 0; round < 100000 && got.size() < expect.size(); ++round) {
            c.push(rng() % 700);
            if (rng() % 3) w.serve(kBuilder);
            c.take(rng() % 700);
            got += c.in;
            c.in.clear();
            ASSERT_LE(c.rsp_unconsumed(), kRingSize);
        }
        ASSERT_EQ(got.size(), expect.size()) << "trial " << trial;
        EXPECT_TRUE(got == expect) << "trial " << trial;
        EXPECT_EQ(w.server->find(kBuilder)->outstanding(), 0u);
    }
}

}  // namespace
