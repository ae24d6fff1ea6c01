// Xen's netif protocol to the front-ends (netback.hpp).
//
// xenbus, for each backend/vif/<fe>/<n> the builder wrote:
//   new:  feature-rx-copy=1, feature-sg=0 (and no GSO, no rx-flip), state
//         InitWait (2); watch the front-end's state.
//   front-end Initialised (3) or Connected (4): read tx-ring-ref,
//         rx-ring-ref, event-channel, request-rx-copy (must be 1); map the
//         two ring pages, bind the port, state Connected (4).
//   front-end Closing (5) / Closed (6), or its ring page vanished under
//         us: unmap, unbind, forget its MACs, state Closed (6); InitWait (2)
//         again once the front-end is back at Initialising (1), so a
//         front-end that reconnects is served again.
//   its domain gone (@releaseDomain: the builder removed its home): the
//         same, and the vif is forgotten; the builder writes the directories
//         again for the domain it restarts (perhaps with the same id), and a
//         new vif is set up from them.
//
// Data path, never mapping a data page: TX requests are copied
// (GNTTABOP_copy, one hypercall per batch) from the front-end's grants into
// staging buffers here and switched; frames for a vif are copied into the
// pages it posted on its RX ring (a batch of copies per pass). A frame whose
// source address is not the vif's own (the builder's `mac` node) is refused:
// a guest cannot take another's address in the switch.

#include "netback.hpp"

#include <abi/errno.hpp>
#include <abi/event_channel.hpp>
#include <abi/netif.hpp>
#include <base/format.hpp>
#include <base/number.hpp>
#include <ring/ring.hpp>
#include <rt/trace.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/mm.hpp>
#include <rt/xenbus.hpp>

