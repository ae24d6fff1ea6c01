// netback's switch and event loop (netback.hpp).
//
// Command line: bench-direct=N sends N 64-byte frames straight to the NIC
// before serving (in batches of 1,000) and prints `BENCH net_direct_pps <n>`
// (frames per second of guest time, from the fastest batch);
// stats-every=N prints the counters every N switched frames.

#include "netback.hpp"

#include <net/switch.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/ipv4.hpp>
#include <rt/mm.hpp>
#include <rt/netfront.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/traps.hpp>
#include <rt/xenbus.hpp>

namespace netback {

namespace {

constexpr uint64_t kMacAge = 300'000'000'000;   // 5 minutes of guest time, as 802.1D's default
net::LearningSwitch g_switch(kMacAge);
uint64_t g_switched, g_dropped, g_flooded;

void to_port(unsigned port, const uint8_t* frame, size_t len) {
    if (port == kNicPort) (void)nic_send(frame, len);
    else vif_deliver(port - 1, frame, len);
}

bool on_page_fault(rt::TrapFrame&) {
    uint64_t va = rt::vcpu_info().arch.cr2 & ~uint64_t(4095);
    return vifs_fault(va);
}

}  // namespace

uint64_t now() { return rt::now_ns(); }

void forget_port_of(unsigned slot) { g_switch.forget_port(1 + slot); }

void deliver(const uint8_t* frame, size_t len, unsigned in_port) {
    net::Forward f = g_switch.decide(frame, len, in_port, now());
    ++g_switched;
    switch (f.kind) {
    case net::Forward::drop:
        ++g_dropped;
        return;
    case net::Forward::unicast:
        if (f.port == kNicPort ? nic_up() : vif_connected(f.port - 1)) to_port(f.port, frame, len);
        else ++g_dropped;
        return;
    case net::Forward::flood:
        ++g_flooded;
        if (in_port != kNicPort && nic_up()) to_port(kNicPort, frame, len);
        for (unsigned s = 0; s < kMaxVifs; ++s)
            if (1 + s != in_port && vif_connected(s)) to_port(1 + s, frame, len);
        return;
    }
}

}  // namespace netback

using namespace netback;

void rt::main() {
    rt::events_init();
    rt::set_trap_handler(14, on_page_fault);
    vifs_init();
    if (!rt::xs_init()) {
        rt::printf("no XenStore\n");
        return;
    }
    bool nic = nic_open();
    uint64_t bench = rt::cmdline_number("bench-direct", 0);
    if (nic && bench) {
        constexpr unsigned kBatch = 1000;   // as the receiving guest's windows (guests/net)
        uint64_t ns = nic_bench(unsigned(bench), 64, kBatch);
        if (ns) rt::printf("BENCH net_direct_pps %lu\n", uint64_t(kBatch) * 1'000'000'000 / ns);
        else rt::printf("FAIL netback.bench_direct\n");
    }
    uint64_t stats_every = rt::cmdline_number("stats-every", 0), next_stats = stats_every;

    (void)rt::xs_watch("backend/vif", "vif");
    (void)rt::xs_watch("@releaseDomain", "release");
    vifs_scan();
    rt::printf("serving (nic %s)\n", nic ? "up" : "absent");

    uint32_t ports[16];
    for (;;) {
        // XenStore: whatever changed, look again.
        bool rescan = false, released = false;
        rt::XsWatchEvent ev;
        while (rt::xs_next_watch_event(ev)) {
            if (__builtin_strcmp(ev.token, "release") == 0) released = true;
            else rescan = true;
        }
        if (released) vifs_check_released();
        if (rescan) vifs_scan();

        bool more = nic_poll();
        more |= vifs_poll();
        rx_flush();
        vifs_notify();
        nic_kick();
        nic_irq_end();
        if (stats_every && g_switched >= next_stats) {
            next_stats = g_switched + stats_every;
            rt::printf("switch: %lu frames, %lu flooded, %lu dropped, %u MACs\n", g_switched, g_flooded, g_dropped,
                       g_switch.size(now()));
            nic_print_stats();
            vifs_print_stats();
        }
        if (more) continue;

        unsigned n = 0;
        ports[n++] = rt::xs_port();
        long irq = nic_irq_port();
        if (irq > 0) ports[n++] = uint32_t(irq);
        n += vif_ports(ports + n, 16 - n);
        uint64_t which = rt::wait_ports(ports, n, 0);
        if (irq > 0 && (which & 2)) nic_irq_begin();
    }
}
