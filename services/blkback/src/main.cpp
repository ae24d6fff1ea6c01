// blkback: the block driver domain (docs/system.md, "Driver domains").
//
// It holds one PCI function, a virtio-blk device (its PciDevice, BAR and
// Irq capabilities come from the manifest's `pci`), and serves Xen's blkif
// protocol to the front-ends of its VBD connections: each sees a sector
// range of the device as its own disk, read-only or read-write. Nothing a
// front-end writes is believed before it is checked (libs/blk): a bad
// request gets an error response, a garbage ring gets the front-end
// disconnected, and the others are served on.
//
// One loop: sleep until the device's interrupt, a front-end's port or the
// store's port fires; then take the device's completions, look at XenStore
// if a watch fired, and take new requests (a bounded batch per front-end).
//
// Command line: `bench-direct` first measures 4 KiB reads issued straight
// to the device (BENCH blk_direct_iops_4k), `bench-batches=N` batches of
// 100 of them.

#include "device.hpp"
#include "frontends.hpp"
#include "ring_map.hpp"

#include <rt/blkfront.hpp>
#include <rt/caps.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/traps.hpp>
#include <rt/xenbus.hpp>

#include <base/cmdline.hpp>

namespace {

using namespace blkback;

unsigned g_window_faults;

// Front-ends' ring pages are mapped into a window of ours (ring_map.hpp).
// When a front-end's domain is destroyed the hypervisor takes the mapping
// away under our feet; a touch of the page then faults, and this puts our
// own frame back at that address: the access is repeated on a page of
// ours, what it reads is garbage that the ring code refuses, and XenStore
// soon says the domain is gone.
bool on_page_fault(rt::TrapFrame&) {
    if (!ring_window_fault(rt::vcpu_info().arch.cr2)) return false;
    ++g_window_faults;
    return true;
}

// 4 KiB reads straight to the device, one at a time as the front-ends'
// bench does (guests/blk/bench.cpp), the same pages, per second of guest
// time. Under -icount the time a read waits for QEMU's I/O thread is host
// time: host load shows in the figure (the best batch is printed too).
constexpr unsigned kWarmup = 64, kBatch = 100;
void bench_direct() {
    unsigned batches = unsigned(rt::cmdline_number("bench-batches", 20));
    const DeviceInfo& d = device();
    uint64_t pages = d.capacity / 8;
    if (pages == 0) return;
    blk::Checked c{};
    c.action = blk::Action::read;
    c.nr_segments = 1;
    c.nr_sectors = 8;
    c.first[0] = 0;
    c.count[0] = 8;
    const uint16_t page = 0;
    uint32_t port = device_port();
    unsigned ok = 0, total = kWarmup + batches * kBatch;
    uint64_t t0 = 0, best = ~0ull, sum = 0;
    for (unsigned i = 0; i < total; ++i) {
        if (i >= kWarmup && (i - kWarmup) % kBatch == 0) t0 = rt::now_ns();
        uint64_t sector = (uint64_t(i) * 7919 % pages) * 8;
        if (!device_submit_rw(0, false, sector, c, &page)) break;
        device_kick();
        unsigned slot;
        uint8_t status = 0xFF;
        for (;;) {
            if (device_take(&slot, &status)) break;
            if (rt::wait_ports(&port, 1, 0)) {
                device_interrupt();
                device_ack();
            }
        }
        ok += i >= kWarmup && status == 0;
        if (i >= kWarmup && (i - kWarmup) % kBatch == kBatch - 1) {
            uint64_t t = rt::now_ns() - t0;
            sum += t;
            if (t < best) best = t;
        }
    }
    rt::printf("direct: %u of %u 4 KiB reads, %lu ns of guest time, best batch of %u %lu ns\n", ok, batches * kBatch,
               sum, kBatch, best);
    if (ok == batches * kBatch && sum > 0)
        rt::printf("BENCH blk_direct_iops_4k %lu\n", uint64_t(uint64_t(ok) * 1'000'000'000ull / sum));
}

}  // namespace

void rt::main() {
    rt::events_init();
    rt::set_trap_handler(14, on_page_fault);
    if (!rt::xs_init()) {
        rt::printf("no XenStore\n");
        return;
    }
    long bdf = rt::pci_function_held();
    if (bdf < 0) {
        rt::printf("no PCI function of ours\n");
        return;
    }
    if (!device_open(uint32_t(bdf))) return;
    if (rt::has_arg("bench-direct")) bench_direct();

    if (!rt::xs_watch("backend/vbd", "vbd") || !rt::xs_watch("@releaseDomain", "release")) {
        rt::printf("cannot watch backend/vbd and @releaseDomain\n");
        return;
    }
    rt::printf("ready\n");
    frontends_scan();
    uint32_t ports[2 + kMaxFrontends];
    unsigned faults_said = 0;
    for (;;) {
        // The device's completions are in memory: taken on every pass, so a
        // busy front-end cannot hold up the answers to the others.
        frontends_complete();
        bool more = frontends_serve();
        // Watch events: look at XenStore again.
        bool changed = false;
        rt::XsWatchEvent ev;
        while (rt::xs_next_watch_event(ev)) changed = true;
        if (changed) frontends_scan();
        if (g_window_faults != faults_said) {
            rt::printf("a front-end's ring page was taken away under us (%u times so far)\n", g_window_faults);
            faults_said = g_window_faults;
        }
        unsigned n = 0;
        ports[n++] = device_port();
        ports[n++] = rt::xs_port();
        n += frontends_ports(ports + n);
        // Busy: only a look at the ports (a deadline already passed).
        uint64_t fired = rt::wait_ports(ports, n, more || changed ? 1 : 0);
        if (fired & 1) {
            // Lowers the line, then lets it fire again; what the device
            // finished meanwhile is taken at the top of the loop.
            device_interrupt();
            device_ack();
        }
    }
}
