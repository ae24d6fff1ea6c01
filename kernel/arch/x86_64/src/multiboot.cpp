#include <arch/boot_info.hpp>
#include <arch/layout.h>

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

    if (flags & (1u << 6)) {   // memory map
        uint32_t len = read<uint32_t>(mbi + 44), addr = read<uint32_t>(mbi + 48);
        for (uint64_t p = addr; p < uint64_t(addr) + len;) {
            uint32_t size = read<uint32_t>(p);
            uint64_t base = read<uint64_t>(p + 4), length = read<uint64_t>(p + 12);
            uint32_t type = read<uint32_t>(p + 20);
            if (type == 1 && length && out.nram < kMaxMemRegions) out.ram[out.nram++] = MemRegion{base, length};
            p += size + 4;
        }
    } else if (flags & 1) {    // only mem_lower/mem_upper
        out.ram[out.nram++] = MemRegion{0, uint64_t(read<uint32_t>(mbi + 4)) * 1024};
        out.ram[out.nram++] = MemRegion{0x100000, uint64_t(read<uint32_t>(mbi + 8)) * 1024};
    }

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
