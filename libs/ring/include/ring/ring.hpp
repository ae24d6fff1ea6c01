#pragma once
// Xen's shared request/response ring (xen/include/public/io/ring.h), as typed
// C++ with the back end hardened against a hostile front end.
//
// Layout (one page, or any size): the 64-byte abi::SringHeader
//   { req_prod, req_event, rsp_prod, rsp_event, private/pad to 64 }
// followed by entries() slots, each a union { Req; Rsp }. entries() is the
// largest power of two that fits, so a slot is `index & (entries() - 1)`.
//
// Indices are free-running 32-bit counters; every comparison is done on
// differences (mod 2^32), never on raw values, so wrap-around is invisible.
//
// Ownership of the shared fields:
//   front end writes req_prod, rsp_event and request slots;
//   back end  writes rsp_prod, req_event and response slots.
// Each end keeps its own state privately (FrontRing / BackRing): a peer can
// scribble over the whole shared page at any time and the private state stays
// consistent.
//
// Protocol (honest peers), with P = entries():
//   rsp_cons <= rsp_prod <= rsp_prod_pvt <= req_cons <= req_prod <= req_prod_pvt
//   req_prod_pvt - rsp_cons <= P            (the front's flow control)
// where "a <= b" means (b - a) mod 2^32 is the distance walked from a to b.
//
// Notification hold-off: a producer that moves its index from old to new
// notifies iff the consumer's event index e satisfies old < e <= new (mod
// 2^32), i.e. (new - e) < (new - old) (abi::sring_needs_notify). A consumer
// about to sleep sets event = cons + 1 and then re-checks (final_check_*):
// either the producer sees the new event value, or the consumer sees the new
// producer index. Both sides put a full fence between their store and their
// load, which is the Dekker pattern that makes this race-free.

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <abi/io_ring.hpp>
#include <ring/shared_memory.hpp>

namespace ring {

template <typename Req, typename Rsp>
union RingEntry {
  Req req;
  Rsp rsp;
};

// The shared page. Never constructed: it is a view (reinterpret_cast) of
// memory shared with the peer, which may contain anything.
template <typename Req, typename Rsp>
struct SharedRing {
  static_assert(std::is_trivially_copyable_v<Req> && std::is_trivially_copyable_v<Rsp>,
                "ring entries are copied as bytes to and from shared memory");
  using Entry = RingEntry<Req, Rsp>;
  static_assert(alignof(Entry) <= abi::kSringEntriesOffset);

  abi::SringHeader hdr;

  // Largest power of two number of entries that fits in `bytes` (0 if none).
  static constexpr unsigned entries(std::size_t bytes) {
    std::size_t n = abi::sring_entries(bytes, sizeof(Entry));
    // Indices are 32-bit: a ring of 2^31 entries or more cannot tell full from
    // empty with differences, so cap well below that.
    constexpr std::size_t kMax = std::size_t{1} << 30;
    return static_cast<unsigned>(n > kMax ? kMax : n);
  }

  Entry* slots() {
    return reinterpret_cast<Entry*>(reinterpret_cast<unsigned char*>(this) + abi::kSringEntriesOffset);
  }
};

// ---------------------------------------------------------------------------
// Front end: pushes requests, takes responses.
//
// The front end is also careful with what the back end writes (a response
// producer index is only believed if it does not claim responses to requests
// never pushed), but its main job is flow control: it never has more than P
// requests outstanding, so it never overwrites a slot the back end still owns.
//
// Both FrontRing and BackRing are cache-line aligned: each end writes its
// private indices on every message, and two ends placed next to each other
// (typical in tests, benchmarks and loopback setups) would otherwise share a
// line and ping-pong it between CPUs (measured: about half the throughput).
template <typename Req, typename Rsp, typename Shm = DirectSharedMemory>
class alignas(64) FrontRing {
 public:
  using Shared = SharedRing<Req, Rsp>;

