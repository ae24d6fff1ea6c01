// A network guest: netfront (device/vif/0) and rt's IPv4, roles picked by
// the command line (checks printed as PASS/FAIL lines, then "done, N failed"):
//
//   ip=A                 our address (required)
//   gateway=G            ARP-resolved at start (QEMU's user network answers:
//                        10.0.2.2), so the switch and slirp learn our MAC;
//                        check-gateway makes a missing answer a failure.
//                        Without it, one ARP request for 10.0.2.2 all the same.
//   ping=B count=N       N echo requests to B, one at a time; interval-ms=M
//                        between them; all N replies expected; ping-again:
//                        5 more at the end
//   answer=N             serve until N echo requests were answered
//   crash-after=K        (first boot only: moat/boot-tsc is written for
//                        restarts) crash once K echo requests were answered
//   until=M              with ping: keep pinging (at most count times) until
//                        M replies came; all M expected
//   udp-echo=P serve-udp=N   UDP echo on port P until N datagrams were echoed
//                        (udp-until-done: until the host's "moat-udp-done",
//                        having echoed at least N)
//   serve-s=S            give up serving after S seconds (default 120)
//   bench-send=N bench-to=B  N 64-byte frames to B's MAC, as fast as netfront goes
//   bench-recv=N         counts those frames; prints
//                        BENCH net_guest_to_guest_pps (per second of guest
//                        time, the fastest window of 1,000 frames)
//   udp-rtt=N udp-to=B udp-port=P   N UDP round trips (64-byte datagrams
//                        carrying a sequence number) to B's echo on port P,
//                        one at a time; prints BENCH <bench-name> <median
//                        TSC ticks> (guest instructions under -icount
//                        shift=0), then sends "moat-udp-done" to end the echo
//   linger               keeps answering for 2 s before leaving

#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/ipv4.hpp>
#include <rt/netfront.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

using rt::check;

