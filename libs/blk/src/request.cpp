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

// n segments (1..max) from `sector` on: each inside its page, all of them
// inside the disk. Fills the segment part of *out.
int16_t check_segments(const abi::BlkifSegment* seg, unsigned n, unsigned max, uint64_t sector, const Disk& d,
                       Checked* out) {
    if (n < 1 || n > max || n > kMaxSegments) return abi::kBlkifRspError;
    uint32_t total = 0;
    for (unsigned i = 0; i < n; ++i) {
        uint8_t first = seg[i].first_sect, last = seg[i].last_sect;
        if (first > last || last >= abi::kBlkifSectorsPerPage) return abi::kBlkifRspError;
        out->gref[i] = seg[i].gref;
        out->first[i] = first;
        out->count[i] = uint8_t(last - first + 1);
        total += out->count[i];
    }
    if (!in_disk(d, sector, total)) return abi::kBlkifRspError;
    out->nr_segments = uint8_t(n);
    out->nr_sectors = total;
    out->device_sector = d.first_sector + sector;
    return abi::kBlkifRspOkay;
}

// The segments of a read or write (or a flush/barrier carrying data).
int16_t check_segments(const abi::BlkifRequest& r, const Disk& d, Checked* out) {
    return check_segments(r.seg, r.nr_segments, abi::kBlkifMaxSegmentsPerRequest, r.sector_number, d, out);
}

abi::BlkifRequestIndirect as_indirect(const abi::BlkifRequest& r) {
    abi::BlkifRequestIndirect ir;
    static_assert(sizeof ir == sizeof r);
    __builtin_memcpy(&ir, &r, sizeof ir);
    return ir;
}

// What an indirect request may ask for at all.
int16_t check_indirect_op(const abi::BlkifRequestIndirect& ir, const Disk& d, const Features& f) {
    if (f.max_indirect_segments == 0) return abi::kBlkifRspEopnotsupp;
    if (ir.indirect_op != abi::kBlkifOpRead && ir.indirect_op != abi::kBlkifOpWrite) return abi::kBlkifRspError;
    if (ir.indirect_op == abi::kBlkifOpWrite && d.read_only) return abi::kBlkifRspError;
    unsigned max = f.max_indirect_segments < kMaxSegments ? f.max_indirect_segments : kMaxSegments;
    if (ir.nr_segments == 0 || ir.nr_segments > max) return abi::kBlkifRspError;
    return abi::kBlkifRspOkay;
}

}  // namespace

int16_t check_request(const abi::BlkifRequest& r, const Disk& d, const Features& f, Checked* out) {
    Checked c{};
    int16_t st = abi::kBlkifRspOkay;
    switch (r.operation) {
    case abi::kBlkifOpRead:
        c.action = Action::read;
        st = check_segments(r, d, &c);
        break;
    case abi::kBlkifOpWrite:
        if (d.read_only) return abi::kBlkifRspError;
        c.action = Action::write;
        st = check_segments(r, d, &c);
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
        st = check_segments(r, d, &c);
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
    default:  // INDIRECT (check_indirect), reserved, unknown
        return abi::kBlkifRspEopnotsupp;
    }
    if (st == abi::kBlkifRspOkay) *out = c;
    return st;
}

uint8_t response_operation(const abi::BlkifRequest& r) {
    return r.operation == abi::kBlkifOpIndirect ? as_indirect(r).indirect_op : r.operation;
}

int16_t check_indirect(const abi::BlkifRequest& r, const Disk& d, const Features& f, IndirectFetch* out) {
    if (r.operation != abi::kBlkifOpIndirect) return abi::kBlkifRspError;
    abi::BlkifRequestIndirect ir = as_indirect(r);
    int16_t st = check_indirect_op(ir, d, f);
    if (st != abi::kBlkifRspOkay) return st;
    // The first sector at least: a request that starts beyond the disk is
    // refused before anything is copied for it.
    if (ir.sector_number >= d.sectors) return abi::kBlkifRspError;
    IndirectFetch fetch{};
    fetch.nr_segments = ir.nr_segments;
    fetch.nr_pages = uint8_t((ir.nr_segments + abi::kBlkifSegmentsPerIndirectPage - 1) /
                             abi::kBlkifSegmentsPerIndirectPage);
    for (unsigned i = 0; i < fetch.nr_pages; ++i) fetch.gref[i] = ir.indirect_grefs[i];
    *out = fetch;
    return abi::kBlkifRspOkay;
}

int16_t check_indirect_segments(const abi::BlkifRequest& r, const abi::BlkifSegment* segs, unsigned n,
                                const Disk& d, const Features& f, Checked* out) {
    if (r.operation != abi::kBlkifOpIndirect) return abi::kBlkifRspError;
    abi::BlkifRequestIndirect ir = as_indirect(r);
    if (check_indirect_op(ir, d, f) != abi::kBlkifRspOkay || n != ir.nr_segments) return abi::kBlkifRspError;
    Checked c{};
    c.action = ir.indirect_op == abi::kBlkifOpWrite ? Action::write : Action::read;
    int16_t st = check_segments(segs, n, f.max_indirect_segments, ir.sector_number, d, &c);
    if (st == abi::kBlkifRspOkay) *out = c;
    return st;
}

bool ring_layout(bool present, uint64_t order, unsigned max_order, RingLayout* out) {
    if (!present) {
        *out = RingLayout{0, false};
        return true;
    }
    // Never more than 2^8 pages, whatever we are built to offer.
    if (order > max_order || order > 8) return false;
    *out = RingLayout{uint8_t(order), true};
    return true;
}

}  // namespace blk
