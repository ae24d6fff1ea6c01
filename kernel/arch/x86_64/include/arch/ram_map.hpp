#pragma once
// Usable RAM from the firmware's memory map (e820, as multiboot passes it).
//
// Firmware maps are not tidy: entries come in any order, may overlap, may
// start or end inside a frame, and a reserved entry may sit on top of a RAM
// one. usable_ram() turns such a map into what the frame allocator can take:
// whole 4 KiB frames, sorted, disjoint, merged where they touch, with every
// byte any non-RAM entry covers taken out (reserved wins over RAM, as Linux
// and Xen decide). Bases are 64-bit: QEMU puts RAM beyond its below-4-GiB
// part at 0x1'0000'0000, above the PCI hole.
//
// Pure: no kernel state, so the host tests run it (tests/unit/frame_alloc).

#include <cstdint>

namespace arch {

struct MemRegion {
    uint64_t base, length;
};

struct MapEntry {
    uint64_t base, length;
    uint32_t type;   // kMapRam is usable RAM; anything else is not
};
constexpr uint32_t kMapRam = 1;

// The most entries usable_ram() reads; more are ignored (the caller says so).
constexpr unsigned kMaxMapEntries = 128;

// Writes the usable RAM of map[0, n) to out[0, cap), lowest first, and
// returns how many regions there are in all: more than cap means the highest
// ones were dropped. Entries past kMaxMapEntries are ignored. Nothing above
// kMaxPhysAddr (52-bit physical addresses) is RAM.
[[nodiscard]] unsigned usable_ram(const MapEntry* map, unsigned n, MemRegion* out, unsigned cap);

constexpr uint64_t kMaxPhysAddr = uint64_t{1} << 52;

}  // namespace arch
