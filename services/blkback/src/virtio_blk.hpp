#pragma once
// virtio-blk (virtio 1.x, section "Block Device"): feature bits, the
// device-specific configuration, and the request a chain starts with.

#include <cstddef>
#include <cstdint>

namespace blkback::vblk {

inline constexpr uint64_t kFSizeMax = 1ull << 1, kFSegMax = 1ull << 2, kFRo = 1ull << 5, kFBlkSize = 1ull << 6,
                          kFFlush = 1ull << 9, kFDiscard = 1ull << 13;

// Offsets in the device configuration.
inline constexpr size_t kCfgCapacity = 0;          // le64, 512-byte sectors
inline constexpr size_t kCfgSegMax = 12;           // le32
inline constexpr size_t kCfgBlkSize = 20;          // le32
inline constexpr size_t kCfgMaxDiscardSectors = 36;  // le32
inline constexpr size_t kCfgMaxDiscardSeg = 40;      // le32
inline constexpr size_t kCfgDiscardAlignment = 44;   // le32, sectors

// Request types.
inline constexpr uint32_t kTIn = 0, kTOut = 1, kTFlush = 4, kTDiscard = 11;
// The status byte the device writes last.
inline constexpr uint8_t kSOk = 0, kSIoErr = 1, kSUnsupp = 2;

struct Header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
static_assert(sizeof(Header) == 16);

struct DiscardSegment {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;  // bit 0 (unmap) is for write-zeroes only
};
static_assert(sizeof(DiscardSegment) == 16);

}  // namespace blkback::vblk
