#pragma once
// The hostile driver domain's interrupt forgery (main.cpp, target "msi"),
// with its own virtio-blk function, open. Two routes to an interrupt of the
// attacker's choosing:
//   MSI and MSI-X   its function's capabilities, in config space: the kernel
//                   keeps them (a domain's write there is refused, EPERM),
//                   so the device interrupts through its INTx line. The
//                   MSI-X table, in a BAR the domain maps, it may still
//                   write: harmless while MSI-X is off.
//   DMA             a device's write to 0xFEE00000-0xFEEFFFFF is an
//                   interrupt request (the address and data are the
//                   message's). A disk read aimed there forges one; the
//                   unit remaps it, and must refuse those that name other
//                   lines' interrupt-remapping entries (which accept the
//                   IOAPIC's requests only) or entries not present
//                   (QEMU's model falls short of both: msi.cpp).
//
// What reaches the CPU is seen through the function's own IOAPIC line,
// bound as an event channel: the kernel turns its vector into an event on
// that port. While the forgeries run the queue asks the device not to
// interrupt (VIRTQ_AVAIL_F_NO_INTERRUPT), so an event then is a request the
// attacker forged (the forgeries are aimed at that vector, or at an entry
// whose vector it is, whenever the outcome can be seen from here at all).

#include <cstdint>

namespace dma {

// The refusals, then the forgeries on the open disk function `bdf`, then a
// read that must raise the line as before.
void attack_msi(uint32_t bdf);

}  // namespace dma
