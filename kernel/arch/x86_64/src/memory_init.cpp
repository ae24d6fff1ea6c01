// Hands all RAM to the frame allocator and the frame table at boot.

#include <arch/boot_info.hpp>
#include <arch/layout.h>
#include <arch/memory_init.hpp>

#include <base/bits.hpp>
#include <core/log.hpp>
#include <core/m2p.hpp>
#include <core/memory.hpp>
#include <core/platform.hpp>

extern "C" char __kernel_end[];
extern "C" const uint64_t boot_pml4_pa;

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

// A zeroed frame for the hypervisor's own use (tables it builds at boot).
uint64_t boot_frame(unsigned order = 0) {
    auto r = core::frame_allocator().alloc(order);
    if (!r) platform::panic("memory: out of memory at boot");
    for (uint64_t f = *r; f < *r + (1ull << order); ++f) {
        core::frame_table()[f].owner = core::kOwnerXen;
        __builtin_memset(reinterpret_cast<void*>(DIRECTMAP_VIRT + (f << 12)), 0, 4096);
    }
    return *r;
}

uint64_t* frame_va(uint64_t mfn) { return reinterpret_cast<uint64_t*>(DIRECTMAP_VIRT + (mfn << 12)); }

// The machine-to-phys table, in 2 MiB blocks (so memory_op can list them as
// Xen does), mapped read-only and user-accessible at RO_MPT_VIRT_START in the
// hypervisor's L4 slot 256, which every guest L4 carries.
constexpr unsigned kMaxM2pBlocks = 64;   // 128 MiB of M2P: 64 GiB of RAM
core::Mfn g_m2p_blocks[kMaxM2pBlocks];

void m2p_setup(uint64_t nframes) {
    constexpr uint64_t kRoMpt = 0xFFFF800000000000ull;
    constexpr uint64_t kUpper = 0x1 | 0x4;                     // present, user; never writable
    constexpr uint64_t kLeaf = 0x1 | 0x4 | (1ull << 63);        // present, user, no-execute
    uint64_t bytes = nframes * sizeof(uint64_t);
    unsigned nblocks = static_cast<unsigned>((bytes + (2u << 20) - 1) >> 21);
    if (nblocks > kMaxM2pBlocks) platform::panic("memory: M2P for %lu frames is too large", nframes);

    // One contiguous allocation, so the core can index the table linearly
    // through the direct map; listed to guests as its 2 MiB blocks.
    unsigned order = 9;
    while ((1ull << (order - 9)) < nblocks) ++order;
    uint64_t base = boot_frame(order);
    uint64_t l3 = boot_frame(), l2 = boot_frame();
    uint64_t* idle_l4 = frame_va(boot_pml4_pa >> 12);
    idle_l4[(kRoMpt >> 39) & 511] = (l3 << 12) | kUpper;
    frame_va(l3)[(kRoMpt >> 30) & 511] = (l2 << 12) | kUpper;
    for (unsigned b = 0; b < nblocks; ++b) {
        g_m2p_blocks[b] = base + 512ull * b;
        uint64_t l1 = boot_frame();
        frame_va(l2)[b] = (l1 << 12) | kUpper;
        for (unsigned i = 0; i < 512; ++i) frame_va(l1)[i] = ((g_m2p_blocks[b] + i) << 12) | kLeaf;
    }
    core::m2p_init(reinterpret_cast<uint64_t*>(DIRECTMAP_VIRT + (base << 12)), nframes, g_m2p_blocks, nblocks);
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

    m2p_setup(nframes);
    core::log("memory: %lu MiB of RAM, %lu frames free, frame table %lu KiB at %#lx", top >> 20,
              core::frame_allocator().free_frames(), meta_bytes >> 10, meta);
}

}  // namespace arch
