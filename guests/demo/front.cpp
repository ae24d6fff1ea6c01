// The demo's front-end ("ping"): learns its back-end from XenStore, grants it
// a ring page and offers it a port, and exchanges requests with it; then
// pings pong through netback and counts the system's starts on its disk.
// With `stay` (the live demo) it then says what to try and stays up until
// asked to power off.

#include "common.hpp"

#include <rt/time.hpp>

using namespace demo;

namespace {
alignas(4096) uint8_t g_ring_page[4096];
constexpr uint64_t kWaitNs = 60'000'000'000;   // guest time, generous
}  // namespace

void rt::main() {
    rt::events_init();
    check(bool(rt::xs_init()), "demo.front_xenstore_connected");
    long self = read_number("domid");
    char dir[64], buf[256], path[128];
    auto list = rt::xs_directory("device/ring", dir, sizeof dir);
    const char* devid = list && *list ? rt::xs_next_name(dir, *list, nullptr) : nullptr;
    if (!list) rt::printf("device/ring: %s\n", rt::xs_error_name(list.error()));
    check(self >= 0 && devid, "demo.front_found_its_device", "domid %ld", self);
    if (!devid) return;
    base::snformat(path, sizeof path, "device/ring/%s/backend-id", devid);
    long be = read_number(path);
    base::snformat(path, sizeof path, "device/ring/%s/backend", devid);
    auto bpath = rt::xs_read(path, buf, sizeof buf);
    check(be >= 0 && bpath, "demo.front_found_its_backend", "backend %ld", be);
    rt::printf("domain %ld, back-end is domain %ld\n", self, be);

    grant::Table& gt = rt::grant_table();
    uint64_t mfn = rt::mfn_of_pfn((rt::ptr(g_ring_page) - rt::kVirtBase) >> 12);
    check(gt.size() > 0 && gt.grant_access(kRingRef, uint16_t(be), uint32_t(mfn), false), "demo.front_granted_ring");
    Front front;
    front.init(g_ring_page, sizeof g_ring_page);
    long port = rt::alloc_unbound(uint16_t(be));
    check(port > 0, "demo.front_offered_port", "port %ld", port);

    // ring-ref, event-channel and the state change in one transaction,
    // retried on EAGAIN as xenbus drivers do.
    bool published = false;
    for (unsigned attempt = 0; attempt < 10 && !published; ++attempt) {
        auto tx = rt::xs_transaction_start();
        if (!tx) break;
        char value[24];
        bool ok = true;
        base::snformat(path, sizeof path, "device/ring/%s/ring-ref", devid);
        base::snformat(value, sizeof value, "%u", kRingRef);
        ok &= bool(rt::xs_write(path, value, *tx));
        base::snformat(path, sizeof path, "device/ring/%s/event-channel", devid);
        base::snformat(value, sizeof value, "%ld", port);
        ok &= bool(rt::xs_write(path, value, *tx));
        base::snformat(path, sizeof path, "device/ring/%s/state", devid);
        ok &= bool(rt::xs_write(path, "3", *tx));
        auto end = rt::xs_transaction_end(*tx, ok);
        published = ok && end;
        if (!end && end.error() != rt::XsError::again) break;
    }
    check(published, "demo.front_published_ring");

    base::snformat(path, sizeof path, "%s/state", buf);
    bool connected = wait_for_state(path, kConnected, rt::now_ns() + kWaitNs);
    check(connected, "demo.front_backend_connected");
    if (!connected) return;

    unsigned rounds = arg("rounds", 500), ok = 0;
    for (unsigned n = 0; n < rounds; ++n) {
        Request q{n, {}};
        for (unsigned i = 0; i < sizeof q.payload; ++i) q.payload[i] = uint8_t(n + i);
        front.push_request(q);
        if (front.push_requests_and_check_notify()) rt::notify(uint32_t(port));
        Response p;
        while (!front.take_response(p))
            if (!front.final_check_for_responses()) rt::wait_port(uint32_t(port));
        bool good = p.seq == n;
        for (unsigned i = 0; i < sizeof p.payload; ++i) good &= p.payload[i] == uint8_t(n + i + 1);
        ok += good;
    }
    check(ok == rounds && !front.broken(), "demo.ring_round_trips", "%u of %u right", ok, rounds);
    Request quit{kQuit, {}};
    front.push_request(quit);
    front.push_requests();
    rt::notify(uint32_t(port));
    base::snformat(path, sizeof path, "device/ring/%s/state", devid);
    (void)rt::xs_write(path, "6");

    // Then its network and disk, as the manifest gives them: pong, through
    // netback; and the count of the system's starts, through blkback.
    if (net_up()) {
        net_ping_peer();
        net_down();
    }
    disk_counter();
    rt::printf("done, %u failed\n", rt::g_failed_checks);
    if (stay()) {
        // ping is the last of the demo's guests to finish its work (its pings
        // need pong serving), so the system is up for whoever reads this.
        // The host's side of the UDP forward is the manifest's machine's,
        // which a guest cannot see: `host-udp=P` tells it.
        rt::printf("the system is up. From another terminal, try: out/bin/moat list; out/bin/moat xenstore read "
                   "name (the toolstack's own XenStore)\n");
        if (uint64_t udp = rt::cmdline_number("host-udp", 0))
            rt::printf("pong echoes UDP from the host: echo hello | nc -u -w1 127.0.0.1 %lu\n", udp);
        rt::printf("to end it: out/bin/moat shutdown (asks ping and pong to power off), Ctrl-] q here (the same), "
                   "or Ctrl-A X (stops QEMU at once)\n");
        stay_until_poweroff();
    }
}
