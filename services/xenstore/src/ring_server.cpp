#include <xenstore/ring_server.hpp>

namespace xs {

namespace {

constexpr uint32_t kRing = abi::kXenstoreRingSize;
constexpr uint32_t kHdr = sizeof(abi::XsdSockmsg);
constexpr uint32_t kOutMask = kConnOutBytes - 1;
constexpr uint32_t kMsgMask = kConnOutMsgs - 1;

// Everything on the page is read and written with single atomic accesses:
// the peer may change it at any moment, and each byte is read once.
XenstoreRingIdx load_index(const XenstoreRingIdx* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store_index(XenstoreRingIdx* p, XenstoreRingIdx v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
uint8_t load_byte(const char* p) { return static_cast<uint8_t>(__atomic_load_n(p, __ATOMIC_RELAXED)); }
void store_byte(char* p, uint8_t v) { __atomic_store_n(p, static_cast<char>(v), __ATOMIC_RELAXED); }

uint32_t load32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
           static_cast<uint32_t>(p[3]) << 24;
}

uint32_t min32(uint32_t a, uint32_t b) { return a < b ? a : b; }

}  // namespace

const char* break_reason_name(BreakReason r) {
    switch (r) {
    case BreakReason::none: return "none";
    case BreakReason::request_index: return "request producer index out of range";
    case BreakReason::response_index: return "response consumer index out of range";
    case BreakReason::oversized: return "request longer than 4096 bytes";
    }
    return "?";
}

void Connection::attach(DomId dom, abi::XenstoreDomainInterface* ring, uint32_t port) {
    ring_ = ring;
    dom_ = dom;
    port_ = port;
    reason_ = BreakReason::none;
    detail_ = 0;
    req_cons_ = load_index(&ring->req_cons);
    rsp_prod_ = load_index(&ring->rsp_prod);
    in_have_ = in_len_ = 0;
    out_head_ = out_tail_ = 0;
    msg_head_ = msg_tail_ = 0;
    outstanding_ = 0;
    __atomic_store_n(&ring->error, abi::kXenstoreErrorNone, __ATOMIC_RELAXED);
    __atomic_store_n(&ring->server_features, abi::kXenstoreServerFeatureError, __ATOMIC_RELEASE);
}

void Connection::drop_queue(Engine& e) {
    for (; msg_head_ != msg_tail_; ++msg_head_)
        if (msgs_[msg_head_ & kMsgMask].reply) e.end_request(dom_);
    outstanding_ = 0;
    out_head_ = out_tail_ = 0;
    msg_head_ = msg_tail_ = 0;
}

void Connection::detach(Engine& e) {
    if (ring_) drop_queue(e);
    ring_ = nullptr;
    dom_ = kNoDom;
    port_ = 0;
    reason_ = BreakReason::none;
    in_have_ = in_len_ = 0;
}

void Connection::fail(Engine& e, BreakReason why, uint32_t detail) {
    reason_ = why;
    detail_ = detail;
    drop_queue(e);
    in_have_ = in_len_ = 0;
    // Tell the client, in the field Xen added for it (server_features says it is valid).
    uint32_t code = why == BreakReason::oversized ? abi::kXenstoreErrorProto : abi::kXenstoreErrorRingidx;
    __atomic_store_n(&ring_->error, code, __ATOMIC_RELEASE);
}

bool Connection::take_request_bytes(XenstoreRingIdx prod, bool& moved) {
    uint32_t avail = prod - req_cons_;
    while (avail) {
        uint32_t want = in_have_ < kHdr ? kHdr - in_have_ : kHdr + in_len_ - in_have_;
        if (want == 0) break;  // a complete request waits to be handled
        uint32_t n = min32(want, avail);
        for (uint32_t i = 0; i < n; ++i)
            in_[in_have_ + i] = load_byte(&ring_->req[abi::xenstore_ring_slot(req_cons_ + i)]);
        req_cons_ += n;
        in_have_ += n;
        avail -= n;
        moved = true;
        if (in_have_ == kHdr) {
            uint32_t len = load32(in_ + 12);
            if (len > kPayloadMax) {
                detail_ = len;
                return false;
            }
            in_len_ = len;
        }
    }
    return true;
}

bool Connection::can_queue() const {
    return kConnOutBytes - (out_tail_ - out_head_) >= kMsgMax && msg_tail_ - msg_head_ < kConnOutMsgs;
}

void Connection::enqueue(const Reply& r, bool is_reply) {
    const uint8_t* b = r.bytes();
    uint32_t n = static_cast<uint32_t>(r.size());
    for (uint32_t i = 0; i < n; ++i) out_[(out_tail_ + i) & kOutMask] = b[i];
    out_tail_ += n;
    msgs_[msg_tail_ & kMsgMask] = Queued{out_tail_, is_reply};
    msg_tail_++;
    if (is_reply) outstanding_++;
}

void Connection::flush(Engine& e, XenstoreRingIdx rsp_cons, bool& moved) {
    // rsp_prod_ - rsp_cons <= kRing was checked when rsp_cons was read.
    uint32_t space = kRing - (rsp_prod_ - rsp_cons);
    uint32_t n = min32(space, out_tail_ - out_head_);
    if (n == 0) return;
    for (uint32_t i = 0; i < n; ++i)
        store_byte(&ring_->rsp[abi::xenstore_ring_slot(rsp_prod_ + i)], out_[(out_head_ + i) & kOutMask]);
    rsp_prod_ += n;
    out_head_ += n;
    moved = true;
    while (msg_head_ != msg_tail_ && static_cast<int32_t>(out_head_ - msgs_[msg_head_ & kMsgMask].end) >= 0) {
        if (msgs_[msg_head_ & kMsgMask].reply) {
            outstanding_--;
            e.end_request(dom_);
        }
        msg_head_++;
    }
}

ServeResult Connection::serve(Engine& e, Reply& scratch, uint32_t turns) {
    ServeResult res{false, false, false, false};
    if (!ring_ || broken()) return res;

    // The peer's indices, once for the whole pass.
    XenstoreRingIdx req_prod = load_index(&ring_->req_prod);
    XenstoreRingIdx rsp_cons = load_index(&ring_->rsp_cons);
    if (req_prod - req_cons_ > kRing) {
        fail(e, BreakReason::request_index, req_prod);
        return ServeResult{true, true, true, false};
    }
    if (rsp_prod_ - rsp_cons > kRing) {
        fail(e, BreakReason::response_index, rsp_cons);
        return ServeResult{true, true, true, false};
    }

    const XenstoreRingIdx req_cons0 = req_cons_, rsp_prod0 = rsp_prod_;
    bool progress = false;
    flush(e, rsp_cons, progress);
    uint32_t turn = 0;
    for (;;) {
        bool moved = false, turned = false;
        if (!take_request_bytes(req_prod, moved)) {
            fail(e, BreakReason::oversized, detail_);
            store_index(&ring_->req_cons, req_cons_);
            return ServeResult{true, true, true, false};
        }
        bool complete = in_have_ >= kHdr && in_have_ == kHdr + in_len_;
        if (complete && can_queue()) {
            Status s = e.begin_request(dom_);
            if (s) {
                e.handle(dom_, in_, in_have_, scratch);
                enqueue(scratch, true);
                in_have_ = in_len_ = 0;
                moved = turned = true;
            } else if (s.error() != Error::quota) {
                // The engine cannot track the domain: answer without counting it.
                Engine::error_reply(in_, in_have_, s.error(), scratch);
                enqueue(scratch, false);
                in_have_ = in_len_ = 0;
                moved = turned = true;
            }
            // At the quota the request stays where it is until replies go out.
        }
        if (can_queue() && e.next_event(dom_, scratch)) {
            enqueue(scratch, false);
            moved = turned = true;
        }
        flush(e, rsp_cons, moved);
        if (!moved) break;
        progress = true;
        // Its share of this round is used: the rest waits for its next turn.
        if (turned && ++turn >= turns) {
            res.again = true;
            break;
        }
    }

    if (req_cons_ != req_cons0) store_index(&ring_->req_cons, req_cons_);
    if (rsp_prod_ != rsp_prod0) store_index(&ring_->rsp_prod, rsp_prod_);
    res.notify = req_cons_ != req_cons0 || rsp_prod_ != rsp_prod0;
    res.progress = progress;
    return res;
}

RingServer::RingServer(Engine& e, Connection* pool, size_t capacity)
    : engine_(e), pool_(pool), capacity_(capacity < 0xffff ? capacity : 0xfffe) {
    free_ = kNone;
    for (size_t i = capacity_; i-- > 0;) {
        pool_[i].ready_next_ = free_;
        free_ = uint32_t(i);
    }
    engine_.set_queued_hook(this, on_queued);
}

void RingServer::on_queued(void* self, DomId dom) {
    auto* s = static_cast<RingServer*>(self);
    if (Connection* c = s->find(dom)) s->make_ready(*c);
}

Connection* RingServer::attach(DomId dom, abi::XenstoreDomainInterface* ring, uint32_t port) {
    if (dom >= kDomIdLimit || port >= kMaxPorts) return nullptr;
    Connection* c = find(dom);
    if (c) {
        set_port(*c, 0);
        unready(*c);
        c->detach(engine_);
    } else {
        if (free_ == kNone) return nullptr;
        c = &pool_[free_];
        free_ = c->ready_next_;
        by_dom_[dom] = uint16_t(index_of(*c) + 1);
        attached_++;
    }
    c->attach(dom, ring, 0);
    set_port(*c, port);
    // A new ring may hold requests written before it was attached.
    make_ready(*c);
    return c;
}

void RingServer::detach(DomId dom) {
    Connection* c = find(dom);
    if (!c) return;
    set_port(*c, 0);
    unready(*c);
    c->detach(engine_);
    by_dom_[dom] = 0;
    c->ready_next_ = free_;
    free_ = uint32_t(index_of(*c));
    attached_--;
}

void RingServer::set_port(Connection& c, uint32_t port) {
    if (c.port_ && c.port_ < kMaxPorts && by_port_[c.port_] == index_of(c) + 1) by_port_[c.port_] = 0;
    c.port_ = port < kMaxPorts ? port : 0;
    if (c.port_) by_port_[c.port_] = uint16_t(index_of(c) + 1);
}

void RingServer::make_ready(Connection& c) {
    if (c.ready_ || !c.attached()) return;
    uint32_t i = uint32_t(index_of(c));
    c.ready_ = true;
    c.ready_next_ = kNone;
    c.ready_prev_ = ready_tail_;
    if (ready_tail_ != kNone) pool_[ready_tail_].ready_next_ = i;
    else ready_head_ = i;
    ready_tail_ = i;
    ready_count_++;
}

void RingServer::unready(Connection& c) {
    if (!c.ready_) return;
    if (c.ready_prev_ != kNone) pool_[c.ready_prev_].ready_next_ = c.ready_next_;
    else ready_head_ = c.ready_next_;
    if (c.ready_next_ != kNone) pool_[c.ready_next_].ready_prev_ = c.ready_prev_;
    else ready_tail_ = c.ready_prev_;
    c.ready_ = false;
    ready_count_--;
}

bool RingServer::serve_round(void* ctx, void (*notify)(void*, Connection&), void (*broke)(void*, Connection&)) {
    bool moved = false;
    // Those ready now; whoever becomes ready meanwhile (a watch event, a
    // pass that stopped at its quota) waits for the next round.
    for (size_t n = ready_count_; n > 0 && ready_head_ != kNone; --n) {
        Connection& c = pool_[ready_head_];
        unready(c);
        ServeResult r = serve(c);
        passes_++;
        if (r.notify && notify) notify(ctx, c);
        if (r.broke && broke) broke(ctx, c);
        if (r.again && c.attached() && !c.broken()) make_ready(c);
        moved = moved || r.progress;
    }
    return moved;
}

bool RingServer::serve_ready(void* ctx, void (*notify)(void*, Connection&), void (*broke)(void*, Connection&)) {
    bool any = false;
    while (ready_count_ != 0) any = serve_round(ctx, notify, broke) || any;
    return any;
}

bool RingServer::serve_all(void* ctx, void (*notify)(void*, Connection&), void (*broke)(void*, Connection&)) {
    for (size_t i = 0; i < capacity_; ++i) make_ready(pool_[i]);
    return serve_ready(ctx, notify, broke);
}

}  // namespace xs
