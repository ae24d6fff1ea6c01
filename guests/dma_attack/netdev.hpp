#pragma once
// The hostile driver domain's virtio-net function (main.cpp, target "net"),
// driven by polling as blkdev.hpp drives its disk. QEMU's user network
// answers an ARP request for its gateway (10.0.2.2): the reply is received
// into the one RX buffer posted, wherever that buffer's descriptor points.

#include <cstdint>

#include "blkdev.hpp"

namespace dma {

// Opens (again, after a reset) the function `bdf`: RX and TX queues set up,
// the device started. False with the reason printed.
[[nodiscard]] bool net_open(uint32_t bdf);
[[nodiscard]] bool net_reinit();

// Posts one RX buffer at machine address `maddr` (2 KiB, inside its page),
// asks who has 10.0.2.2, and waits for the reply to be received: `done`
// means the device wrote it at `maddr`.
[[nodiscard]] Outcome net_arp_into(uint64_t maddr);
// Whether the frame in our own RX buffer is the gateway's ARP reply.
bool net_own_buffer_holds_reply();
uint64_t net_own_buffer_maddr();

}  // namespace dma
