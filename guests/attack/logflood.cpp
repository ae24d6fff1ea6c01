// Finding 5: the hypervisor's log flooded by one domain. Any domain can fill
// the kernel log (a 64 KiB ring the console domain drains every 10 ms):
// through console_io writes, and through refusals it provokes on purpose
// (each bind_interdomain to a domain it holds no Event capability for, each
// grant map without a Grant capability, logs a "refused" line). Other
// domains' lines are then overwritten before the console domain reads them
// ("moat: console log overflowed"). The fixed hypervisor rate-limits each
// domain's lines and says how many it dropped ("moat: domain N (NAME): K log
// lines dropped (rate limit)"); the witness (guests/attack/logwitness.cpp)
// checks that its own lines all come through.
//
// Command line: ms=N (how long to flood, guest time; default 1500).

#include "common.hpp"

using namespace attack;

namespace {
char g_text[4096];
}

void rt::main() {
    rt::events_init();
    const uint64_t run_ns = rt::cmdline_number("ms", 1500) * kMs;
    for (unsigned i = 0; i < sizeof g_text; ++i) g_text[i] = (i % 128 == 127) ? '\n' : char('A' + i % 26);
    uint64_t start = rt::now_ns(), bytes = 0, writes_refused = 0, binds = 0, binds_refused = 0, maps = 0,
             maps_refused = 0, rounds = 0;
    rt::printf("flooding the hypervisor's log for %lu ms\n", run_ns / kMs);
    while (rt::now_ns() - start < run_ns) {
        ++rounds;
        if (rt::console_write(g_text, sizeof g_text) == 0) bytes += sizeof g_text;
        else ++writes_refused;
        for (unsigned k = 0; k < 8; ++k) {
            // The builder (domain 0): no Event capability, no Grant capability for it.
            ++binds;
            binds_refused += rt::bind_interdomain(0, 1) == kEperm;
            abi::GnttabMapGrantRef m{};
            m.host_addr = rt::ptr(g_text) & ~4095ull;
            m.flags = abi::kGntmapHostMap | abi::kGntmapReadonly;
            m.ref = k;
            m.dom = 0;
            ++maps;
            maps_refused += gnttab(abi::GnttabOp::map_grant_ref, &m) == 0 &&
                            m.status == int16_t(abi::GntStatus::permission_denied);
        }
    }
    rt::printf("%lu rounds: %lu bytes written to the hypervisor's console (%lu writes refused), %lu binds and %lu grant "
               "maps without a capability (%lu and %lu refused)\n",
               rounds, bytes, writes_refused, binds, maps, binds_refused, maps_refused);
    check(rounds > 10 && binds_refused == binds && maps_refused == maps, "attack.logflood.refusals_refused",
          "%lu of %lu binds, %lu of %lu maps refused", binds_refused, binds, maps_refused, maps);
    done();
}
