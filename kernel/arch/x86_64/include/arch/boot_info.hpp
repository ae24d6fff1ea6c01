#pragma once
// What the kernel takes from the multiboot loader: usable RAM and the boot
// modules (domain images and their command lines).

#include <cstdint>

#include <arch/ram_map.hpp>

namespace arch {

constexpr unsigned kMaxMemRegions = 64;
constexpr unsigned kMaxModules = 32;

struct Module {
    uint64_t start, end;   // physical
    char cmdline[256];     // "path args..."
};

struct BootInfo {
    // Usable RAM, as usable_ram() leaves it: whole frames, sorted, disjoint.
    MemRegion ram[kMaxMemRegions];
    unsigned nram;
    Module modules[kMaxModules];
    unsigned nmodules;
    char cmdline[256];
};

// Reads the multiboot information at physical `mbi` (through the direct map).
void parse_multiboot(uint32_t mbi, BootInfo& out);

}  // namespace arch
