// A CPU-bound domain for the scheduler test: counts units of fixed work until
// a common deadline in system time (`until_ms=`, from its command line), then
// reports them with its weight (`weight=`): "SHARE sched <weight> <units>".
// Several of them with different weights must end up with shares of the CPU
// proportional to their weights.

#include <rt/console.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>

namespace {
uint64_t arg(const char* name, uint64_t dflt) {
    const char* s = reinterpret_cast<const char*>(rt::start_info().cmd_line);
    for (const char* p = s; *p; ++p) {
        if (p != s && p[-1] != ' ') continue;
        const char* n = name;
        const char* q = p;
        while (*n && *q == *n) ++n, ++q;
        if (*n || *q != '=') continue;
        uint64_t v = 0;
        for (++q; *q >= '0' && *q <= '9'; ++q) v = v * 10 + uint64_t(*q - '0');
        return v;
    }
    return dflt;
}
}  // namespace

void rt::main() {
    uint64_t weight = arg("weight", 256), until = arg("until_ms", 2000) * 1'000'000ull;
    rt::printf("hog: running (weight %lu)\n", weight);
    uint64_t units = 0;
    volatile uint64_t sink = 0;
    while (rt::now_ns() < until) {
        for (unsigned i = 0; i < 1000; ++i) sink = sink + i;
        ++units;
    }
    rt::printf("SHARE sched %lu %lu\n", weight, units);
}
