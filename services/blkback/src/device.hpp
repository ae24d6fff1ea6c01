#pragma once
// blkback's virtio-blk device: one request queue; a request occupies one
// of kSlots slots, each with its own header, status byte and bounce pages
// (the only memory the device reads or writes: data never goes to or
// comes from a front-end's page directly, grant copy moves it).

#include <cstdint>

#include <blk/blk.hpp>

namespace blkback {

inline constexpr unsigned kSlots = 16;  // chains of <= 13 descriptors: 16 fit a 256-entry queue
inline constexpr unsigned kPagesPerSlot = abi::kBlkifMaxSegmentsPerRequest;

struct DeviceInfo {
    uint64_t capacity = 0;  // 512-byte sectors
    bool read_only = false;
    bool flush = false;
    bool discard = false;
    uint32_t max_discard_sectors = 0;
    uint32_t discard_alignment = 1;  // sectors
    uint32_t block_size = 512;
};

// Opens, negotiates and starts the function `bdf`; prints why on failure.
bool device_open(uint32_t bdf);
const DeviceInfo& device();
// The event channel of its interrupt.
uint32_t device_port();
// Called when that port fired: reads the ISR (lowering the line); call
// device_ack() once the used ring has been looked at.
void device_interrupt();
void device_ack();

uint8_t* bounce(unsigned slot, unsigned page);

// Chains for slot `slot` (nothing else in flight on it); false if the
// queue has no room. The device hears of them at device_kick().
bool device_submit_rw(unsigned slot, bool write, uint64_t sector, const blk::Checked& c);
bool device_submit_flush(unsigned slot);
bool device_submit_discard(unsigned slot, uint64_t sector, uint32_t sectors);
void device_kick();
// A finished chain: its slot and the device's status byte; false if none.
bool device_take(unsigned* slot, uint8_t* status);

}  // namespace blkback
