#pragma once
// The test-guest convention: one console line per check, "PASS name" or
// "FAIL name: why". The system-test runner reads them.

#include <base/format.hpp>
#include <rt/console.hpp>

namespace rt {

// Failed checks so far in this domain.
inline unsigned g_failed_checks;

inline void check_report(bool ok, const char* name, const char* why) {
    if (ok) {
        printf("PASS %s\n", name);
        return;
    }
    printf("FAIL %s: %s\n", name, why);
    ++g_failed_checks;
}

// Integers travel as long (so "%ld"/"%u" both read them right), anything
// else (strings) as it is.
template <typename T>
inline auto check_arg(T v) {
    if constexpr (__is_integral(T) || __is_enum(T)) return long(v);
    else return v;
}

// `fmt` (printf-style) says why, on failure.
template <typename... A>
inline void check(bool ok, const char* name, const char* fmt = "", A... args) {
    char why[200] = {};
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wformat-security"
#pragma clang diagnostic ignored "-Wformat-nonliteral"
    if (!ok) base::snformat(why, sizeof why, fmt, check_arg(args)...);
#pragma clang diagnostic pop
    check_report(ok, name, why);
}

}  // namespace rt
