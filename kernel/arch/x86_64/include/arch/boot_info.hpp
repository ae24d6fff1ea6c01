#pragma once
// What the kernel takes from the multiboot loader: usable RAM and the boot
// modules (domain images and their command lines).

#include <cstdint>

namespace arch {

constexpr unsigned kMaxMemRegions = 64;
constexpr unsigned kMaxModules = 32;

struct MemRegion {
    uint64_t base, length;
};

struct Module {
    uint64_t start, end;   // physical
    char cmdline[256];     // "path args..."
};

struct BootInfo {
    MemRegion ram[kMaxMemRegions];
    unsigned nram;
    Module modules[kMaxModules];
    unsigned nmodules;
    char cmdline[256];
};

// Reads the multiboot information at physical `mbi` (through the direct map).
void parse_multiboot(uint32_t mbi, BootInfo& out);

}  // namespace arch
