// Memory-validation figures, run under QEMU -icount shift=0 (the TSC then
// counts guest instructions, so each figure is an exact, repeatable count):
//   update_va_mapping_insns   one update_va_mapping (new frame, writable, invlpg)
//   mmu_update_one_pte_insns  one mmu_update hypercall changing one L1 entry
//   pin_l1_insns              pinning an L1 whose 512 entries are all present
// Each is the minimum over several batches, less the cost of the empty loop.

#include <rt/console.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>

namespace {

using rt::kPteA;
using rt::kPteD;
using rt::kPteP;
using rt::kPteRw;

inline uint64_t rdtsc() {
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t(hi) << 32) | lo;
}

alignas(4096) uint8_t g_scratch[2][4096];
uint64_t mfn_of_va(uint64_t va) { return rt::mfn_of_pfn((va - rt::kVirtBase) >> 12); }

template <typename F>
uint64_t measure(unsigned batches, unsigned per_batch, F&& body) {
    uint64_t best = ~0ull, empty = ~0ull;
    for (unsigned b = 0; b < batches; ++b) {
        uint64_t t0 = rdtsc();
        for (unsigned i = 0; i < per_batch; ++i) asm volatile("" ::: "memory");
        uint64_t t1 = rdtsc();
        for (unsigned i = 0; i < per_batch; ++i) body(i);
        uint64_t t2 = rdtsc();
        if (t1 - t0 < empty) empty = t1 - t0;
        if (t2 - t1 < best) best = t2 - t1;
    }
    return (best - empty) / per_batch;
}

}  // namespace

void rt::main() {
    uint64_t va = rt::ptr(g_scratch[0]);
    uint64_t frames[2] = {mfn_of_va(va), mfn_of_va(rt::ptr(g_scratch[1]))};
    long bad = 0;

    uint64_t uvm = measure(20, 200, [&](unsigned i) {
        bad |= rt::update_va_mapping(va, (frames[i & 1] << 12) | kPteP | kPteRw | kPteA | kPteD, abi::kUvmfInvlpg);
    });

    uint64_t pte = rt::l1e_maddr(va);
    uint64_t mmu = measure(20, 200, [&](unsigned i) {
        bad |= rt::mmu_update_one(pte, (frames[i & 1] << 12) | kPteP | kPteRw | kPteA | kPteD);
    });
    bad |= rt::update_va_mapping(va, (frames[0] << 12) | kPteP | kPteRw | kPteA | kPteD);

    // An L1 whose 512 entries map frames of our image writable.
    uint64_t table = rt::mfn_of_pfn(rt::first_unmapped_pfn());
    bad |= rt::update_va_mapping(rt::ptr(g_scratch[1]), (table << 12) | kPteP | kPteRw | kPteA | kPteD);
    auto* t = reinterpret_cast<uint64_t*>(g_scratch[1]);
    // (Our own page tables among them can only be mapped read-only.)
    uint64_t pt_first = (rt::start_info().pt_base - rt::kVirtBase) >> 12, pt_end = pt_first + rt::start_info().nr_pt_frames;
    for (unsigned i = 0; i < 512; ++i)
        t[i] = (rt::mfn_of_pfn(i) << 12) | kPteP | kPteA | (i >= pt_first && i < pt_end ? 0 : kPteRw | kPteD);
    bad |= rt::update_va_mapping(rt::ptr(g_scratch[1]), (frames[1] << 12) | kPteP | kPteRw | kPteA | kPteD);
    uint64_t pin_best = ~0ull;
    for (unsigned k = 0; k < 20; ++k) {
        uint64_t t0 = rdtsc();
        long r = rt::mmuext(abi::MmuextCmd::pin_l1_table, table);
        uint64_t t1 = rdtsc();
        bad |= r | rt::mmuext(abi::MmuextCmd::unpin_table, table);
        if (t1 - t0 < pin_best) pin_best = t1 - t0;
    }

    if (bad) {
        rt::printf("FAIL mm_bench: a measured hypercall failed (%ld)\n", bad);
        return;
    }
    rt::printf("BENCH update_va_mapping_insns %lu\n", uvm);
    rt::printf("BENCH mmu_update_one_pte_insns %lu\n", mmu);
    rt::printf("BENCH pin_l1_insns %lu\n", pin_best);
    rt::printf("PASS mm_bench\n");
}