namespace {

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint16_t kBenchType = 0x88B5;   // IEEE local experimental EtherType

rt::Netfront g_nf;
rt::Ipv4Stack g_ip;

void sleep_ns(uint64_t ns) {
    uint64_t until = rt::now_ns() + ns;
    while (rt::now_ns() < until) (void)g_ip.poll(until);
}

// Serves (answers ARP, pings, UDP echo) until `done` says so or the deadline.
template <typename F>
bool serve(F done, uint64_t deadline) {
    while (!done()) {
        if (rt::now_ns() >= deadline) return false;
        (void)g_ip.poll(deadline);
    }
    return true;
}

// The receiver times windows of kWindow frames and reports the fastest (the
// one least disturbed by other domains), as netback's direct figure does.
constexpr uint64_t kWindow = 1000;
struct BenchRecv {
    uint64_t want, got, first, last, window_start, best;
};
BenchRecv g_bench;

void count_bench_frame(const uint8_t* f, size_t len, void*) {
    if (len < 14 || f[12] != (kBenchType >> 8) || f[13] != (kBenchType & 0xFF)) return;
    uint64_t t = rt::now_ns();
    if (g_bench.got++ == 0) g_bench.first = g_bench.window_start = t;
    g_bench.last = t;
    if ((g_bench.got - 1) % kWindow == 0 && g_bench.got > 1) {
        uint64_t w = t - g_bench.window_start;
        if (!g_bench.best || w < g_bench.best) g_bench.best = w;
        g_bench.window_start = t;
    }
}

void bench_recv(uint64_t n, uint64_t deadline) {
    g_bench = BenchRecv{n, 0, 0, 0, 0, 0};
    g_ip.set_raw_hook(count_bench_frame, nullptr);
    // Until all came, or nothing came for two seconds after the first.
    while (g_bench.got < n && rt::now_ns() < deadline) {
        uint64_t until = g_bench.got ? g_bench.last + 2 * kSecond : deadline;
        if (!g_ip.poll(until) && g_bench.got) break;
    }
    g_ip.set_raw_hook(nullptr, nullptr);
    check(g_bench.got >= n * 9 / 10, "net.bench_frames_received", "%lu of %lu", g_bench.got, n);
    uint64_t span = g_bench.last - g_bench.first;
    rt::printf("bench: %lu of %lu frames received in %lu ns\n", g_bench.got, n, span);
    if (g_bench.best) rt::printf("BENCH net_guest_to_guest_pps %lu\n", kWindow * kSecond / g_bench.best);
    else rt::printf("FAIL net.bench_windows: fewer than %lu frames\n", kWindow + 1);
}

void bench_send(uint64_t n, uint32_t to) {
    net::Mac mac;
    bool ok = g_ip.resolve(to, mac, rt::now_ns() + 30 * kSecond);
    check(ok, "net.bench_peer_resolved");
    if (!ok) return;
    uint8_t frame[64] = {};
    __builtin_memcpy(frame, mac.b, 6);
    __builtin_memcpy(frame + 6, g_nf.mac().b, 6);
    frame[12] = kBenchType >> 8;
    frame[13] = kBenchType & 0xFF;
    uint64_t sent = 0, t0 = rt::now_ns();
    for (; sent < n; ++sent) {
        frame[14] = uint8_t(sent);
        // Told to netback 32 at a time (netback's direct path kicks the NIC as often).
        if (!g_nf.send(frame, sizeof frame, rt::now_ns() + 10 * kSecond, (sent + 1) % 32 != 0)) break;
    }
    bool flushed = g_nf.flush(rt::now_ns() + 10 * kSecond);
    uint64_t t = rt::now_ns() - t0;
    check(sent == n && flushed && g_nf.stats().tx_errors == 0, "net.bench_frames_sent", "%lu of %lu, %lu errors", sent,
          n, g_nf.stats().tx_errors);
    rt::printf("bench: %lu frames sent in %lu ns\n", sent, t);
}

// The UDP round-trip client: one datagram out, the matching echo back.
struct UdpRtt {
    uint32_t peer;
    uint16_t port;
    uint32_t want_seq;
    bool got;
};
UdpRtt g_rtt;
constexpr uint16_t kRttPort = 40007;
constexpr size_t kRttLen = 64;
constexpr unsigned kMaxRtt = 1000;
uint64_t g_rtt_ticks[kMaxRtt];

void rtt_reply(const net::Ipv4& ip, const net::Udp& udp, void*) {
    if (ip.src != g_rtt.peer || udp.sport != g_rtt.port || udp.len != kRttLen) return;
    uint32_t seq;
    __builtin_memcpy(&seq, udp.data, sizeof seq);
    if (seq == g_rtt.want_seq) g_rtt.got = true;
}

void udp_rtt(unsigned n, uint32_t peer, uint16_t port) {
    if (n > kMaxRtt) n = kMaxRtt;
    net::Mac mac;
    // The peer (a Linux guest, say) may still be booting: patiently.
    bool ok = g_ip.resolve(peer, mac, rt::now_ns() + 300 * kSecond, kSecond);
    check(ok, "net.rtt_peer_resolved");
    if (!ok) return;
    g_rtt = UdpRtt{peer, port, 0, false};
    g_ip.set_udp_hook(kRttPort, rtt_reply, nullptr);
    uint8_t data[kRttLen] = {};
    unsigned done = 0, lost = 0;
    // Until its echo server answers (it may bind after its address is up).
    for (uint32_t seq = 1; done < n && lost < 300; ++seq) {
        __builtin_memcpy(data, &seq, sizeof seq);
        g_rtt.want_seq = seq;
        g_rtt.got = false;
        uint64_t t0 = rt::rdtsc();
        if (!g_ip.send_udp(peer, mac, kRttPort, port, data, sizeof data) || !g_nf.flush(rt::now_ns() + kSecond)) break;
        uint64_t deadline = rt::now_ns() + kSecond;
        while (!g_rtt.got && rt::now_ns() < deadline) (void)g_ip.poll(deadline);
        uint64_t t = rt::rdtsc() - t0;
        if (g_rtt.got) g_rtt_ticks[done++] = t;
        else ++lost;
    }
    g_ip.set_udp_hook(0, nullptr, nullptr);
    check(done == n, "net.udp_rtt", "%u of %u round trips, %u lost", done, n, lost);
    (void)g_ip.send_udp(peer, mac, kRttPort, port, "moat-udp-done", 13);
    if (done == 0) return;
    // The median: insertion sort of at most kMaxRtt values.
    for (unsigned i = 1; i < done; ++i)
        for (unsigned j = i; j > 0 && g_rtt_ticks[j - 1] > g_rtt_ticks[j]; --j) {
            uint64_t x = g_rtt_ticks[j];
            g_rtt_ticks[j] = g_rtt_ticks[j - 1];
            g_rtt_ticks[j - 1] = x;
        }
    const char* name = "udp_rtt_insns";
    size_t name_len = __builtin_strlen(name);
    (void)rt::cmdline_value("bench-name", &name, &name_len);
    rt::printf("udp rtt: %u round trips, min %lu, median %lu, max %lu ticks\n", done, g_rtt_ticks[0],
               g_rtt_ticks[done / 2], g_rtt_ticks[done - 1]);
    if (done == n) rt::printf("BENCH %.*s %lu\n", int(name_len), name, g_rtt_ticks[done / 2]);
}

}  // namespace

