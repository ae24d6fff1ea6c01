// Finding 5, the witness: a domain allowed to write to the hypervisor's
// console (DebugConsole) writes `lines=N` numbered lines there, one every
// `period_ms` (default 40 x 50 ms), while guests/attack/logflood.cpp floods
// the log. The test expects every one of them on the console: none
// overwritten in the kernel's log ring before the console domain read it.

#include "common.hpp"

using namespace attack;

void rt::main() {
    rt::events_init();
    unsigned lines = unsigned(rt::cmdline_number("lines", 40));
    uint64_t period = rt::cmdline_number("period_ms", 50) * kMs;
    sleep_ns(100 * kMs);   // the flood is under way by now
    unsigned written = 0;
    for (unsigned i = 1; i <= lines; ++i) {
        char line[48];
        size_t n = base::snformat(line, sizeof line, "kline %02u of %u\n", i, lines);
        written += rt::console_write(line, n) == 0;
        sleep_ns(period);
    }
    check(written == lines, "attack.logflood.witness_wrote", "%u of %u lines accepted", written, lines);
    done();
}
