// Which blkif requests blkback carries out (include/blk/blk.hpp).

#include <blk/blk.hpp>

namespace blk {

bool place_disk(uint64_t capacity, uint64_t first, uint64_t sectors, bool read_only, Disk* out) {
    if (first >= capacity) return false;
    uint64_t room = capacity - first;
    if (sectors == 0) sectors = room;
    if (sectors > room) return false;
    *out = Disk{first, sectors, read_only};
    return true;
}

namespace {

// [sector, sector + n) inside the disk, without overflow.
bool in_disk(const Disk& d, uint64_t sector, uint64_t n) { return sector <= d.sectors && n <= d.sectors - sector; }

// The segments of a read or write (or a flush/barrier carrying data).
int16_t check_segments(const abi::BlkifRequest& r, const Disk& d, unsigned min_segments, Checked* out) {
    unsigned n = r.nr_segments;
    if (n < min_segments || n > abi::kBlkifMaxSegmentsPerRequest) return abi::kBlkifRspError;
    uint32_t total = 0;
    for (unsigned i = 0; i < n; ++i) {
        uint8_t first = r.seg[i].first_sect, last = r.seg[i].last_sect;
        if (first > last || last >= abi::kBlkifSectorsPerPage) return abi::kBlkifRspError;
        out->first[i] = first;
        out->count[i] = uint8_t(last - first + 1);
        total += out->count[i];
    }
    if (!in_disk(d, r.sector_number, total)) return abi::kBlkifRspError;
    out->nr_segments = uint8_t(n);
    out->nr_sectors = total;
    out->device_sector = d.first_sector + r.sector_number;
    return abi::kBlkifRspOkay;
}

}  // namespace

int16_t check_request(const abi::BlkifRequest& r, const Disk& d, const Features& f, Checked* out) {
    Checked c{};
    int16_t st = abi::kBlkifRspOkay;
    switch (r.operation) {
    case abi::kBlkifOpRead:
        c.action = Action::read;
        st = check_segments(r, d, 1, &c);
        break;
    case abi::kBlkifOpWrite:
        if (d.read_only) return abi::kBlkifRspError;
        c.action = Action::write;
        st = check_segments(r, d, 1, &c);
        break;
    case abi::kBlkifOpWriteBarrier:
    case abi::kBlkifOpFlushDiskcache:
        if (!f.flush) return abi::kBlkifRspEopnotsupp;
        // Data with it is a write, flushed once it is done; without, only
        // the flush. Either way after everything before it.
        if (r.nr_segments > abi::kBlkifMaxSegmentsPerRequest) return abi::kBlkifRspError;
        c.drain = true;
        if (r.nr_segments == 0) {
            c.action = Action::flush;
            break;
        }
        if (d.read_only) return abi::kBlkifRspError;
        c.action = Action::write;
        c.flush_after = true;
        st = check_segments(r, d, 1, &c);
        break;
    case abi::kBlkifOpDiscard: {
        abi::BlkifDiscard dr;
        static_assert(sizeof dr == sizeof r);
        __builtin_memcpy(&dr, &r, sizeof dr);
        if (!f.discard || (dr.flag & abi::kBlkifDiscardSecure)) return abi::kBlkifRspEopnotsupp;
        if (d.read_only) return abi::kBlkifRspError;
        if (!in_disk(d, dr.sector_number, dr.nr_sectors)) return abi::kBlkifRspError;
        if (f.max_discard_sectors && dr.nr_sectors > f.max_discard_sectors) return abi::kBlkifRspError;
        c.action = dr.nr_sectors ? Action::discard : Action::none;
        c.nr_sectors = uint32_t(dr.nr_sectors);
        if (c.nr_sectors != dr.nr_sectors) return abi::kBlkifRspError;  // more than a virtio discard carries
        c.device_sector = d.first_sector + dr.sector_number;
        break;
    }
    default:
        return abi::kBlkifRspEopnotsupp;
    }
    if (st == abi::kBlkifRspOkay) *out = c;
    return st;
}

}  // namespace blk
