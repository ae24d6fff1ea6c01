// Hands all RAM to the frame allocator and the frame table at boot.

#include <arch/boot_info.hpp>
#include <arch/layout.h>
#include <arch/memory_init.hpp>

#include <base/bits.hpp>
#include <core/log.hpp>
#include <core/memory.hpp>
#include <core/platform.hpp>

extern "C" char __kernel_end[];

namespace arch {

namespace {

constexpr uint64_t kDirectMapLimit = 4ull << 30;   // what the boot page tables map
constexpr unsigned kMaxReserved = kMaxModules + 4;

struct Range {
    uint64_t lo, hi;
};

Range g_reserved[kMaxReserved];
unsigned g_nreserved;

void reserve(uint64_t lo, uint64_t hi) {
    if (g_nreserved < kMaxReserved) g_reserved[g_nreserved++] = Range{base::align_down(lo, 4096), base::align_up(hi, 4096)};
}

bool overlaps(const Range& r, uint64_t lo, uint64_t hi) { return r.lo < hi && lo < r.hi; }

// Frees [lo, hi) minus every reserved range from index `from` on.
void add_free(uint64_t lo, uint64_t hi, unsigned from, uint64_t* added) {
    if (lo >= hi) return;
    for (unsigned i = from; i < g_nreserved; ++i) {
        if (!overlaps(g_reserved[i], lo, hi)) continue;
        add_free(lo, g_reserved[i].lo, i + 1, added);
        add_free(g_reserved[i].hi, hi, i + 1, added);
        return;
    }
    auto r = core::frame_allocator().add_free(lo >> 12, (hi - lo) >> 12);
    if (r) *added += *r;
}

}  // namespace

void memory_init(const BootInfo& bi) {
    uint64_t kernel_end = reinterpret_cast<uint64_t>(__kernel_end) - KERNEL_VIRT;
    uint64_t top = 0;
    for (unsigned i = 0; i < bi.nram; ++i)
        if (bi.ram[i].base + bi.ram[i].length > top) top = bi.ram[i].base + bi.ram[i].length;
    if (top > kDirectMapLimit) {
        core::log("memory: RAM above 4 GiB is not used yet (%lu MiB ignored)", (top - kDirectMapLimit) >> 20);
        top = kDirectMapLimit;
    }
    uint64_t nframes = top >> 12;

    reserve(0, 0x100000);                 // real-mode area, BIOS data, option ROMs
    reserve(0x100000, kernel_end);        // the kernel image and its bss
    for (unsigned i = 0; i < bi.nmodules; ++i) reserve(bi.modules[i].start, bi.modules[i].end);

    // The frame table and the allocator's links, in the first free RAM that fits.
    uint64_t meta_bytes = base::align_up(nframes * (sizeof(core::FrameInfo) + sizeof(core::FrameLink)), 4096);
    uint64_t meta = 0;
    for (unsigned i = 0; i < bi.nram && !meta; ++i) {
        uint64_t lo = base::align_up(bi.ram[i].base, 4096), hi = base::align_down(bi.ram[i].base + bi.ram[i].length, 4096);
        if (hi > top) hi = top;
        for (bool moved = true; moved;) {
            moved = false;
            for (unsigned k = 0; k < g_nreserved; ++k)
                if (overlaps(g_reserved[k], lo, lo + meta_bytes)) {
                    lo = g_reserved[k].hi;
                    moved = true;
                }
        }
        if (lo + meta_bytes <= hi) meta = lo;
    }
    if (!meta) platform::panic("memory: no room for the frame table (%lu bytes)", meta_bytes);
    reserve(meta, meta + meta_bytes);

    auto* info = reinterpret_cast<core::FrameInfo*>(DIRECTMAP_VIRT + meta);
    auto* links = reinterpret_cast<core::FrameLink*>(DIRECTMAP_VIRT + meta + nframes * sizeof(core::FrameInfo));
    core::frame_table().init(info, nframes);
    core::frame_allocator().init(links, nframes);

    uint64_t added = 0;
    for (unsigned i = 0; i < bi.nram; ++i) {
        uint64_t lo = base::align_up(bi.ram[i].base, 4096);
        uint64_t hi = base::align_down(bi.ram[i].base + bi.ram[i].length, 4096);
        if (hi > top) hi = top;
        add_free(lo, hi, 0, &added);
    }
    // What the hypervisor keeps can never be owned, hence never mapped, by a guest.
    for (unsigned k = 0; k < g_nreserved; ++k)
        for (uint64_t f = g_reserved[k].lo >> 12; f < (g_reserved[k].hi >> 12) && f < nframes; ++f)
            core::frame_table()[f].owner = core::kOwnerXen;

    core::log("memory: %lu MiB of RAM, %lu frames free, frame table %lu KiB at %#lx", top >> 20,
              core::frame_allocator().free_frames(), meta_bytes >> 10, meta);
}

}  // namespace arch
