// libs/blk: indirect requests (BLKIF_OP_INDIRECT) as a hostile front-end
// writes them, and the ring layout a front-end asks for (ring-page-order).

#include <blk/blk.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

namespace {

using abi::BlkifRequest;
using abi::BlkifSegment;
constexpr int16_t kOk = abi::kBlkifRspOkay, kErr = abi::kBlkifRspError, kNotSupp = abi::kBlkifRspEopnotsupp;
constexpr unsigned kMax = blk::kMaxIndirectSegments;

blk::Disk disk(uint64_t first = 1000, uint64_t sectors = 1000, bool ro = false) {
    return blk::Disk{first, sectors, ro};
}
blk::Features offered(unsigned max = kMax) { return blk::Features{true, true, 0, max}; }

BlkifRequest indirect(uint8_t op, uint16_t nseg, uint64_t sector = 0) {
    abi::BlkifRequestIndirect ir{};
    ir.operation = abi::kBlkifOpIndirect;
    ir.indirect_op = op;
    ir.nr_segments = nseg;
    ir.id = 77;
    ir.sector_number = sector;
    for (unsigned i = 0; i < abi::kBlkifMaxIndirectPagesPerRequest; ++i) ir.indirect_grefs[i] = 500 + i;
    BlkifRequest r;
    std::memcpy(&r, &ir, sizeof r);
    return r;
}

std::vector<BlkifSegment> segments(unsigned n, uint8_t first = 0, uint8_t last = 7) {
    std::vector<BlkifSegment> s(n);
    for (unsigned i = 0; i < n; ++i) s[i] = BlkifSegment{uint32_t(100 + i), first, last};
    return s;
}

int16_t step1(const BlkifRequest& r, const blk::Disk& d = disk(), blk::Features f = offered(),
              blk::IndirectFetch* out = nullptr) {
    blk::IndirectFetch local;
    return blk::check_indirect(r, d, f, out ? out : &local);
}

int16_t step2(const BlkifRequest& r, const std::vector<BlkifSegment>& s, const blk::Disk& d = disk(),
              blk::Features f = offered(), blk::Checked* out = nullptr) {
    blk::Checked local;
    return blk::check_indirect_segments(r, s.data(), unsigned(s.size()), d, f, out ? out : &local);
}

TEST(BlkIndirect, TheResponseCarriesTheIndirectOp) {
    EXPECT_EQ(blk::response_operation(indirect(abi::kBlkifOpRead, 20)), abi::kBlkifOpRead);
    EXPECT_EQ(blk::response_operation(indirect(abi::kBlkifOpWrite, 20)), abi::kBlkifOpWrite);
    EXPECT_EQ(blk::response_operation(indirect(200, 20)), 200);  // refused, echoed as Xen's back-end does
    BlkifRequest r{};
    r.operation = abi::kBlkifOpFlushDiskcache;
    EXPECT_EQ(blk::response_operation(r), abi::kBlkifOpFlushDiskcache);
}

TEST(BlkIndirect, NotOfferedNotSupported) {
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 20), disk(), offered(0)), kNotSupp);
    // check_request never judges an indirect request.
    blk::Checked c;
    EXPECT_EQ(blk::check_request(indirect(abi::kBlkifOpRead, 20), disk(), offered(), &c), kNotSupp);
}

TEST(BlkIndirect, OnlyReadAndWrite) {
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 20)), kOk);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpWrite, 20)), kOk);
    for (unsigned op : {2u, 3u, 4u, 5u, 6u, 7u, 200u, 255u}) {
        EXPECT_EQ(step1(indirect(uint8_t(op), 20)), kErr) << op;
        EXPECT_EQ(step2(indirect(uint8_t(op), 20), segments(20)), kErr) << op;
    }
}