namespace netback {

namespace {

using TxBack = ring::BackRing<abi::NetifTxRequest, abi::NetifTxResponse>;
using RxBack = ring::BackRing<abi::NetifRxRequest, abi::NetifRxResponse>;

enum State : long { kInitialising = 1, kInitWait = 2, kInitialised = 3, kConnected = 4, kClosing = 5, kClosed = 6 };

constexpr unsigned kRxCopies = 128;   // RX copies queued before a flush
constexpr unsigned kLogLimit = 4;     // lines about bad requests per front-end

struct Vif {
    bool used, seen, connected, vanished, refused;
    uint16_t fe;
    unsigned devid;
    long our_state;
    char dir[48];      // backend/vif/<fe>/<n> (relative to our home)
    char fe_dir[96];   // the front-end's device/vif/<n>
    void* tx_page;
    void* rx_page;
    uint32_t port;
    TxBack tx;
    RxBack rx;
    bool has_mac;      // frames from it must carry this source address
    net::Mac mac;
    bool rx_pushed;    // RX responses pushed since the last rx_flush
    bool kick;         // the front-end asked to hear about responses pushed this pass
    unsigned logged;
    uint64_t tx_frames, tx_errors, rx_frames, rx_dropped, rx_errors, spoofed;
};

Vif g_vifs[kMaxVifs];
alignas(4096) uint8_t g_window[2 * kMaxVifs][4096];
rt::ForeignSlot g_window_slots[2 * kMaxVifs];

// Staging for one batch of one vif's TX: 2 KiB each, two per page.
alignas(4096) uint8_t g_stage[kTxBatch / 2][4096];
uint8_t* stage(unsigned i) { return g_stage[i / 2] + (i % 2) * 2048; }

// Queued RX copies and what to answer for each.
abi::GnttabCopy g_rx_ops[kRxCopies];
struct RxMeta {
    uint8_t slot;
    uint16_t id;
    uint16_t len;
};
RxMeta g_rx_meta[kRxCopies];
unsigned g_rx_n;
rt::TraceMarker g_marks;   // each batch served, in the kernel's trace while somebody traces

long read_number(const char* path) {
    auto r = rt::xs_read_number(path);
    return r ? long(*r) : -1;
}

void write_node(const Vif& v, const char* key, const char* value) {
    char path[96];
    base::snformat(path, sizeof path, "%s/%s", v.dir, key);
    (void)rt::xs_write(path, value);
}

void set_state(Vif& v, long s) {
    if (v.our_state == s) return;
    char value[4];
    base::snformat(value, sizeof value, "%ld", s);
    write_node(v, "state", value);
    v.our_state = s;
}

template <typename... A>
void log_bad(Vif& v, const char* fmt, A... args) {
    if (v.logged >= kLogLimit) return;
    char line[160];
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wformat-nonliteral"
    base::snformat(line, sizeof line, fmt, args...);
#pragma clang diagnostic pop
    rt::printf("vif %u/%u: %s\n", v.fe, v.devid, line);
    if (++v.logged == kLogLimit) rt::printf("vif %u/%u: (further bad requests not logged)\n", v.fe, v.devid);
}

unsigned slot_of(const Vif& v) { return unsigned(&v - g_vifs); }

// Six bytes at p against a MAC (on every frame sent).
bool same_mac(const uint8_t* p, const net::Mac& m) {
    net::Mac x;
    __builtin_memcpy(x.b, p, 6);
    return x == m;
}

void disconnect(Vif& v, const char* why) {
    if (!v.connected) return;
    rx_flush();   // answers what is queued for it while the ring is still there
    rt::printf("vif %u/%u: disconnected (%s); %lu frames sent, %lu received, %lu tx errors (%lu spoofed), "
               "%lu rx dropped, %lu rx errors\n",
               v.fe, v.devid, why, v.tx_frames, v.rx_frames, v.tx_errors, v.spoofed, v.rx_dropped, v.rx_errors);
    abi::EvtchnClose c{v.port};
    (void)rt::evtchn_op(abi::EvtchnOp::close, &c);
    // A page the hypervisor took away already (its domain died) answers
    // bad_handle: the window slot is free all the same.
    (void)rt::unmap_grant(v.tx_page);
    (void)rt::unmap_grant(v.rx_page);
    v.tx_page = v.rx_page = nullptr;
    v.port = 0;
    v.connected = false;
    v.vanished = false;
    v.kick = false;
    forget_port_of(slot_of(v));
}

void drop(Vif& v, const char* why) {
    disconnect(v, why);
    char path[128];
    base::snformat(path, sizeof path, "%s/state", v.fe_dir);
    (void)rt::xs_unwatch(path, "fe");
    v.used = false;
}

// Whether the front-end's device directory is gone: the builder removes a
// domain's home when the domain stops (a restarted domain comes back with
// new directories). The store says ENOENT, or EACCES when it judges the
// read by an ancestor we may not read (a live front-end's state node is
// always readable by its back-end).
bool fe_gone(const char* fe_dir) {
    char path[128], buf[8];
    base::snformat(path, sizeof path, "%s/state", fe_dir);
    auto r = rt::xs_read(path, buf, sizeof buf);
    return !r && (r.error() == rt::XsError::noent || r.error() == rt::XsError::acces);
}

// Our directory stays: the builder writes it again (it may already have,
// for a restarted front-end that got the same domain id), and a directory
// whose front-end is gone is not taken up again (add()).
void drop_gone(Vif& v) {
    if (!v.connected) rt::printf("vif %u/%u: front-end gone\n", v.fe, v.devid);
    drop(v, "front-end domain gone");
}

void connect(Vif& v) {
    char path[128];
    base::snformat(path, sizeof path, "%s/request-rx-copy", v.fe_dir);
    long copy = read_number(path);
    base::snformat(path, sizeof path, "%s/tx-ring-ref", v.fe_dir);
    long tx_ref = read_number(path);
    base::snformat(path, sizeof path, "%s/rx-ring-ref", v.fe_dir);
    long rx_ref = read_number(path);
    base::snformat(path, sizeof path, "%s/event-channel", v.fe_dir);
    long evtchn = read_number(path);
    if (copy != 1 || tx_ref < 0 || tx_ref > 0xFFFFFFFFl || rx_ref < 0 || rx_ref > 0xFFFFFFFFl || evtchn <= 0 ||
        evtchn > 0xFFFFFFFFl) {
        rt::printf("vif %u/%u: refused: request-rx-copy %ld, tx-ring-ref %ld, rx-ring-ref %ld, event-channel %ld\n",
                   v.fe, v.devid, copy, tx_ref, rx_ref, evtchn);
        v.refused = true;
        set_state(v, kClosing);
        return;
    }
    long err = 0;
    v.tx_page = rt::map_grant(v.fe, uint32_t(tx_ref), false, &err);
    if (v.tx_page) v.rx_page = rt::map_grant(v.fe, uint32_t(rx_ref), false, &err);
    long port = v.rx_page ? rt::bind_interdomain(v.fe, uint32_t(evtchn)) : 0;
    if (!v.tx_page || !v.rx_page || port <= 0) {
        rt::printf("vif %u/%u: refused: ring map %ld, bind %ld\n", v.fe, v.devid, err, port);
        if (v.tx_page) (void)rt::unmap_grant(v.tx_page);
        if (v.rx_page) (void)rt::unmap_grant(v.rx_page);
        v.tx_page = v.rx_page = nullptr;
        v.refused = true;
        set_state(v, kClosing);
        return;
    }
    v.port = uint32_t(port);
    v.tx.init(v.tx_page, 4096);
    v.rx.init(v.rx_page, 4096);
    v.connected = true;
    v.logged = 0;
    v.tx_frames = v.tx_errors = v.rx_frames = v.rx_dropped = v.rx_errors = v.spoofed = 0;
    set_state(v, kConnected);
    rt::printf("vif %u/%u: connected (tx ring %ld, rx ring %ld, port %ld)\n", v.fe, v.devid, tx_ref, rx_ref, port);
}

// Moves a vif along with its front-end's state.
void step(Vif& v) {
    if (fe_gone(v.fe_dir)) {
        drop_gone(v);
        return;
    }
    char path[128];
    base::snformat(path, sizeof path, "%s/state", v.fe_dir);
    long fe_state = read_number(path);
    // Our own state as the store has it: the builder writes it afresh
    // (Initialising) for a front-end restarted with the same domain id.
    base::snformat(path, sizeof path, "%s/state", v.dir);
    v.our_state = read_number(path);
    if (v.connected) {
        if (fe_state == kInitialised || fe_state == kConnected) return;
        disconnect(v, fe_state < 0 ? "front-end gone" : "front-end closing");
        // Closing answers Closing, as Xen's back-ends do: a Linux front-end
        // shutting down waits for exactly that (and Closed follows its Closed).
        set_state(v, fe_state == kClosing ? kClosing : kClosed);
        return;
    }
    if (fe_state == kInitialising || (fe_state < 0 && v.our_state != kClosed)) {
        v.refused = false;
        set_state(v, fe_state < 0 ? kClosed : kInitWait);
    } else if ((fe_state == kInitialised || fe_state == kConnected) && !v.refused && v.our_state == kInitWait) {
        connect(v);
    } else if (fe_state == kClosing) {
        set_state(v, kClosing);
    } else if (fe_state == kClosed) {
        v.refused = false;
        set_state(v, kClosed);
    }
}

Vif* find(uint16_t fe, unsigned devid) {
    for (Vif& v : g_vifs)
        if (v.used && v.fe == fe && v.devid == devid) return &v;
    return nullptr;
}

void add(uint16_t fe, unsigned devid) {
    Vif* v = nullptr;
    for (Vif& x : g_vifs)
        if (!x.used) {
            v = &x;
            break;
        }
    if (!v) {
        rt::printf("vif %u/%u: no room (at most %u vifs)\n", fe, devid, kMaxVifs);
        return;
    }
    *v = Vif{};
    v->fe = fe;
    v->devid = devid;
    base::snformat(v->dir, sizeof v->dir, "backend/vif/%u/%u", fe, devid);
    char path[96];
    base::snformat(path, sizeof path, "%s/frontend", v->dir);
    auto fp = rt::xs_read(path, v->fe_dir, sizeof v->fe_dir);
    base::snformat(path, sizeof path, "%s/frontend-id", v->dir);
    if (!fp || read_number(path) != long(fe)) return;   // not (yet) complete: next scan
    if (fe_gone(v->fe_dir)) {
        // Left from a front-end that stopped, or one being restarted: the
        // builder writes our side first, and its state node appearing wakes
        // us for the next scan.
        base::snformat(path, sizeof path, "%s/state", v->fe_dir);
        (void)rt::xs_watch(path, "fe");
        return;
    }
    // The address the builder gave it: the only source address its frames
    // may carry, so that no guest can pass for another in the switch.
    char mac[24];
    base::snformat(path, sizeof path, "%s/mac", v->dir);
    auto m = rt::xs_read(path, mac, sizeof mac);
    v->has_mac = m && net::parse_mac(mac, *m, v->mac);
    if (!v->has_mac) {
        // Without its address no source check is possible: not served until
        // the builder's node is there (fail closed).
        rt::printf("vif %u/%u: no valid mac node yet: not served\n", fe, devid);
        return;
    }
    v->used = true;
    v->seen = true;
    v->our_state = -1;
    write_node(*v, "feature-rx-copy", "1");
    write_node(*v, "feature-rx-flip", "0");
    write_node(*v, "feature-sg", "0");
    write_node(*v, "feature-gso-tcpv4", "0");
    set_state(*v, kInitWait);
    // Its state node changes wake us (path absolute: the watch fires for it).
    base::snformat(path, sizeof path, "%s/state", v->fe_dir);
    (void)rt::xs_watch(path, "fe");
}

bool parse_name(const char* s, uint32_t& out) { return base::parse_u32(s, __builtin_strlen(s), out); }

// One batch's requests, their answers and copies (static: one vif at a time).
abi::NetifTxRequest g_reqs[kTxBatch];
int16_t g_status[kTxBatch];
abi::GnttabCopy g_tx_ops[kTxBatch];
uint8_t g_op_of[kTxBatch];
static_assert(kTxBatch <= 256, "g_op_of holds a byte");

// TX of one vif: a batch copied in one hypercall, checked, switched, answered.
void vif_tx(Vif& v) {
    abi::NetifTxRequest* reqs = g_reqs;
    int16_t* status = g_status;
    abi::GnttabCopy* ops = g_tx_ops;
    uint8_t* op_of = g_op_of;
    unsigned n = 0, nops = 0;
    while (n < kTxBatch && v.tx.take_request(reqs[n])) {
        const abi::NetifTxRequest& q = reqs[n];
        status[n] = abi::kNetifRspError;
        if (q.flags & (abi::kNetTxfMoreData | abi::kNetTxfExtraInfo)) {
            log_bad(v, "request %u: flags %#x (no scatter-gather, no extra info offered)", q.id, q.flags);
        } else if (q.size < abi::kNetifMinFrame || q.size > abi::kNetifMaxFrame) {
            log_bad(v, "request %u: size %u", q.id, q.size);
        } else if (uint32_t(q.offset) + q.size > 4096) {
            log_bad(v, "request %u: offset %u + size %u beyond the page", q.id, q.offset, q.size);
        } else {
            abi::GnttabCopy& c = ops[nops];
            c = abi::GnttabCopy{};
            c.source.u.ref = q.gref;
            c.source.domid = v.fe;
            c.source.offset = q.offset;
            uint64_t ma = rt::maddr_of(stage(n));
            c.dest.u.gmfn = ma >> 12;
            c.dest.domid = abi::kDomidSelf;
            c.dest.offset = uint16_t(ma & 0xFFF);
            c.len = q.size;
            c.flags = abi::kGntcopySourceGref;
            op_of[n] = uint8_t(nops++);
            status[n] = abi::kNetifRspOkay;
        }
        ++n;
    }
    if (nops && rt::gnttab_op(abi::GnttabOp::copy, ops, nops) != 0)
        for (unsigned i = 0; i < nops; ++i) ops[i].status = int16_t(abi::GntStatus::general_error);
    for (unsigned i = 0; i < n; ++i) {
        if (status[i] == abi::kNetifRspOkay) {
            const abi::GnttabCopy& c = ops[op_of[i]];
            if (c.status != 0) {
                status[i] = abi::kNetifRspError;
                log_bad(v, "request %u: copy from grant %u failed (status %d)", reqs[i].id, reqs[i].gref, c.status);
                if (c.status == int16_t(abi::GntStatus::bad_domain)) v.vanished = true;
            } else if (v.has_mac && !same_mac(stage(i) + 6, v.mac)) {
                status[i] = abi::kNetifRspError;
                ++v.spoofed;
                log_bad(v, "request %u: source address not the vif's own", reqs[i].id);
            } else if ((reqs[i].flags & abi::kNetTxfCsumBlank) && !net::fill_l4_checksum(stage(i), reqs[i].size)) {
                // Checksum offload (Linux netfront uses it whenever the
                // back-end does not say feature-no-csum-offload): we fill in
                // what the front-end left blank, for IPv4 TCP and UDP only.
                status[i] = abi::kNetifRspError;
                log_bad(v, "request %u: checksum left blank on a frame that is not IPv4 TCP/UDP", reqs[i].id);
            } else {
                ++v.tx_frames;
                deliver(stage(i), reqs[i].size, 1 + slot_of(v));
            }
        }
        if (status[i] != abi::kNetifRspOkay) ++v.tx_errors;
        (void)v.tx.push_response(abi::NetifTxResponse{reqs[i].id, status[i]});
    }
    // The copies out of the staging buffers run before they are reused.
    rx_flush();
    if (n) g_marks.mark(abi::kMarkNetTx, n);
    if (n && v.tx.push_responses_and_check_notify()) v.kick = true;
}

}  // namespace

void vifs_init() { rt::set_foreign_window(g_window, g_window_slots, 2 * kMaxVifs); }

void vifs_scan() {
    for (Vif& v : g_vifs) v.seen = false;
    char fes[256], devs[256], path[64];
    auto fl = rt::xs_directory("backend/vif", fes, sizeof fes);
    for (const char* f = fl ? rt::xs_next_name(fes, *fl, nullptr) : nullptr; f; f = rt::xs_next_name(fes, *fl, f)) {
        uint32_t fe;
        if (!parse_name(f, fe) || fe >= 0x7FF0) continue;
        base::snformat(path, sizeof path, "backend/vif/%u", fe);
        auto dl = rt::xs_directory(path, devs, sizeof devs);
        for (const char* d = dl ? rt::xs_next_name(devs, *dl, nullptr) : nullptr; d;
             d = rt::xs_next_name(devs, *dl, d)) {
            uint32_t devid;
            if (!parse_name(d, devid)) continue;
            Vif* v = find(uint16_t(fe), devid);
            if (v) v->seen = true;
            else add(uint16_t(fe), devid);
        }
    }
    for (Vif& v : g_vifs) {
        if (!v.used) continue;
        if (!v.seen) drop(v, "its backend directory is gone");
        else step(v);
    }
}

void vifs_check_released() {
    for (Vif& v : g_vifs)
        if (v.used && fe_gone(v.fe_dir)) drop_gone(v);
}

bool vifs_fault(uint64_t va) {
    for (Vif& v : g_vifs) {
        if (!v.connected || (rt::ptr(v.tx_page) != va && rt::ptr(v.rx_page) != va)) continue;
        // Our own frame back under the window page: the rest of this pass
        // reads zeros (garbage the rings reject), then the vif is dropped.
        uint64_t own = rt::mfn_of_pfn((va - rt::kVirtBase) >> 12) << 12;
        if (rt::update_va_mapping(va, own | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD) != 0) return false;
        v.vanished = true;
        return true;
    }
    return false;
}

bool vifs_poll() {
    bool more = false;
    for (Vif& v : g_vifs) {
        if (!v.connected) continue;
        if (!v.vanished) vif_tx(v);
        if (v.vanished) {
            disconnect(v, "its ring page or domain went away");
            set_state(v, kClosed);
            continue;
        }
        if (v.tx.broken() || v.rx.broken()) {
            rt::printf("vif %u/%u: garbage %s ring producer index\n", v.fe, v.devid, v.tx.broken() ? "TX" : "RX");
            disconnect(v, "broken ring");
            set_state(v, kClosed);
            continue;
        }
        more |= v.tx.final_check_for_requests();
    }
    return more;
}

void vifs_notify() {
    for (Vif& v : g_vifs)
        if (v.kick) {
            v.kick = false;
            if (v.connected) rt::notify(v.port);
        }
}

unsigned vif_ports(uint32_t* out, unsigned cap) {
    unsigned n = 0;
    for (Vif& v : g_vifs)
        if (v.connected && n < cap) out[n++] = v.port;
    return n;
}

bool vif_connected(unsigned slot) { return slot < kMaxVifs && g_vifs[slot].connected && !g_vifs[slot].vanished; }

void vif_deliver(unsigned slot, const uint8_t* frame, size_t len) {
    Vif& v = g_vifs[slot];
    if (!vif_connected(slot)) return;
    if (g_rx_n == kRxCopies) rx_flush();
    abi::NetifRxRequest q;
    if (!v.rx.take_request(q)) {
        ++v.rx_dropped;   // no buffer posted (or a broken ring: dropped at the end of the pass)
        return;
    }
    abi::GnttabCopy& c = g_rx_ops[g_rx_n];
    c = abi::GnttabCopy{};
    uint64_t ma = rt::maddr_of(frame);
    c.source.u.gmfn = ma >> 12;
    c.source.domid = abi::kDomidSelf;
    c.source.offset = uint16_t(ma & 0xFFF);
    c.dest.u.ref = q.gref;
    c.dest.domid = v.fe;
    c.dest.offset = 0;
    c.len = uint16_t(len);
    c.flags = abi::kGntcopyDestGref;
    g_rx_meta[g_rx_n++] = RxMeta{uint8_t(slot), q.id, uint16_t(len)};
}

void rx_flush() {
    if (!g_rx_n) return;
    unsigned n = g_rx_n;
    g_rx_n = 0;
    g_marks.mark(abi::kMarkNetRx, n);
    if (rt::gnttab_op(abi::GnttabOp::copy, g_rx_ops, n) != 0)
        for (unsigned i = 0; i < n; ++i) g_rx_ops[i].status = int16_t(abi::GntStatus::general_error);
    for (unsigned i = 0; i < n; ++i) {
        Vif& v = g_vifs[g_rx_meta[i].slot];
        if (!v.connected) continue;
        int16_t st = abi::kNetifRspError;
        if (g_rx_ops[i].status == 0) {
            st = int16_t(g_rx_meta[i].len);
            ++v.rx_frames;
        } else {
            ++v.rx_errors;
            log_bad(v, "rx request %u: copy to grant %u failed (status %d)", g_rx_meta[i].id, g_rx_ops[i].dest.u.ref,
                    g_rx_ops[i].status);
            if (g_rx_ops[i].status == int16_t(abi::GntStatus::bad_domain)) v.vanished = true;
        }
        (void)v.rx.push_response(abi::NetifRxResponse{g_rx_meta[i].id, 0, 0, st});
        v.rx_pushed = true;
    }
    for (Vif& v : g_vifs)
        if (v.rx_pushed) {
            v.rx_pushed = false;
            if (v.connected && v.rx.push_responses_and_check_notify()) v.kick = true;
        }
}

void vifs_print_stats() {
    for (Vif& v : g_vifs)
        if (v.used)
            rt::printf("vif %u/%u: %s; %lu frames sent, %lu received, %lu tx errors (%lu spoofed), %lu rx dropped, "
                       "%lu rx errors\n",
                       v.fe, v.devid, v.connected ? "connected" : "not connected", v.tx_frames, v.rx_frames,
                       v.tx_errors, v.spoofed, v.rx_dropped, v.rx_errors);
}

}  // namespace netback
