#include <arch/boot_info.hpp>
#include <arch/layout.h>
#include <arch/ram_map.hpp>

#include <base/format.hpp>
#include <core/log.hpp>

namespace arch {

namespace {

template <typename T>
T read(uint64_t pa) {
    T v;
    __builtin_memcpy(&v, reinterpret_cast<const void*>(DIRECTMAP_VIRT + pa), sizeof v);
    return v;
}

void copy_string(uint64_t pa, char* out, size_t cap) {
    size_t i = 0;
    if (pa)
        for (; i + 1 < cap; ++i) {
            char c = read<char>(pa + i);
            if (!c) break;
            out[i] = c;
        }
    out[i] = '\0';
}

}  // namespace

void parse_multiboot(uint32_t mbi, BootInfo& out) {
    out.nram = 0;
    out.nmodules = 0;
    uint32_t flags = read<uint32_t>(mbi);
    copy_string((flags & (1u << 2)) ? read<uint32_t>(mbi + 16) : 0, out.cmdline, sizeof out.cmdline);

    // The firmware's memory map, every entry (64-bit base and length), so
    // that reserved entries can be taken out of overlapping RAM ones.
    static MapEntry map[kMaxMapEntries];
    unsigned nmap = 0, skipped = 0;
    if (flags & (1u << 6)) {   // memory map
        uint32_t len = read<uint32_t>(mbi + 44), addr = read<uint32_t>(mbi + 48);
        for (uint64_t p = addr; p < uint64_t(addr) + len;) {
            uint32_t size = read<uint32_t>(p);
            MapEntry e{read<uint64_t>(p + 4), read<uint64_t>(p + 12), read<uint32_t>(p + 20)};
            if (e.length && nmap < kMaxMapEntries) map[nmap++] = e;
            else if (e.length) ++skipped;
            p += uint64_t(size) + 4;
        }
    } else if (flags & 1) {    // only mem_lower/mem_upper
        map[nmap++] = MapEntry{0, uint64_t(read<uint32_t>(mbi + 4)) * 1024, kMapRam};
        map[nmap++] = MapEntry{0x100000, uint64_t(read<uint32_t>(mbi + 8)) * 1024, kMapRam};
    }
    if (skipped) core::log("boot: memory map has %u entries more than the %u read", skipped, kMaxMapEntries);
    unsigned nram = usable_ram(map, nmap, out.ram, kMaxMemRegions);
    if (nram > kMaxMemRegions) {
        core::log("boot: RAM in %u pieces, only the lowest %u are used", nram, kMaxMemRegions);
        nram = kMaxMemRegions;
    }
    out.nram = nram;

    if (flags & (1u << 3)) {   // modules
        uint32_t count = read<uint32_t>(mbi + 20), addr = read<uint32_t>(mbi + 24);
        if (count > kMaxModules) {
            core::log("boot: %u modules given, only the first %u are used", count, kMaxModules);
            count = kMaxModules;
        }
        for (uint32_t i = 0; i < count; ++i) {
            Module& m = out.modules[out.nmodules++];
            uint64_t e = addr + i * 16ull;
            m.start = read<uint32_t>(e);
            m.end = read<uint32_t>(e + 4);
            copy_string(read<uint32_t>(e + 8), m.cmdline, sizeof m.cmdline);
        }
    }
}

}  // namespace arch
