#pragma once
// netback: the network driver domain.
//
//   nic.cpp   virtio-net on QEMU's virtio-net-pci at 00:04.0 (rt::virtio,
//             VIRTIO_F_VERSION_1: a 12-byte header before each frame;
//             RX buffers of 2 KiB, two per page).
//   vif.cpp   Xen's netif protocol to each front-end (xenbus state machine,
//             TX and RX rings, GNTTABOP_copy for every byte of data).
//   main.cpp  the learning switch between them (port 0: the NIC, port
//             1 + i: vif slot i) and the event loop.
//
// Nothing from a front-end is believed: ring indices (libs/ring's BackRing:
// a garbage producer index disconnects that front-end), sizes, offsets and
// flags (an error response), grant references (the hypervisor checks them
// on each copy: a failed copy is an error response). Each pass takes at most
// kTxBatch requests per front-end, so one flooding front-end cannot starve
// the others or the NIC.

#include <cstddef>
#include <cstdint>

#include <net/packet.hpp>

namespace netback {

inline constexpr unsigned kMaxVifs = 8;
inline constexpr unsigned kTxBatch = 128;    // TX requests per front-end per pass
inline constexpr unsigned kNicPort = 0;

// ---- the NIC (nic.cpp) ----
// Finds, resets and sets up the device; false (logged) if there is none.
bool nic_open();
bool nic_up();
long nic_irq_port();
// Reads the ISR (lowers the line) before handling the queues, acknowledges
// the line after: a frame used in between raises it again.
void nic_irq_begin();
void nic_irq_end();
// Delivers up to a batch of received frames to the switch and reclaims sent
// buffers; true if more received frames wait.
bool nic_poll();
// Queues a frame to the wire (kicked by nic_kick); false if no buffer is free.
bool nic_send(const uint8_t* frame, size_t len);
void nic_kick();
// Sends n frames of `len` bytes straight to the NIC in batches of `batch`
// (each waits for a free buffer; a batch ends when the device sent it all);
// the guest-time ns the driver spent on the fastest batch (the one least
// disturbed by other domains; time asleep waiting for the device left
// out), or 0 on failure.
uint64_t nic_bench(unsigned n, size_t len, unsigned batch);
void nic_print_stats();

// ---- the vifs (vif.cpp) ----
void vifs_init();
// Rereads backend/vif and the front-ends' states; connects, disconnects.
void vifs_scan();
// @releaseDomain: front-ends whose domain is gone are dropped.
void vifs_check_released();
// TX of every connected vif (a bounded batch each); true if more wait.
bool vifs_poll();
// Event channels of the connected vifs, for the sleep.
unsigned vif_ports(uint32_t* out, unsigned cap);
bool vif_connected(unsigned slot);
// Queues a copy of the frame into the vif's next posted RX buffer (dropped
// if it posted none). The frame must stay where it is until rx_flush().
void vif_deliver(unsigned slot, const uint8_t* frame, size_t len);
// Runs the queued copies (one hypercall) and answers the RX requests.
void rx_flush();
// Sends the events the front-ends asked for, once per pass: telling a
// front-end wakes it, and it would run before the rest of the pass (one
// event per vif per pass, not one per batch).
void vifs_notify();
// A line per vif: frames and errors, for the log.
void vifs_print_stats();
// The page-fault handler's part: a vif ring page that went away.
bool vifs_fault(uint64_t va);

// ---- the switch (main.cpp) ----
void deliver(const uint8_t* frame, size_t len, unsigned in_port);
// Forgets the MACs learned on vif slot `slot`.
void forget_port_of(unsigned slot);
uint64_t now();

}  // namespace netback
