// A hostile front-end (role=hostile): it speaks blkif wrongly in every way
// it can, direct and indirect requests alike, and checks that blkback
// answers each wrong request with an error and keeps serving it, survives
// a flood (of the largest indirect requests too), disconnects it for a
// garbage ring index (and lets it connect again), refuses rings it did not
// offer and serves the ones it did (multipage.cpp), and, last, survives it
// vanishing with requests outstanding (the domain powers off with its ring
// full). A well-behaved guest on the same blkback is checked by its own
// test.

#include "common.hpp"

#include <rt/events.hpp>
#include <rt/xenbus.hpp>

#include <abi/io_ring.hpp>

namespace blkguest {

namespace {

constexpr uint32_t kNeverGranted = 300;   // a reference of ours nobody was given
constexpr uint64_t kWaitNs = 20'000'000'000;
uint64_t g_id = 1'000'000;

abi::BlkifRequest request(uint8_t op, uint8_t nseg, uint64_t sector = 0) {
    abi::BlkifRequest r{};
    r.operation = op;
    r.nr_segments = nseg;
    r.id = g_id++;
    r.sector_number = sector;
    for (unsigned i = 0; i < abi::kBlkifMaxSegmentsPerRequest; ++i)
        r.seg[i] = abi::BlkifSegment{disk().data_ref(i), 0, 7};
    return r;
}

void expect(const abi::BlkifRequest& r, int want, const char* name) {
    int st = disk().round_trip(r, rt::now_ns() + kWaitNs);
    check(st == want, name, "status %d, wanted %d", st, want);
}

void bad_requests() {
    rt::Blkfront& d = disk();
    uint64_t sectors = d.info().sectors;
    constexpr int kErr = abi::kBlkifRspError, kNotSupp = abi::kBlkifRspEopnotsupp;
    expect(request(abi::kBlkifOpRead, 0), kErr, "blk.hostile.read_zero_segments_refused");
    expect(request(abi::kBlkifOpRead, 12), kErr, "blk.hostile.read_12_segments_refused");
    expect(request(abi::kBlkifOpWrite, 255), kErr, "blk.hostile.write_255_segments_refused");
    abi::BlkifRequest r = request(abi::kBlkifOpRead, 2);
    r.seg[1].first_sect = 5;
    r.seg[1].last_sect = 3;
    expect(r, kErr, "blk.hostile.first_after_last_refused");
    r = request(abi::kBlkifOpRead, 1);
    r.seg[0].last_sect = 8;
    expect(r, kErr, "blk.hostile.last_sect_beyond_page_refused");
    r = request(abi::kBlkifOpWrite, 1);
    r.seg[0].first_sect = r.seg[0].last_sect = 200;
    expect(r, kErr, "blk.hostile.sector_200_of_a_page_refused");
    expect(request(abi::kBlkifOpRead, 1, sectors), kErr, "blk.hostile.read_beyond_disk_refused");
    expect(request(abi::kBlkifOpWrite, 11, sectors - 8), kErr, "blk.hostile.write_across_disk_end_refused");
    expect(request(abi::kBlkifOpWrite, 1, ~0ull - 2), kErr, "blk.hostile.wrapping_sector_refused");
    r = request(abi::kBlkifOpRead, 3);
    r.seg[2].gref = kNeverGranted;
    expect(r, kErr, "blk.hostile.read_into_ungranted_ref_refused");
    r = request(abi::kBlkifOpWrite, 1);
    r.seg[0].gref = kNeverGranted;
    expect(r, kErr, "blk.hostile.write_from_ungranted_ref_refused");
    r = request(abi::kBlkifOpWrite, 1);
    r.seg[0].gref = 0xFFFFFFF0u;
    expect(r, kErr, "blk.hostile.write_from_huge_ref_refused");
    expect(request(abi::kBlkifOpReserved1, 1), kNotSupp, "blk.hostile.reserved_op_refused");
    expect(request(200, 1), kNotSupp, "blk.hostile.unknown_op_refused");
    abi::BlkifDiscard dc{};
    dc.operation = abi::kBlkifOpDiscard;
    dc.id = g_id++;
    dc.sector_number = sectors - 1;
    dc.nr_sectors = ~0ull;
    __builtin_memcpy(&r, &dc, sizeof r);
    int st = d.round_trip(r, rt::now_ns() + kWaitNs);
    check(st == kErr || st == kNotSupp, "blk.hostile.huge_discard_refused", "status %d", st);
    // After all that, a good request is served.
    expect(request(abi::kBlkifOpRead, 11, 0), abi::kBlkifRspOkay, "blk.hostile.served_after_bad_requests");
}

void expect_indirect(const abi::BlkifRequest& r, int want, const char* name) {
    int st = indirect_round_trip(r, rt::now_ns() + kWaitNs);
    check(st == want, name, "status %d, wanted %d", st, want);
}

// Indirect requests (blkback offers them), wrong in every way: each gets
// ERROR, answered with its indirect_op as the operation; good ones around
// them are served.
void indirect_requests() {
    rt::Blkfront& d = disk();
    uint64_t sectors = d.info().sectors;
    unsigned max = backend_number("feature-max-indirect-segments", 0);
    check(max >= 32 && max <= abi::kBlkifSegmentsPerIndirectPage, "blk.hostile.indirect_offered",
          "feature-max-indirect-segments %u", max);
    if (max < 32 || max > abi::kBlkifSegmentsPerIndirectPage) return;
    constexpr int kErr = abi::kBlkifRspError;
    uint64_t deadline = rt::now_ns() + kWaitNs;
    abi::BlkifSegment segs[abi::kBlkifSegmentsPerIndirectPage];
    lay_segments(32, 2, segs);
    auto good = [&](uint8_t op) { return indirect_request(op, 0, segs, 32, 32); };
    expect_indirect(good(abi::kBlkifOpRead), 0, "blk.hostile.indirect_read_served");
    expect_indirect(good(abi::kBlkifOpWrite), 0, "blk.hostile.indirect_write_served");
    // Only READ and WRITE may be indirect (as Xen's back-end: ERROR).
    expect_indirect(good(abi::kBlkifOpFlushDiskcache), kErr, "blk.hostile.indirect_op_refused");
    expect_indirect(good(abi::kBlkifOpDiscard), kErr, "blk.hostile.indirect_discard_refused");
    expect_indirect(good(abi::kBlkifOpIndirect), kErr, "blk.hostile.indirect_nested_refused");
    expect_indirect(good(200), kErr, "blk.hostile.indirect_unknown_op_refused");
    expect_indirect(indirect_request(abi::kBlkifOpRead, 0, segs, 32, 0), kErr,
                    "blk.hostile.indirect_zero_segments_refused");
    expect_indirect(indirect_request(abi::kBlkifOpRead, 0, segs, 32, uint16_t(max + 1)), kErr,
                    "blk.hostile.indirect_more_segments_than_offered_refused");
    expect_indirect(indirect_request(abi::kBlkifOpWrite, 0, segs, 32, 65535), kErr,
                    "blk.hostile.indirect_65535_segments_refused");
    abi::BlkifSegment bad[abi::kBlkifSegmentsPerIndirectPage];
    auto with = [&](unsigned at, abi::BlkifSegment seg, uint8_t op = abi::kBlkifOpRead) {
        __builtin_memcpy(bad, segs, sizeof bad);
        bad[at] = seg;
        return indirect_request(op, 0, bad, 32, 32);
    };
    expect_indirect(with(20, {d.data_ref(0), 5, 3}), kErr, "blk.hostile.indirect_first_after_last_refused");
    expect_indirect(with(31, {d.data_ref(0), 0, 8}), kErr, "blk.hostile.indirect_last_sect_beyond_page_refused");
    expect_indirect(with(0, {d.data_ref(0), 200, 200}, abi::kBlkifOpWrite), kErr,
                    "blk.hostile.indirect_sector_200_of_a_page_refused");
    expect_indirect(with(31, {kNeverGranted, 0, 1}), kErr, "blk.hostile.indirect_ungranted_segment_refused");
    expect_indirect(with(5, {0xFFFFFFF0u, 0, 1}, abi::kBlkifOpWrite), kErr,
                    "blk.hostile.indirect_huge_segment_ref_refused");
    expect_indirect(indirect_request(abi::kBlkifOpRead, sectors - 32, segs, 32, 32), kErr,
                    "blk.hostile.indirect_across_disk_end_refused");
    expect_indirect(indirect_request(abi::kBlkifOpRead, sectors, segs, 1, 1), kErr,
                    "blk.hostile.indirect_beyond_disk_refused");
    expect_indirect(indirect_request(abi::kBlkifOpWrite, ~0ull - 3, segs, 32, 32), kErr,
                    "blk.hostile.indirect_wrapping_sector_refused");
    // The list itself in a page never granted, or beyond the table.
    abi::BlkifRequest r = good(abi::kBlkifOpRead);
    abi::BlkifRequestIndirect ir;
    __builtin_memcpy(&ir, &r, sizeof ir);
    ir.indirect_grefs[0] = kNeverGranted;
    __builtin_memcpy(&r, &ir, sizeof r);
    expect_indirect(r, kErr, "blk.hostile.indirect_ungranted_list_refused");
    ir.indirect_grefs[0] = 0xFFFFFFF0u;
    __builtin_memcpy(&r, &ir, sizeof r);
    expect_indirect(r, kErr, "blk.hostile.indirect_huge_list_ref_refused");
    // The list rewritten with garbage right after the push: blkback reads
    // it once, whenever it does, and answers from what it read.
    r = good(abi::kBlkifOpRead);
    bool pushed = d.push(r);
    auto* list = reinterpret_cast<abi::BlkifSegment*>(d.data_page(kListPage));
    for (unsigned i = 0; i < 32; ++i) list[i] = abi::BlkifSegment{kNeverGranted + i, 9, 1};
    abi::BlkifResponse rsp{};
    int st = pushed ? d.wait_response(&rsp, deadline) : rt::Blkfront::kInvalid;
    check((st == 0 || st == kErr) && rsp.id == r.id && rsp.operation == abi::kBlkifOpRead,
          "blk.hostile.indirect_list_rewritten_answered", "status %d", st);
    expect_indirect(good(abi::kBlkifOpRead), 0, "blk.hostile.served_after_bad_indirect_requests");
}

// A ring full of the largest indirect requests blkback takes (bad ones
// between them), pushed at once, round after round: far more bounce pages
// than one front-end may hold, so most wait for others to finish; every
// one is answered, and right.
void indirect_flood() {
    rt::Blkfront& d = disk();
    unsigned max = backend_number("feature-max-indirect-segments", 0);
    if (max < 32) return;
    unsigned rounds = arg("indirect-flood-rounds", 10), answered = 0, right = 0, sent = 0;
    abi::BlkifSegment segs[abi::kBlkifSegmentsPerIndirectPage];
    lay_segments(32, 2, segs);
    // Every request names the same list, written once.
    abi::BlkifRequest good = indirect_request(abi::kBlkifOpRead, 0, segs, 32, 32);
    for (unsigned round = 0; round < rounds; ++round) {
        uint64_t first = g_id;
        unsigned n = 0;
        for (; n < d.ring().size(); ++n) {
            abi::BlkifRequest r = good;
            abi::BlkifRequestIndirect ir;
            __builtin_memcpy(&ir, &r, sizeof ir);
            ir.id = g_id++;
            ir.sector_number = (n * 64) % (d.info().sectors - 64);
            ir.indirect_op = n % 2 ? abi::kBlkifOpRead : abi::kBlkifOpWrite;
            if (n % 5 == 4) ir.nr_segments = uint16_t(max + 1);  // refused
            __builtin_memcpy(&r, &ir, sizeof r);
            if (!d.ring().push_request(r)) break;
        }
        if (d.ring().push_requests_and_check_notify()) rt::notify(d.port());
        sent += n;
        for (unsigned k = 0; k < n; ++k) {
            abi::BlkifResponse rsp;
            int st = d.wait_response(&rsp, rt::now_ns() + kWaitNs);
            if (st == rt::Blkfront::kTimedOut || st == rt::Blkfront::kBroken) break;
            ++answered;
            uint64_t i = rsp.id - first;
            bool refused = i % 5 == 4;
            uint8_t op = i % 2 ? abi::kBlkifOpRead : abi::kBlkifOpWrite;
            right += i < n && rsp.operation == op && (refused ? rsp.status == abi::kBlkifRspError : rsp.status == 0);
        }
    }
    check(answered == sent && right == sent, "blk.hostile.indirect_flood_answered", "%u sent, %u answered, %u right",
          sent, answered, right);
}

// Rounds of a full ring (good and bad requests mixed), pushed at once.
void flood() {
    rt::Blkfront& d = disk();
    unsigned rounds = arg("flood-rounds", 100), answered = 0, right = 0, sent = 0;
    uint64_t sectors = d.info().sectors;
    for (unsigned round = 0; round < rounds; ++round) {
        uint64_t first = g_id;
        unsigned n = 0;
        for (; n < d.ring().size(); ++n) {
            bool good = n % 3 != 0;
            abi::BlkifRequest r = good ? request(n % 2 ? abi::kBlkifOpRead : abi::kBlkifOpWrite, 1, (n * 8) % sectors)
                                       : request(abi::kBlkifOpRead, 0);
            if (!d.ring().push_request(r)) break;
        }
        if (d.ring().push_requests_and_check_notify()) rt::notify(d.port());
        sent += n;
        for (unsigned k = 0; k < n; ++k) {
            abi::BlkifResponse rsp;
            int st = d.wait_response(&rsp, rt::now_ns() + kWaitNs);
            if (st == rt::Blkfront::kTimedOut || st == rt::Blkfront::kBroken) break;
            ++answered;
            uint64_t i = rsp.id - first;
            bool good = i % 3 != 0;
            right += i < n && (good ? rsp.status == 0 : rsp.status == abi::kBlkifRspError);
        }
    }
    check(answered == sent && right == sent, "blk.hostile.flood_answered", "%u sent, %u answered, %u right", sent,
          answered, right);
}

// A producer index far beyond what the ring holds: the back-end must give
// up on the ring (and say Closed), not read slots that are not requests.
void garbage_index() {
    rt::Blkfront& d = disk();
    auto* hdr = static_cast<abi::SringHeader*>(d.shared_ring());
    __atomic_store_n(&hdr->req_prod, d.ring().req_prod_pvt() + 1000, __ATOMIC_RELEASE);
    rt::notify(d.port());
    char path[128];
    base::snformat(path, sizeof path, "%s/state", d.backend_path());
    bool closed = false;
    uint64_t deadline = rt::now_ns() + kWaitNs;
    if (rt::xs_watch(path, "be")) {
        for (;;) {
            auto s = rt::xs_read_number(path);
            if (s && *s == 6) {
                closed = true;
                break;
            }
            rt::XsWatchEvent ev;
            if (!rt::xs_wait_watch_event(ev, deadline)) break;
        }
        (void)rt::xs_unwatch(path, "be");
    }
    check(closed, "blk.hostile.garbage_index_disconnected");
    check(d.close(rt::now_ns() + kWaitNs), "blk.hostile.closed_after_garbage", "%s", d.error());
    bool again = d.connect(0, rt::now_ns() + kConnectNs);
    check(again, "blk.hostile.reconnected", "%s", d.error());
    if (again) expect(request(abi::kBlkifOpRead, 4, 0), abi::kBlkifRspOkay, "blk.hostile.served_after_reconnect");
}

// The ring full of writes and reads, and the domain gone before any answer.
void vanish() {
    rt::Blkfront& d = disk();
    unsigned n = 0;
    for (; n < d.ring().size(); ++n)
        if (!d.ring().push_request(request(n % 2 ? abi::kBlkifOpWrite : abi::kBlkifOpRead, 11, 0))) break;
    d.ring().push_requests();
    rt::notify(d.port());
    rt::printf("vanishing with %u requests outstanding\n", n);
}

}  // namespace

void hostile_test() {
    rt::Blkfront& d = disk();
    bool up = d.connect(0, rt::now_ns() + kConnectNs);
    check(up, "blk.hostile.connected", "%s", d.error());
    if (!up) return;
    d.set_timeout(kWaitNs);
    bad_requests();
    indirect_requests();
    flood();
    indirect_flood();
    garbage_index();
    if (d.connected()) multipage_test();
    if (d.connected()) vanish();
}

}  // namespace blkguest
