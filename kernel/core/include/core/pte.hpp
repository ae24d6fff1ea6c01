#pragma once
// x86-64 page-table entries as the core reads and writes them.

#include <cstdint>

namespace core::pte {

constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kWritable = 1ull << 1;
constexpr uint64_t kUser = 1ull << 2;
constexpr uint64_t kPwt = 1ull << 3;
constexpr uint64_t kPcd = 1ull << 4;
constexpr uint64_t kAccessed = 1ull << 5;
constexpr uint64_t kDirty = 1ull << 6;
constexpr uint64_t kPse = 1ull << 7;      // in L2/L3: a superpage; in L1: PAT
constexpr uint64_t kGlobal = 1ull << 8;
constexpr uint64_t kAvail = 7ull << 9;
constexpr uint64_t kNx = 1ull << 63;
constexpr uint64_t kAddrMask = 0x000FFFFFFFFFF000ull;

constexpr uint64_t mfn(uint64_t e) { return (e & kAddrMask) >> 12; }
constexpr uint64_t make(uint64_t mfn, uint64_t flags) { return (mfn << 12) | flags; }

constexpr unsigned index(uint64_t va, unsigned level) {  // level 1..4
    return static_cast<unsigned>((va >> (12 + 9 * (level - 1))) & 511);
}

}  // namespace core::pte
