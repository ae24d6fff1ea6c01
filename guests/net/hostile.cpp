// A hostile network front-end (tests/system: system_net_hostile). It
// connects to netback like any netfront, then misbehaves on its TX ring:
//   requests with offset + size beyond the page, size 0, 65535 and under an
//   Ethernet header, flags asking for scatter-gather, grant references it
//   never granted (each must get an error response);
//   a flood: the ring filled again and again (every request answered,
//   while the other guests keep being served);
//   a garbage producer index on the TX ring, then on the RX ring (netback
//   must disconnect it, and take it back when it connects again);
//   and at the end it vanishes with requests outstanding.
// Its checks are PASS/FAIL lines like any guest's; that netback survives
// all of it is judged by the good guests on the same netback.

#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/ipv4.hpp>
#include <rt/netfront.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

#include <abi/netif.hpp>
#include <net/packet.hpp>
#include <base/format.hpp>

using rt::check;

namespace {

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint32_t kGateway = 0x0A000202;   // 10.0.2.2
constexpr uint16_t kOff = 2048;             // of self_frame() in its page
rt::Netfront g_nf;
uint32_t g_ip;

// Pushes one raw request and waits for its response; its status, or 1
// (kNetifRspNull, never an answer to a request) if none came.
int16_t one(const abi::NetifTxRequest& q) {
    auto& tx = g_nf.tx_ring();
    if (!tx.push_request(q)) return 1;
    tx.push_requests();
    g_nf.notify_backend();
    uint64_t deadline = rt::now_ns() + 10 * kSecond;
    uint32_t port = g_nf.port();
    abi::NetifTxResponse r;
    while (!tx.take_response(r)) {
        if (tx.broken() || rt::now_ns() >= deadline) return 1;
        if (!tx.final_check_for_responses()) (void)rt::wait_ports(&port, 1, deadline);
    }
    return r.id == q.id ? r.status : 1;
}

// A 60-byte frame to ourselves (the switch drops it: never back to its
// source) in the last TX buffer, which netfront's own sends use last; its
// grant reference.
uint32_t self_frame() {
    constexpr unsigned kSlot = rt::Netfront::kTxSlots - 1;
    uint8_t* frame = g_nf.tx_buffer(kSlot);
    for (unsigned i = 0; i < 60; ++i) frame[i] = 0;
    __builtin_memcpy(frame, g_nf.mac().b, 6);
    __builtin_memcpy(frame + 6, g_nf.mac().b, 6);
    frame[12] = 0x88;
    frame[13] = 0xB5;
    return g_nf.tx_buffer_ref(kSlot);
}
static_assert(rt::Netfront::kTxSlots % 2 == 0, "the last TX buffer starts a page's second half");

// "key=xx:xx:xx:xx:xx:xx" on the command line.
bool cmdline_mac(const char* key, net::Mac& out) {
    const char* s = reinterpret_cast<const char*>(rt::start_info().cmd_line);
    size_t k = __builtin_strlen(key);
    for (const char* p = s; *p; ++p)
        if ((p == s || p[-1] == ' ') && __builtin_memcmp(p, key, k) == 0 && p[k] == '=') {
            const char* v = p + k + 1;
            size_t n = 0;
            while (v[n] && v[n] != ' ') ++n;
            return net::parse_mac(v, n, out);
        }
    return false;
}

void bad_requests() {
    uint32_t ref = self_frame();
    struct Case {
        const char* name;
        abi::NetifTxRequest q;
    } cases[] = {
        {"net.hostile_offset_beyond_page", {ref, 4000, 0, 1, 200}},
        {"net.hostile_size_zero", {ref, kOff, 0, 2, 0}},
        {"net.hostile_size_65535", {ref, kOff, 0, 3, 65535}},
        {"net.hostile_size_under_header", {ref, kOff, 0, 4, 10}},
        {"net.hostile_size_over_mtu", {ref, kOff, 0, 5, 1515}},
        {"net.hostile_more_data_flag", {ref, kOff, abi::kNetTxfMoreData, 6, 60}},
        {"net.hostile_ungranted_ref", {400, 0, 0, 7, 60}},
        {"net.hostile_ref_beyond_table", {100000, 0, 0, 8, 60}},
    };
    for (auto& c : cases) {
        int16_t st = one(c.q);
        check(st == abi::kNetifRspError, c.name, "status %d", st);
    }
    int16_t st = one(abi::NetifTxRequest{ref, kOff, 0, 9, 60});
    check(st == abi::kNetifRspOkay, "net.hostile_good_request_after", "status %d", st);

    // Another guest's address as our source (spoof=MAC on the command
    // line), broadcast so that every port would learn it: refused.
    net::Mac victim;
    if (cmdline_mac("spoof", victim)) {
        constexpr unsigned kSlot = rt::Netfront::kTxSlots - 2;   // first half of the last page
        uint8_t* f = g_nf.tx_buffer(kSlot);
        for (unsigned i = 0; i < 60; ++i) f[i] = 0;
        __builtin_memcpy(f, net::kBroadcastMac.b, 6);
        __builtin_memcpy(f + 6, victim.b, 6);
        f[12] = 0x88;
        f[13] = 0xB5;
        st = one(abi::NetifTxRequest{g_nf.tx_buffer_ref(kSlot), g_nf.tx_buffer_offset(kSlot), 0, 10, 60});
        check(st == abi::kNetifRspError, "net.hostile_spoofed_source_refused", "status %d", st);
    }
}

void flood(unsigned rounds) {
    auto& tx = g_nf.tx_ring();
    uint32_t ref = self_frame();
    uint32_t port = g_nf.port();
    uint64_t pushed = 0, ok = 0, answered = 0;
    uint64_t deadline = rt::now_ns() + 120 * kSecond;
    for (unsigned r = 0; r < rounds; ++r) {
        while (tx.push_request(abi::NetifTxRequest{ref, kOff, 0, uint16_t(pushed), 60})) ++pushed;
        tx.push_requests();
        g_nf.notify_backend();
        abi::NetifTxResponse rsp;
        while (answered < pushed && rt::now_ns() < deadline) {
            if (tx.take_response(rsp)) {
                ++answered;
                ok += rsp.status == abi::kNetifRspOkay;
                continue;
            }
            if (tx.broken()) break;
            if (!tx.final_check_for_responses()) (void)rt::wait_ports(&port, 1, deadline);
        }
    }
    check(answered == pushed && ok == pushed, "net.hostile_flood_answered", "%lu pushed, %lu answered, %lu ok",
          pushed, answered, ok);
    rt::printf("flood: %lu requests, %lu answered\n", pushed, answered);
}

// Asks the gateway (QEMU's user network answers every ARP request for
// 10.0.2.2) who it is, n times: n frames come back to us. Eight at a time,
// each eight copied out before the next: what the switch floods to the NIC
// must not outrun its transmit buffers.
bool ask_gateway(unsigned n) {
    uint8_t f[net::kMinFrameLen];
    net::Arp a{net::kArpRequest, g_nf.mac(), g_ip, net::Mac{}, kGateway};
    size_t len = net::build_arp(f, sizeof f, net::kBroadcastMac, a);
    for (unsigned i = 0; i < n; ++i) {
        bool last_of_eight = i + 1 == n || (i + 1) % 8 == 0;
        if (!g_nf.send(f, len, rt::now_ns() + 10 * kSecond, !last_of_eight)) return false;
        if (last_of_eight && !g_nf.flush(rt::now_ns() + 10 * kSecond)) return false;
    }
    return true;
}

// RX requests naming grants we never made: behind our kRxBuffers real
// ones, so the replies to kRxBuffers + n ARP requests reach them. Each must
// come back as an error; the real buffers get their frames.
void rx_bad_refs() {
    constexpr unsigned kBad = 8;
    constexpr uint16_t kBadId = 1000;
    auto& rx = g_nf.rx_ring();
    for (unsigned i = 0; i < kBad; ++i) (void)rx.push_request(abi::NetifRxRequest{uint16_t(kBadId + i), 0, 450 + i});
    rx.push_requests();
    unsigned want = rt::Netfront::kRxBuffers + kBad;
    bool sent = ask_gateway(want);
    uint64_t deadline = rt::now_ns() + 20 * kSecond;
    uint32_t port = g_nf.port();
    unsigned good = 0, refused = 0, other = 0, taken = 0;
    uint16_t repost[rt::Netfront::kRxBuffers];
    abi::NetifRxResponse r;
    while (taken < want && rt::now_ns() < deadline) {
        if (rx.take_response(r)) {
            ++taken;
            if (r.id >= kBadId && r.id < kBadId + kBad && r.status < 0) ++refused;
            else if (r.id < rt::Netfront::kRxBuffers && r.status > 0) repost[good++] = r.id;
            else ++other;
            continue;
        }
        if (rx.broken()) break;
        if (!rx.final_check_for_responses()) (void)rt::wait_ports(&port, 1, deadline);
    }
    // Our real buffers go back on the ring for the rest of the run.
    for (unsigned i = 0; i < good; ++i) (void)rx.push_request(abi::NetifRxRequest{repost[i], 0, g_nf.rx_buffer_ref(repost[i])});
    rx.push_requests();
    check(sent && refused == kBad, "net.hostile_rx_ungranted_refs_refused", "sent %d, %u refused, %u good, %u other",
          sent, refused, good, other);
    check(good == rt::Netfront::kRxBuffers, "net.hostile_rx_real_buffers_filled", "%u of %u", good,
          rt::Netfront::kRxBuffers);
}

long backend_state() {
    char path[128];
    base::snformat(path, sizeof path, "%s/state", g_nf.backend_path());
    auto r = rt::xs_read_number(path);
    return r ? long(*r) : -1;
}

// Waits for the back-end's state to become `want`; the state seen.
long wait_backend_state(long want, uint64_t deadline) {
    char path[128];
    base::snformat(path, sizeof path, "%s/state", g_nf.backend_path());
    (void)rt::xs_watch(path, "be");
    long st;
    while ((st = backend_state()) != want) {
        rt::XsWatchEvent ev;
        if (!rt::xs_wait_watch_event(ev, deadline)) break;
    }
    (void)rt::xs_unwatch(path, "be");
    return st;
}

// A producer index 5000 ahead of what the ring holds: netback must
// disconnect us (and take us back when we connect again). On the RX ring
// netback only looks when it has a frame for us: the gateway sends one.
void garbage_index(bool rx) {
    abi::SringHeader* h = rx ? g_nf.rx_shared() : g_nf.tx_shared();
    __atomic_store_n(&h->req_prod, h->rsp_prod + 5000, __ATOMIC_SEQ_CST);
    if (rx) (void)ask_gateway(1);
    else g_nf.notify_backend();
    long st = wait_backend_state(6, rt::now_ns() + 30 * kSecond);
    check(st == 6, rx ? "net.hostile_rx_garbage_index_disconnected" : "net.hostile_garbage_index_disconnected",
          "back-end state %ld", st);
    bool again = g_nf.reconnect(rt::now_ns() + 30 * kSecond);
    check(again, rx ? "net.hostile_rx_reconnected" : "net.hostile_reconnected", "%s", g_nf.error());
    if (again) {
        // The new connection works: a frame to ourselves, answered OK.
        int16_t s = one(abi::NetifTxRequest{self_frame(), kOff, 0, 1, 60});
        check(s == abi::kNetifRspOkay, rx ? "net.hostile_rx_served_after_reconnect" : "net.hostile_served_after_reconnect",
              "status %d", s);
    }
}

// Fills the ring and leaves before the answers come.
void vanish() {
    auto& tx = g_nf.tx_ring();
    unsigned n = 0;
    uint32_t ref = self_frame();
    while (tx.push_request(abi::NetifTxRequest{ref, kOff, 0, uint16_t(n), 60})) ++n;
    tx.push_requests();
    g_nf.notify_backend();
    rt::printf("vanishing with %u requests outstanding\n", n);
}

}  // namespace

void rt::main() {
    rt::events_init();
    check(bool(rt::xs_init()), "net.hostile_xenstore_connected");
    bool up = g_nf.connect(0, rt::now_ns() + 60 * kSecond);
    check(up, "net.hostile_connected", "%s", g_nf.error());
    if (up) {
        bad_requests();
        if (!rt::cmdline_ipv4("ip", g_ip)) g_ip = 0x0A000214;   // 10.0.2.20
        rx_bad_refs();
        flood(unsigned(rt::cmdline_number("flood-rounds", 40)));
        garbage_index(false);
        if (g_nf.connected()) garbage_index(true);
    }
    rt::printf("done, %u failed\n", rt::g_failed_checks);
    if (up && g_nf.connected()) vanish();
}
