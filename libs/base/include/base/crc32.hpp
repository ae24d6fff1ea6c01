#pragma once
// CRC-32 as zlib's crc32() (IEEE 802.3, reflected, initial and final ~0):
// crc32("123456789") == 0xcbf43926. The checksum of the binary manifest's
// payload (libs/manifest) and of each control-channel frame (libs/control).

#include <cstddef>
#include <cstdint>

namespace base {

// `crc` continues an earlier sum (0 to start).
uint32_t crc32(const uint8_t* data, size_t len, uint32_t crc = 0);

}  // namespace base
