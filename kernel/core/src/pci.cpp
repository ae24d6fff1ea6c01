#include <core/irq.hpp>
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

// Its MSI and MSI-X capabilities, from the capability list (status bit 4):
// at most 48 entries, each at a dword-aligned offset of 0x40-0xff.
void find_msi(uint32_t bdf, PciFunction& f) {
    if (!(platform::pci_read(bdf, 0x06, 2) & (1u << 4))) return;
    unsigned at = platform::pci_read(bdf, 0x34, 1) & 0xFC;
    for (unsigned n = 0; at >= 0x40 && n < 48; ++n) {
        uint32_t head = platform::pci_read(bdf, uint16_t(at), 4);
        uint8_t id = uint8_t(head);
        if (id == 0x05 && !f.msi_cap) {
            uint16_t control = uint16_t(head >> 16);
            // Control, address (and its high half for 64-bit), data; mask and
            // pending bits with per-vector masking.
            f.msi_cap = uint8_t(at);
            f.msi_len = uint8_t(10 + ((control & 0x80) ? 4 : 0) + ((control & 0x100) ? 10 : 0));
        } else if (id == 0x11 && !f.msix_cap) {
            f.msix_cap = uint8_t(at);
        }
        at = (head >> 8) & 0xFC;
    }
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
            // The firmware's line is the 8259's; the IOAPIC input the pin
            // reaches is the machine's to say (on q35 it is not that line).
            uint32_t intr = platform::pci_read(bdf, 0x3C, 4);
            uint8_t line = uint8_t(intr), pin = uint8_t(intr >> 8);
            unsigned input = pin >= 1 && pin <= 4 ? platform::pci_irq_input(bdf, pin, line) : 0xFF;
            in.irq_line = input < kNrIrqLines ? uint8_t(input) : 0xFF;
            if (in.irq_line != 0xFF) platform::irq_set_level_triggered(in.irq_line);
            find_msi(bdf, g_functions[g_count - 1]);
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

bool pci_config_write_allowed(const PciFunction& f, uint16_t offset, uint8_t size, const char** why) {
    *why = "only the command register and 0x40-0xff may be written";
    if ((size != 1 && size != 2 && size != 4) || offset % size || offset + size > 256) return false;
    if (offset < 0x40) return offset == 4 && size <= 2;   // the command register (its low byte or all of it)
    auto overlaps = [&](unsigned at, unsigned len) { return at && offset < at + len && at < offset + size; };
    if (overlaps(f.msi_cap, f.msi_len) || overlaps(f.msix_cap ? f.msix_cap + 2u : 0u, 2)) {
        *why = "MSI and MSI-X are the kernel's (the device interrupts through its INTx line)";
        return false;
    }
    return true;
}

}  // namespace core
