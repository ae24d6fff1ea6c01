#pragma once
// Alignment and bit helpers.

#include <cstddef>
#include <cstdint>

namespace base {

constexpr uint64_t kPageSize = 4096;
constexpr unsigned kPageShift = 12;

constexpr uint64_t align_down(uint64_t v, uint64_t a) { return v & ~(a - 1); }
constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
constexpr bool is_aligned(uint64_t v, uint64_t a) { return (v & (a - 1)) == 0; }
constexpr uint64_t pages_for(uint64_t bytes) { return (bytes + kPageSize - 1) >> kPageShift; }

// a + b without wrapping: false if it would overflow.
constexpr bool add_overflows(uint64_t a, uint64_t b) { return a + b < a; }

// [a, a+len) lies within [lo, hi).
constexpr bool range_within(uint64_t a, uint64_t len, uint64_t lo, uint64_t hi) {
    return !add_overflows(a, len) && a >= lo && a + len <= hi;
}

template <typename T, size_t N>
constexpr size_t countof(const T (&)[N]) { return N; }

}  // namespace base
