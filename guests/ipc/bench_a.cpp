// IPC figures, measured in the client domain under QEMU -icount shift=0 (the
// TSC counts guest instructions, in every domain alike):
//   evtchn_oneway_insns    send here -> event upcall running in bench_b
//   ring_rtt_insns         64-byte request and response over a ring, with events
//   grant_copy_4k_insns    GNTTABOP_copy of a 4 KiB granted page
//   grant_map_unmap_insns  map a granted page, then unmap it
//   memcpy_4k_insns        copying 4 KiB in this domain, for reference
// Each is the minimum over many runs. Given a PCI function (bench_root's
// `pci=`, on a machine with an IOMMU) it drives it as a driver domain does
// (bus mastering on: the kernel gives it an I/O page table) and reports only
//   grant_map_unmap_iommu_insns  the same map and unmap, each also changing
//                                its I/O page table (the unmap's IOTLB flush
//                                included)

#include "common.hpp"

#include <rt/pci.hpp>
#include <rt/time.hpp>

extern "C" void* memcpy(void*, const void*, size_t);

using namespace ipc;

namespace {
constexpr uint16_t kB = 2;
constexpr uint32_t kPort = 1;
alignas(4096) uint8_t g_ring_page[4096];
alignas(4096) uint8_t g_gnttab_page[4096];
alignas(4096) uint8_t g_map_page[4096];
alignas(4096) uint8_t g_src[4096];
alignas(4096) uint8_t g_dst[4096];

// bench_b's page (ref 9): word 0 holds the TSC at its last event upcall.
volatile uint64_t* stamp() { return reinterpret_cast<volatile uint64_t*>(g_map_page); }

int16_t map_b(uint32_t* handle) {
    abi::GnttabMapGrantRef m{};
    m.host_addr = rt::ptr(g_map_page);
    m.flags = abi::kGntmapHostMap;
    m.ref = kPatternRef;
    m.dom = kB;
    gnttab_op(abi::GnttabOp::map_grant_ref, &m);
    *handle = m.handle;
    return m.status;
}
int16_t unmap_b(uint32_t handle) {
    abi::GnttabUnmapGrantRef u{rt::ptr(g_map_page), 0, handle, 0};
    gnttab_op(abi::GnttabOp::unmap_grant_ref, &u);
    return u.status;
}
}  // namespace

void rt::main() {
    rt::events_init();
    wait_for_cap(1, abi::CapType::event);
    grant::Table gt = setup_grant_table(g_gnttab_page);
    Front front;
    front.init(g_ring_page, sizeof g_ring_page);
    bool ok = gt.size() && gt.grant_access(kRingRef, kB, uint32_t(mfn_of(g_ring_page)), false);
    ok &= rt::alloc_unbound(kB) == long(kPort);
    rt::wait_port(kPort);   // bench_b is connected

    uint64_t best[5] = {~0ull, ~0ull, ~0ull, ~0ull, ~0ull};
    auto keep = [&](unsigned k, uint64_t v) { if (v < best[k]) best[k] = v; };

    // The reference: this domain's memcpy (libs/base, the same routine the
    // hypervisor copies with), on data the compiler cannot see through.
    for (unsigned i = 0; i < 4096; ++i) g_src[i] = uint8_t(i * 13);
    void* (*volatile copy)(void*, const void*, size_t) = memcpy;
    for (unsigned i = 0; i < 50; ++i) {
        asm volatile("" ::: "memory");
        uint64_t t0 = rt::rdtsc();
        copy(g_dst, g_src, 4096);
        keep(4, rt::rdtsc() - t0);
    }
    ok &= g_dst[4095] == uint8_t(4095 * 13);

    abi::GnttabCopy c{};
    c.source.u.ref = kPatternRef;
    c.source.domid = kB;
    c.dest.u.gmfn = mfn_of(g_dst);
    c.dest.domid = abi::kDomidSelf;
    c.len = 4096;
    c.flags = abi::kGntcopySourceGref;
    for (unsigned i = 0; i < 50; ++i) {
        uint64_t t0 = rt::rdtsc();
        gnttab_op(abi::GnttabOp::copy, &c);
        keep(2, rt::rdtsc() - t0);
        ok &= c.status == 0;
    }

    for (unsigned i = 0; i < 50; ++i) {
        uint32_t h;
        uint64_t t0 = rt::rdtsc();
        int16_t s1 = map_b(&h);
        int16_t s2 = unmap_b(h);
        keep(3, rt::rdtsc() - t0);
        ok &= s1 == 0 && s2 == 0;
    }

    // From here bench_b's page stays mapped, for its timestamps.
    uint32_t handle;
    ok &= map_b(&handle) == 0;
    for (unsigned i = 0; i < 100; ++i) {
        uint64_t t0 = rt::rdtsc();
        rt::notify(kPort);
        rt::wait_port(kPort);   // bench_b acknowledges after its upcall
        keep(0, *stamp() - t0);
    }

    for (unsigned i = 0; i < 100; ++i) {
        Request q{i, {}};
        uint64_t t0 = rt::rdtsc();
        front.push_request(q);
        if (front.push_requests_and_check_notify()) rt::notify(kPort);
        Response p;
        while (!front.take_response(p))
            if (!front.final_check_for_responses()) rt::wait_port(kPort);
        keep(1, rt::rdtsc() - t0);
        ok &= p.seq == i;
    }

    Request quit{kQuit, {}};
    front.push_request(quit);
    front.push_requests();
    rt::notify(kPort);
    ok &= unmap_b(handle) == 0;

    if (!ok) {
        rt::printf("FAIL ipc_bench: an operation failed\n");
        return;
    }
    if (long bdf = rt::pci_function_held(); bdf >= 0) {
        // Bus mastering on: from here our grant maps reach the I/O page table.
        uint32_t cmd = 0;
        long rc = rt::pci_config_read(uint32_t(bdf), 4, 2, &cmd);
        rc = rc ? rc : rt::pci_config_write(uint32_t(bdf), 4, 2, cmd | 4);
        uint64_t iommu_best = ~0ull;
        for (unsigned i = 0; rc == 0 && i < 50; ++i) {
            uint32_t h;
            uint64_t t0 = rt::rdtsc();
            int16_t s1 = map_b(&h);
            int16_t s2 = unmap_b(h);
            uint64_t dt = rt::rdtsc() - t0;
            if (dt < iommu_best) iommu_best = dt;
            if (s1 != 0 || s2 != 0) rc = -1;
        }
        if (rc != 0) {
            rt::printf("FAIL ipc_bench: map and unmap with an I/O page table (rc %ld)\n", rc);
            return;
        }
        rt::printf("BENCH grant_map_unmap_iommu_insns %lu\n", iommu_best);
        rt::printf("PASS ipc_bench\n");
        return;
    }
    rt::printf("BENCH evtchn_oneway_insns %lu\n", best[0]);
    rt::printf("BENCH ring_rtt_insns %lu\n", best[1]);
    rt::printf("BENCH grant_copy_4k_insns %lu\n", best[2]);
    rt::printf("BENCH grant_map_unmap_insns %lu\n", best[3]);
    rt::printf("BENCH memcpy_4k_insns %lu\n", best[4]);
    rt::printf("PASS ipc_bench\n");
}
