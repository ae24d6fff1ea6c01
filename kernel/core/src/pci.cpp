#include <core/log.hpp>
#include <core/pci.hpp>
#include <core/platform.hpp>

namespace core {

namespace {

PciFunction g_functions[kMaxPciFunctions];
unsigned g_count;

uint32_t bdf_of(unsigned dev, unsigned fn) { return (dev << 3) | fn; }

// Sizes BAR `k` (and the next, for a 64-bit memory BAR); returns how many
// BAR registers it used.
unsigned size_bar(uint32_t bdf, unsigned k, abi::MoatPciBar& bar) {
    uint16_t off = uint16_t(0x10 + 4 * k);
    uint32_t orig = platform::pci_read(bdf, off, 4);
    platform::pci_write(bdf, off, 4, 0xFFFFFFFF);
    uint32_t mask = platform::pci_read(bdf, off, 4);
    platform::pci_write(bdf, off, 4, orig);
    bar = abi::MoatPciBar{};
    if (mask == 0 || mask == 0xFFFFFFFF) return 1;
    if (orig & 1) {   // I/O
        uint32_t size = ~(mask & ~3u) + 1;
        bar.base = orig & ~3u;
        bar.size = size & 0xFFFF;
        bar.is_io = 1;
        return 1;
    }
    bool is64 = ((orig >> 1) & 3) == 2;
    uint64_t base = orig & ~0xFull, size_mask = mask & ~0xFull;
    if (is64 && k < 5) {
        uint16_t hi = uint16_t(off + 4);
        uint32_t orig_hi = platform::pci_read(bdf, hi, 4);
        platform::pci_write(bdf, hi, 4, 0xFFFFFFFF);
        uint32_t mask_hi = platform::pci_read(bdf, hi, 4);
        platform::pci_write(bdf, hi, 4, orig_hi);
        base |= uint64_t(orig_hi) << 32;
        size_mask |= uint64_t(mask_hi) << 32;
    } else {
        size_mask |= 0xFFFFFFFF00000000ull;
    }
    bar.base = base;
    bar.size = ~size_mask + 1;
    return is64 ? 2 : 1;
}

}  // namespace

void pci_enumerate() {
    g_count = 0;
    for (unsigned dev = 0; dev < 32; ++dev) {
        for (unsigned fn = 0; fn < 8; ++fn) {
            uint32_t bdf = bdf_of(dev, fn);
            uint32_t id = platform::pci_read(bdf, 0, 4);
            if ((id & 0xFFFF) == 0xFFFF) {
                if (fn == 0) break;
                continue;
            }
            if (g_count == kMaxPciFunctions) {
                log("pci: more than %u functions; 00:%02x.%u and later are not handed out", kMaxPciFunctions, dev, fn);
                return;
            }
            abi::MoatPciInfo& in = g_functions[g_count++].info;
            in = abi::MoatPciInfo{};
            in.bdf = bdf;
            in.vendor = uint16_t(id);
            in.device = uint16_t(id >> 16);
            uint32_t cls = platform::pci_read(bdf, 8, 4);
            in.class_code = uint8_t(cls >> 24);
            in.subclass = uint8_t(cls >> 16);
            in.prog_if = uint8_t(cls >> 8);
            uint32_t intr = platform::pci_read(bdf, 0x3C, 4);
            uint8_t line = uint8_t(intr), pin = uint8_t(intr >> 8);
            in.irq_line = pin && line < 24 ? line : 0xFF;
            if (in.irq_line != 0xFF) platform::irq_set_level_triggered(line);
            uint8_t header = uint8_t(platform::pci_read(bdf, 0x0C, 4) >> 16);
            if ((header & 0x7F) == 0) {
                // Decoding off while the BARs are sized.
                uint32_t cmd = platform::pci_read(bdf, 4, 2);
                platform::pci_write(bdf, 4, 2, cmd & ~3u);
                for (unsigned k = 0; k < 6;) k += size_bar(bdf, k, in.bars[k]);
                platform::pci_write(bdf, 4, 2, cmd);
            }
            log("pci 00:%02x.%u: %04x:%04x class %02x%02x, irq %d", dev, fn, in.vendor, in.device, in.class_code,
                in.subclass, in.irq_line == 0xFF ? -1 : int(in.irq_line));
            if (fn == 0 && !(header & 0x80)) break;   // not multi-function
        }
    }
}

unsigned pci_count() { return g_count; }
const PciFunction* pci_at(unsigned i) { return i < g_count ? &g_functions[i] : nullptr; }

const PciFunction* pci_find(uint32_t bdf) {
    for (unsigned i = 0; i < g_count; ++i)
        if (g_functions[i].info.bdf == bdf) return &g_functions[i];
    return nullptr;
}

bool pci_config_write_allowed(uint16_t offset, uint8_t size) {
    if ((size != 1 && size != 2 && size != 4) || offset % size || offset + size > 256) return false;
    if (offset >= 0x40) return true;
    return offset == 4 && size <= 2;   // the command register (its low byte or all of it)
}

}  // namespace core
