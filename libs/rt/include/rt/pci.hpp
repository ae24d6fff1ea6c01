#pragma once
// PCI functions from inside a driver domain: Moat's physdev_op sub-ops on a
// function the domain holds a PciDevice capability for (abi/moat.hpp). 0 or
// a negative errno (EPERM without the capability).

#include <cstdint>

#include <abi/hypercall.hpp>
#include <abi/moat.hpp>
#include <rt/hypercall.hpp>

namespace rt {

inline long pci_info(uint32_t bdf, abi::MoatPciInfo* out) {
    out->bdf = bdf;
    return hypercall(abi::Hypercall::physdev_op, abi::kPhysdevPciInfo, ptr(out));
}

inline long pci_config_read(uint32_t bdf, uint16_t offset, uint8_t size, uint32_t* out) {
    abi::MoatPciConfig c{bdf, offset, size, 0, 0};
    long r = hypercall(abi::Hypercall::physdev_op, abi::kPhysdevPciConfigRead, ptr(&c));
    *out = c.value;
    return r;
}

inline long pci_config_write(uint32_t bdf, uint16_t offset, uint8_t size, uint32_t value) {
    abi::MoatPciConfig c{bdf, offset, size, 0, value};
    return hypercall(abi::Hypercall::physdev_op, abi::kPhysdevPciConfigWrite, ptr(&c));
}

}  // namespace rt
