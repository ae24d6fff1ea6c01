// The xenbus client (rt/xenbus.hpp). XsClient is portable (the hosted tests
// compile this file against the ring server); the xs_* functions and the
// domain's Io (sched_op poll on the store port) are the runtime's.

#include <rt/xenbus.hpp>

#include <base/number.hpp>

#if defined(MOAT_DOMAIN)
#include <abi/event_channel.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#endif

namespace rt {

using base::Err;

namespace {

constexpr uint32_t kRing = abi::kXenstoreRingSize;
constexpr uint32_t kHdr = sizeof(abi::XsdSockmsg);
constexpr uint32_t kEvMask = kXsEventQueueBytes - 1;
static_assert((kXsEventQueueBytes & kEvMask) == 0);

// The page is shared with the store: single atomic accesses only, each
// byte read once.
abi::XenstoreRingIdx load_index(const abi::XenstoreRingIdx* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store_index(abi::XenstoreRingIdx* p, abi::XenstoreRingIdx v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

struct Name {
    XsError e;
    const char* s;
};
constexpr Name kNames[] = {
    {XsError::inval, "EINVAL"}, {XsError::acces, "EACCES"},       {XsError::exist, "EEXIST"},
    {XsError::isdir, "EISDIR"}, {XsError::noent, "ENOENT"},       {XsError::nomem, "ENOMEM"},
    {XsError::nospc, "ENOSPC"}, {XsError::io, "EIO"},             {XsError::notempty, "ENOTEMPTY"},
    {XsError::nosys, "ENOSYS"}, {XsError::rofs, "EROFS"},         {XsError::busy, "EBUSY"},
    {XsError::again, "EAGAIN"}, {XsError::isconn, "EISCONN"},     {XsError::too_big, "E2BIG"},
    {XsError::perm, "EPERM"},   {XsError::quota, "EQUOTA"},       {XsError::range, "ERANGE"},
    {XsError::timedout, "ETIMEDOUT"}, {XsError::proto, "EPROTO"}, {XsError::notconn, "ENOTCONN"},
};

size_t cstr_len(const char* s) {
    size_t n = 0;
    while (s[n]) ++n;
    return n;
}

void copy_bytes(void* dst, const void* src, size_t n) {
    auto* d = static_cast<char*>(dst);
    auto* s = static_cast<const char*>(src);
    for (size_t i = 0; i < n; ++i) d[i] = s[i];
}

size_t format_u64(uint64_t v, char* out) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = char('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
    return n;
}

// The reply payload as one NUL-terminated string: its length without the NUL.
bool one_string(const char* buf, size_t len, size_t& n) {
    if (len == 0 || buf[len - 1] != '\0') return false;
    n = cstr_len(buf);
    return n == len - 1;
}

}  // namespace

const char* xs_error_name(XsError e) {
    for (const Name& n : kNames)
        if (n.e == e) return n.s;
    return "EINVAL";
}

XsError xs_error_from_name(const char* s, size_t n) {
    for (const Name& x : kNames) {
        size_t k = cstr_len(x.s);
        if (k != n) continue;
        size_t i = 0;
        while (i < n && s[i] == x.s[i]) ++i;
        if (i == n) return x.e;
    }
    return XsError::inval;
}

// ---------------------------------------------------------------------------
// XsClient: the wire.

void XsClient::init(abi::XenstoreDomainInterface* ring, Io io) {
    ring_ = ring;
    io_ = io;
    broken_ = false;
    req_prod_ = load_index(&ring->req_prod);
    rsp_cons_ = load_index(&ring->rsp_cons);
    msg_have_ = 0;
    ev_head_ = ev_tail_ = 0;
}

base::Err<XsError> XsClient::fail() {
    broken_ = true;
    return Err{XsError::proto};
}

bool XsClient::store_gave_up() const {
    return (__atomic_load_n(&ring_->server_features, __ATOMIC_RELAXED) & abi::kXenstoreServerFeatureError) &&
           __atomic_load_n(&ring_->error, __ATOMIC_ACQUIRE) != abi::kXenstoreErrorNone;
}

uint64_t XsClient::deadline_from_timeout() const {
    if (!timeout_ns_ || !io_.now) return 0;
    return io_.now(io_.ctx) + timeout_ns_;
}

bool XsClient::wait(uint64_t deadline) {
    if (!io_.now) deadline = 0;
    return io_.wait(io_.ctx, deadline);
}

bool XsClient::pump(bool& moved) {
    abi::XenstoreRingIdx prod = load_index(&ring_->rsp_prod);
    uint32_t avail = prod - rsp_cons_;
    if (avail > kRing) {
        broken_ = true;
        return false;
    }
    // The store stops writing when the ring is full; it must hear that we made room.
    bool was_full = avail == kRing;
    abi::XenstoreRingIdx cons0 = rsp_cons_;
    bool complete = false;
    while (!complete) {
        uint32_t want = msg_have_ < kHdr ? kHdr - msg_have_ : kHdr + msg_hdr_.len - msg_have_;
        if (want == 0) {
            complete = true;
            break;
        }
        if (avail == 0) break;
        uint32_t n = want < avail ? want : avail;
        char* dst = msg_have_ < kHdr ? reinterpret_cast<char*>(&msg_hdr_) + msg_have_ : msg_ + (msg_have_ - kHdr);
        for (uint32_t i = 0; i < n; ++i)
            dst[i] = __atomic_load_n(&ring_->rsp[abi::xenstore_ring_slot(rsp_cons_ + i)], __ATOMIC_RELAXED);
        rsp_cons_ += n;
        msg_have_ += n;
        avail -= n;
        if (msg_have_ == kHdr && msg_hdr_.len > abi::kXenstorePayloadMax) {
            broken_ = true;
            break;
        }
    }
    if (rsp_cons_ != cons0) {
        store_index(&ring_->rsp_cons, rsp_cons_);
        moved = true;
        if (was_full && io_.notify) io_.notify(io_.ctx);
    }
    return complete && !broken_;
}

void XsClient::queue_event() {
    uint32_t len = msg_hdr_.len;
    uint32_t need = 4 + len;
    if (kXsEventQueueBytes - (ev_tail_ - ev_head_) < need) {
        ++dropped_;
        return;
    }
    const uint8_t* l = reinterpret_cast<const uint8_t*>(&len);
    for (uint32_t i = 0; i < 4; ++i) events_[(ev_tail_ + i) & kEvMask] = l[i];
    for (uint32_t i = 0; i < len; ++i) events_[(ev_tail_ + 4 + i) & kEvMask] = uint8_t(msg_[i]);
    ev_tail_ += need;
}

bool XsClient::next_watch_event(XsWatchEvent& ev) {
    if (ev_head_ == ev_tail_ && connected()) {
        // Whatever arrived so far: outside a request, only events (or the
        // late reply of a request that timed out, which is dropped).
        bool moved = false;
        while (pump(moved)) {
            if (msg_hdr_.type == uint32_t(abi::XsType::watch_event)) queue_event();
            msg_have_ = 0;
        }
    }
    if (ev_head_ == ev_tail_) return false;
    uint32_t len = 0;
    uint8_t* l = reinterpret_cast<uint8_t*>(&len);
    for (uint32_t i = 0; i < 4; ++i) l[i] = events_[(ev_head_ + i) & kEvMask];
    for (uint32_t i = 0; i < len; ++i) ev.buf[i] = char(events_[(ev_head_ + 4 + i) & kEvMask]);
    ev_head_ += 4 + len;
    // "path\0token\0"; anything else still yields two terminated strings.
    ev.buf[len] = '\0';
    ev.buf[len + 1] = '\0';
    ev.path = ev.buf;
    size_t p = cstr_len(ev.buf);
    ev.token = p < len ? ev.buf + p + 1 : ev.buf + len;
    return true;
}

XsStatus XsClient::wait_watch_event(XsWatchEvent& ev, uint64_t deadline) {
    for (;;) {
        if (next_watch_event(ev)) return {};
        if (!ring_) return Err{XsError::notconn};
        if (broken_) return Err{XsError::proto};
        if (store_gave_up()) return fail();
        if (!wait(deadline)) {
            if (next_watch_event(ev)) return {};
            return Err{XsError::timedout};
        }
    }
}

XsResult<size_t> XsClient::request(abi::XsType type, uint32_t tx, const Part* parts, size_t nparts, char* buf,
                                   size_t cap) {
    if (!ring_) return Err{XsError::notconn};
    if (broken_) return Err{XsError::proto};
    size_t len = 0;
    for (size_t i = 0; i < nparts; ++i) len += parts[i].n;
    if (len > abi::kXenstorePayloadMax) return Err{XsError::too_big};
    uint32_t id = ++next_req_id_;
    uint64_t deadline = deadline_from_timeout();
    abi::XsdSockmsg hdr{uint32_t(type), id, tx, uint32_t(len)};

    // Send: the header, then the parts. A request that fits the ring goes
    // on whole once there is room for all of it, so giving up while waiting
    // for room (a store that does not answer yet) leaves the ring as it
    // was. A longer one goes on as room appears; given up halfway, it would
    // leave the ring mid-message: that breaks the connection.
    const size_t total = kHdr + len;
    size_t written = 0, part = 0, off = 0;
    const char* cur = reinterpret_cast<const char*>(&hdr);
    size_t cur_n = kHdr;
    for (;;) {
        abi::XenstoreRingIdx cons = load_index(&ring_->req_cons);
        uint32_t used = req_prod_ - cons;
        if (used > kRing) return fail();
        uint32_t space = kRing - used;
        size_t need = written == 0 && total <= kRing ? total : 1;
        if (space >= need) {
            while (space && cur) {
                size_t n = cur_n - off < space ? cur_n - off : space;
                for (size_t i = 0; i < n; ++i)
                    __atomic_store_n(&ring_->req[abi::xenstore_ring_slot(req_prod_ + uint32_t(i))], cur[off + i],
                                     __ATOMIC_RELAXED);
                req_prod_ += uint32_t(n);
                space -= uint32_t(n);
                off += n;
                written += n;
                while (cur && off == cur_n) {
                    off = 0;
                    if (part == nparts) {
                        cur = nullptr;
                    } else {
                        cur = static_cast<const char*>(parts[part].p);
                        cur_n = parts[part].n;
                        ++part;
                    }
                }
            }
            store_index(&ring_->req_prod, req_prod_);
            if (io_.notify) io_.notify(io_.ctx);
            if (!cur) break;
            continue;
        }
        // Replies and events may be what holds the store up: take them meanwhile.
        bool moved = false;
        while (pump(moved)) {
            if (msg_hdr_.type == uint32_t(abi::XsType::watch_event)) queue_event();
            msg_have_ = 0;  // a reply to an earlier request that timed out
        }
        if (broken_) return Err{XsError::proto};
        if (!moved && store_gave_up()) return fail();
        if (!moved && !wait(deadline)) {
            if (written) broken_ = true;
            return Err{XsError::timedout};
        }
    }

    // Receive: events are queued, stale replies dropped, until ours.
    for (;;) {
        bool moved = false;
        while (pump(moved)) {
            msg_have_ = 0;
            if (msg_hdr_.type == uint32_t(abi::XsType::watch_event)) {
                queue_event();
                continue;
            }
            if (msg_hdr_.req_id != id) continue;
            if (msg_hdr_.type == uint32_t(abi::XsType::error)) {
                size_t n = msg_hdr_.len;
                while (n && msg_[n - 1] == '\0') --n;
                return Err{xs_error_from_name(msg_, n)};
            }
            if (msg_hdr_.type != uint32_t(type)) return Err{XsError::proto};
            if (msg_hdr_.len > cap) return Err{XsError::range};
            copy_bytes(buf, msg_, msg_hdr_.len);
            return size_t(msg_hdr_.len);
        }
        if (broken_) return Err{XsError::proto};
        if (!moved && store_gave_up()) return fail();
        if (!moved && !wait(deadline)) return Err{XsError::timedout};
    }
}

// ---------------------------------------------------------------------------
// XsClient: the operations.

namespace {

// An "OK" reply.
XsStatus ok_reply(XsResult<size_t> r) {
    if (!r) return Err{r.error()};
    return {};
}

}  // namespace

XsResult<size_t> XsClient::read(const char* path, char* buf, size_t cap, uint32_t tx) {
    if (cap == 0) return Err{XsError::range};
    Part p[] = {{path, cstr_len(path) + 1}};
    auto r = request(abi::XsType::read, tx, p, 1, buf, cap - 1);
    if (!r) return Err{r.error()};
    buf[r.value()] = '\0';
    return r.value();
}

XsStatus XsClient::write_bytes(const char* path, const void* value, size_t len, uint32_t tx) {
    Part p[] = {{path, cstr_len(path) + 1}, {value, len}};
    char ok[8];
    return ok_reply(request(abi::XsType::write, tx, p, 2, ok, sizeof ok));
}

XsStatus XsClient::write(const char* path, const char* value, uint32_t tx) {
    return write_bytes(path, value, cstr_len(value), tx);
}

XsStatus XsClient::mkdir(const char* path, uint32_t tx) {
    Part p[] = {{path, cstr_len(path) + 1}};
    char ok[8];
    return ok_reply(request(abi::XsType::mkdir, tx, p, 1, ok, sizeof ok));
}

XsStatus XsClient::rm(const char* path, uint32_t tx) {
    Part p[] = {{path, cstr_len(path) + 1}};
    char ok[8];
    return ok_reply(request(abi::XsType::rm, tx, p, 1, ok, sizeof ok));
}

XsResult<size_t> XsClient::directory(const char* path, char* buf, size_t cap, uint32_t tx) {
    Part p[] = {{path, cstr_len(path) + 1}};
    return request(abi::XsType::directory, tx, p, 1, buf, cap);
}

XsResult<size_t> XsClient::get_perms(const char* path, XsPerm* out, size_t cap, uint32_t tx) {
    Part p[] = {{path, cstr_len(path) + 1}};
    char reply[abi::kXenstorePayloadMax];
    auto r = request(abi::XsType::get_perms, tx, p, 1, reply, sizeof reply);
    if (!r) return Err{r.error()};
    size_t len = r.value(), i = 0, n = 0;
    if (len == 0 || reply[len - 1] != '\0') return Err{XsError::proto};
    while (i < len) {
        size_t k = cstr_len(reply + i);
        char a = reply[i];
        uint32_t dom;
        if (k < 2 || (a != 'n' && a != 'r' && a != 'w' && a != 'b') || !base::parse_u32(reply + i + 1, k - 1, dom) ||
            dom > 0xffff)
            return Err{XsError::proto};
        if (n == cap) return Err{XsError::range};
        out[n++] = XsPerm{uint16_t(dom), a};
        i += k + 1;
    }
    return n;
}

XsStatus XsClient::set_perms(const char* path, const XsPerm* perms, size_t n, uint32_t tx) {
    // "path\0" then "<a><dom>\0" per entry, at most 7 bytes each.
    char payload[abi::kXenstorePayloadMax];
    size_t pn = cstr_len(path) + 1;
    if (n == 0 || pn + n * 7 > sizeof payload) return Err{XsError::too_big};
    copy_bytes(payload, path, pn);
    for (size_t i = 0; i < n; ++i) {
        payload[pn++] = perms[i].access;
        pn += format_u64(perms[i].dom, payload + pn);
        payload[pn++] = '\0';
    }
    Part p[] = {{payload, pn}};
    char ok[8];
    return ok_reply(request(abi::XsType::set_perms, tx, p, 1, ok, sizeof ok));
}

XsStatus XsClient::watch(const char* path, const char* token) {
    Part p[] = {{path, cstr_len(path) + 1}, {token, cstr_len(token) + 1}};
    char ok[8];
    return ok_reply(request(abi::XsType::watch, 0, p, 2, ok, sizeof ok));
}

XsStatus XsClient::unwatch(const char* path, const char* token) {
    Part p[] = {{path, cstr_len(path) + 1}, {token, cstr_len(token) + 1}};
    char ok[8];
    return ok_reply(request(abi::XsType::unwatch, 0, p, 2, ok, sizeof ok));
}

XsResult<uint32_t> XsClient::transaction_start() {
    Part p[] = {{"", 1}};
    char id[16];
    auto r = request(abi::XsType::transaction_start, 0, p, 1, id, sizeof id);
    if (!r) return Err{r.error()};
    size_t n;
    uint32_t v;
    if (!one_string(id, r.value(), n) || !base::parse_u32(id, n, v) || v == 0) return Err{XsError::proto};
    return v;
}

XsStatus XsClient::transaction_end(uint32_t tx, bool commit) {
    Part p[] = {{commit ? "T" : "F", 2}};
    char ok[8];
    return ok_reply(request(abi::XsType::transaction_end, tx, p, 1, ok, sizeof ok));
}

XsResult<size_t> XsClient::get_domain_path(uint16_t dom, char* buf, size_t cap) {
    char d[8];
    size_t dn = format_u64(dom, d);
    d[dn++] = '\0';
    Part p[] = {{d, dn}};
    auto r = request(abi::XsType::get_domain_path, 0, p, 1, buf, cap);
    if (!r) return Err{r.error()};
    size_t n;
    if (!one_string(buf, r.value(), n)) return Err{XsError::proto};
    return n;
}

XsStatus XsClient::introduce(uint16_t dom, uint64_t mfn, uint32_t port) {
    char s[48];
    size_t n = format_u64(dom, s);
    s[n++] = '\0';
    n += format_u64(mfn, s + n);
    s[n++] = '\0';
    n += format_u64(port, s + n);
    s[n++] = '\0';
    Part p[] = {{s, n}};
    char ok[8];
    return ok_reply(request(abi::XsType::introduce, 0, p, 1, ok, sizeof ok));
}

XsStatus XsClient::release(uint16_t dom) {
    char s[8];
    size_t n = format_u64(dom, s);
    s[n++] = '\0';
    Part p[] = {{s, n}};
    char ok[8];
    return ok_reply(request(abi::XsType::release, 0, p, 1, ok, sizeof ok));
}

XsResult<bool> XsClient::is_domain_introduced(uint16_t dom) {
    char s[8];
    size_t n = format_u64(dom, s);
    s[n++] = '\0';
    Part p[] = {{s, n}};
    char r[8];
    auto x = request(abi::XsType::is_domain_introduced, 0, p, 1, r, sizeof r);
    if (!x) return Err{x.error()};
    size_t k;
    if (!one_string(r, x.value(), k) || k != 1 || (r[0] != 'T' && r[0] != 'F')) return Err{XsError::proto};
    return r[0] == 'T';
}

XsStatus XsClient::reset_watches() {
    Part p[] = {{"", 1}};
    char ok[8];
    return ok_reply(request(abi::XsType::reset_watches, 0, p, 1, ok, sizeof ok));
}

const char* xs_next_name(const char* buf, size_t len, const char* cur) {
    size_t i = 0;
    if (cur) {
        i = size_t(cur - buf);
        while (i < len && buf[i]) ++i;
        ++i;
    }
    return i < len ? buf + i : nullptr;
}

// ---------------------------------------------------------------------------
// The domain's client.

#if defined(MOAT_DOMAIN)

namespace {

XsClient g_client;
uint32_t g_port;
// The store page (start_info's) is mapped over this page of the image.
alignas(4096) uint8_t g_store_page[4096];

void dom_notify(void*) { rt::notify(g_port); }

uint64_t dom_now(void*) { return now_ns(); }

// Takes the store port's event if it fired: from the runtime's set (the
// upcall handler, if events_init ran, moves pending ports there) or straight
// from shared info. Event delivery must be masked.
bool take_store_event() {
    abi::SharedInfo& si = shared_info();
    uint64_t bit = 1ull << (g_port % 64);
    bool fired = __atomic_fetch_and(&si.evtchn_pending[g_port / 64], ~bit, __ATOMIC_SEQ_CST) & bit;
    return take_port(g_port) || fired;
}

// Sleeps until the store port fires (or was pending already) or the deadline
// passes. Event delivery stays masked from the look at the port to the
// poll, so the upcall cannot take the event in between; poll returns at
// once if the port is pending.
bool dom_wait(void*, uint64_t deadline) {
    abi::VcpuInfo& vi = vcpu_info();
    uint8_t was = __atomic_exchange_n(&vi.evtchn_upcall_mask, 1, __ATOMIC_SEQ_CST);
    bool fired = take_store_event();
    if (!fired && !(deadline && now_ns() >= deadline)) {
        uint32_t port = g_port;
        abi::SchedPoll p{ptr(&port), 1, deadline};
        sched_op(abi::SchedOp::poll, &p);
        fired = take_store_event();
    }
    __atomic_store_n(&vi.evtchn_upcall_mask, was, __ATOMIC_SEQ_CST);
    // Events for other ports that came meanwhile: have them delivered now.
    if (!was && __atomic_load_n(&vi.evtchn_upcall_pending, __ATOMIC_SEQ_CST))
        hypercall(abi::Hypercall::xen_version, 0);
    return fired || !deadline || now_ns() < deadline;
}

}  // namespace

XsClient& xs_client() { return g_client; }

XsStatus xs_init() {
    const abi::StartInfo& si = start_info();
    if (si.store_mfn == 0 || si.store_evtchn == 0) return Err{XsError::notconn};
    uint64_t flags = kPteP | kPteRw | kPteA | kPteD;
    if (update_va_mapping(ptr(g_store_page), (si.store_mfn << 12) | flags) != 0) {
        // Not a frame of ours by that number: the builder's pfn nr_pages - 1.
        if (si.nr_pages == 0 ||
            update_va_mapping(ptr(g_store_page), (mfn_of_pfn(si.nr_pages - 1) << 12) | flags) != 0)
            return Err{XsError::notconn};
    }
    return xs_init(g_store_page, si.store_evtchn);
}

XsStatus xs_init(void* ring_va, uint32_t port) {
    if (!ring_va || port == 0) return Err{XsError::notconn};
    g_port = port;
    g_client.init(static_cast<abi::XenstoreDomainInterface*>(ring_va), XsClient::Io{nullptr, dom_notify, dom_wait, dom_now});
    return {};
}

uint32_t xs_port() { return g_port; }
void xs_set_timeout(uint64_t ns) { g_client.set_timeout(ns); }

XsResult<size_t> xs_read(const char* path, char* buf, size_t cap, uint32_t tx) { return g_client.read(path, buf, cap, tx); }
XsStatus xs_write(const char* path, const char* value, uint32_t tx) { return g_client.write(path, value, tx); }
XsStatus xs_write_bytes(const char* path, const void* value, size_t len, uint32_t tx) {
    return g_client.write_bytes(path, value, len, tx);
}

XsResult<uint64_t> xs_read_number(const char* path, uint32_t tx) {
    char buf[24];
    auto r = xs_read(path, buf, sizeof buf, tx);
    if (!r) return Err{r.error()};
    uint64_t v;
    if (!base::parse_u64(buf, *r, v)) return Err{XsError::inval};
    return v;
}

XsStatus xs_mkdir(const char* path, uint32_t tx) { return g_client.mkdir(path, tx); }
XsStatus xs_rm(const char* path, uint32_t tx) { return g_client.rm(path, tx); }
XsResult<size_t> xs_directory(const char* path, char* buf, size_t cap, uint32_t tx) {
    return g_client.directory(path, buf, cap, tx);
}
XsResult<size_t> xs_get_perms(const char* path, XsPerm* out, size_t cap, uint32_t tx) {
    return g_client.get_perms(path, out, cap, tx);
}
XsStatus xs_set_perms(const char* path, const XsPerm* perms, size_t n, uint32_t tx) {
    return g_client.set_perms(path, perms, n, tx);
}
XsStatus xs_watch(const char* path, const char* token) { return g_client.watch(path, token); }
XsStatus xs_unwatch(const char* path, const char* token) { return g_client.unwatch(path, token); }
XsResult<uint32_t> xs_transaction_start() { return g_client.transaction_start(); }
XsStatus xs_transaction_end(uint32_t tx, bool commit) { return g_client.transaction_end(tx, commit); }
XsResult<size_t> xs_get_domain_path(uint16_t dom, char* buf, size_t cap) { return g_client.get_domain_path(dom, buf, cap); }
XsStatus xs_introduce(uint16_t dom, uint64_t mfn, uint32_t port) { return g_client.introduce(dom, mfn, port); }
XsStatus xs_release(uint16_t dom) { return g_client.release(dom); }
XsResult<bool> xs_is_domain_introduced(uint16_t dom) { return g_client.is_domain_introduced(dom); }
bool xs_next_watch_event(XsWatchEvent& ev) { return g_client.next_watch_event(ev); }
XsStatus xs_wait_watch_event(XsWatchEvent& ev, uint64_t deadline) { return g_client.wait_watch_event(ev, deadline); }

#endif  // MOAT_DOMAIN

}  // namespace rt
