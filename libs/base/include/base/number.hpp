#pragma once
// Decimal numbers as Xen's text protocols write them (XenStore values,
// command lines): digits only, no sign, no leading zero (but "0"), no
// overflow. `n` bytes at `s`, no terminator needed.

#include <cstddef>
#include <cstdint>

namespace base {

inline bool parse_u64(const char* s, size_t n, uint64_t& v) {
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0')) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = static_cast<uint64_t>(s[i] - '0');
        if (x > (~uint64_t{0} - d) / 10) return false;
        x = x * 10 + d;
    }
    v = x;
    return true;
}

inline bool parse_u32(const char* s, size_t n, uint32_t& v) {
    uint64_t x;
    if (!parse_u64(s, n, x) || x > 0xffffffffu) return false;
    v = static_cast<uint32_t>(x);
    return true;
}

}  // namespace base
