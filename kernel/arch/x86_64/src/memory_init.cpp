// Hands all RAM to the frame allocator and the frame table at boot.
//
// The boot page tables (boot.S) direct-map the first 4 GiB. Here, in order:
//   1. the direct map is extended over RAM above 4 GiB, with 2 MiB pages in
//      page directories taken from RAM below 4 GiB (the only RAM mapped yet);
//   2. the frame table and the allocator's links are placed in the highest
//      RAM that holds them (keeping low memory for what needs it);
//   3. every RAM frame not reserved goes to the allocator;
//   4. the M2P is allocated and mapped read-only for guests.
// Holes (the PCI hole below 4 GiB, firmware ranges) are never mapped above
// 4 GiB and never handed out; the frame table has entries for them (it is
// indexed by frame number), which stay owner "none" and reserved.

#include <arch/boot_info.hpp>
#include <arch/cpu.hpp>
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

constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kBootMapLimit = 4 * kGiB;   // what the boot page tables map
constexpr uint64_t kLargePage = 2ull << 20;

// The machine-to-phys table, in 2 MiB blocks (so memory_op can list them as
// Xen does), mapped read-only and user-accessible at RO_MPT_VIRT_START in the
// hypervisor's L4 slot 256, which every guest L4 carries. One L2 maps 512
// blocks: 1 GiB of M2P, 8-byte entries for 2^27 frames.
constexpr unsigned kMaxM2pBlocks = 512;
// The most RAM used: what that M2P covers, and what one PDPT of the direct
// map (L4 slot 262) reaches. RAM beyond it is left alone, and said so.
constexpr uint64_t kMaxRam = uint64_t{kMaxM2pBlocks} * (kLargePage / sizeof(uint64_t)) * 4096;
static_assert(kMaxRam == 512 * kGiB);
static_assert(kMaxRam / kGiB <= 512, "the direct map above 4 GiB uses one PDPT");
// An M2P allocation is one buddy block: at most kMaxOrder.
static_assert(uint64_t{kMaxM2pBlocks} * 512 <= (uint64_t{1} << core::FrameAllocator::kMaxOrder));

// Kernel image, low memory, boot modules, the direct map's page directories
// and the frame table: ranges no frame of which goes to the allocator.
constexpr unsigned kMaxReserved = kMaxModules + 6;

struct Range {
    uint64_t lo, hi;
};

Range g_reserved[kMaxReserved];
unsigned g_nreserved;

void reserve(uint64_t lo, uint64_t hi) {
    // A range dropped here would be handed out while in use: never drop one.
    if (g_nreserved == kMaxReserved) platform::panic("memory: more than %u reserved ranges", kMaxReserved);
    g_reserved[g_nreserved++] = Range{base::align_down(lo, 4096), base::align_up(hi, 4096)};
}

bool overlaps(const Range& r, uint64_t lo, uint64_t hi) { return r.lo < hi && lo < r.hi; }

// The highest `bytes` (page-aligned) of RAM below `limit` that no reserved
// range overlaps; 0 if none (0 is never RAM here: low memory is reserved).
// Highest, so that the low zone (frames a 32-bit address reaches,
// core/frame_alloc.hpp) keeps as much as it can.
uint64_t find_room(const BootInfo& bi, uint64_t bytes, uint64_t limit) {
    for (unsigned i = bi.nram; i-- > 0;) {
        uint64_t lo = bi.ram[i].base, hi = bi.ram[i].base + bi.ram[i].length;
        if (hi > limit) hi = limit;
        if (hi <= lo || hi - lo < bytes) continue;
        // Slide down below each reserved range in the way; every step lowers
        // `at`, so this ends.
        uint64_t at = hi - bytes;
        for (;;) {
            const Range* in_way = nullptr;
            for (unsigned k = 0; k < g_nreserved && !in_way; ++k)
                if (overlaps(g_reserved[k], at, at + bytes)) in_way = &g_reserved[k];
            if (!in_way) return at;
            if (in_way->lo < lo + bytes) break;   // no room below it in this region
            at = in_way->lo - bytes;
        }
    }
    return 0;
}

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
    if (!r) platform::panic("memory: RAM [%#lx, %#lx) could not be added", lo, hi);
    *added += *r;
}

