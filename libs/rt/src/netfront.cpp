// netfront (rt/netfront.hpp).

#include <rt/netfront.hpp>

#include <base/format.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/mm.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

namespace rt {

namespace {

constexpr unsigned kStateInitWait = 2, kStateConnected = 4, kStateClosing = 5;

uint32_t frame_of(const void* va) { return uint32_t(mfn_of_pfn((ptr(va) - kVirtBase) >> 12)); }

long read_number(const char* path) {
    auto r = xs_read_number(path);
    return r ? long(*r) : -1;
}

}  // namespace

bool Netfront::fail(const char* why) {
    error_ = why;
    return false;
}

bool Netfront::wait_event(uint64_t deadline) { return wait_ports(&port_, 1, deadline) != 0; }

void Netfront::notify_backend() { (void)notify(port_); }

// tx-ring-ref, rx-ring-ref, event-channel, request-rx-copy and the state
// change in one transaction, retried on EAGAIN as xenbus drivers do.
bool Netfront::publish(const char* dir) {
    struct {
        const char* key;
        unsigned long value;
    } nodes[] = {
        {"tx-ring-ref", kRefBase},     {"rx-ring-ref", kRefBase + 1}, {"event-channel", port_},
        {"request-rx-copy", 1},        {"feature-rx-notify", 1},      {"feature-sg", 0},
        {"state", kStateConnected},
    };
    char path[128], value[24];
    for (unsigned attempt = 0; attempt < 10; ++attempt) {
        auto tx = xs_transaction_start();
        if (!tx) return false;
        bool ok = true;
        for (auto& n : nodes) {
            base::snformat(path, sizeof path, "%s/%s", dir, n.key);
            base::snformat(value, sizeof value, "%lu", n.value);
            ok &= bool(xs_write(path, value, *tx));
        }
        auto end = xs_transaction_end(*tx, ok);
        if (ok && end) return true;
        if (!end && end.error() != XsError::again) return false;
    }
    return false;
}

bool Netfront::connect(unsigned n, uint64_t deadline) {
    char dir[48], path[128], buf[32];
    vif_ = n;
    base::snformat(dir, sizeof dir, "device/vif/%u", n);
    base::snformat(path, sizeof path, "%s/backend-id", dir);
    long be = read_number(path);
    base::snformat(path, sizeof path, "%s/backend", dir);
    auto bp = xs_read(path, backend_path_, sizeof backend_path_);
    if (be < 0 || be > 0x7FEF || !bp) return fail("no back-end in device/vif/<n>");
    backend_ = uint16_t(be);
    base::snformat(path, sizeof path, "%s/mac", dir);
    auto m = xs_read(path, buf, sizeof buf);
    if (!m || !net::parse_mac(buf, *m, mac_)) return fail("no usable mac in device/vif/<n>");

    grant::Table& gt = grant_table();
    if (gt.size() < kRefBase + 2 + kTxSlots / 2 + kRxBuffers) return fail("grant table too small");
    bool ok = gt.grant_access(kRefBase, backend_, frame_of(tx_ring_page_), false) &&
              gt.grant_access(kRefBase + 1, backend_, frame_of(rx_ring_page_), false);
    for (unsigned i = 0; i < kTxSlots / 2; ++i)
        ok = ok && gt.grant_access(kRefBase + 2 + i, backend_, frame_of(tx_pages_[i]), true);
    for (unsigned i = 0; i < kRxBuffers; ++i)
        ok = ok && gt.grant_access(rx_buffer_ref(i), backend_, frame_of(rx_pages_[i]), false);
    if (!ok) return fail("granting pages failed");
    tx_.init(tx_ring_page_, sizeof tx_ring_page_);
    rx_.init(rx_ring_page_, sizeof rx_ring_page_);
    tx_nfree_ = 0;
    for (unsigned i = kTxSlots; i-- > 0;) {
        tx_free_[tx_nfree_++] = uint16_t(i);
        tx_busy_[i] = false;
    }
    for (unsigned i = 0; i < kRxBuffers; ++i)
        rx_.push_request(abi::NetifRxRequest{uint16_t(i), 0, rx_buffer_ref(i)});
    rx_.push_requests();
    long port = alloc_unbound(backend_);
    if (port <= 0) return fail("alloc_unbound failed");
    port_ = uint32_t(port);

    // The back-end's InitWait: it says what it supports first.
    base::snformat(path, sizeof path, "%s/state", backend_path_);
    if (!xs_watch(path, "netfront")) return fail("cannot watch the back-end's state");
    bool published = false;
    for (;;) {
        long state = read_number(path);
        if (!published && state >= long(kStateInitWait) && state < long(kStateClosing)) {
            char fpath[128];
            base::snformat(fpath, sizeof fpath, "%s/feature-rx-copy", backend_path_);
            if (read_number(fpath) != 1) {
                (void)xs_unwatch(path, "netfront");
                return fail("back-end does not offer feature-rx-copy");
            }
            if (!publish(dir)) {
                (void)xs_unwatch(path, "netfront");
                return fail("publishing the rings failed");
            }
            published = true;
        }
        if (published && state == long(kStateConnected)) break;
        XsWatchEvent ev;
        if (!xs_wait_watch_event(ev, deadline)) {
            (void)xs_unwatch(path, "netfront");
            return fail(published ? "back-end not Connected in time" : "back-end not in InitWait in time");
        }
    }
    (void)xs_unwatch(path, "netfront");
    connected_ = true;
    return true;
}

void Netfront::reap_tx() {
    abi::NetifTxResponse r;
    while (tx_.take_response(r)) {
        if (r.id >= kTxSlots || !tx_busy_[r.id]) {
            ++stats_.bad_responses;
            continue;
        }
        tx_busy_[r.id] = false;
        tx_free_[tx_nfree_++] = r.id;
        if (r.status != abi::kNetifRspOkay) ++stats_.tx_errors;
    }
}

void Netfront::push() {
    if (tx_.push_requests_and_check_notify()) notify_backend();
}

bool Netfront::send(const void* frame, size_t len, uint64_t deadline, bool more) {
    if (!connected_ || len < abi::kNetifMinFrame || len > abi::kNetifMaxFrame) return false;
    reap_tx();
    while (tx_nfree_ == 0 || tx_.full()) {
        if (tx_.broken()) return false;
        push();   // what is queued must go before we wait for room
        if (tx_.final_check_for_responses()) {
            reap_tx();
            continue;
        }
        if (!wait_event(deadline) && deadline && now_ns() >= deadline) return false;
        reap_tx();
    }
    uint16_t slot = tx_free_[--tx_nfree_];
    tx_busy_[slot] = true;
    __builtin_memcpy(tx_buffer(slot), frame, len);
    abi::NetifTxRequest q{tx_buffer_ref(slot), tx_buffer_offset(slot), 0, slot, uint16_t(len)};
    tx_.push_request(q);
    if (!more) push();
    ++stats_.tx_frames;
    return true;
}

bool Netfront::flush(uint64_t deadline) {
    push();
    for (;;) {
        reap_tx();
        if (tx_nfree_ == kTxSlots) return true;
        if (tx_.broken()) return false;
        if (tx_.final_check_for_responses()) continue;
        if (!wait_event(deadline) && deadline && now_ns() >= deadline) return false;
    }
}

size_t Netfront::receive(void* buf, size_t cap, uint64_t deadline) {
    if (!connected_) return 0;
    for (;;) {
        abi::NetifRxResponse r;
        while (rx_.take_response(r)) {
            if (r.id >= kRxBuffers) {
                // Not a buffer of ours: nothing to repost for it.
                ++stats_.bad_responses;
                continue;
            }
            size_t len = 0;
            if (r.status <= 0) ++stats_.rx_errors;
            else if (r.offset + size_t(r.status) > 4096 || (r.flags & abi::kNetRxfMoreData)) ++stats_.bad_responses;
            else len = size_t(r.status);
            if (len) {
                __builtin_memcpy(buf, rx_pages_[r.id] + r.offset, len < cap ? len : cap);
                ++stats_.rx_frames;
            }
            rx_.push_request(abi::NetifRxRequest{r.id, 0, rx_buffer_ref(r.id)});
            if (rx_.push_requests_and_check_notify()) notify_backend();
            if (len) return len < cap ? len : cap;
        }
        if (rx_.broken()) return 0;
        if (rx_.final_check_for_responses()) continue;
        if (!deadline || now_ns() >= deadline) return 0;
        (void)wait_event(deadline);
    }
}

bool Netfront::reconnect(uint64_t deadline) {
    grant::Table& gt = grant_table();
    for (uint32_t ref = kRefBase; ref < kRefBase + 2 + kTxSlots / 2 + kRxBuffers; ++ref)
        if (!gt.end_access(ref)) return fail("a grant is still in use");
    connected_ = false;
    close_port();
    char path[48];
    base::snformat(path, sizeof path, "device/vif/%u/state", vif_);
    if (!xs_write(path, "1")) return fail("cannot write our state");
    return connect(vif_, deadline);
}

void Netfront::close() {
    char path[48];
    base::snformat(path, sizeof path, "device/vif/%u/state", vif_);
    (void)xs_write(path, "6");
    connected_ = false;
    close_port();
}

void Netfront::close_port() {
    if (!port_) return;
    abi::EvtchnClose c{port_};
    (void)evtchn_op(abi::EvtchnOp::close, &c);
    port_ = 0;
}

}  // namespace rt
