#pragma once
// blkback's virtio-blk device: one request queue; a request occupies one
// of kSlots slots, each with its own header and status byte, and one bounce
// page per segment from a pool of kBouncePages (the only memory the device
// reads or writes: data never goes to or comes from a front-end's page
// directly, grant copy moves it).

#include <cstdint>

#include <blk/blk.hpp>

namespace blkback {

inline constexpr unsigned kSlots = 16;
// A chain is a header, one descriptor per bounce page and a status byte (a
// discard: header, its segment, status). So kSlots chains holding every
// bounce page between them never need more than kQueueDescriptors
// descriptors: the queue cannot run out before the slots or the pages do.
inline constexpr unsigned kBouncePages = 208;
inline constexpr unsigned kQueueDescriptors = 3 * kSlots + kBouncePages;
static_assert(kQueueDescriptors <= 256, "a virtio-blk queue has 256 entries");
static_assert(kBouncePages >= 2 * blk::kMaxSegments, "room for the largest request of two front-ends");

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

// Bounce page `page` (0..kBouncePages-1).
uint8_t* bounce(unsigned page);

// Chains for slot `slot` (nothing else in flight on it); false if the
// queue has no room. The device hears of them at device_kick(). A read or
// write moves segment i through bounce page pages[i].
bool device_submit_rw(unsigned slot, bool write, uint64_t sector, const blk::Checked& c, const uint16_t* pages);
bool device_submit_flush(unsigned slot);
bool device_submit_discard(unsigned slot, uint64_t sector, uint32_t sectors);
void device_kick();
// A finished chain: its slot and the device's status byte; false if none.
bool device_take(unsigned* slot, uint8_t* status);

}  // namespace blkback