void rt::main() {
    rt::events_init();
    check(bool(rt::xs_init()), "net.xenstore_connected");
    uint32_t addr = 0;
    if (!rt::cmdline_ipv4("ip", addr)) {
        rt::printf("FAIL net.ip: no ip=A.B.C.D on the command line\n");
        return;
    }
    bool up = g_nf.connect(0, rt::now_ns() + 60 * kSecond);
    check(up, "net.connected", "%s", g_nf.error());
    if (!up) {
        rt::printf("done, %u failed\n", rt::g_failed_checks);
        return;
    }
    const net::Mac& m = g_nf.mac();
    rt::printf("vif 0 up: mac %02x:%02x:%02x:%02x:%02x:%02x, back-end %u\n", m.b[0], m.b[1], m.b[2], m.b[3], m.b[4],
               m.b[5], g_nf.backend_id());
    g_ip.init(g_nf, addr);

    uint32_t gw = 0;
    if (rt::cmdline_ipv4("gateway", gw)) {
        net::Mac gmac;
        bool ok = g_ip.resolve(gw, gmac, rt::now_ns() + 5 * kSecond);
        if (rt::has_arg("check-gateway")) check(ok, "net.gateway_resolved");
        else rt::printf("gateway %s\n", ok ? "resolved" : "did not answer");
    } else {
        // Who-has for QEMU's gateway all the same, without waiting: the
        // switch and QEMU's user network learn our MAC from it.
        (void)g_ip.send_arp_request(0x0A000202);
    }

    uint64_t serve_deadline = rt::now_ns() + rt::cmdline_number("serve-s", 120) * kSecond;
    uint32_t peer = 0;
    if (rt::cmdline_ipv4("ping", peer)) {
        unsigned count = unsigned(rt::cmdline_number("count", 10));
        uint64_t interval = rt::cmdline_number("interval-ms", 0) * 1'000'000;
        // The peer may still be starting: its address resolved first, patiently.
        net::Mac pmac;
        bool resolved = g_ip.resolve(peer, pmac, rt::now_ns() + 60 * kSecond);
        check(resolved, "net.peer_resolved");
        unsigned until = unsigned(rt::cmdline_number("until", 0));
        unsigned want = until ? until : count;
        unsigned replies = 0, sent = 0;
        for (; sent < count && replies < want && resolved; ++sent) {
            replies += g_ip.ping(peer, 1, 2 * kSecond);
            if (interval) sleep_ns(interval);
        }
        check(replies == want, "net.ping_replies", "%u of %u", replies, want);
        rt::printf("ping: %u of %u replies (%u sent)\n", replies, want, sent);
        if (rt::has_arg("ping-again")) {
            unsigned again = g_ip.ping(peer, 5, 2 * kSecond);
            check(again == 5, "net.ping_after", "%u of 5", again);
        }
    }
    uint64_t crash_after = rt::cmdline_number("crash-after", 0);
    if (crash_after && !rt::xs_read_number("moat/boot-tsc")) {
        bool ok = serve([&] { return g_ip.stats().echo_requests_answered >= crash_after; }, serve_deadline);
        g_nf.flush(rt::now_ns() + kSecond);
        rt::printf("crashing on purpose after %lu answers (%s)\n", g_ip.stats().echo_requests_answered,
                   ok ? "as planned" : "deadline");
        rt::shutdown(abi::ShutdownReason::crash);
    }
    uint64_t answer = rt::cmdline_number("answer", 0);
    if (answer) {
        bool ok = serve([&] { return g_ip.stats().echo_requests_answered >= answer; }, serve_deadline);
        check(ok, "net.answered_pings", "%lu of %lu", g_ip.stats().echo_requests_answered, answer);
    }
    uint64_t udp_port = rt::cmdline_number("udp-echo", 0);
    if (udp_port && udp_port < 65536) {
        // The host's client ends with this datagram (tools/systest/udp_echo.cpp).
        bool until_done = rt::has_arg("udp-until-done");
        g_ip.set_udp_echo(uint16_t(udp_port), "moat-udp-done");
        uint64_t want = rt::cmdline_number("serve-udp", 1);
        rt::printf("udp echo ready on port %lu\n", udp_port);
        bool ok = serve([&] { return until_done ? g_ip.stats().udp_markers > 0 : g_ip.stats().udp_echoed >= want; },
                        serve_deadline);
        check(ok && g_ip.stats().udp_echoed >= want, "net.udp_echoed", "%lu echoed, %lu wanted",
              g_ip.stats().udp_echoed, want);
        rt::printf("udp echo: %lu datagrams echoed\n", g_ip.stats().udp_echoed);
    }
    uint64_t brecv = rt::cmdline_number("bench-recv", 0);
    if (brecv) {
        rt::printf("bench: receiving\n");
        bench_recv(brecv, serve_deadline);
    }
    uint64_t bsend = rt::cmdline_number("bench-send", 0);
    uint32_t bto = 0;
    if (bsend && rt::cmdline_ipv4("bench-to", bto)) bench_send(bsend, bto);

    uint64_t rtt_n = rt::cmdline_number("udp-rtt", 0);
    uint32_t rtt_to = 0;
    uint64_t rtt_port = rt::cmdline_number("udp-port", 7);
    if (rtt_n && rt::cmdline_ipv4("udp-to", rtt_to) && rtt_port && rtt_port < 65536)
        udp_rtt(unsigned(rtt_n), rtt_to, uint16_t(rtt_port));

    // What we sent is copied out before we go.
    check(g_nf.flush(rt::now_ns() + 10 * kSecond), "net.flushed");
    const auto& s = g_ip.stats();
    rt::printf("stats: %lu pings answered, %lu replies, %lu udp echoed, %lu arp answered, %lu dropped; "
               "netfront %lu sent, %lu received, %lu tx errors, %lu bad responses\n",
               s.echo_requests_answered, s.echo_replies_received, s.udp_echoed, s.arp_requests_answered, s.dropped,
               g_nf.stats().tx_frames, g_nf.stats().rx_frames, g_nf.stats().tx_errors, g_nf.stats().bad_responses);
    if (rt::has_arg("linger")) sleep_ns(2 * kSecond);   // a last ARP or echo for the peer
    g_nf.close();
    rt::printf("done, %u failed\n", rt::g_failed_checks);
}