TEST(BlkIndirect, SegmentCountWithinWhatWasOffered) {
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 0)), kErr);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 1)), kOk);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 11)), kOk);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, kMax)), kOk);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, kMax + 1)), kErr);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 512)), kErr);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 513)), kErr);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpWrite, 4096)), kErr);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpWrite, 65535)), kErr);
    // Fewer offered: fewer accepted.
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 17), disk(), offered(16)), kErr);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, 17), segments(17), disk(), offered(16)), kErr);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 16), disk(), offered(16)), kOk);
    // More offered than blkback is built for: its own bound holds.
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, blk::kMaxSegments + 1), disk(), offered(4096)), kErr);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, blk::kMaxSegments + 1), segments(blk::kMaxSegments + 1), disk(),
                    offered(4096)),
              kErr);
}

TEST(BlkIndirect, PagesToFetchFollowTheSegmentCount) {
    blk::IndirectFetch f{};
    BlkifRequest r = indirect(abi::kBlkifOpWrite, kMax);
    ASSERT_EQ(step1(r, disk(), offered(), &f), kOk);
    EXPECT_EQ(f.nr_segments, kMax);
    EXPECT_EQ(f.nr_pages, 1);
    EXPECT_EQ(f.gref[0], 500u);
    ASSERT_EQ(step1(indirect(abi::kBlkifOpRead, 1), disk(), offered(), &f), kOk);
    EXPECT_EQ(f.nr_pages, 1);
    EXPECT_EQ(f.nr_segments, 1);
}

TEST(BlkIndirect, ReadOnlyDisk) {
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 20), disk(0, 1000, true)), kOk);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpWrite, 20), disk(0, 1000, true)), kErr);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpWrite, 20), segments(20), disk(0, 1000, true)), kErr);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, 20), segments(20), disk(0, 1000, true)), kOk);
}

TEST(BlkIndirect, FirstSectorInsideTheDisk) {
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 1, 999)), kOk);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 1, 1000)), kErr);
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 1, ~0ull)), kErr);
}

TEST(BlkIndirect, SegmentsMapOntoTheDevice) {
    auto s = segments(kMax);
    s[3] = BlkifSegment{9, 2, 5};
    s[kMax - 1] = BlkifSegment{10, 7, 7};
    blk::Checked c;
    ASSERT_EQ(step2(indirect(abi::kBlkifOpWrite, kMax, 10), s, disk(), offered(), &c), kOk);
    EXPECT_EQ(c.action, blk::Action::write);
    EXPECT_FALSE(c.drain);
    EXPECT_FALSE(c.flush_after);
    EXPECT_EQ(c.nr_segments, kMax);
    EXPECT_EQ(c.device_sector, 1010u);
    EXPECT_EQ(c.nr_sectors, 8u * (kMax - 2) + 4 + 1);
    EXPECT_EQ(c.gref[0], 100u);
    EXPECT_EQ(c.gref[3], 9u);
    EXPECT_EQ(c.first[3], 2);
    EXPECT_EQ(c.count[3], 4);
    EXPECT_EQ(c.first[kMax - 1], 7);
    EXPECT_EQ(c.count[kMax - 1], 1);
    ASSERT_EQ(step2(indirect(abi::kBlkifOpRead, 12, 0), segments(12), disk(), offered(), &c), kOk);
    EXPECT_EQ(c.action, blk::Action::read);
    EXPECT_EQ(c.nr_sectors, 96u);
}

// Blkback judges its own copy: what the front-end's page says afterwards
// changes nothing that was checked.
TEST(BlkIndirect, CheckedIsACopy) {
    auto s = segments(20);
    blk::Checked c;
    ASSERT_EQ(step2(indirect(abi::kBlkifOpRead, 20), s, disk(), offered(), &c), kOk);
    for (auto& seg : s) seg = BlkifSegment{0xFFFFFFFFu, 200, 3};
    EXPECT_EQ(c.gref[5], 105u);
    EXPECT_EQ(c.first[5], 0);
    EXPECT_EQ(c.count[5], 8);
}