uint64_t* frame_va(uint64_t mfn) { return reinterpret_cast<uint64_t*>(DIRECTMAP_VIRT + (mfn << 12)); }

// A zeroed frame for the hypervisor's own use (tables it builds at boot).
uint64_t boot_frame() {
    auto r = core::frame_allocator().alloc(0);
    if (!r) platform::panic("memory: out of memory at boot");
    core::frame_table()[*r].owner = core::kOwnerXen;
    __builtin_memset(frame_va(*r), 0, 4096);
    return *r;
}

// Step 1: 2 MiB pages over every 2 MiB of RAM at or above 4 GiB, in the
// direct map's PDPT (which the boot tables share between the direct map and
// the identity map kmain removes later). The page directories come from
// [pd_area, ...), one per GiB up to `top`, already reserved and mapped.
// Not user-accessible, not global, write-back like the boot map.
void map_ram_above_4g(const BootInfo& bi, uint64_t top, uint64_t pd_area) {
    constexpr uint64_t kTable = 0x3, kLarge = 0x83;   // present, writable (+ 2 MiB page)
    constexpr uint64_t kAddr = 0x000FFFFFFFFFF000ull;
    uint64_t* pdpt = frame_va((frame_va(boot_pml4_pa >> 12)[DIRECTMAP_L4_INDEX] & kAddr) >> 12);
    for (unsigned i = 0; i < bi.nram; ++i) {
        uint64_t lo = bi.ram[i].base, hi = bi.ram[i].base + bi.ram[i].length;
        if (hi > top) hi = top;
        if (lo < kBootMapLimit) lo = kBootMapLimit;
        for (uint64_t pa = base::align_down(lo, kLargePage); pa < hi; pa += kLargePage) {
            uint64_t gib = pa / kGiB;
            if (!(pdpt[gib] & 1)) {
                uint64_t pd = pd_area + (gib - kBootMapLimit / kGiB) * 4096;
                __builtin_memset(reinterpret_cast<void*>(DIRECTMAP_VIRT + pd), 0, 4096);
                pdpt[gib] = pd | kTable;
            }
            frame_va((pdpt[gib] & kAddr) >> 12)[(pa >> 21) & 511] = pa | kLarge;
        }
    }
    // The entries were not present before: no TLB holds them, but the
    // paging-structure caches may hold the PDPT's old ones.
    write_cr3(read_cr3());
}

// Step 4. One contiguous allocation, so the core indexes the table linearly
// through the direct map; listed to guests as its 2 MiB blocks.
core::Mfn g_m2p_blocks[kMaxM2pBlocks];

void m2p_setup(uint64_t nframes) {
    constexpr uint64_t kRoMpt = 0xFFFF800000000000ull;
    constexpr uint64_t kUpper = 0x1 | 0x4;                     // present, user; never writable
    constexpr uint64_t kLeaf = 0x1 | 0x4 | (1ull << 63);        // present, user, no-execute
    uint64_t bytes = nframes * sizeof(uint64_t);
    unsigned nblocks = static_cast<unsigned>((bytes + kLargePage - 1) / kLargePage);
    if (nblocks > kMaxM2pBlocks) platform::panic("memory: M2P for %lu frames is too large", nframes);

    // A buddy block is a power of two; keep only the 2 MiB blocks needed and
    // give the rest back: free the block whole, then claim what is kept
    // (claimed frames are never freed, as the M2P never is).
    unsigned order = 9;
    while ((1ull << (order - 9)) < nblocks) ++order;
    auto a = core::frame_allocator().alloc(order);
    if (!a) platform::panic("memory: no %lu MiB block for the M2P", uint64_t{1} << order >> 8);
    uint64_t base = *a, frames = uint64_t{nblocks} * 512;
    if (!core::frame_allocator().free(base, order) || !core::frame_allocator().claim(base, frames))
        platform::panic("memory: the M2P block could not be trimmed");
    for (uint64_t f = base; f < base + frames; ++f) core::frame_table()[f].owner = core::kOwnerXen;
    // Guests read all of every block: entries past the last frame say
    // "invalid" too, rather than whatever the RAM held at boot.
    __builtin_memset(frame_va(base), 0xFF, frames * 4096);

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
    core::m2p_init(frame_va(base), nframes, g_m2p_blocks, nblocks);
}

}  // namespace

