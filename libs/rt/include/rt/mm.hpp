#pragma once
// A domain's view of its memory in the Xen PV model: pseudo-physical frames
// (pfn) backed by machine frames (mfn, from start_info.mfn_list), the
// read-only machine-to-phys table, and the hypercalls that change page tables.

#include <cstdint>

#include <abi/memory.hpp>
#include <abi/x86_64.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>

namespace rt {

constexpr uint64_t kPteP = 1, kPteRw = 2, kPteU = 4, kPteA = 0x20, kPteD = 0x40, kPtePse = 0x80;
constexpr uint64_t kPteAddr = 0x000FFFFFFFFFF000ull;

// The machine-to-phys table the hypervisor maps read-only into every domain.
inline const uint64_t* m2p() { return reinterpret_cast<const uint64_t*>(abi::kRoMptVirtStart); }

inline uint64_t mfn_of_pfn(uint64_t pfn) { return reinterpret_cast<const uint64_t*>(start_info().mfn_list)[pfn]; }

// The start of the initial region (VIRT_BASE of our images) and its end
// (Xen's start-of-day layout: stack after the page tables, then at least
// 512 KiB, rounded up to 4 MiB).
constexpr uint64_t kVirtBase = 0x400000;
inline uint64_t initial_region_end() {
    const abi::StartInfo& si = start_info();
    uint64_t stack_end = si.pt_base + si.nr_pt_frames * 4096 + 4096;
    return (stack_end + 512 * 1024 + (4u << 20) - 1) & ~uint64_t((4u << 20) - 1);
}
// The machine address of a byte of ours inside the initial region (what a
// device is given for DMA); 0 for an address outside it.
inline uint64_t maddr_of(const void* va) {
    uint64_t v = reinterpret_cast<uint64_t>(va);
    if (v < kVirtBase || v >= initial_region_end()) return 0;
    return (mfn_of_pfn((v - kVirtBase) >> 12) << 12) | (v & 0xFFF);
}

// Frames of ours that nothing maps at start of day.
inline uint64_t first_unmapped_pfn() { return (initial_region_end() - kVirtBase) >> 12; }

// Where a frame of the initial region is mapped (valid for pfn below first_unmapped_pfn()).
inline uint64_t va_of_pfn(uint64_t pfn) { return kVirtBase + (pfn << 12); }

inline long mmu_update(const abi::MmuUpdate* reqs, uint64_t count, uint64_t* done = nullptr) {
    return hypercall(abi::Hypercall::mmu_update, ptr(reqs), count, ptr(done), abi::kDomidSelf);
}

inline long mmu_update_one(uint64_t pte_maddr, uint64_t val) {
    abi::MmuUpdate req{pte_maddr, val};
    return mmu_update(&req, 1);
}

inline long mmuext(abi::MmuextCmd cmd, uint64_t arg1 = 0, uint64_t arg2 = 0) {
    abi::MmuextOp op{};
    op.cmd = static_cast<uint32_t>(cmd);
    op.arg1.mfn = arg1;
    op.arg2.src_mfn = arg2;
    return hypercall(abi::Hypercall::mmuext_op, ptr(&op), 1, 0, abi::kDomidSelf);
}

inline long update_va_mapping(uint64_t va, uint64_t pte, uint64_t flags = abi::kUvmfInvlpg) {
    return hypercall(abi::Hypercall::update_va_mapping, va, pte, flags);
}

// The machine address of the L1 entry that maps `va`, found by walking our
// own (read-only mapped) page tables with the M2P; 0 if some level is missing.
// Only tables inside the initial region can be walked this way.
inline uint64_t l1e_maddr(uint64_t va, uint64_t* table_mfn_out = nullptr, unsigned level_out = 1) {
    uint64_t mfn = mfn_of_pfn((start_info().pt_base - kVirtBase) >> 12);
    for (unsigned level = 4; level >= 1; --level) {
        unsigned idx = (va >> (12 + 9 * (level - 1))) & 511;
        if (level == level_out) {
            if (table_mfn_out) *table_mfn_out = mfn;
            return (mfn << 12) | (idx * 8);
        }
        const uint64_t* t = reinterpret_cast<const uint64_t*>(va_of_pfn(m2p()[mfn]));
        uint64_t e = t[idx];
        if (!(e & kPteP)) return 0;
        mfn = (e & kPteAddr) >> 12;
    }
    return 0;
}

}  // namespace rt
