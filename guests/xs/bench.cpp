// XenStore and domain-boot figures, in QEMU under -icount shift=0 (one TSC
// tick per guest instruction):
//   role=rtt   xenstore_rtt_insns: one XS_READ round trip through the store
//              domain (best batch of 50, averaged); with `n1000` on the command
//              line it is xenstore_rtt_insns_n1000 (the census manifest that
//              has a thousand idle guests beside it), and it then stays up as
//              role=idle does, so the census counts it too;
//   role=boot  domain_boot_insns: from the builder starting this domain (its
//              restart: the builder leaves the TSC it started at in
//              moat/boot-tsc) to the domain having written its first node.
//              The first boot only powers off, so the builder restarts it
//              with the services already running.
//   role=idle  for domains_booted_max: reports itself up (data/up), then
//              waits for Xen's control/shutdown request and obeys it.

#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

namespace {

void rtt() {
    bool ok = bool(rt::xs_write("data/k", "value"));
    char buf[16];
    uint64_t best = ~0ull;
    constexpr unsigned kBatch = 50;
    for (unsigned b = 0; b < 20 && ok; ++b) {
        uint64_t t0 = rt::rdtsc();
        for (unsigned i = 0; i < kBatch; ++i) ok &= bool(rt::xs_read("data/k", buf, sizeof buf));
        uint64_t t = rt::rdtsc() - t0;
        if (t < best) best = t;
    }
    rt::check(ok, "xs_bench.reads");
    if (ok) rt::printf("BENCH xenstore_rtt_insns%s %lu\n", rt::has_arg("n1000") ? "_n1000" : "", best / kBatch);
}

void boot() {
    auto t = rt::xs_read_number("moat/boot-tsc");
    if (!t) return;   // first boot: power off, come back as a restart
    bool ok = bool(rt::xs_write("data/state", "connected"));
    uint64_t t1 = rt::rdtsc(), t0 = *t;
    rt::check(ok && t0 && t1 > t0, "xs_bench.boot_connected");
    if (ok && t1 > t0) rt::printf("BENCH domain_boot_insns %lu\n", t1 - t0);
}

void idle() {
    bool up = bool(rt::xs_write("data/up", "1")) && bool(rt::xs_watch("control/shutdown", "shutdown"));
    if (!up) {
        rt::printf("FAIL xs_bench.idle_up\n");
        return;
    }
    char buf[16];
    for (;;) {
        rt::XsWatchEvent ev;
        if (!rt::xs_wait_watch_event(ev)) return;
        auto r = rt::xs_read("control/shutdown", buf, sizeof buf);
        if (r && *r == 8 && __builtin_memcmp(buf, "poweroff", 8) == 0) return;   // powers off
    }
}

}  // namespace

void rt::main() {
    rt::events_init();
    rt::check(bool(rt::xs_init()), "xs_bench.connected");
    if (rt::has_arg("role=rtt")) {
        rtt();
        if (rt::has_arg("n1000")) idle();
    }
    else if (rt::has_arg("role=boot")) boot();
    else if (rt::has_arg("role=idle")) idle();
}
