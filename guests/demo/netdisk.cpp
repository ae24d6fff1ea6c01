// The demo guests' network and disk (examples/demo.textproto): vif 0 through
// netback with rt's IPv4, and vbd 0 through blkback. Only what the manifest
// gives a guest is used: without a vif or a vbd these do nothing.

#include "common.hpp"

#include <rt/blkfront.hpp>
#include <rt/ipv4.hpp>
#include <rt/netfront.hpp>
#include <rt/time.hpp>

namespace demo {

namespace {

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint32_t kGateway = 0x0A000202;   // 10.0.2.2, QEMU's user network

rt::Netfront g_nf;
rt::Ipv4Stack g_ip;
rt::Blkfront g_disk;
alignas(4096) uint8_t g_sector[512];

bool has_device(const char* dir) {
    char list[64];
    auto r = rt::xs_directory(dir, list, sizeof list);
    return r && *r > 0;
}

void print_ip(const char* what, uint32_t a) {
    rt::printf("%s %u.%u.%u.%u\n", what, a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

// The counter's sector: a magic word, then the count, both as text so that
// `head -c 64` on the image shows them.
constexpr char kMagic[] = "moat-demo-counter ";

}  // namespace

bool net_up() {
    if (!has_device("device/vif")) return false;
    uint32_t addr = 0;
    check(rt::cmdline_ipv4("ip", addr), "demo.net_address");
    bool up = g_nf.connect(0, rt::now_ns() + 60 * kSecond);
    check(up, "demo.net_connected", "%s", g_nf.error());
    if (!up) return false;
    g_ip.init(g_nf, addr);
    print_ip("vif 0 up through netback, address", addr);
    // QEMU's user network (and netback's switch) learn our MAC from this.
    (void)g_ip.send_arp_request(kGateway);
    return true;
}

void net_ping_peer() {
    uint32_t peer = 0;
    if (!g_nf.connected() || !rt::cmdline_ipv4("ping", peer)) return;
    unsigned count = unsigned(rt::cmdline_number("count", 10));
    net::Mac mac;
    bool resolved = g_ip.resolve(peer, mac, rt::now_ns() + 60 * kSecond);
    check(resolved, "demo.net_peer_resolved");
    unsigned replies = resolved ? g_ip.ping(peer, count, 5 * kSecond) : 0;
    check(replies == count, "demo.net_ping_replies", "%u of %u", replies, count);
    rt::printf("pinged %u.%u.%u.%u through netback: %u of %u replies\n", peer >> 24, (peer >> 16) & 255,
               (peer >> 8) & 255, peer & 255, replies, count);
}

void net_serve() {
    if (!g_nf.connected()) return;
    uint64_t port = rt::cmdline_number("udp-echo", 0);
    if (stay()) {
        // The live demo: serve until asked to power off, whatever the host
        // sends ("moat-udp-done" included: anyone may send it). The
        // network's wait is cut into slices so that a request on XenStore
        // is seen within one: a guest sleeps on one port at a time.
        bool watching = watch_shutdown();
        check(watching, "demo.stay_watching_shutdown");
        if (port && port < 65536) {
            g_ip.set_udp_echo(uint16_t(port), nullptr);
            rt::printf("udp echo on port %lu (from the host: the manifest's udp_forward) until asked to power off\n",
                       port);
        }
        constexpr uint64_t kSlice = kSecond / 4;
        while (watching && !poweroff_pending()) (void)g_ip.poll(rt::now_ns() + kSlice);
        if (watching) rt::printf("asked to power off (control/shutdown)\n");
        // ping's pings come before its "what to try" lines, so a person
        // following them finds these answered.
        uint64_t answer = rt::cmdline_number("answer", 0);
        check(g_ip.stats().echo_requests_answered >= answer, "demo.net_served", "%lu of %lu pings answered",
              g_ip.stats().echo_requests_answered, answer);
    } else {
        uint64_t deadline = rt::now_ns() + rt::cmdline_number("serve-s", 60) * kSecond;
        if (port && port < 65536) {
            // The host's test client ends with this datagram; so may a reader.
            g_ip.set_udp_echo(uint16_t(port), "moat-udp-done");
            rt::printf("udp echo on port %lu (from the host: the manifest's udp_forward) for %lu s, or until "
                       "\"moat-udp-done\"\n",
                       port, rt::cmdline_number("serve-s", 60));
        }
        // Pings from the peer (`answer=N` of them) and datagrams from the host,
        // until both are done or the time is up.
        uint64_t answer = rt::cmdline_number("answer", 0);
        auto done = [&] {
            const auto& s = g_ip.stats();
            return s.echo_requests_answered >= answer && (!port || s.udp_markers > 0);
        };
        while (rt::now_ns() < deadline && !done()) (void)g_ip.poll(deadline);
        check(done(), "demo.net_served", "%lu of %lu pings answered%s", g_ip.stats().echo_requests_answered, answer,
              port && !g_ip.stats().udp_markers ? ", no \"moat-udp-done\" from the host" : "");
    }
    const auto& s = g_ip.stats();
    rt::printf("net: %lu pings answered, %lu datagrams echoed\n", s.echo_requests_answered, s.udp_echoed);
}

void net_down() {
    if (!g_nf.connected()) return;
    check(g_nf.flush(rt::now_ns() + 10 * kSecond), "demo.net_flushed");
    g_nf.close();
}

void disk_counter() {
    if (!has_device("device/vbd")) return;
    bool up = g_disk.connect(0, rt::now_ns() + 60 * kSecond);
    check(up, "demo.disk_connected", "%s", g_disk.error());
    if (!up) return;
    int r = g_disk.read(0, 1, g_sector);
    unsigned long count = 0;
    constexpr size_t kLen = sizeof kMagic - 1;
    if (r == 0 && __builtin_memcmp(g_sector, kMagic, kLen) == 0)
        for (const uint8_t* p = g_sector + kLen; *p >= '0' && *p <= '9' && count < 1'000'000'000; ++p)
            count = count * 10 + (*p - '0');
    ++count;
    for (auto& b : g_sector) b = 0;
    int n = base::snformat(reinterpret_cast<char*>(g_sector), sizeof g_sector, "%s%lu\n", kMagic, count);
    int w = r == 0 && n > 0 ? g_disk.write(0, 1, g_sector) : -1;
    int f = w == 0 ? g_disk.flush() : -1;
    check(r == 0 && w == 0 && f == 0, "demo.disk_counter_written", "read %d write %d flush %d", r, w, f);
    if (f == 0) rt::printf("disk: this system has started %lu time(s) (sector 0 of its disk)\n", count);
    (void)g_disk.close(rt::now_ns() + 10 * kSecond);
}

}  // namespace demo
