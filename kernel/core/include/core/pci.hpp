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
};

// Enumerates bus 0 through platform::pci_read/pci_write and sizes each BAR.
void pci_enumerate();
unsigned pci_count();
const PciFunction* pci_at(unsigned i);
const PciFunction* pci_find(uint32_t bdf);

// Whether a domain may write `size` bytes at `offset` of a function's config
// space: the command register (0x04, its decode and bus-master bits) and
// the device-specific area (0x40-0xff).
bool pci_config_write_allowed(uint16_t offset, uint8_t size);

}  // namespace core