  // SHARED_RING_INIT + FRONT_RING_ATTACH: initialises the shared header
  // (only the front end does that) with both producer indices at `start` and
  // both event indices at start + 1, then attaches. False if no entry fits.
  bool init(void* page, std::size_t bytes, RingIdx start = 0) {
    unsigned n = Shared::entries(bytes);
    if (page == nullptr || n == 0) return false;
    auto* s = static_cast<Shared*>(page);
    Shm::store_relaxed(&s->hdr.req_prod, start);
    Shm::store_relaxed(&s->hdr.rsp_prod, start);
    Shm::store_relaxed(&s->hdr.req_event, start + 1);
    Shm::store_relaxed(&s->hdr.rsp_event, start + 1);
    for (auto& b : s->hdr.pad) b = 0;
    return attach(page, bytes, start);
  }

  // FRONT_RING_ATTACH: attaches to an already initialised ring whose indices
  // are all at `start` (no request outstanding). Does not touch the page.
  bool attach(void* page, std::size_t bytes, RingIdx start = 0) {
    unsigned n = Shared::entries(bytes);
    if (page == nullptr || n == 0) return false;
    sring_ = static_cast<Shared*>(page);
    slots_ = sring_->slots();
    size_ = n;
    req_prod_pvt_ = req_prod_pushed_ = start;
    rsp_cons_ = rsp_prod_seen_ = start;
    broken_ = false;
    return true;
  }

  unsigned size() const { return size_; }
  // Set when the back end published an impossible rsp_prod; the front end
  // then takes no more responses (the connection should be torn down).
  bool broken() const { return broken_; }

  RingIdx req_prod_pvt() const { return req_prod_pvt_; }
  RingIdx rsp_cons() const { return rsp_cons_; }

  // RING_FREE_REQUESTS / RING_FULL. Invariant: req_prod_pvt - rsp_cons <= P.
  unsigned free_requests() const { return size_ - (req_prod_pvt_ - rsp_cons_); }
  bool full() const { return free_requests() == 0; }

  // Claims the next request slot for the caller to fill in place, or nullptr
  // if the ring is full (or broken). The back end sees it after push_*.
  Req* next_request() {
    if (broken_ || full()) return nullptr;
    Req* slot = &slots_[req_prod_pvt_ & (size_ - 1)].req;
    ++req_prod_pvt_;
    return slot;
  }

  // Copies r into the next request slot; false if the ring is full.
  bool push_request(const Req& r) {
    Req* slot = next_request();
    if (slot == nullptr) return false;
    Shm::copy_out(slot, r);
    return true;
  }

  // RING_PUSH_REQUESTS: the release store orders the slot writes before the
  // index (Xen's wmb()).
  void push_requests() {
    Shm::store_release(&sring_->hdr.req_prod, req_prod_pvt_);
    req_prod_pushed_ = req_prod_pvt_;
  }

  // RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: true iff the back end asked to be
  // told about an index in (old, new], old being what we last published.
  bool push_requests_and_check_notify() {
    RingIdx old_idx = req_prod_pushed_;
    RingIdx new_idx = req_prod_pvt_;
    push_requests();
    Shm::full_fence();  // back end sees the new req_prod before we read req_event
    RingIdx event = Shm::load_relaxed(&sring_->hdr.req_event);
    return abi::sring_needs_notify(event, old_idx, new_idx);
  }

  // Number of responses published and not yet taken (0 once broken). Reads
  // rsp_prod (acquire) and validates it: the back end cannot have answered
  // more requests than we pushed, i.e. rsp_prod must lie in
  // [rsp_prod_seen, req_prod_pushed]; otherwise the ring is broken.
  unsigned responses_pending() {
    if (broken_) return 0;
    refresh_rsp_prod();
    return broken_ ? 0 : rsp_prod_seen_ - rsp_cons_;
  }

