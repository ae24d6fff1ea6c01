#pragma once
// The test-guest convention: one console line per check, "PASS name" or
// "FAIL name: why". The system-test runner reads them.

#include <base/format.hpp>
#include <rt/console.hpp>

namespace rt {

// Failed checks so far in this domain.
inline unsigned g_failed_checks;

// `fmt` (printf-style, up to two long arguments) says why, on failure.
inline void check(bool ok, const char* name, const char* fmt = "", long a = 0, long b = 0) {
    if (ok) {
        printf("PASS %s\n", name);
        return;
    }
    char why[160];
    base::snformat(why, sizeof why, fmt, a, b);
    printf("FAIL %s: %s\n", name, why);
    ++g_failed_checks;
}

}  // namespace rt