TEST(BlkIndirect, CountMustMatchTheRequest) {
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, 20), segments(19)), kErr);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, 20), segments(21)), kErr);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, 0), segments(0)), kErr);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, 20), segments(20)), kOk);
    // Step two of something that is not an indirect request.
    BlkifRequest r = indirect(abi::kBlkifOpRead, 20);
    r.operation = abi::kBlkifOpRead;
    EXPECT_EQ(step2(r, segments(20)), kErr);
    blk::IndirectFetch f;
    EXPECT_EQ(blk::check_indirect(r, disk(), offered(), &f), kErr);
}

TEST(BlkIndirect, HostileSegments) {
    for (unsigned at : {0u, 7u, kMax - 1}) {
        auto s = segments(kMax);
        s[at].first_sect = 5;
        s[at].last_sect = 3;
        EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, kMax), s), kErr) << at;
        s[at] = BlkifSegment{1, 0, 8};
        EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, kMax), s), kErr) << at;
        s[at] = BlkifSegment{1, 200, 200};
        EXPECT_EQ(step2(indirect(abi::kBlkifOpWrite, kMax), s), kErr) << at;
        s[at] = BlkifSegment{1, 255, 255};
        EXPECT_EQ(step2(indirect(abi::kBlkifOpWrite, kMax), s), kErr) << at;
        s[at] = BlkifSegment{1, 7, 7};
        EXPECT_EQ(step2(indirect(abi::kBlkifOpWrite, kMax), s), kOk) << at;
    }
}

TEST(BlkIndirect, TotalWithinTheDisk) {
    // 1000 sectors; 32 whole pages are 256 sectors.
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, kMax, 1000 - 8 * kMax), segments(kMax)), kOk);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, kMax, 1001 - 8 * kMax), segments(kMax)), kErr);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpWrite, kMax, 999), segments(kMax)), kErr);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpWrite, kMax, 999), segments(1, 0, 0)), kErr);  // count mismatch
    EXPECT_EQ(step2(indirect(abi::kBlkifOpWrite, 1, 999), segments(1, 0, 0)), kOk);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpWrite, 1, 999), segments(1, 0, 1)), kErr);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, kMax, ~0ull - 3), segments(kMax)), kErr);
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, kMax, ~0ull), segments(kMax, 0, 0)), kErr);
}

TEST(BlkIndirect, RefusedLeavesOutAlone) {
    blk::Checked c{};
    c.nr_sectors = 1234;
    EXPECT_EQ(step2(indirect(abi::kBlkifOpRead, 20), segments(20, 3, 1), disk(), offered(), &c), kErr);
    EXPECT_EQ(c.nr_sectors, 1234u);
    blk::IndirectFetch f{};
    f.nr_segments = 99;
    EXPECT_EQ(step1(indirect(abi::kBlkifOpRead, 0), disk(), offered(), &f), kErr);
    EXPECT_EQ(f.nr_segments, 99);
}

