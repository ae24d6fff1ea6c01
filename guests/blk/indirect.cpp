// Indirect requests by hand (common.hpp): rt::Blkfront speaks only direct
// ones (11 segments), so these build BLKIF_OP_INDIRECT requests over its
// data pages, the segment list in its last data page (kListPage).

#include "common.hpp"

#include <rt/xenbus.hpp>

#include <base/format.hpp>

namespace blkguest {

namespace {
uint64_t g_indirect_id = 5'000'000;
}

unsigned backend_number(const char* key, unsigned def) {
    char path[160];
    base::snformat(path, sizeof path, "%s/%s", disk().backend_path(), key);
    auto v = rt::xs_read_number(path);
    return v && *v < 0x10000'0000ull ? unsigned(*v) : def;
}

void lay_segments(unsigned n, unsigned per, abi::BlkifSegment* out) {
    for (unsigned i = 0; i < n; ++i) {
        unsigned sector = i * per;
        uint8_t first = uint8_t(sector % abi::kBlkifSectorsPerPage);
        out[i] = abi::BlkifSegment{disk().data_ref(sector / abi::kBlkifSectorsPerPage), first,
                                   uint8_t(first + per - 1)};
    }
}

abi::BlkifRequest indirect_request(uint8_t op, uint64_t sector, const abi::BlkifSegment* segs, unsigned n,
                                   uint16_t nr_segments) {
    auto* list = reinterpret_cast<abi::BlkifSegment*>(disk().data_page(kListPage));
    for (unsigned i = 0; i < n && i < abi::kBlkifSegmentsPerIndirectPage; ++i) list[i] = segs[i];
    abi::BlkifRequestIndirect ir{};
    ir.operation = abi::kBlkifOpIndirect;
    ir.indirect_op = op;
    ir.nr_segments = nr_segments;
    ir.id = g_indirect_id++;
    ir.sector_number = sector;
    ir.handle = uint16_t(disk().devid());
    ir.indirect_grefs[0] = disk().data_ref(kListPage);
    // The pages after the first are not used by so few segments: whatever
    // they say must not matter.
    for (unsigned i = 1; i < abi::kBlkifMaxIndirectPagesPerRequest; ++i) ir.indirect_grefs[i] = 0xFFFFFFF0u - i;
    abi::BlkifRequest r;
    __builtin_memcpy(&r, &ir, sizeof r);
    return r;
}

int indirect_round_trip(const abi::BlkifRequest& r, uint64_t deadline) {
    rt::Blkfront& d = disk();
    if (!d.push(r)) return d.ring().broken() ? rt::Blkfront::kBroken : rt::Blkfront::kInvalid;
    abi::BlkifResponse rsp;
    int st = d.wait_response(&rsp, deadline);
    if (st == rt::Blkfront::kTimedOut || st == rt::Blkfront::kBroken) return st;
    // The answer to an indirect request carries its indirect_op (Xen's
    // back-ends do; Linux's blkfront refuses anything else).
    if (rsp.id != r.id || rsp.operation != blk::response_operation(r)) return rt::Blkfront::kBroken;
    return st;
}

int indirect_io(uint8_t op, uint64_t sector, unsigned n, unsigned per, uint64_t deadline) {
    abi::BlkifSegment segs[abi::kBlkifSegmentsPerIndirectPage];
    if (n == 0 || n > abi::kBlkifSegmentsPerIndirectPage || per == 0 || abi::kBlkifSectorsPerPage % per ||
        n * per > kListPage * abi::kBlkifSectorsPerPage)
        return rt::Blkfront::kInvalid;
    lay_segments(n, per, segs);
    return indirect_round_trip(indirect_request(op, sector, segs, n, uint16_t(n)), deadline);
}

}  // namespace blkguest