  // Copies the next response out of the ring (once) into `out` and frees its
  // slot for a new request. False if there is none (or the ring is broken).
  // rsp_prod is re-read only when the responses seen before are all taken.
  bool take_response(Rsp& out) {
    if (broken_) return false;
    if (rsp_cons_ == rsp_prod_seen_) {
      refresh_rsp_prod();
      if (broken_ || rsp_cons_ == rsp_prod_seen_) return false;
    }
    Shm::copy_in(out, &slots_[rsp_cons_ & (size_ - 1)].rsp);
    ++rsp_cons_;
    return true;
  }

  // RING_FINAL_CHECK_FOR_RESPONSES: call before waiting for an event. True
  // if responses are pending (do not sleep). Otherwise asks for an event on
  // the very next response (rsp_event = rsp_cons + 1) and re-checks, so a
  // response pushed concurrently is either seen here or notified.
  bool final_check_for_responses() {
    if (responses_pending() != 0) return true;
    if (broken_) return false;
    Shm::store_relaxed(&sring_->hdr.rsp_event, rsp_cons_ + 1);
    Shm::full_fence();  // publish rsp_event before re-reading rsp_prod
    return responses_pending() != 0;
  }

 private:
  void refresh_rsp_prod() {
    RingIdx prod = Shm::load_acquire(&sring_->hdr.rsp_prod);
    RingIdx seen = rsp_prod_seen_ - rsp_cons_;
    RingIdx claimed = prod - rsp_cons_;
    RingIdx outstanding = req_prod_pushed_ - rsp_cons_;  // <= P by flow control
    if (claimed > outstanding || claimed < seen) {
      broken_ = true;
      return;
    }
    rsp_prod_seen_ = prod;
  }

  Shared* sring_ = nullptr;
  RingEntry<Req, Rsp>* slots_ = nullptr;
  unsigned size_ = 0;
  RingIdx req_prod_pvt_ = 0;     // next request slot to fill
  RingIdx req_prod_pushed_ = 0;  // last req_prod we published
  RingIdx rsp_cons_ = 0;         // next response to take
  RingIdx rsp_prod_seen_ = 0;    // validated rsp_prod: rsp_cons <= seen <= pushed
  bool broken_ = false;
};

// ---------------------------------------------------------------------------
// Back end: takes requests, pushes responses. Trusts nothing in the page.
//
// Private state and its invariants (all distances mod 2^32):
//   rsp_prod_pvt <= req_cons <= req_prod_seen
//   req_prod_seen - rsp_prod_pvt <= P
// so every slot index used is masked into [0, P) and the back end never
// consumes a request whose slot still has to carry an unsent response.
//
// req_prod is read once per batch: when the requests covered by the last
// value read (req_prod_seen) are all consumed. Each value read is validated
// before it is believed:
//   req_prod - req_cons >= req_prod_seen - req_cons     (it did not go back)
//   req_prod - rsp_prod_pvt <= P  (RING_REQUEST_PROD_OVERFLOW: no more
//                                  requests than free slots; this also
//                                  rejects a req_prod behind req_cons)
// and a failure marks the ring broken: the back end then stops consuming
// (take_request/unconsumed/final_check report nothing) and the owner should
// report it and disconnect. Hence req_cons never passes the req_prod value
// read at the start of the batch, and one batch is at most P requests: the
// work done per call is bounded whatever the front end writes.
//
// Each request is copied exactly once out of its slot into private memory
// (Shm::copy_in); the caller only ever looks at the private copy.
template <typename Req, typename Rsp, typename Shm = DirectSharedMemory>
class alignas(64) BackRing {
 public:
  using Shared = SharedRing<Req, Rsp>;

  // BACK_RING_ATTACH: attaches to a ring the front end initialised, with
  // indices at `start` (agreed out of band: the back end does not believe
  // the page). Does not touch the page. False if no entry fits.
  bool init(void* page, std::size_t bytes, RingIdx start = 0) {
    unsigned n = Shared::entries(bytes);
    if (page == nullptr || n == 0) return false;
    sring_ = static_cast<Shared*>(page);
    slots_ = sring_->slots();
    size_ = n;
    req_cons_ = req_prod_seen_ = start;
    rsp_prod_pvt_ = rsp_prod_pushed_ = start;
    broken_ = false;
    return true;
  }

