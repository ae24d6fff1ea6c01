// The pattern test (common.hpp). Read-write (`seed=N`, `rounds=R`): R
// times over, the whole disk is written with a pattern (the last round's is
// `seed`'s, the one left on the disk), flushed, read back and compared
// sector by sector; flush, barrier and discard answer as the back-end
// advertised; the final checksum is printed. Read-only (`ro`, `fill=B`):
// the whole disk reads back (as the byte B everywhere, if given), writes
// and discards are refused. Both: sectors beyond the end are refused.
// `expect-refused`: the disk does not fit the device, and the back-end
// refuses it.

#include "common.hpp"

#include <base/format.hpp>
#include <blk/blk.hpp>

namespace blkguest {

namespace {

constexpr uint32_t kChunk = rt::Blkfront::kMaxSectorsPerRequest;
uint8_t g_buf[kChunk * blk::kSectorBytes];

const char* g_prefix = "blk.rw";
char g_name[4][64];
unsigned g_next_name;
const char* name(const char* what) {
    char* n = g_name[g_next_name++ % 4];
    base::snformat(n, sizeof g_name[0], "%s.%s", g_prefix, what);
    return n;
}

// Writes the pattern of `seed` over [first, first + n); the status.
int write_pattern(uint32_t seed, uint64_t first, uint64_t n) {
    for (uint64_t s = first; s < first + n;) {
        uint32_t chunk = first + n - s < kChunk ? uint32_t(first + n - s) : kChunk;
        for (uint32_t i = 0; i < chunk; ++i) blk::pattern_sector(seed, s + i, g_buf + i * blk::kSectorBytes);
        int st = disk().write(s, chunk, g_buf);
        if (st != 0) return st;
        s += chunk;
    }
    return 0;
}

// Reads the whole disk back: the sectors that are not the pattern of
// `seed` (counted; the first one in *first_bad), and the checksum.
int read_back(uint32_t seed, uint64_t* bad, uint64_t* first_bad, uint64_t* sum) {
    uint64_t sectors = disk().info().sectors;
    *bad = 0;
    *first_bad = ~0ull;
    *sum = blk::kChecksumStart;
    for (uint64_t s = 0; s < sectors;) {
        uint32_t chunk = sectors - s < kChunk ? uint32_t(sectors - s) : kChunk;
        int st = disk().read(s, chunk, g_buf);
        if (st != 0) return st;
        for (uint32_t i = 0; i < chunk; ++i)
            if (!blk::pattern_matches(seed, s + i, g_buf + i * blk::kSectorBytes)) {
                if (*bad == 0) *first_bad = s + i;
                ++*bad;
            }
        *sum = blk::checksum(*sum, g_buf, size_t(chunk) * blk::kSectorBytes);
        s += chunk;
    }
    return 0;
}

// Whether the n sectors from `first` in the data pages (laid out as one
// buffer) are the pattern of `seed`.
bool data_pages_hold(uint32_t seed, uint64_t first, unsigned n) {
    const uint8_t* data = disk().data_page(0);
    for (unsigned i = 0; i < n; ++i)
        if (!blk::pattern_matches(seed, first + i, data + size_t(i) * blk::kSectorBytes)) return false;
    return true;
}

// Indirect requests (the back-end offers them): the pattern read in pieces
// of 1, 2, 4 and 8 sectors at every page offset, 10 to 32 segments; a write
// of the same pattern through them (the disk stays as it was) read back
// the ordinary way; and a read across the end refused.
void indirect_checks(uint32_t seed) {
    rt::Blkfront& d = disk();
    uint64_t sectors = d.info().sectors;
    unsigned max = backend_number("feature-max-indirect-segments", 0);
    check(max >= 32, name("indirect_offered"), "feature-max-indirect-segments %u", max);
    if (max < 32 || sectors < 512) return;
    uint64_t deadline = rt::now_ns() + kConnectNs;
    struct Shape {
        unsigned segments, per;
        uint64_t sector;
    };
    const Shape shapes[] = {{32, 2, 0}, {32, 2, sectors - 64}, {20, 4, 8}, {13, 1, 301}, {10, 8, 100}, {32, 1, 77}};
    unsigned right = 0;
    for (const Shape& sh : shapes) {
        __builtin_memset(d.data_page(0), 0, size_t(kListPage) * 4096);
        int st = indirect_io(abi::kBlkifOpRead, sh.sector, sh.segments, sh.per, deadline);
        bool ok = st == 0 && data_pages_hold(seed, sh.sector, sh.segments * sh.per);
        if (!ok) rt::printf("indirect read of %u x %u sectors at %lu: status %d\n", sh.segments, sh.per, sh.sector, st);
        right += ok;
    }
    check(right == sizeof shapes / sizeof shapes[0], name("indirect_reads"), "%u of %u right", right,
          unsigned(sizeof shapes / sizeof shapes[0]));
    constexpr uint64_t kAt = 200;
    for (unsigned i = 0; i < 64; ++i) blk::pattern_sector(seed, kAt + i, d.data_page(0) + i * blk::kSectorBytes);
    int w = indirect_io(abi::kBlkifOpWrite, kAt, 32, 2, deadline);
    int rd = d.read(kAt, 64, g_buf);
    bool same = true;
    for (unsigned i = 0; i < 64 && rd == 0; ++i) same &= blk::pattern_matches(seed, kAt + i, g_buf + i * blk::kSectorBytes);
    check(w == 0 && rd == 0 && same, name("indirect_write"), "write %d read %d, %s", w, rd, same ? "same" : "different");
    int st = indirect_io(abi::kBlkifOpRead, sectors - 32, 32, 2, deadline);
    check(st == abi::kBlkifRspError, name("indirect_across_end_refused"), "status %d", st);
}

void read_write() {
    rt::Blkfront& d = disk();
    uint64_t sectors = d.info().sectors;
    uint32_t seed = arg("seed", 1);
    unsigned rounds = arg("rounds", 1);
    check(!d.read_only(), name("disk_writable"));
    unsigned good_rounds = 0;
    uint64_t sum = 0;
    for (unsigned r = 0; r < rounds; ++r) {
        uint32_t s = r + 1 == rounds ? seed : seed + 1000 + r;
        int w = write_pattern(s, 0, sectors);
        int f = d.info().flush ? d.flush() : 0;
        uint64_t bad = 0, first_bad = 0;
        int rd = w == 0 ? read_back(s, &bad, &first_bad, &sum) : -1;
        bool ok = w == 0 && f == 0 && rd == 0 && bad == 0;
        if (!ok)
            rt::printf("round %u: write %d flush %d read %d, %lu sectors wrong (first %lu)\n", r, w, f, rd, bad,
                       first_bad);
        good_rounds += ok;
    }
    check(good_rounds == rounds, name("pattern_written_and_read_back"), "%u of %u rounds right", good_rounds, rounds);
    indirect_checks(seed);
    check(d.info().flush && d.flush() == 0, name("flush"));
    check(d.info().barrier && d.barrier() == 0, name("barrier"));
    // Discard the first page's sectors, then put the pattern back.
    if (d.info().discard) {
        int st = d.discard(0, 8);
        check(st == 0, name("discard"), "status %d", st);
    } else {
        int st = d.discard(0, 8);
        check(st == abi::kBlkifRspEopnotsupp, name("discard_not_offered_refused"), "status %d", st);
    }
    int st = write_pattern(seed, 0, sectors < 8 ? sectors : 8);
    int fl = d.flush();
    uint64_t bad = 0, first_bad = 0;
    int rd = read_back(seed, &bad, &first_bad, &sum);
    check(st == 0 && fl == 0 && rd == 0 && bad == 0, name("pattern_final"), "write %d flush %d read %d, %lu wrong",
          st, fl, rd, bad);
    rt::printf("blk: checksum %016lx over %lu sectors (seed %u)\n", sum, sectors, seed);
    st = d.write(sectors, 1, g_buf);
    check(st == abi::kBlkifRspError, name("write_beyond_end_refused"), "status %d", st);
}

void read_only() {
    rt::Blkfront& d = disk();
    uint64_t sectors = d.info().sectors;
    check(d.read_only(), name("disk_read_only"));
    unsigned fill = arg("fill", 256);
    uint64_t sum = blk::kChecksumStart, wrong = 0;
    int st = 0;
    for (uint64_t s = 0; s < sectors && st == 0;) {
        uint32_t chunk = sectors - s < kChunk ? uint32_t(sectors - s) : kChunk;
        st = d.read(s, chunk, g_buf);
        if (st == 0 && fill < 256)
            for (size_t i = 0; i < size_t(chunk) * blk::kSectorBytes; ++i) wrong += g_buf[i] != fill;
        sum = blk::checksum(sum, g_buf, size_t(chunk) * blk::kSectorBytes);
        s += chunk;
    }
    check(st == 0, name("reads"), "status %d", st);
    if (fill < 256) check(wrong == 0, name("reads_fill"), "%lu bytes not %u", wrong, fill);
    rt::printf("blk: checksum %016lx over %lu sectors (read-only)\n", sum, sectors);
    st = d.write(0, 8, g_buf);
    check(st == abi::kBlkifRspError, name("write_refused"), "status %d", st);
    st = d.discard(0, 8);
    check(st == abi::kBlkifRspError || st == abi::kBlkifRspEopnotsupp, name("discard_refused"), "status %d", st);
    st = d.barrier();
    check(st == 0, name("barrier_without_data"), "status %d", st);
}

}  // namespace

void pattern_test() {
    if (rt::has_arg("ro")) g_prefix = "blk.ro";
    rt::Blkfront& d = disk();
    if (rt::has_arg("expect-refused")) {
        // A disk that does not fit the device: the back-end says Closed
        // and never InitWait.
        bool up = d.connect(0, rt::now_ns() + 10'000'000'000);
        check(!up && __builtin_strcmp(d.error(), "back-end refused the disk") == 0, "blk.refused.not_connected",
              "%s", up ? "connected" : d.error());
        return;
    }
    bool up = d.connect(0, rt::now_ns() + kConnectNs);
    check(up, name("connected"), "%s", d.error());
    if (!up) return;
    rt::printf("blk: vbd %u: %lu sectors of %u bytes%s%s%s%s\n", d.devid(), d.info().sectors, d.info().sector_size,
               d.read_only() ? ", read-only" : "", d.info().flush ? ", flush" : "", d.info().barrier ? ", barrier" : "",
               d.info().discard ? ", discard" : "");
    if (rt::has_arg("ro")) read_only();
    else read_write();
    uint64_t sectors = d.info().sectors;
    int st = d.read(sectors, 1, g_buf);
    check(st == abi::kBlkifRspError, name("read_beyond_end_refused"), "status %d", st);
    st = d.read(sectors - 4, 8, g_buf);
    check(st == abi::kBlkifRspError, name("read_across_end_refused"), "status %d", st);
    st = d.read(~0ull - 3, 8, g_buf);
    check(st == abi::kBlkifRspError, name("read_wrapping_sector_refused"), "status %d", st);
    check(d.close(rt::now_ns() + kConnectNs), name("closed"), "%s", d.error());
}

}  // namespace blkguest
