// The victim of the adversarial tests: it runs beside an attacker and shows
// whether the attack reached it. It keeps
//  - a canary: private pages filled with a pattern only it knows, checked
//    again and again and at the end (an attacker who maps or writes any frame
//    of the machine would find them);
//  - its liveness: a timer every `period_us` (default 1 ms); the longest gap
//    between two consecutive ticks is how long the hypervisor kept it off the
//    CPU (a long non-preemptible operation of another domain shows up here).
//    Run under -icount, guest time is instructions: the figure repeats.
//  - optionally (`xs`), XenStore service: every 100 ticks a write and a read
//    of its own node, which must succeed whatever another domain does to the
//    store. The time those take is not counted as a gap.
//
// Command line: ms=N (how long to run, system time; default 3000),
// period_us=N, max_gap_us=N (the liveness bound, default 20000), xs.
// It prints "victim: ready" first and, at the end, one line of figures and
// PASS/FAIL lines: victim.canary_intact, victim.live, victim.xenstore_served.

#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

#include <abi/event_channel.hpp>
#include <base/format.hpp>

#include "../canary.hpp"

namespace {

constexpr unsigned kCanaryPages = 4;
alignas(4096) volatile uint64_t g_canary[kCanaryPages * 512];

// A pattern no other domain can predict without reading it: mixed with the
// TSC at start.
uint64_t g_seed;
uint64_t pattern(uint64_t i) { return canary::word(g_seed, i); }

void fill_canary() {
    for (uint64_t i = 0; i < kCanaryPages * 512; ++i) g_canary[i] = pattern(i);
}

// The first word that differs, or -1.
long canary_damage() {
    for (uint64_t i = 0; i < kCanaryPages * 512; ++i)
        if (g_canary[i] != pattern(i)) return long(i);
    return -1;
}

}  // namespace

void rt::main() {
    rt::events_init();
    const uint64_t run_ns = rt::cmdline_number("ms", 3000) * 1'000'000;
    const uint64_t period = rt::cmdline_number("period_us", 1000) * 1000;
    const uint64_t max_gap = rt::cmdline_number("max_gap_us", 20000) * 1000;
    const bool use_xs = rt::has_arg("xs");

    g_seed = rt::rdtsc() * 0x2545F4914F6CDD1Dull;
    fill_canary();

    abi::EvtchnBindVirq bv{uint32_t(abi::Virq::timer), 0, 0};
    if (long r = rt::evtchn_op(abi::EvtchnOp::bind_virq, &bv); r != 0) {
        rt::printf("FAIL victim.live: cannot bind its timer: %ld\n", r);
        return;
    }
    bool xs_ok = use_xs && bool(rt::xs_init());
    char node[64] = "data/victim-beat";
    unsigned xs_tries = 0, xs_served = 0;

    rt::printf("victim: ready\n");
    const uint64_t start = rt::now_ns();
    uint64_t last = start, worst = 0, worst_at = 0;
    unsigned ticks = 0;
    long damaged = -1;
    while (rt::now_ns() - start < run_ns) {
        rt::set_timer(rt::now_ns() + period);
        rt::wait_port(bv.port);
        uint64_t now = rt::now_ns();
        ++ticks;
        if (now - last > worst) {
            worst = now - last;
            worst_at = now - start;
        }
        if (ticks % 64 == 0 && damaged < 0) damaged = canary_damage();
        if (use_xs && ticks % 100 == 0) {
            ++xs_tries;
            char value[24], back[24] = {};
            base::snformat(value, sizeof value, "%u", ticks);
            if (xs_ok && rt::xs_write(node, value)) {
                auto r = rt::xs_read(node, back, sizeof back - 1);
                if (r && *r < sizeof back) {
                    back[*r] = 0;
                    bool same = true;
                    for (size_t i = 0; value[i] || back[i]; ++i) same &= value[i] == back[i];
                    xs_served += same;
                }
            }
            now = rt::now_ns();   // the store's round trips are not a gap
        }
        last = now;
    }
    if (damaged < 0) damaged = canary_damage();
    rt::printf("victim: %u ticks in %lu ms, longest gap %lu us (%lu ms in)\n", ticks,
               (rt::now_ns() - start) / 1'000'000, worst / 1000, worst_at / 1'000'000);
    rt::check(damaged < 0, "victim.canary_intact", "word %ld of its canary changed", damaged);
    rt::check(ticks > 0 && worst < max_gap, "victim.live", "longest gap %lu us (limit %lu us)", worst / 1000,
              max_gap / 1000);
    if (use_xs)
        rt::check(xs_tries > 0 && xs_served == xs_tries, "victim.xenstore_served", "%u of %u writes read back",
                  xs_served, xs_tries);
    rt::printf("victim: done, %u failed\n", rt::g_failed_checks);
}
