// libs/ring: Xen's shared-ring protocol, front and (hardened) back end.
#include <ring/ring.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <vector>

namespace {

using abi::RingIdx;

struct Req {
  uint64_t id;
  uint32_t op;
  uint32_t len;
  uint8_t payload[48];
};
struct Rsp {
  uint64_t id;
  int32_t status;
  uint32_t pad;
};
static_assert(sizeof(Req) == 64);

using Shared = ring::SharedRing<Req, Rsp>;

// Exactly-sized heap allocation: ASan reports any access past the ring.
struct Page {
  explicit Page(std::size_t n = 4096) : bytes(n), mem(new unsigned char[n]) {
    std::memset(mem.get(), 0xA5, n);
  }
  Shared* shared() { return reinterpret_cast<Shared*>(mem.get()); }
  std::size_t bytes;
  std::unique_ptr<unsigned char[]> mem;
};

// The bytes a ring of n entries occupies.
std::size_t ring_bytes(unsigned n) { return 64 + n * sizeof(ring::RingEntry<Req, Rsp>); }

Req make_req(uint64_t id) {
  Req r{};
  r.id = id;
  r.op = static_cast<uint32_t>(id * 7);
  r.len = static_cast<uint32_t>(id % 48);
  for (unsigned i = 0; i < sizeof(r.payload); ++i) r.payload[i] = static_cast<uint8_t>(id + i);
  return r;
}

bool same(const Req& a, const Req& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// A shared-memory policy with test hooks: a callback run just before the
// next relaxed index store or just after the next full fence (to interleave
// the peer inside final_check_*), and a count of slot copies.
struct HookShm : ring::DirectSharedMemory {
  static inline std::function<void()> before_store;
  static inline std::function<void()> after_fence;
  static inline int copies_in = 0;
  static inline int index_loads = 0;

  static void reset() {
    before_store = nullptr;
    after_fence = nullptr;
    copies_in = 0;
    index_loads = 0;
  }
  static RingIdx load_acquire(const RingIdx* p) {
    ++index_loads;
    return DirectSharedMemory::load_acquire(p);
  }
  static void store_relaxed(RingIdx* p, RingIdx v) {
    if (before_store) {
      auto f = std::move(before_store);
      before_store = nullptr;
      f();
    }
    DirectSharedMemory::store_relaxed(p, v);
  }
  static void full_fence() {
    DirectSharedMemory::full_fence();
    if (after_fence) {
      auto f = std::move(after_fence);
      after_fence = nullptr;
      f();
    }
  }
  template <typename T>
  static void copy_in(T& dst, const T* src) {
    ++copies_in;
    DirectSharedMemory::copy_in(dst, src);
  }
};

using Front = ring::FrontRing<Req, Rsp>;
using Back = ring::BackRing<Req, Rsp>;
using HFront = ring::FrontRing<Req, Rsp, HookShm>;
using HBack = ring::BackRing<Req, Rsp, HookShm>;

TEST(SharedRing, EntriesArePowersOfTwoThatFit) {
  EXPECT_EQ(Shared::entries(4096), 32u);  // 64-byte entries: 63 fit, 32 used
  EXPECT_EQ(Shared::entries(64 + 64), 1u);
  EXPECT_EQ(Shared::entries(64 + 63), 0u);
  EXPECT_EQ(Shared::entries(64), 0u);
  EXPECT_EQ(Shared::entries(0), 0u);
  EXPECT_EQ(Shared::entries(8192), 64u);
  EXPECT_EQ((ring::SharedRing<uint32_t, uint32_t>::entries(4096)), 512u);  // 1008 fit
  EXPECT_EQ(sizeof(Shared), 64u);
  EXPECT_EQ(offsetof(Shared, hdr.req_prod), 0u);
  EXPECT_EQ(offsetof(Shared, hdr.rsp_event), 12u);
}

TEST(Ring, InitWritesXenInitialHeader) {
  Page p;
  Front f;
  ASSERT_TRUE(f.init(p.mem.get(), p.bytes, 100));
  EXPECT_EQ(p.shared()->hdr.req_prod, 100u);
  EXPECT_EQ(p.shared()->hdr.rsp_prod, 100u);
  EXPECT_EQ(p.shared()->hdr.req_event, 101u);
  EXPECT_EQ(p.shared()->hdr.rsp_event, 101u);
  for (auto b : p.shared()->hdr.pad) EXPECT_EQ(b, 0);
  EXPECT_EQ(f.size(), 32u);
  EXPECT_EQ(f.free_requests(), 32u);
  Front bad;
  EXPECT_FALSE(bad.init(p.mem.get(), 100));
  EXPECT_FALSE(bad.init(nullptr, 4096));
  Back b;
  EXPECT_FALSE(b.init(p.mem.get(), 64));
}

TEST(Ring, FillAndDrain) {
  Page p(ring_bytes(8));
  Front f;
  Back b;
  ASSERT_TRUE(f.init(p.mem.get(), p.bytes));
  ASSERT_TRUE(b.init(p.mem.get(), p.bytes));
  ASSERT_EQ(f.size(), 8u);
  for (unsigned i = 0; i < 8; ++i) ASSERT_TRUE(f.push_request(make_req(i)));
  EXPECT_TRUE(f.full());
  EXPECT_FALSE(f.push_request(make_req(99)));
  EXPECT_EQ(f.next_request(), nullptr);
  EXPECT_EQ(b.unconsumed(), 0u);  // not pushed yet
  f.push_requests();
  EXPECT_EQ(b.unconsumed(), 8u);
  Req q;
  for (unsigned i = 0; i < 8; ++i) {
    ASSERT_TRUE(b.take_request(q));
    EXPECT_TRUE(same(q, make_req(i)));
  }
  EXPECT_FALSE(b.take_request(q));
  EXPECT_EQ(f.responses_pending(), 0u);
  for (unsigned i = 0; i < 8; ++i) ASSERT_TRUE(b.push_response(Rsp{i, -static_cast<int32_t>(i), 0}));
  EXPECT_FALSE(b.push_response(Rsp{}));  // every request answered
  EXPECT_TRUE(f.full());                 // responses not pushed: slots not free
  b.push_responses();
  EXPECT_EQ(f.responses_pending(), 8u);
  Rsp r;
  for (unsigned i = 0; i < 8; ++i) {
    ASSERT_TRUE(f.take_response(r));
    EXPECT_EQ(r.id, i);
    EXPECT_EQ(r.status, -static_cast<int32_t>(i));
  }
  EXPECT_FALSE(f.take_response(r));
  EXPECT_EQ(f.free_requests(), 8u);
  EXPECT_FALSE(f.broken());
  EXPECT_FALSE(b.broken());
}

TEST(Ring, NextRequestFillsInPlace) {
  Page p;
  Front f;
  Back b;
  f.init(p.mem.get(), p.bytes);
  b.init(p.mem.get(), p.bytes);
  Req* slot = f.next_request();
  ASSERT_NE(slot, nullptr);
  *slot = make_req(42);
  f.push_requests();
  Req q;
  ASSERT_TRUE(b.take_request(q));
  EXPECT_TRUE(same(q, make_req(42)));
}

// Runs `rounds` batches of random-ish sizes through a ring whose indices start
// at `start`, checking order and contents.
void run_traffic(RingIdx start, unsigned entries, unsigned rounds) {
  Page p(ring_bytes(entries));
  Front f;
  Back b;
  ASSERT_TRUE(f.init(p.mem.get(), p.bytes, start));
  ASSERT_TRUE(b.init(p.mem.get(), p.bytes, start));
  uint64_t sent = 0, served = 0, answered = 0;
  uint32_t lcg = 12345;
  for (unsigned round = 0; round < rounds; ++round) {
    lcg = lcg * 1103515245u + 12345u;
    unsigned n = 1 + (lcg >> 16) % entries;
    for (unsigned i = 0; i < n && !f.full(); ++i) ASSERT_TRUE(f.push_request(make_req(sent++)));
    f.push_requests();
    EXPECT_LE(b.unconsumed(), entries);
    Req q;
    unsigned k = (lcg >> 8) % (entries + 1);
    for (unsigned i = 0; i < k && b.take_request(q); ++i) {
      ASSERT_TRUE(same(q, make_req(served))) << served;
      ++served;
      ASSERT_TRUE(b.push_response(Rsp{q.id, 0, 0}));
    }
    b.push_responses();
    Rsp r;
    while (f.take_response(r)) ASSERT_EQ(r.id, answered++);
    ASSERT_FALSE(f.broken());
    ASSERT_FALSE(b.broken());
  }
  EXPECT_GT(served, 0u);
  EXPECT_EQ(answered, served);
}

TEST(Ring, WrapsAround32BitIndices) {
  run_traffic(0xFFFFFFF0u, 8, 200);
  run_traffic(0xFFFFFF00u, 32, 200);
  run_traffic(0x7FFFFFF8u, 16, 200);
  run_traffic(0, 1, 50);
}

TEST(Ring, WrapStartIndicesAcrossZero) {
  Page p(ring_bytes(4));
  Front f;
  Back b;
  f.init(p.mem.get(), p.bytes, 0xFFFFFFFEu);
  b.init(p.mem.get(), p.bytes, 0xFFFFFFFEu);
  for (unsigned i = 0; i < 4; ++i) f.push_request(make_req(i));
  f.push_requests();
  EXPECT_EQ(p.shared()->hdr.req_prod, 2u);
  EXPECT_EQ(b.unconsumed(), 4u);
  Req q;
  for (unsigned i = 0; i < 4; ++i) {
    ASSERT_TRUE(b.take_request(q));
    EXPECT_EQ(q.id, i);
  }
  EXPECT_EQ(b.req_cons(), 2u);
}

// Reference rule: notify iff the event index lies in (old, new] mod 2^32.
bool in_half_open(RingIdx ev, RingIdx old_idx, RingIdx new_idx) {
  for (RingIdx i = old_idx + 1; i != new_idx + 1; ++i)
    if (i == ev) return true;
  return false;
}

TEST(Ring, RequestNotificationFollowsXenRule) {
  const RingIdx starts[] = {0, 5, 0xFFFFFFFCu, 0x80000000u};
  for (RingIdx start : starts) {
    for (unsigned pushed = 1; pushed <= 8; ++pushed) {
      for (int off = -3; off <= 11; ++off) {
        Page p(ring_bytes(8));
        Front f;
        f.init(p.mem.get(), p.bytes, start);
        RingIdx ev = start + static_cast<RingIdx>(off);
        p.shared()->hdr.req_event = ev;
        for (unsigned i = 0; i < pushed; ++i) f.push_request(make_req(i));
        bool notify = f.push_requests_and_check_notify();
        EXPECT_EQ(notify, in_half_open(ev, start, start + pushed))
            << "start " << start << " pushed " << pushed << " ev " << ev;
      }
    }
  }
}

TEST(Ring, ResponseNotificationFollowsXenRule) {
  for (RingIdx start : {RingIdx{0}, RingIdx{0xFFFFFFFDu}}) {
    for (unsigned pushed = 1; pushed <= 8; ++pushed) {
      for (int off = -2; off <= 10; ++off) {
        Page p(ring_bytes(8));
        Front f;
        Back b;
        f.init(p.mem.get(), p.bytes, start);
        b.init(p.mem.get(), p.bytes, start);
        for (unsigned i = 0; i < 8; ++i) f.push_request(make_req(i));
        f.push_requests();
        Req q;
        for (unsigned i = 0; i < pushed; ++i) {
          ASSERT_TRUE(b.take_request(q));
          b.push_response(Rsp{q.id, 0, 0});
        }
        RingIdx ev = start + static_cast<RingIdx>(off);
        p.shared()->hdr.rsp_event = ev;
        EXPECT_EQ(b.push_responses_and_check_notify(), in_half_open(ev, start, start + pushed));
      }
    }
  }
}

TEST(Ring, NotificationSuppressedWhileBackEndBusy) {
  Page p;
  Front f;
  Back b;
  f.init(p.mem.get(), p.bytes, 0xFFFFFFFFu);
  b.init(p.mem.get(), p.bytes, 0xFFFFFFFFu);
  f.push_request(make_req(1));
  EXPECT_TRUE(f.push_requests_and_check_notify());  // initial req_event = start + 1
  f.push_request(make_req(2));
  EXPECT_FALSE(f.push_requests_and_check_notify());  // back end has not re-armed
  Req q;
  while (b.take_request(q)) b.push_response(Rsp{q.id, 0, 0});
  EXPECT_FALSE(b.final_check_for_requests());  // idle: re-arms req_event
  EXPECT_EQ(p.shared()->hdr.req_event, b.req_cons() + 1);
  f.push_request(make_req(3));
  EXPECT_TRUE(f.push_requests_and_check_notify());
  // Responses: the front end armed rsp_event at init, takes the first batch.
  EXPECT_TRUE(b.push_responses_and_check_notify());
  Rsp r;
  while (f.take_response(r)) {
  }
  EXPECT_TRUE(b.final_check_for_requests());  // request 3 pending
  ASSERT_TRUE(b.take_request(q));
  b.push_response(Rsp{q.id, 0, 0});
  EXPECT_FALSE(b.push_responses_and_check_notify());  // front end not re-armed
  EXPECT_TRUE(f.final_check_for_responses());         // but it finds the response
  ASSERT_TRUE(f.take_response(r));
  EXPECT_EQ(r.id, 3u);
  EXPECT_FALSE(f.final_check_for_responses());
  EXPECT_EQ(p.shared()->hdr.rsp_event, f.rsp_cons() + 1);
}

// The lost-wakeup race of final_check: the front end pushes between the back
// end's first check and its store of req_event. The front end sees the old
// req_event (no notification) so the back end must find the request itself.
TEST(Ring, FinalCheckForRequestsCatchesPushBeforeEventStore) {
  HookShm::reset();
  Page p;
  HFront f;
  HBack b;
  f.init(p.mem.get(), p.bytes);
  b.init(p.mem.get(), p.bytes);
  f.push_request(make_req(0));
  ASSERT_TRUE(f.push_requests_and_check_notify());
  Req q;
  ASSERT_TRUE(b.take_request(q));
  bool notified = true;
  HookShm::before_store = [&] {
    f.push_request(make_req(1));
    notified = f.push_requests_and_check_notify();
  };
  EXPECT_TRUE(b.final_check_for_requests());
  EXPECT_FALSE(notified);  // old req_event: suppressed, and that is safe
  ASSERT_TRUE(b.take_request(q));
  EXPECT_EQ(q.id, 1u);
  HookShm::reset();
}

// The push lands after the back end's event store: the front end notifies.
TEST(Ring, FinalCheckForRequestsPushAfterEventStoreNotifies) {
  HookShm::reset();
  Page p;
  HFront f;
  HBack b;
  f.init(p.mem.get(), p.bytes);
  b.init(p.mem.get(), p.bytes);
  f.push_request(make_req(0));
  f.push_requests();
  Req q;
  ASSERT_TRUE(b.take_request(q));
  bool notified = false;
  HookShm::after_fence = [&] {
    f.push_request(make_req(1));
    notified = f.push_requests_and_check_notify();
  };
  bool work = b.final_check_for_requests();
  EXPECT_TRUE(notified);
  EXPECT_TRUE(work);  // this interleaving: both see it (harmless)
  HookShm::reset();
  // Entirely after: the event is the only wake-up, and it is sent.
  EXPECT_TRUE(b.take_request(q));
  EXPECT_FALSE(b.final_check_for_requests());
  f.push_request(make_req(2));
  EXPECT_TRUE(f.push_requests_and_check_notify());
}

TEST(Ring, FinalCheckForResponsesCatchesPushBeforeEventStore) {
  HookShm::reset();
  Page p;
  HFront f;
  HBack b;
  f.init(p.mem.get(), p.bytes);
  b.init(p.mem.get(), p.bytes);
  for (int i = 0; i < 2; ++i) f.push_request(make_req(i));
  f.push_requests();
  Req q;
  ASSERT_TRUE(b.take_request(q));
  ASSERT_TRUE(b.take_request(q));
  b.push_response(Rsp{0, 0, 0});
  ASSERT_TRUE(b.push_responses_and_check_notify());
  Rsp r;
  ASSERT_TRUE(f.take_response(r));
  bool notified = true;
  HookShm::before_store = [&] {
    b.push_response(Rsp{1, 0, 0});
    notified = b.push_responses_and_check_notify();
  };
  EXPECT_TRUE(f.final_check_for_responses());
  EXPECT_FALSE(notified);
  ASSERT_TRUE(f.take_response(r));
  EXPECT_EQ(r.id, 1u);
  HookShm::reset();
}

// ---- hostile front end ----------------------------------------------------

TEST(BackRing, ReqProdFarAheadBreaksRing) {
  for (RingIdx start : {RingIdx{0}, RingIdx{0xFFFFFFF8u}}) {
    for (RingIdx ahead : {RingIdx{33}, RingIdx{1000}, RingIdx{0x7FFFFFFFu}, RingIdx{0x80000000u}}) {
      Page p;
      Back b;
      b.init(p.mem.get(), p.bytes, start);
      p.shared()->hdr.req_prod = start + ahead;
      Req q;
      EXPECT_FALSE(b.take_request(q));
      EXPECT_TRUE(b.broken());
      EXPECT_EQ(b.unconsumed(), 0u);
      EXPECT_FALSE(b.final_check_for_requests());
      EXPECT_EQ(b.req_cons(), start);
    }
  }
}

TEST(BackRing, ExactlyFullIsAccepted) {
  Page p;
  Back b;
  b.init(p.mem.get(), p.bytes, 0xFFFFFFF0u);
  p.shared()->hdr.req_prod = 0xFFFFFFF0u + 32;
  EXPECT_EQ(b.unconsumed(), 32u);
  EXPECT_FALSE(b.broken());
}

TEST(BackRing, ReqProdBehindBreaksRing) {
  Page p;
  Front f;
  Back b;
  f.init(p.mem.get(), p.bytes, 10);
  b.init(p.mem.get(), p.bytes, 10);
  for (int i = 0; i < 4; ++i) f.push_request(make_req(i));
  f.push_requests();
  Req q;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(b.take_request(q));
  b.push_response(Rsp{});  // rsp_prod_pvt = 11, req_cons = 14
  p.shared()->hdr.req_prod = 12;  // between the two: passes Xen's PROD_OVERFLOW
  EXPECT_FALSE(b.take_request(q));
  EXPECT_TRUE(b.broken());
  EXPECT_EQ(b.req_cons(), 14u);
}

TEST(BackRing, ReqProdGoingBackwardsWithinBatchIsIgnoredUntilBatchEnds) {
  Page p;
  Back b;
  b.init(p.mem.get(), p.bytes);
  for (unsigned i = 0; i < 8; ++i) {
    Req r = make_req(i);
    std::memcpy(&p.shared()->slots()[i].req, &r, sizeof r);
  }
  p.shared()->hdr.req_prod = 8;
  Req q;
  ASSERT_TRUE(b.take_request(q));
  p.shared()->hdr.req_prod = 2;  // the batch [0, 8) was read once: still served
  unsigned taken = 1;
  while (b.take_request(q)) ++taken;
  EXPECT_EQ(taken, 8u) << "req_cons never passes the req_prod read for the batch";
  EXPECT_TRUE(b.broken());  // the next batch reads 2: behind req_cons
}

TEST(BackRing, CannotBeMadeToConsumeMoreThanRoomWithoutResponding) {
  Page p;
  Back b;
  b.init(p.mem.get(), p.bytes);
  Req q;
  unsigned taken = 0;
  // The front end claims a full ring, again and again, never waiting.
  for (int round = 0; round < 10 && !b.broken(); ++round) {
    p.shared()->hdr.req_prod = b.req_cons() + 32;
    while (b.take_request(q)) ++taken;
  }
  EXPECT_EQ(taken, 32u);
  EXPECT_TRUE(b.broken());
  // With responses, the room comes back.
  Page p2;
  Back b2;
  b2.init(p2.mem.get(), p2.bytes);
  taken = 0;
  for (int round = 0; round < 10; ++round) {
    p2.shared()->hdr.req_prod = b2.req_cons() + 32;
    unsigned batch = 0;
    while (b2.take_request(q)) {
      ++batch;
      ASSERT_TRUE(b2.push_response(Rsp{}));
    }
    b2.push_responses();
    EXPECT_EQ(batch, 32u);
    taken += batch;
  }
  EXPECT_FALSE(b2.broken());
  EXPECT_EQ(taken, 320u);
}

TEST(BackRing, GarbageEntriesAreCopiedOnceAndNeverReadAgain) {
  HookShm::reset();
  Page p(ring_bytes(4));
  HBack b;
  b.init(p.mem.get(), p.bytes);
  std::memset(p.mem.get() + 64, 0xFF, p.bytes - 64);
  p.shared()->hdr.req_prod = 4;
  Req q;
  unsigned taken = 0;
  while (b.take_request(q)) {
    ++taken;
    EXPECT_EQ(q.id, ~uint64_t{0});
    // The front end rewrites the slot after the copy: the private copy stays.
    std::memset(p.mem.get() + 64 + (taken - 1) * 64, 0x11, 64);
    EXPECT_EQ(q.len, 0xFFFFFFFFu);
  }
  EXPECT_EQ(taken, 4u);
  EXPECT_EQ(HookShm::copies_in, 4);
  EXPECT_EQ(HookShm::index_loads, 2);  // one per batch (and the empty check)
  HookShm::reset();
}

TEST(BackRing, BrokenStaysBroken) {
  Page p;
  Back b;
  b.init(p.mem.get(), p.bytes);
  p.shared()->hdr.req_prod = 100;
  Req q;
  EXPECT_FALSE(b.take_request(q));
  ASSERT_TRUE(b.broken());
  p.shared()->hdr.req_prod = 1;  // "sorry": too late
  EXPECT_FALSE(b.take_request(q));
  EXPECT_EQ(b.unconsumed(), 0u);
  EXPECT_TRUE(b.broken());
}

TEST(BackRing, ScribbledHeaderFieldsOnlyAffectNotification) {
  Page p;
  Front f;
  Back b;
  f.init(p.mem.get(), p.bytes);
  b.init(p.mem.get(), p.bytes);
  f.push_request(make_req(0));
  f.push_requests();
  Req q;
  ASSERT_TRUE(b.take_request(q));
  b.push_response(Rsp{});
  p.shared()->hdr.rsp_prod = 0xDEADBEEF;  // the back end's field, scribbled
  p.shared()->hdr.rsp_event = 0xDEADBEF0;
  (void)b.push_responses_and_check_notify();
  EXPECT_EQ(p.shared()->hdr.rsp_prod, 1u);
  EXPECT_FALSE(b.broken());
}

// ---- hostile back end -----------------------------------------------------

TEST(FrontRing, ResponsesToUnsentRequestsBreakRing) {
  Page p;
  Front f;
  f.init(p.mem.get(), p.bytes, 0xFFFFFFFEu);
  for (int i = 0; i < 3; ++i) f.push_request(make_req(i));
  f.push_requests();
  f.push_request(make_req(3));  // claimed, not pushed
  p.shared()->hdr.rsp_prod = 0xFFFFFFFEu + 4;
  Rsp r;
  EXPECT_FALSE(f.take_response(r));
  EXPECT_TRUE(f.broken());
  EXPECT_EQ(f.next_request(), nullptr);

  Front g;
  Page p2;
  g.init(p2.mem.get(), p2.bytes);
  g.push_request(make_req(0));
  g.push_requests();
  p2.shared()->hdr.rsp_prod = 0xFFFFFFFFu;  // behind
  EXPECT_EQ(g.responses_pending(), 0u);
  EXPECT_TRUE(g.broken());
}

}  // namespace
