#pragma once
// The canary the victims of the attack tests fill their pages with
// (guests/victim, guests/dma_attack's victim): word i of a pattern no other
// domain can predict without reading it, mixed with a seed the victim takes
// from its TSC at start (a splitmix64 step).

#include <cstdint>

namespace canary {

inline uint64_t word(uint64_t seed, uint64_t i) {
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 29);
}

}  // namespace canary
