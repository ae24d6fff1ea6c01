// A guest of the big-memory test (tests/system/bigmem.cmake), on a machine
// with RAM above 4 GiB: where its frames lie, that the M2P and the memory_op
// limits reach them, and that the memory behind them works (zero when it
// was given, then holding what is written).
//   expect=high   every frame lies above 4 GiB: the hypervisor's allocator
//                 hands those out first (core/frame_alloc.hpp)
//   expect=both   frames on both sides of 4 GiB: the domains together need
//                 more than lies above, so the rest comes from below

#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>

#include <abi/memory.hpp>

using rt::check;

namespace {

constexpr uint64_t kFrame4G = uint64_t{1} << 20;   // the first frame at 4 GiB
// Every kStride-th frame past the initial region is mapped, checked and
// written: about 16,000 of a 1000 MiB domain's.
constexpr uint64_t kStride = 16;

alignas(4096) uint64_t g_window[512];   // where the frames under test get mapped

uint64_t pte_of(uint64_t mfn) { return (mfn << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD; }

uint64_t pattern(uint64_t pfn, unsigned i) { return (pfn << 20) ^ (uint64_t(i) * 0x9E3779B97F4A7C15ull) ^ 0xB16; }

bool map_window(uint64_t mfn) { return rt::update_va_mapping(rt::ptr(g_window), pte_of(mfn)) == 0; }

}  // namespace

void rt::main() {
    const abi::StartInfo& si = rt::start_info();
    uint64_t above = 0, below = 0, top_mfn = 0;
    for (uint64_t pfn = 0; pfn < si.nr_pages; ++pfn) {
        uint64_t m = rt::mfn_of_pfn(pfn);
        (m >= kFrame4G ? above : below) += 1;
        if (m > top_mfn) top_mfn = m;
    }
    rt::printf("%lu frames: %lu above 4 GiB, %lu below; highest mfn %#lx\n", si.nr_pages, above, below, top_mfn);
    if (rt::has_arg("expect=high"))
        check(below == 0 && above == si.nr_pages, "bigmem.all_frames_above_4g", "%ld of its frames lie below 4 GiB", below);
    if (rt::has_arg("expect=both"))
        check(above > 0 && below > 0, "bigmem.frames_on_both_sides_of_4g", "%ld above, %ld below", above, below);

    // The M2P (read-only, the hypervisor's) has an entry for every frame, the
    // highest included, and each names the pfn it backs.
    uint64_t wrong = 0;
    for (uint64_t pfn = 0; pfn < si.nr_pages; ++pfn) wrong += rt::m2p()[rt::mfn_of_pfn(pfn)] != pfn;
    check(wrong == 0, "bigmem.m2p_maps_every_frame_back", "%ld frames map to another pfn", wrong);
    uint64_t max_mfn = uint64_t(rt::hypercall(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::maximum_ram_page), 0));
    check(max_mfn >= top_mfn && max_mfn < (uint64_t{1} << 40), "bigmem.maximum_ram_page_covers_its_frames",
          "maximum_ram_page %#lx, its highest frame %#lx", max_mfn, top_mfn);
    abi::XenMachphysMapping mm{};
    long rc = rt::hypercall(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::machphys_mapping), rt::ptr(&mm));
    check(rc == 0 && mm.max_mfn >= top_mfn && mm.v_end - mm.v_start >= (top_mfn + 1) * 8,
          "bigmem.m2p_mapping_covers_its_frames", "rc %ld, max_mfn %#lx, %ld bytes", rc, mm.max_mfn, mm.v_end - mm.v_start);

    // Frames past the initial region (but the store and console rings):
    // nothing wrote them since the hypervisor zeroed them (through its
    // direct map, above 4 GiB too). Map
    // a sample one at a time, check it is zero, fill it; then read every one
    // back.
    uint64_t own = rt::mfn_of_pfn((rt::ptr(g_window) - rt::kVirtBase) >> 12);
    uint64_t sampled = 0, sampled_above = 0, not_zero = 0, unmappable = 0, changed = 0;
    for (int pass = 0; pass < 2; ++pass)
        for (uint64_t pfn = rt::first_unmapped_pfn(); pfn < si.nr_pages; pfn += kStride) {
            uint64_t m = rt::mfn_of_pfn(pfn);
            if (m == si.store_mfn || m == si.console.domU.mfn) continue;   // the rings: in use
            if (!map_window(m)) {
                unmappable += pass == 0;
                continue;
            }
            if (pass == 0) {
                ++sampled;
                sampled_above += m >= kFrame4G;
                bool zero = true;
                for (unsigned i = 0; i < 512; ++i) zero &= g_window[i] == 0;
                not_zero += !zero;
                for (unsigned i = 0; i < 512; ++i) g_window[i] = pattern(pfn, i);
            } else {
                bool same = true;
                for (unsigned i = 0; i < 512; ++i) same &= g_window[i] == pattern(pfn, i);
                changed += !same;
            }
        }
    check(map_window(own), "bigmem.window_restored");
    rt::printf("%lu frames sampled, %lu of them above 4 GiB\n", sampled, sampled_above);
    check(sampled > 0 && unmappable == 0, "bigmem.frames_mappable", "%ld of %ld refused", unmappable, sampled + unmappable);
    check(not_zero == 0, "bigmem.frames_zero_when_given", "%ld of %ld held data", not_zero, sampled);
    check(changed == 0, "bigmem.frames_hold_what_was_written", "%ld of %ld changed", changed, sampled);
    if (rt::has_arg("expect=high") || rt::has_arg("expect=both"))
        check(sampled_above > 0, "bigmem.frames_above_4g_sampled", "none of %ld", sampled);
    rt::printf("done, %u failed\n", rt::g_failed_checks);
}
