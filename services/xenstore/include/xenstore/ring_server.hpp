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
// Portable and freestanding (no heap): the store domain keeps a RingServer in
// static storage; the hosted tests drive it over rings in plain memory.

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
// Connections a RingServer holds at once (the store domain maps each ring
// into its 64-page foreign window).
inline constexpr size_t kMaxConnections = 128;

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
    void set_port(uint32_t p) { port_ = p; }
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

    // One pass; `scratch` holds each reply while it is built.
    ServeResult serve(Engine& e, Reply& scratch);

private:
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
    Queued msgs_[kConnOutMsgs];
    uint8_t out_[kConnOutBytes];
};

// The connections of a store: a fixed table of Connections and the scratch
// reply they share. serve_all runs passes until nothing moves.
class RingServer {
public:
    explicit RingServer(Engine& e) : engine_(e) {}
    RingServer(const RingServer&) = delete;
    RingServer& operator=(const RingServer&) = delete;

    Engine& engine() { return engine_; }

    // The connection of dom, or nullptr.
    Connection* find(DomId dom);
    // Attaches a new connection (or re-attaches dom's); nullptr if the table is full.
    Connection* attach(DomId dom, abi::XenstoreDomainInterface* ring, uint32_t port);
    // Detaches dom's connection, if any (its slot is free again).
    void detach(DomId dom);
    size_t connections() const;
    Connection& at(size_t i) { return conns_[i]; }
    static constexpr size_t capacity() { return kMaxConnections; }
    // Connections [used(), capacity()) were never attached: loops stop there.
    size_t used() const { return used_; }

    // One pass over one connection.
    ServeResult serve(Connection& c) { return c.serve(engine_, scratch_); }

    // Serves every attached connection, round after round, until a round
    // moves nothing. Calls notify(ctx, conn) after each pass that moved
    // conn's indices on the page, and broke(ctx, conn) once when conn breaks
    // (either may be null). Returns whether anything moved.
    bool serve_all(void* ctx, void (*notify)(void* ctx, Connection& c), void (*broke)(void* ctx, Connection& c));

private:
    Engine& engine_;
    Reply scratch_;
    Connection conns_[kMaxConnections];
    size_t used_ = 0;
};

}  // namespace xs
