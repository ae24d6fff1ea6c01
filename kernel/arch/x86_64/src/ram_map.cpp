// Usable RAM from the firmware's memory map: see arch/ram_map.hpp.

#include <arch/ram_map.hpp>

namespace arch {

namespace {

constexpr uint64_t kFrame = 4096;

struct Span {
    uint64_t lo, hi;   // [lo, hi), frame-aligned, lo < hi
};

// [base, base + length) clipped to physical addresses, without overflow.
Span clip(const MapEntry& e) {
    uint64_t lo = e.base < kMaxPhysAddr ? e.base : kMaxPhysAddr;
    uint64_t hi = e.length > kMaxPhysAddr - lo ? kMaxPhysAddr : lo + e.length;
    return Span{lo, hi};
}

}  // namespace

unsigned usable_ram(const MapEntry* map, unsigned n, MemRegion* out, unsigned cap) {
    if (n > kMaxMapEntries) n = kMaxMapEntries;

    // RAM entries shrunk to whole frames, sorted by start (insertion sort:
    // n is small and this runs once).
    // Taking out each non-RAM entry below splits at most one span in two,
    // so 2 * kMaxMapEntries spans always suffice.
    Span ram[2 * kMaxMapEntries];
    unsigned nram = 0;
    for (unsigned i = 0; i < n; ++i) {
        if (map[i].type != kMapRam) continue;
        Span s = clip(map[i]);
        s.lo = (s.lo + kFrame - 1) & ~(kFrame - 1);
        s.hi &= ~(kFrame - 1);
        if (s.lo >= s.hi) continue;
        unsigned j = nram++;
        for (; j > 0 && ram[j - 1].lo > s.lo; --j) ram[j] = ram[j - 1];
        ram[j] = s;
    }

    // Merge overlapping and touching spans.
    unsigned merged = 0;
    for (unsigned i = 0; i < nram; ++i) {
        if (merged && ram[i].lo <= ram[merged - 1].hi) {
            if (ram[i].hi > ram[merged - 1].hi) ram[merged - 1].hi = ram[i].hi;
        } else {
            ram[merged++] = ram[i];
        }
    }
    nram = merged;

    // Take out every non-RAM entry, grown to whole frames: a frame part of
    // which is reserved is not RAM.
    for (unsigned i = 0; i < n; ++i) {
        if (map[i].type == kMapRam || map[i].length == 0) continue;
        Span r = clip(map[i]);
        r.lo &= ~(kFrame - 1);
        r.hi = (r.hi + kFrame - 1) & ~(kFrame - 1);
        if (r.lo >= r.hi) continue;
        for (unsigned k = 0; k < nram;) {
            Span& s = ram[k];
            if (r.hi <= s.lo || s.hi <= r.lo) {
                ++k;
                continue;
            }
            if (r.lo > s.lo && r.hi < s.hi) {   // inside: split in two
                for (unsigned j = nram; j > k + 1; --j) ram[j] = ram[j - 1];
                ram[k + 1] = Span{r.hi, s.hi};
                s.hi = r.lo;
                ++nram;
                break;   // the spans are disjoint: no other one overlaps r
            }
            if (r.lo > s.lo) {          // covers the tail
                s.hi = r.lo;
                ++k;
            } else if (r.hi < s.hi) {   // covers the head
                s.lo = r.hi;
                ++k;
            } else {                    // covers it all
                for (unsigned j = k; j + 1 < nram; ++j) ram[j] = ram[j + 1];
                --nram;
            }
        }
    }

    for (unsigned i = 0; i < nram && i < cap; ++i) out[i] = MemRegion{ram[i].lo, ram[i].hi - ram[i].lo};
    return nram;
}

}  // namespace arch
