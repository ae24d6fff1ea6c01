// A hostile front-end (role=hostile): it speaks blkif wrongly in every way
// it can, and checks that blkback answers each wrong request with an error
// and keeps serving it, disconnects it for a garbage ring index (and lets
// it connect again), survives a flood, and, last, survives it vanishing
// with requests outstanding (the domain powers off with its ring full).
// A well-behaved guest on the same blkback is checked by its own test.

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
    expect(request(abi::kBlkifOpIndirect, 1), kNotSupp, "blk.hostile.indirect_op_refused");
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
    flood();
    garbage_index();
    if (d.connected()) vanish();
}

}  // namespace blkguest
