// Device access by capability (tests/system: system_pci_access).
//   role=driver    holds a PciDevice capability for one function (and its
//                  BARs, Irq by the manifest): reads its config space, may
//                  write its command register but not its BARs, reads its
//                  I/O BAR through the TSS bitmap, binds its interrupt line;
//                  and is refused config space of functions it does not hold.
//   role=intruder  holds nothing: every one of those is refused.

#include <rt/caps.hpp>
#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/pci.hpp>
#include <rt/rt.hpp>
#include <rt/virtio.hpp>

#include <abi/errno.hpp>
#include <abi/event_channel.hpp>
#include <abi/moat.hpp>

using rt::check;

namespace {

constexpr uint32_t kVirtioRng = 3 << 3;   // 00:03.0, as the test's QEMU places it
constexpr uint32_t kIsaBridge = 1 << 3;   // 00:01.0

long config_read(uint32_t bdf, uint16_t off, uint8_t size, uint32_t* out) { return rt::pci_config_read(bdf, off, size, out); }
long config_write(uint32_t bdf, uint16_t off, uint8_t size, uint32_t value) {
    return rt::pci_config_write(bdf, off, size, value);
}

inline uint32_t inl(uint16_t port) {
    uint32_t v;
    asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

constexpr long kEperm = abi::neg(abi::Errno::eperm);

alignas(4096) uint8_t g_bar_page[4096];   // where device memory gets mapped

uint64_t own_pte() {
    uint64_t pfn = (rt::ptr(g_bar_page) - rt::kVirtBase) >> 12;
    return (rt::mfn_of_pfn(pfn) << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD;
}

long map_device_page(uint64_t addr) {
    return rt::update_va_mapping(rt::ptr(g_bar_page), (addr & ~0xFFFull) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD);
}

alignas(4096) uint8_t g_window[4][4096];
rt::virtio::Queue g_queue;
rt::virtio::Queue::Pages g_queue_pages;
alignas(4096) uint8_t g_entropy[4096];

// The virtio transport end to end (rt/virtio.hpp): the device fills a
// buffer of ours by DMA and says so with its interrupt, delivered as an
// event on the line's port and acknowledged by unmask.
void virtio_entropy() {
    rt::virtio::Device dev;
    bool ok = dev.open(kVirtioRng, g_window) && dev.negotiate(0) && dev.setup_queue(0, g_queue, &g_queue_pages, 8);
    check(ok, "virtio.opened", "%s", dev.error());
    long port = dev.irq_port();
    check(port > 0, "virtio.irq_port", "rc %ld", port);
    if (!ok || port <= 0) return;
    dev.start();
    for (auto& b : g_entropy) b = 0;
    rt::virtio::Buf buf{g_entropy + 64, 256, true};
    int head = g_queue.add(&buf, 1);
    g_queue.kick();
    unsigned waits = 0;
    while (!g_queue.has_used() && waits < 100) {
        rt::wait_port(uint32_t(port));
        ++waits;
        (void)dev.read_isr();
        dev.ack_irq();
    }
    uint16_t id = 0;
    uint32_t len = 0;
    bool used = g_queue.take_used(&id, &len);
    unsigned nonzero = 0;
    for (unsigned i = 64; i < 64 + 256; ++i) nonzero += g_entropy[i] != 0;
    check(used && id == head && len > 0 && len <= 256 && nonzero > 0 && g_entropy[0] == 0 && g_entropy[400] == 0,
          "virtio.dma_filled_buffer", "used %d id %u len %u nonzero %u waits %u", used, id, len, nonzero, waits);
    check(g_queue.free_descriptors() == g_queue.size(), "virtio.descriptors_returned");
    dev.reset();
}

void driver() {
    long slot = rt::cap_find(abi::CapType::pci_device, kVirtioRng);
    check(slot >= 0, "pci.driver_holds_its_function");
    abi::MoatPciInfo info{};
    long r = rt::pci_info(kVirtioRng, &info);
    check(r == 0 && info.vendor == 0x1af4 && info.device == 0x1005, "pci.info", "rc %ld, %x:%x", r, info.vendor,
          info.device);
    uint32_t id = 0;
    check(config_read(kVirtioRng, 0, 4, &id) == 0 && id == 0x10051af4u, "pci.config_read", "id %x", id);
    uint32_t bar0 = 0;
    check(config_read(kVirtioRng, 0x10, 4, &bar0) == 0 && (bar0 & 1) && info.bars[0].is_io &&
              (bar0 & ~3u) == info.bars[0].base,
          "pci.bar0_is_its_io_range", "bar0 %x", bar0);
    r = config_write(kVirtioRng, 0x10, 4, 0xFFFFFFFF);
    uint32_t after = 0;
    check(r == kEperm && config_read(kVirtioRng, 0x10, 4, &after) == 0 && after == bar0, "pci.bar_write_refused",
          "rc %ld", r);
    uint32_t cmd = 0;
    check(config_read(kVirtioRng, 4, 2, &cmd) == 0 && config_write(kVirtioRng, 4, 2, cmd | 1) == 0,
          "pci.command_write_allowed");
    // Its I/O BAR, through the TSS bitmap its IoPorts capability opened:
    // the legacy virtio header (device features first) answers.
    uint32_t features = inl(uint16_t(info.bars[0].base));
    check(features != 0xFFFFFFFFu, "pci.io_bar_reachable", "features %x", features);
    check(config_read(kIsaBridge, 0, 4, &id) == kEperm, "pci.other_function_refused");
    abi::EvtchnBindPirq bp{info.irq_line, 0, 0};
    r = rt::evtchn_op(abi::EvtchnOp::bind_pirq, &bp);
    check(info.irq_line != 0xFF && r == 0 && bp.port > 0, "pci.irq_bound", "line %u rc %ld", info.irq_line, r);

    // Its device memory (an Mmio capability per memory BAR): the modern
    // virtio common configuration at the start of BAR 4 answers - its
    // device_feature_select register reads back what was written.
    const abi::MoatPciBar& bar4 = info.bars[4];
    check(!bar4.is_io && bar4.size >= 4096, "pci.bar4_is_device_memory", "size %lu", bar4.size);
    r = map_device_page(bar4.base);
    check(r == 0, "pci.bar_mapped", "rc %ld", r);
    if (r == 0) {
        volatile uint32_t* common = reinterpret_cast<volatile uint32_t*>(g_bar_page);
        common[0] = 1;
        uint32_t sel = common[0];
        common[0] = 0;
        check(sel == 1, "pci.bar_registers_answer", "select %u", sel);
        check(rt::update_va_mapping(rt::ptr(g_bar_page), own_pte()) == 0, "pci.bar_unmapped");
    }
    // RAM beyond its own, by the same path: refused.
    check(map_device_page(0x100000) != 0, "pci.ram_not_mapped_as_device");
    // Closing the line's port unbinds the line, so it can be bound again.
    abi::EvtchnClose cl{bp.port};
    check(rt::evtchn_op(abi::EvtchnOp::close, &cl) == 0, "pci.irq_port_closed");
    virtio_entropy();
}

void intruder() {
    abi::MoatPciInfo info{};
    check(rt::pci_info(kVirtioRng, &info) == kEperm, "pci.intruder_info_refused");
    uint32_t v = 0;
    check(config_read(kVirtioRng, 0, 4, &v) == kEperm, "pci.intruder_config_read_refused");
    check(config_write(kVirtioRng, 4, 2, 0) == kEperm, "pci.intruder_config_write_refused");
    abi::EvtchnBindPirq bp{11, 0, 0};
    check(rt::evtchn_op(abi::EvtchnOp::bind_pirq, &bp) == kEperm, "pci.intruder_irq_refused");
    // It cannot ask where the BARs are, so it tries the whole window QEMU's
    // firmware puts them in: not one page of it maps.
    unsigned mapped = 0;
    for (uint64_t a = 0xFE000000; a < 0xFF000000; a += 4096)
        if (map_device_page(a) == 0) {
            ++mapped;
            (void)rt::update_va_mapping(rt::ptr(g_bar_page), own_pte());
        }
    check(mapped == 0, "pci.intruder_device_memory_refused", "%u pages mapped", mapped);
}

}  // namespace

void rt::main() {
    rt::events_init();
    if (rt::has_arg("role=driver")) driver();
    else if (rt::has_arg("role=intruder")) intruder();
    rt::printf("done, %u failed\n", rt::g_failed_checks);
}
