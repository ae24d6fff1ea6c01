#pragma once
// The store side of Xen's XenStore ring (io/xs_wire.h): one page shared with
// a client domain, struct xenstore_domain_interface, with a 1 KiB request
// ring the client produces into and a 1 KiB response ring the store produces
// into. Messages ({type, req_id, tx_id, len} + len <= 4096 payload bytes)
// are byte streams over the rings: one may wrap, span several passes, and be
// larger than the ring itself.
//
// A Connection owns the store's private state for one ring: its own copies
// of the indices it produces and consumes (the ones on the page are only
// written, never trusted), the request being assembled, and the messages
// waiting for room on the response ring. Every pass (serve) reads the peer's
// indices once, bounds them, copies each request byte out exactly once, and
// only ever writes response bytes into space the client has released. The
// peer can write anything at any time: the worst it can do is break its own
// connection (logged once by the caller, never served again), never another.
//
// Requests go to Engine::handle between begin_request and end_request;
// end_request comes when the reply is completely on the response ring, so a
// client that stops taking replies runs into the outstanding-request quota
// (20), and then into the bounded output queue, and stops being read. Watch
// events (Engine::next_event) are taken only when the queue has room.
//
// A RingServer serves only connections that can make progress: those whose
// event channel fired, those a watch event was queued for, new ones, and
// those that stopped at the per-pass quota (kPassTurns) with work left. They
// wait on one ready list, served round robin one pass each, so a domain
// that floods the store gets one pass per round like everybody else, and a
// wakeup costs the connections that fired, not the number attached.
// Connections are found by domain id and by port in O(1).
//
// Portable and freestanding (no heap): the caller gives the RingServer its
// pool of Connections (the store domain sizes it from its memory); the
// hosted tests drive it over rings in plain memory.

#include <xenstore/engine.hpp>

#include <abi/xs_wire.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

using abi::XenstoreRingIdx;

// The largest message: header and a full payload.
inline constexpr size_t kMsgMax = sizeof(abi::XsdSockmsg) + kPayloadMax;
// Output queued per connection beyond what the response ring holds: room for
// one largest reply and then some, so small replies can pile up to the
// outstanding-request quota while large ones are taken one or two at a time.
inline constexpr size_t kConnOutBytes = 8192;
inline constexpr size_t kConnOutMsgs = 64;  // messages in that queue, at most
// Ports the port index covers: every port of Xen's 2-level event ABI.
inline constexpr size_t kMaxPorts = 4096;
// Turns (a request handled or a watch event queued) a connection gets per
// pass; one with more left waits for its next turn at the end of the ready
// list.
inline constexpr uint32_t kPassTurns = 8;

static_assert((kConnOutBytes & (kConnOutBytes - 1)) == 0, "the output queue is indexed by masking");
static_assert((kConnOutMsgs & (kConnOutMsgs - 1)) == 0, "the message queue is indexed by masking");
static_assert(kConnOutBytes >= kMsgMax + 256, "one largest message and small ones beside it");

// Why a connection was given up (the caller logs it once).
enum class BreakReason : uint8_t {
    none,
    request_index,   // req_prod more than a ring ahead of what the store consumed
    response_index,  // rsp_cons claims bytes the store never produced
    oversized,       // a request header with len > 4096
};
const char* break_reason_name(BreakReason r);

// What a pass did.
struct ServeResult {
    bool notify;    // indices on the page moved: the caller kicks the client's port
    bool progress;  // anything moved (bytes in or out, a request handled, an event queued)
    bool broke;     // the connection broke during this pass (reported once)
    bool again;     // stopped at the pass's quota of turns: it may have more to do
};

class Connection {
public:
    // Starts serving `ring` for `dom`: the private indices start from the
    // page's (zero on a fresh page), a request half-written before is taken
    // up from where it is. Advertises the error field in server_features.
    void attach(DomId dom, abi::XenstoreDomainInterface* ring, uint32_t port);
    // Forgets the ring (the caller unmaps it afterwards). Replies still
    // queued are dropped and their requests ended on `e`.
    void detach(Engine& e);

    bool attached() const { return ring_ != nullptr; }
    bool broken() const { return reason_ != BreakReason::none; }
    BreakReason break_reason() const { return reason_; }
    // The offending value (the index or the length) when it broke.
    uint32_t break_detail() const { return detail_; }
    DomId dom() const { return dom_; }
    uint32_t port() const { return port_; }
    abi::XenstoreDomainInterface* ring() const { return ring_; }

    // Replies queued and not yet completely on the ring (== requests begun and not ended).
    uint32_t outstanding() const { return outstanding_; }
    // Bytes queued for the response ring.
    uint32_t queued_bytes() const { return out_tail_ - out_head_; }
    // The store's own indices: responses produced, requests consumed.
    XenstoreRingIdx produced() const { return rsp_prod_; }
    XenstoreRingIdx consumed() const { return req_cons_; }
    // Bytes of the request being assembled.
    uint32_t partial_request_bytes() const { return in_have_; }

    // One pass of at most `turns` turns; `scratch` holds each reply while it is built.
    ServeResult serve(Engine& e, Reply& scratch, uint32_t turns = kPassTurns);

private:
    friend class RingServer;

    void fail(Engine& e, BreakReason why, uint32_t detail);
    void drop_queue(Engine& e);
    bool take_request_bytes(XenstoreRingIdx prod, bool& progress);
    bool can_queue() const;
    void enqueue(const Reply& r, bool is_reply);
    // Moves queued bytes onto the response ring while it has room; ends the
    // request of every reply that is now completely out.
    void flush(Engine& e, XenstoreRingIdx rsp_cons, bool& progress);

