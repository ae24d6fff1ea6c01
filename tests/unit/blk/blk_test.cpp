// libs/blk: which blkif requests blkback carries out, where a virtual disk
// lies on the device, and the test pattern.

#include <blk/blk.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <set>

namespace {

using abi::BlkifRequest;
constexpr int16_t kOk = abi::kBlkifRspOkay, kErr = abi::kBlkifRspError, kNotSupp = abi::kBlkifRspEopnotsupp;

blk::Disk disk(uint64_t first = 1000, uint64_t sectors = 100, bool ro = false) { return blk::Disk{first, sectors, ro}; }

BlkifRequest rw(uint8_t op, uint64_t sector, unsigned nseg, uint8_t first = 0, uint8_t last = 7) {
    BlkifRequest r{};
    r.operation = op;
    r.nr_segments = uint8_t(nseg);
    r.id = 42;
    r.sector_number = sector;
    for (unsigned i = 0; i < abi::kBlkifMaxSegmentsPerRequest; ++i) r.seg[i] = {uint32_t(8 + i), first, last};
    return r;
}

BlkifRequest discard(uint64_t sector, uint64_t n, uint8_t flag = 0) {
    abi::BlkifDiscard d{};
    d.operation = abi::kBlkifOpDiscard;
    d.flag = flag;
    d.sector_number = sector;
    d.nr_sectors = n;
    BlkifRequest r;
    std::memcpy(&r, &d, sizeof r);
    return r;
}

int16_t check(const BlkifRequest& r, const blk::Disk& d, blk::Checked* c = nullptr,
              blk::Features f = blk::Features{true, true, 0}) {
    blk::Checked local;
    return blk::check_request(r, d, f, c ? c : &local);
}

TEST(BlkPlace, WholeDeviceOrRange) {
    blk::Disk d;
    ASSERT_TRUE(blk::place_disk(16384, 0, 0, false, &d));
    EXPECT_EQ(d.first_sector, 0u);
    EXPECT_EQ(d.sectors, 16384u);
    ASSERT_TRUE(blk::place_disk(16384, 2048, 0, true, &d));
    EXPECT_EQ(d.sectors, 16384u - 2048);
    EXPECT_TRUE(d.read_only);
    ASSERT_TRUE(blk::place_disk(16384, 2048, 14336, false, &d));
    EXPECT_EQ(d.sectors, 14336u);
}

TEST(BlkPlace, RefusesWhatDoesNotFit) {
    blk::Disk d{7, 7, true};
    EXPECT_FALSE(blk::place_disk(16384, 2048, 14337, false, &d));
    EXPECT_FALSE(blk::place_disk(16384, 16384, 0, false, &d));
    EXPECT_FALSE(blk::place_disk(16384, 16384, 1, false, &d));
    EXPECT_FALSE(blk::place_disk(16384, ~0ull, 2, false, &d));
    EXPECT_FALSE(blk::place_disk(16384, 1, ~0ull, false, &d));
    EXPECT_FALSE(blk::place_disk(0, 0, 0, false, &d));
    EXPECT_EQ(d.first_sector, 7u);   // untouched
}

TEST(BlkCheck, ReadMapsOntoTheDevice) {
    blk::Checked c;
    BlkifRequest r = rw(abi::kBlkifOpRead, 10, 3);
    r.seg[1] = {9, 2, 5};
    ASSERT_EQ(check(r, disk(), &c), kOk);
    EXPECT_EQ(c.action, blk::Action::read);
    EXPECT_EQ(c.device_sector, 1010u);
    EXPECT_EQ(c.nr_segments, 3);
    EXPECT_EQ(c.nr_sectors, 8u + 4 + 8);
    EXPECT_EQ(c.first[1], 2);
    EXPECT_EQ(c.count[1], 4);
    EXPECT_FALSE(c.drain);
}

TEST(BlkCheck, SegmentCounts) {
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 0, 0), disk()), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpWrite, 0, 0), disk()), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 0, 1), disk()), kOk);
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 0, 11), disk()), kOk);
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 0, 12), disk()), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpWrite, 0, 255), disk()), kErr);
}

TEST(BlkCheck, SectorsWithinAPage) {
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 0, 1, 7, 7), disk()), kOk);
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 0, 1, 0, 8), disk()), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 0, 1, 5, 3), disk()), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 0, 1, 200, 200), disk()), kErr);
    BlkifRequest r = rw(abi::kBlkifOpWrite, 0, 11);
    r.seg[10] = {1, 4, 2};
    EXPECT_EQ(check(r, disk()), kErr);
}

TEST(BlkCheck, RangeOfTheVirtualDisk) {
    // 100 sectors: 8-sector segments.
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 92, 1), disk()), kOk);
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 93, 1), disk()), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 99, 1, 0, 0), disk()), kOk);
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 100, 1, 0, 0), disk()), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, ~0ull, 1, 0, 0), disk()), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, ~0ull - 3, 1), disk()), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpWrite, 12, 11), disk()), kOk);
    EXPECT_EQ(check(rw(abi::kBlkifOpWrite, 13, 11), disk()), kErr);
}

TEST(BlkCheck, ReadOnlyDisk) {
    blk::Checked c;
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 0, 2), disk(0, 100, true)), kOk);
    EXPECT_EQ(check(rw(abi::kBlkifOpWrite, 0, 2), disk(0, 100, true)), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpWriteBarrier, 0, 2), disk(0, 100, true)), kErr);
    EXPECT_EQ(check(discard(0, 8), disk(0, 100, true)), kErr);
    ASSERT_EQ(check(rw(abi::kBlkifOpFlushDiskcache, 0, 0), disk(0, 100, true), &c), kOk);
    EXPECT_EQ(c.action, blk::Action::flush);
}

