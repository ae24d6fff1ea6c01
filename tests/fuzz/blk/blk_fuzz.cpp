// libs/blk's request check under arbitrary input: a request (112 bytes, as a
// hostile front-end writes it), a disk and the device's features. Whatever
// it accepts stays inside the virtual disk, uses only sectors inside each
// page, writes nothing to a read-only disk, and says the same every time.

#include <blk/blk.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    abi::BlkifRequest r{};
    if (size < sizeof r + 20) return 0;
    std::memcpy(&r, data, sizeof r);
    data += sizeof r;
    uint64_t first, sectors;
    std::memcpy(&first, data, 8);
    std::memcpy(&sectors, data + 8, 8);
    uint8_t flags = data[16];
    uint16_t max_discard;
    std::memcpy(&max_discard, data + 17, 2);
    // Small disks and operations most of the time, so that acceptance is
    // common; anything some of the time.
    if (flags & 0x10) first %= 1 << 20, sectors %= 1 << 12;
    if (flags & 0x20) r.operation %= 7;
    if (flags & 0x40) r.sector_number %= 1 << 13;
    blk::Disk d;
    if (!blk::place_disk(uint64_t(1) << 21, first, sectors, flags & 1, &d)) return 0;
    if (d.first_sector + d.sectors > uint64_t(1) << 21) std::abort();
    blk::Features f{bool(flags & 2), bool(flags & 4), max_discard};
    blk::Checked c, again;
    int16_t st = blk::check_request(r, d, f, &c);
    if (st != blk::check_request(r, d, f, &again)) std::abort();
    if (st != abi::kBlkifRspOkay) {
        if (st != abi::kBlkifRspError && st != abi::kBlkifRspEopnotsupp) std::abort();
        return 0;
    }
    switch (c.action) {
    case blk::Action::read:
    case blk::Action::write: {
        if (c.action == blk::Action::write && d.read_only) std::abort();
        if (c.nr_segments < 1 || c.nr_segments > 11 || c.nr_segments != r.nr_segments) std::abort();
        uint32_t total = 0;
        for (unsigned i = 0; i < c.nr_segments; ++i) {
            if (c.count[i] == 0 || c.first[i] + c.count[i] > 8) std::abort();
            total += c.count[i];
        }
        if (total != c.nr_sectors) std::abort();
        if (c.flush_after && !f.flush) std::abort();
        break;
    }
    case blk::Action::discard:
        if (d.read_only || !f.discard || c.nr_sectors == 0) std::abort();
        if (f.max_discard_sectors && c.nr_sectors > f.max_discard_sectors) std::abort();
        break;
    case blk::Action::flush:
        if (!f.flush || !c.drain) std::abort();
        return 0;
    case blk::Action::none:
        return 0;
    }
    // Inside the virtual disk, on the device.
    if (c.device_sector < d.first_sector) std::abort();
    if (c.device_sector - d.first_sector + c.nr_sectors > d.sectors) std::abort();
    return 0;
}
