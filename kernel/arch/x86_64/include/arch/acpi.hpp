#pragma once
// The ACPI tables the kernel reads at boot, once, before any domain runs: the
// DMA-remapping units (DMAR) and the PCIe configuration window (MCFG). Every
// table is checked (signature, length, checksum) and read only within its
// length; one that fails is ignored, with a log line, as if absent.

#include <cstdint>

namespace arch::acpi {

// A device scope of a DMA-remapping unit that names one device: its type
// (1 PCI endpoint, 2 PCI bridge, 3 IOAPIC, 4 HPET), the enumeration id
// (the IOAPIC's or HPET's id) and the requester id it uses (bus << 8 | devfn),
// or kNoSource when its path goes through bridges (not resolved here).
struct DeviceScope {
    uint8_t type;
    uint8_t enum_id;
    uint16_t source_id;
};
constexpr uint16_t kNoSource = 0xFFFF;
constexpr uint8_t kScopeEndpoint = 1, kScopeIoapic = 3;

constexpr unsigned kMaxScopes = 64;   // per unit; further ones are counted, not kept
struct Drhd {
    uint64_t base;        // its registers (4 KiB or more, uncached MMIO)
    uint16_t segment;
    // Every PCI function of the segment not in another unit's scope; else
    // exactly the endpoints (and bridges) its scopes list (QEMU lists them).
    bool include_all;
    unsigned nscopes;     // kept in `scopes`, at most kMaxScopes
    unsigned scopes_seen;
    DeviceScope scopes[kMaxScopes];
};

constexpr unsigned kMaxDrhd = 4;
struct Tables {
    // DMAR: the units, in table order, and what the table says of them.
    bool has_dmar = false;
    uint8_t host_address_width = 0;   // DMA addresses the platform can generate (bits)
    bool dmar_intr_remap = false;     // the platform supports interrupt remapping
    unsigned ndrhd = 0, drhd_seen = 0;
    Drhd drhd[kMaxDrhd];
    unsigned rmrr = 0;                // reserved memory regions (left unmapped: see vtd.cpp)
    // MCFG: the ECAM window of segment 0 that starts at bus 0.
    bool has_mcfg = false;
    uint64_t ecam_base = 0;
    uint8_t ecam_last_bus = 0;
};

// Finds the RSDP (in the EBDA or the BIOS area 0xE0000-0xFFFFF), the RSDT or
// XSDT, and reads DMAR and MCFG from it.
void init();
const Tables& tables();

}  // namespace arch::acpi

namespace arch {
// PCI configuration space through the ECAM window at `phys` (bus 0's 1 MiB)
// from now on, instead of ports 0xCF8/0xCFC (platform.cpp).
void pci_use_ecam(uint64_t phys);
}  // namespace arch