void memory_init(const BootInfo& bi) {
    uint64_t kernel_end = reinterpret_cast<uint64_t>(__kernel_end) - KERNEL_VIRT;

    // bi.ram is sorted and disjoint (usable_ram). What lies past kMaxRam is
    // not used; the frame table covers frames [0, top).
    uint64_t top = 0, ram = 0, ignored = 0;
    for (unsigned i = 0; i < bi.nram; ++i) {
        uint64_t lo = bi.ram[i].base, hi = bi.ram[i].base + bi.ram[i].length;
        if (hi > kMaxRam) {
            ignored += hi - (lo > kMaxRam ? lo : kMaxRam);
            hi = lo > kMaxRam ? lo : kMaxRam;
        }
        if (hi > lo) {
            ram += hi - lo;
            top = hi;
        }
    }
    if (ignored) core::log("memory: RAM above %lu GiB is not used (%lu MiB)", kMaxRam / kGiB, ignored >> 20);
    uint64_t nframes = top >> 12;

    reserve(0, 0x100000);                 // real-mode area, BIOS data, option ROMs
    reserve(0x100000, kernel_end);        // the kernel image and its bss
    for (unsigned i = 0; i < bi.nmodules; ++i) reserve(bi.modules[i].start, bi.modules[i].end);

    // 1. The direct map over RAM above 4 GiB: one page directory per GiB
    // (4 KiB per GiB of RAM), in RAM the boot map already covers.
    if (top > kBootMapLimit) {
        uint64_t pd_bytes = (base::align_up(top, kGiB) - kBootMapLimit) / kGiB * 4096;
        uint64_t pd_area = find_room(bi, pd_bytes, kBootMapLimit);
        if (!pd_area) platform::panic("memory: no room below 4 GiB for the direct map's tables");
        reserve(pd_area, pd_area + pd_bytes);
        map_ram_above_4g(bi, top, pd_area);
    }

    // 2. The frame table and the allocator's links (36 bytes a frame).
    uint64_t meta_bytes = base::align_up(nframes * (sizeof(core::FrameInfo) + sizeof(core::FrameLink)), 4096);
    uint64_t meta = find_room(bi, meta_bytes, top);
    if (!meta) platform::panic("memory: no room for the frame table (%lu bytes)", meta_bytes);
    reserve(meta, meta + meta_bytes);

    auto* info = reinterpret_cast<core::FrameInfo*>(DIRECTMAP_VIRT + meta);
    auto* links = reinterpret_cast<core::FrameLink*>(DIRECTMAP_VIRT + meta + nframes * sizeof(core::FrameInfo));
    core::frame_table().init(info, nframes);
    core::frame_allocator().init(links, nframes, core::FrameAllocator::kLowZoneFrames);

    // 3. Every frame of RAM but the reserved ones.
    uint64_t added = 0;
    for (unsigned i = 0; i < bi.nram; ++i) {
        uint64_t lo = bi.ram[i].base, hi = bi.ram[i].base + bi.ram[i].length;
        if (hi > top) hi = top;
        add_free(lo, hi, 0, &added);
    }
    // What the hypervisor keeps can never be owned, hence never mapped, by a guest.
    for (unsigned k = 0; k < g_nreserved; ++k)
        for (uint64_t f = g_reserved[k].lo >> 12; f < (g_reserved[k].hi >> 12) && f < nframes; ++f)
            core::frame_table()[f].owner = core::kOwnerXen;

    // 4.
    m2p_setup(nframes);

    const auto& fa = core::frame_allocator();
    uint64_t high_ram = 0;
    for (unsigned i = 0; i < bi.nram; ++i) {
        uint64_t lo = bi.ram[i].base, hi = bi.ram[i].base + bi.ram[i].length;
        if (hi > top) hi = top;
        if (lo < kBootMapLimit) lo = kBootMapLimit;
        if (hi > lo) high_ram += hi - lo;
    }
    core::log("memory: %lu MiB of RAM in %u ranges up to %#lx, %lu MiB above 4 GiB", ram >> 20, bi.nram, top,
              high_ram >> 20);
    core::log("memory: %lu frames free (%lu below 4 GiB), frame table %lu KiB at %#lx", fa.free_frames(),
              fa.free_frames(core::FrameAllocator::low), meta_bytes >> 10, meta);
}

}  // namespace arch