// Whatever a front-end writes, in the request and in its indirect page:
// what is accepted stays inside the disk and inside each page, has as many
// segments as the request says (no more than offered), and is the same
// every time.
TEST(BlkIndirect, ArbitraryInputStaysInBounds) {
    uint64_t x = 0x9E3779B97F4A7C15ull;
    auto next = [&x] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
    };
    unsigned accepted = 0;
    for (unsigned round = 0; round < 200000; ++round) {
        uint8_t raw[sizeof(BlkifRequest)];
        for (auto& b : raw) b = uint8_t(next());
        BlkifRequest r;
        std::memcpy(&r, raw, sizeof r);
        r.operation = abi::kBlkifOpIndirect;
        abi::BlkifRequestIndirect ir;
        std::memcpy(&ir, &r, sizeof ir);
        // Plausible values most of the time.
        if (round % 4) ir.indirect_op = uint8_t(ir.indirect_op % 3);
        if (round % 3) ir.nr_segments = uint16_t(ir.nr_segments % (kMax + 3));
        if (round % 5) ir.sector_number %= 1200;
        std::memcpy(&r, &ir, sizeof r);
        blk::Disk d = disk(next() % 100000, 1 + next() % 1000, next() % 4 == 0);
        blk::IndirectFetch f;
        if (blk::check_indirect(r, d, offered(), &f) != kOk) continue;
        ASSERT_GE(f.nr_segments, 1);
        ASSERT_LE(f.nr_segments, kMax);
        ASSERT_EQ(f.nr_pages, 1);
        std::vector<BlkifSegment> s(f.nr_segments);
        for (auto& seg : s) {
            uint64_t v = next();
            seg = BlkifSegment{uint32_t(v), uint8_t(v >> 32), uint8_t(v >> 40)};
            if (round % 2) seg.first_sect %= 8, seg.last_sect = uint8_t(seg.first_sect + (v >> 48) % (8 - seg.first_sect));
        }
        blk::Checked c, again;
        int16_t st = step2(r, s, d, offered(), &c);
        ASSERT_EQ(st, step2(r, s, d, offered(), &again));
        if (st != kOk) {
            ASSERT_EQ(st, kErr);
            continue;
        }
        ++accepted;
        ASSERT_TRUE(c.action == blk::Action::read || c.action == blk::Action::write);
        ASSERT_FALSE(c.action == blk::Action::write && d.read_only);
        ASSERT_EQ(c.nr_segments, f.nr_segments);
        uint32_t total = 0;
        for (unsigned i = 0; i < c.nr_segments; ++i) {
            ASSERT_GE(c.count[i], 1);
            ASSERT_LE(c.first[i] + c.count[i], 8);
            ASSERT_EQ(c.gref[i], s[i].gref);
            total += c.count[i];
        }
        ASSERT_EQ(total, c.nr_sectors);
        ASSERT_GE(c.device_sector, d.first_sector);
        ASSERT_LE(c.device_sector - d.first_sector + c.nr_sectors, d.sectors);
    }
    EXPECT_GT(accepted, 1000u);
}

TEST(BlkRing, Layout) {
    blk::RingLayout l{};
    ASSERT_TRUE(blk::ring_layout(false, 0, 2, &l));  // no ring-page-order: ring-ref, one page
    EXPECT_EQ(l.pages(), 1u);
    EXPECT_FALSE(l.numbered);
    ASSERT_TRUE(blk::ring_layout(false, 12345, 0, &l));  // the value of an absent node means nothing
    EXPECT_EQ(l.pages(), 1u);
    ASSERT_TRUE(blk::ring_layout(true, 0, 2, &l));  // order 0 written: ring-ref0
    EXPECT_EQ(l.pages(), 1u);
    EXPECT_TRUE(l.numbered);
    ASSERT_TRUE(blk::ring_layout(true, 1, 2, &l));
    EXPECT_EQ(l.pages(), 2u);
    ASSERT_TRUE(blk::ring_layout(true, 2, 2, &l));
    EXPECT_EQ(l.pages(), 4u);
    EXPECT_TRUE(l.numbered);
}

TEST(BlkRing, RefusesMoreThanOffered) {
    blk::RingLayout l{7, false};
    EXPECT_FALSE(blk::ring_layout(true, 3, 2, &l));
    EXPECT_FALSE(blk::ring_layout(true, 1, 0, &l));
    EXPECT_FALSE(blk::ring_layout(true, 64, 2, &l));
    EXPECT_FALSE(blk::ring_layout(true, ~0ull, 2, &l));   // not a number
    EXPECT_FALSE(blk::ring_layout(true, 9, 200, &l));     // never more than 256 pages
    EXPECT_EQ(l.order, 7);                                // untouched
    EXPECT_TRUE(blk::ring_layout(true, blk::kMaxRingPageOrder, blk::kMaxRingPageOrder, &l));
    EXPECT_EQ(l.pages(), blk::kMaxRingPages);
}

TEST(BlkRing, EntriesOfAMultiPageRing) {
    EXPECT_EQ(blk::BackRing::Shared::entries(4096), 32u);
    EXPECT_EQ(blk::BackRing::Shared::entries(2 * 4096), 64u);
    EXPECT_EQ(blk::BackRing::Shared::entries(blk::kMaxRingPages * 4096), 32u * blk::kMaxRingPages);
}

}  // namespace