TEST(BlkCheck, FlushAndBarrier) {
    blk::Checked c;
    ASSERT_EQ(check(rw(abi::kBlkifOpFlushDiskcache, 12345, 0), disk(), &c), kOk);
    EXPECT_EQ(c.action, blk::Action::flush);
    EXPECT_TRUE(c.drain);
    ASSERT_EQ(check(rw(abi::kBlkifOpWriteBarrier, 8, 2), disk(), &c), kOk);
    EXPECT_EQ(c.action, blk::Action::write);
    EXPECT_TRUE(c.drain);
    EXPECT_TRUE(c.flush_after);
    EXPECT_EQ(c.device_sector, 1008u);
    EXPECT_EQ(check(rw(abi::kBlkifOpWriteBarrier, 99, 2), disk()), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpFlushDiskcache, 0, 12), disk()), kErr);
    EXPECT_EQ(check(rw(abi::kBlkifOpFlushDiskcache, 0, 0), disk(), nullptr, blk::Features{false, false, 0}), kNotSupp);
}

TEST(BlkCheck, Discard) {
    blk::Checked c;
    ASSERT_EQ(check(discard(10, 90), disk(), &c), kOk);
    EXPECT_EQ(c.action, blk::Action::discard);
    EXPECT_EQ(c.device_sector, 1010u);
    EXPECT_EQ(c.nr_sectors, 90u);
    ASSERT_EQ(check(discard(100, 0), disk(), &c), kOk);
    EXPECT_EQ(c.action, blk::Action::none);
    EXPECT_EQ(check(discard(10, 91), disk()), kErr);
    EXPECT_EQ(check(discard(1, ~0ull), disk()), kErr);
    EXPECT_EQ(check(discard(0, 8, abi::kBlkifDiscardSecure), disk()), kNotSupp);
    EXPECT_EQ(check(discard(0, 8), disk(), nullptr, blk::Features{true, false, 0}), kNotSupp);
    EXPECT_EQ(check(discard(0, 50), disk(), nullptr, blk::Features{true, true, 49}), kErr);
    EXPECT_EQ(check(discard(0, 49), disk(), nullptr, blk::Features{true, true, 49}), kOk);
    // Longer than a virtio discard carries (32 bits), on a huge disk.
    EXPECT_EQ(check(discard(0, 1ull << 32), disk(0, 1ull << 40)), kErr);
}

TEST(BlkCheck, OtherOperations) {
    for (unsigned op : {4u, 6u, 7u, 100u, 255u}) EXPECT_EQ(check(rw(uint8_t(op), 0, 1), disk()), kNotSupp) << op;
}

TEST(BlkCheck, RefusedLeavesOutAlone) {
    blk::Checked c{};
    c.nr_sectors = 1234;
    EXPECT_EQ(check(rw(abi::kBlkifOpRead, 0, 0), disk(), &c), kErr);
    EXPECT_EQ(c.nr_sectors, 1234u);
}

TEST(BlkPattern, DependsOnSeedAndSector) {
    uint8_t a[512], b[512];
    blk::pattern_sector(7, 100, a);
    blk::pattern_sector(7, 100, b);
    EXPECT_EQ(std::memcmp(a, b, 512), 0);
    uint64_t sector = 0;
    for (unsigned i = 0; i < 8; ++i) sector |= uint64_t(a[i]) << (8 * i);
    EXPECT_EQ(sector, 100u);
    blk::pattern_sector(7, 101, b);
    EXPECT_NE(std::memcmp(a, b, 512), 0);
    blk::pattern_sector(8, 100, b);
    EXPECT_NE(std::memcmp(a, b, 512), 0);
    // Sectors are not shifted copies of each other, and not constant.
    std::set<uint64_t> sums;
    for (uint64_t s = 0; s < 1000; ++s) {
        blk::pattern_sector(1, s, a);
        sums.insert(blk::checksum(blk::kChecksumStart, a + 16, 496));
    }
    EXPECT_EQ(sums.size(), 1000u);
}

TEST(BlkPattern, MatchesAndReportsTheFirstDifference) {
    uint8_t a[512];
    blk::pattern_sector(3, 9, a);
    size_t off = 999;
    EXPECT_TRUE(blk::pattern_matches(3, 9, a, &off));
    EXPECT_EQ(off, 999u);
    EXPECT_FALSE(blk::pattern_matches(3, 10, a, &off));
    EXPECT_EQ(off, 0u);
    a[300] ^= 1;
    EXPECT_FALSE(blk::pattern_matches(3, 9, a, &off));
    EXPECT_EQ(off, 300u);
}

TEST(BlkChecksum, Fnv1a) {
    EXPECT_EQ(blk::checksum(blk::kChecksumStart, nullptr, 0), blk::kChecksumStart);
    const uint8_t a = 'a';
    EXPECT_EQ(blk::checksum(blk::kChecksumStart, &a, 1), 0xaf63dc4c8601ec8cull);
    // Running: in pieces or at once.
    uint8_t buf[1024];
    for (unsigned i = 0; i < sizeof buf; ++i) buf[i] = uint8_t(i * 7);
    EXPECT_EQ(blk::checksum(blk::checksum(blk::kChecksumStart, buf, 100), buf + 100, 924),
              blk::checksum(blk::kChecksumStart, buf, 1024));
}

}  // namespace