    abi::XenstoreDomainInterface* ring_ = nullptr;
    DomId dom_ = kNoDom;
    uint32_t port_ = 0;
    BreakReason reason_ = BreakReason::none;
    uint32_t detail_ = 0;

    XenstoreRingIdx req_cons_ = 0;  // private: how far the store consumed requests
    XenstoreRingIdx rsp_prod_ = 0;  // private: how far the store produced responses

    // The request being assembled: header, then payload.
    uint32_t in_have_ = 0;
    uint32_t in_len_ = 0;  // payload length, once the header is in
    alignas(8) uint8_t in_[kMsgMax];

    // Output queue: bytes [out_head_, out_tail_) (free-running, masked), and
    // the messages in it, oldest first, each with where it ends.
    struct Queued {
        uint32_t end;
        bool reply;  // a reply (its request ends when it is out), or an event
    };
    uint32_t out_head_ = 0, out_tail_ = 0;
    uint32_t msg_head_ = 0, msg_tail_ = 0;
    uint32_t outstanding_ = 0;
    // The RingServer's: its ready list (indices into the pool), and whether
    // it is on it.
    uint32_t ready_prev_ = 0, ready_next_ = 0;
    bool ready_ = false;
    Queued msgs_[kConnOutMsgs];
    uint8_t out_[kConnOutBytes];
};

// The connections of a store: a pool of Connections (the caller's), the
// indices by domain id and by port, the ready list, and the scratch reply
// they share.
class RingServer {
public:
    // `pool` holds `capacity` connections (at most 65,534), one for each
    // domain served at once; the RingServer owns them from now on.
    RingServer(Engine& e, Connection* pool, size_t capacity);
    RingServer(const RingServer&) = delete;
    RingServer& operator=(const RingServer&) = delete;

    Engine& engine() { return engine_; }

    // The connection of dom, or of the port, or nullptr.
    Connection* find(DomId dom) { return dom < kDomIdLimit && by_dom_[dom] ? &pool_[by_dom_[dom] - 1] : nullptr; }
    Connection* by_port(uint32_t port) {
        return port < kMaxPorts && by_port_[port] ? &pool_[by_port_[port] - 1] : nullptr;
    }
    // Attaches a new connection (or re-attaches dom's) and makes it ready;
    // nullptr if the pool is empty, the id is no domain's or the port is
    // outside the index.
    Connection* attach(DomId dom, abi::XenstoreDomainInterface* ring, uint32_t port);
    // Detaches dom's connection, if any (its slot goes back to the pool).
    void detach(DomId dom);
    // Changes c's port (0: none), in the port index too.
    void set_port(Connection& c, uint32_t port);
    size_t connections() const { return attached_; }
    size_t capacity() const { return capacity_; }
    // A connection's place in the pool.
    size_t index_of(const Connection& c) const { return size_t(&c - pool_); }
    Connection& at(size_t i) { return pool_[i]; }

    // c has something to do: it joins the end of the ready list (if attached
    // and not on it already).
    void make_ready(Connection& c);
    // `port` fired: its connection, if any, is ready.
    void port_fired(uint32_t port) {
        if (Connection* c = by_port(port)) make_ready(*c);
    }
    size_t ready() const { return ready_count_; }

    // One pass over one connection (it stays where it is on the ready list).
    ServeResult serve(Connection& c) { return c.serve(engine_, scratch_); }

    // One round: one pass for each connection ready when it starts, in
    // order; one that stopped at its quota goes back to the end. Calls
    // notify(ctx, conn) after each pass that moved conn's indices on the
    // page, and broke(ctx, conn) once when conn breaks (either may be null).
    // Returns whether anything moved.
    bool serve_round(void* ctx, void (*notify)(void* ctx, Connection& c), void (*broke)(void* ctx, Connection& c));
    // Rounds until the ready list is empty.
    bool serve_ready(void* ctx, void (*notify)(void* ctx, Connection& c), void (*broke)(void* ctx, Connection& c));
    // Every attached connection made ready, then serve_ready: for tests and
    // callers that do not know which ports fired (it costs every connection).
    bool serve_all(void* ctx, void (*notify)(void* ctx, Connection& c), void (*broke)(void* ctx, Connection& c));

    // Passes run since construction (the tests count them: a wakeup costs
    // the connections that had something to do).
    uint64_t passes() const { return passes_; }

private:
    static constexpr uint32_t kNone = 0xffffffffu;
    void unready(Connection& c);
    static void on_queued(void* self, DomId dom);

    Engine& engine_;
    Reply scratch_;
    Connection* pool_;
    size_t capacity_;
    size_t attached_ = 0;
    uint32_t free_;                      // unattached connections, through ready_next_
    uint32_t ready_head_ = kNone, ready_tail_ = kNone;
    size_t ready_count_ = 0;
    uint64_t passes_ = 0;
    uint16_t by_dom_[kDomIdLimit] = {};  // pool index + 1, 0: none
    uint16_t by_port_[kMaxPorts] = {};   // pool index + 1, 0: none
};

// A RingServer with a pool of N connections of its own, for hosted callers
// (tests, benchmarks, fuzzers); the store domain sizes its pool from its
// memory instead. The pool (the first base) is built before the server
// threads its free list through it.
template <size_t N>
struct ConnectionPool {
    Connection conns[N];
};
template <size_t N>
class PooledRingServer : private ConnectionPool<N>, public RingServer {
public:
    explicit PooledRingServer(Engine& e) : ConnectionPool<N>(), RingServer(e, this->conns, N) {}
};

}  // namespace xs
