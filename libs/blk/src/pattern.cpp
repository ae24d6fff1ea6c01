// The block test pattern and checksum (include/blk/blk.hpp).

#include <blk/blk.hpp>

namespace blk {

namespace {

// splitmix64: a well-mixed 64-bit sequence from any start.
uint64_t mix(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void put64(uint8_t* p, uint64_t v) {
    for (unsigned i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}

}  // namespace

void pattern_sector(uint32_t seed, uint64_t sector, uint8_t* out) {
    put64(out, sector);
    for (unsigned i = 0; i < 4; ++i) out[8 + i] = uint8_t(seed >> (8 * i));
    uint64_t state = (uint64_t(seed) << 32) ^ (sector * 0x100000001b3ull) ^ 0x5a5a5a5aull;
    // Bytes 12..15, then 62 words of 8.
    uint64_t w = mix(state);
    for (unsigned i = 0; i < 4; ++i) out[12 + i] = uint8_t(w >> (8 * i));
    for (unsigned off = 16; off < kSectorBytes; off += 8) put64(out + off, mix(state));
}

bool pattern_matches(uint32_t seed, uint64_t sector, const uint8_t* data, size_t* offset) {
    uint8_t want[kSectorBytes];
    pattern_sector(seed, sector, want);
    for (size_t i = 0; i < kSectorBytes; ++i)
        if (data[i] != want[i]) {
            if (offset) *offset = i;
            return false;
        }
    return true;
}

uint64_t checksum(uint64_t h, const uint8_t* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        h ^= data[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

}  // namespace blk
