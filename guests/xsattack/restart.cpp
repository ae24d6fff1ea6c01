// The guest the builder restarts (restart policy ON_CRASH) while the
// fillers (fill.cpp) hold the store (tests/system/xenstore_quota.cmake).
// Each start it connects to XenStore, waits until `fillers` fillers say
// they are full (data/xsfill-state of the domains it may read), then takes
// nodes until refused and reads them back, and crashes. It has no debug
// console: its lines reach the machine's console only through the console
// domain, so they show that the console attached it again after every
// restart ("up (first start)", then "up (restarted)" each time).
//
// Before the fix, the builder's nodes for the restarted domain could not be
// written into a full store, and a restarted guest never got its console.
//
// Command line: fillers=N (default 4), nodes=N (at least this many must be
// served; default 40).
// PASS lines: xsrestart.connected, xsrestart.store_full,
// xsrestart.reserve_served, xsrestart.refused_beyond_reserve.

#include "common.hpp"

using namespace xsattack;
using rt::check;
using rt::XsError;

namespace {

constexpr unsigned kScan = 64;          // domain ids looked at for fillers
constexpr unsigned kNodeQuota = 1000;   // Xen's, services/xenstore/include/xenstore/config.hpp

unsigned fillers_full() {
    char path[64], buf[8];
    unsigned full = 0;
    for (unsigned d = 1; d < kScan; ++d) {
        base::snformat(path, sizeof path, "/local/domain/%u/%s", d, kStateNode);
        auto r = rt::xs_read(path, buf, sizeof buf);
        full += r && *r == 4 && __builtin_memcmp(buf, "full", 4) == 0;
    }
    return full;
}

}  // namespace

void rt::main() {
    const unsigned want_fillers = unsigned(rt::cmdline_number("fillers", 4));
    const unsigned want_nodes = unsigned(rt::cmdline_number("nodes", 40));
    check(bool(rt::xs_init()), "xsrestart.connected");
    // Only a restart finds moat/boot-tsc, which the builder writes then.
    char tsc[32];
    bool restarted = bool(rt::xs_read("moat/boot-tsc", tsc, sizeof tsc));
    rt::printf("up (%s)\n", restarted ? "restarted" : "first start");

    const uint64_t deadline = rt::now_ns() + 120'000 * kMs;
    unsigned full = 0;
    while ((full = fillers_full()) < want_fillers && rt::now_ns() < deadline) sleep_ns(20 * kMs);
    check(full >= want_fillers, "xsrestart.store_full", "%u of %u fillers full", full, want_fillers);

    // Nodes until refused: its reserve, no more (the fillers took the rest).
    char path[32], buf[16], value[16];
    unsigned made = 0, back = 0;
    rt::XsStatus last;
    for (; made < kNodeQuota; ++made) {
        base::snformat(path, sizeof path, "data/r%u", made);
        base::snformat(value, sizeof value, "%u", made);
        last = rt::xs_write(path, value);
        if (!last) break;
    }
    for (unsigned i = 0; i < made; ++i) {
        base::snformat(path, sizeof path, "data/r%u", i);
        base::snformat(value, sizeof value, "%u", i);
        auto r = rt::xs_read(path, buf, sizeof buf);
        back += r && *r < sizeof buf && __builtin_memcmp(buf, value, *r + 1) == 0;
    }
    rt::printf("%u nodes served and read back, then %s\n", made, name_of(last));
    check(made >= want_nodes && back == made, "xsrestart.reserve_served", "%u nodes, %u read back", made, back);
    check(!last && last.error() == XsError::quota && made < kNodeQuota / 10, "xsrestart.refused_beyond_reserve",
          "%u nodes, then %s", made, name_of(last));
    done();
    rt::shutdown(abi::ShutdownReason::crash);
}