  unsigned size() const { return size_; }
  bool broken() const { return broken_; }
  RingIdx req_cons() const { return req_cons_; }
  RingIdx rsp_prod_pvt() const { return rsp_prod_pvt_; }

  // Requests published and not yet taken, re-reading and validating req_prod
  // if the current batch is exhausted. Never more than P - (req_cons -
  // rsp_prod_pvt) <= P; 0 once broken.
  unsigned unconsumed() {
    if (broken_) return 0;
    if (req_cons_ == req_prod_seen_) refresh_req_prod();
    return broken_ ? 0 : req_prod_seen_ - req_cons_;
  }

  // Copies the next request into `out` (each byte of the slot read once).
  // False if none is available or the ring is broken.
  bool take_request(Req& out) {
    if (broken_) return false;
    if (req_cons_ == req_prod_seen_) {
      refresh_req_prod();
      if (broken_ || req_cons_ == req_prod_seen_) return false;
    }
    Shm::copy_in(out, &slots_[req_cons_ & (size_ - 1)].req);
    ++req_cons_;
    return true;
  }

  // Writes a response into the next response slot (that of the oldest
  // request not yet answered). False if every taken request is already
  // answered: a response without a request would overwrite a slot the front
  // end owns.
  bool push_response(const Rsp& r) {
    if (rsp_prod_pvt_ == req_cons_) return false;
    Shm::copy_out(&slots_[rsp_prod_pvt_ & (size_ - 1)].rsp, r);
    ++rsp_prod_pvt_;
    return true;
  }

  // RING_PUSH_RESPONSES (release: responses before the index).
  void push_responses() {
    Shm::store_release(&sring_->hdr.rsp_prod, rsp_prod_pvt_);
    rsp_prod_pushed_ = rsp_prod_pvt_;
  }

  // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: true iff the front end asked for
  // an event at an index in (old, new]. rsp_event is the front end's to
  // write: any value only changes whether we notify.
  bool push_responses_and_check_notify() {
    RingIdx old_idx = rsp_prod_pushed_;
    RingIdx new_idx = rsp_prod_pvt_;
    push_responses();
    Shm::full_fence();  // front end sees rsp_prod before we read rsp_event
    RingIdx event = Shm::load_relaxed(&sring_->hdr.rsp_event);
    return abi::sring_needs_notify(event, old_idx, new_idx);
  }

  // RING_FINAL_CHECK_FOR_REQUESTS: true if requests are pending (do not
  // sleep); otherwise sets req_event = req_cons + 1 and re-checks. False
  // when broken (check broken()).
  bool final_check_for_requests() {
    if (unconsumed() != 0) return true;
    if (broken_) return false;
    Shm::store_relaxed(&sring_->hdr.req_event, req_cons_ + 1);
    Shm::full_fence();  // publish req_event before re-reading req_prod
    return unconsumed() != 0;
  }

 private:
  // Reads req_prod once and validates it against private state only.
  void refresh_req_prod() {
    RingIdx prod = Shm::load_acquire(&sring_->hdr.req_prod);
    RingIdx avail = prod - req_cons_;
    RingIdx seen = req_prod_seen_ - req_cons_;
    // Slots not holding an unsent response: P - (req_cons - rsp_prod_pvt).
    RingIdx room = size_ - (req_cons_ - rsp_prod_pvt_);
    if (avail > room || avail < seen) {
      broken_ = true;
      return;
    }
    req_prod_seen_ = prod;
  }

  Shared* sring_ = nullptr;
  RingEntry<Req, Rsp>* slots_ = nullptr;
  unsigned size_ = 0;
  RingIdx req_cons_ = 0;         // next request to take
  RingIdx req_prod_seen_ = 0;    // validated req_prod: the end of the batch
  RingIdx rsp_prod_pvt_ = 0;     // next response slot to fill
  RingIdx rsp_prod_pushed_ = 0;  // last rsp_prod we published
  bool broken_ = false;
};

}  // namespace ring
