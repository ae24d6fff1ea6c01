#pragma once
// PCI functions, found at boot (bus 0, as QEMU's PC has them) with their
// BARs sized there, before any domain runs. Config space is the kernel's:
// domains reach it through physdev_op, with a PciDevice capability for the
// function and only for the registers that cannot move the device (see
// abi/moat.hpp).

#include <cstdint>

#include <abi/moat.hpp>

namespace core {

constexpr unsigned kMaxPciFunctions = 32;

struct PciFunction {
    abi::MoatPciInfo info;
    // Where its MSI and MSI-X capabilities are in config space (0: none), and
    // how many bytes the MSI one has: found at enumeration.
    uint8_t msi_cap = 0, msi_len = 0, msix_cap = 0;
};

// Enumerates bus 0 through platform::pci_read/pci_write and sizes each BAR.
void pci_enumerate();
unsigned pci_count();
const PciFunction* pci_at(unsigned i);
const PciFunction* pci_find(uint32_t bdf);

// Whether a domain may write `size` bytes at `offset` of function `f`'s
// config space: the command register (0x04, its decode and bus-master bits)
// and the device-specific area (0x40-0xff) but for the MSI capability and
// MSI-X's message control. A device's message-signalled interrupts are the
// kernel's to route, as in Xen (a driver domain's device interrupts through
// its INTx line): a message its driver chose could name any vector of any
// CPU, which only interrupt remapping stops, and QEMU's does not stop the
// compatibility format (docs/iommu.md). `why` says what is refused.
bool pci_config_write_allowed(const PciFunction& f, uint16_t offset, uint8_t size, const char** why);

}  // namespace core
