#include <base/crc32.hpp>

namespace base {

namespace {

// The table, built at compile time: nothing to initialise at run time in
// the kernel or a domain.
struct CrcTable {
    uint32_t t[256];
    constexpr CrcTable() : t() {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
    }
};
constexpr CrcTable kCrc;

}  // namespace

uint32_t crc32(const uint8_t* data, size_t len, uint32_t crc) {
    crc = ~crc;
    for (size_t i = 0; i < len; ++i) crc = kCrc.t[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

}  // namespace base
