// moat-diskcheck: checks a raw disk image after a block system test.
//
//   moat-diskcheck IMAGE --fill BYTE [--size-mib N]
//                  [--pattern FIRST:COUNT:SEED]... [--skip FIRST:COUNT]...
//
// Every sector of each --pattern range (device sectors FIRST..FIRST+COUNT-1)
// must hold the block test pattern of SEED for virtual sectors 0..COUNT-1
// (libs/blk: blk::pattern_sector, what guests/blk writes); every other
// sector, except those of --skip ranges (a hostile guest's disk, whose
// contents are its own business), must hold BYTE, the byte the image was
// created with. The first mismatch is reported with its sector, offset and
// bytes. Exit status 0 only if everything is right; 1 if not; 2 for usage
// or I/O errors.

#include <blk/blk.hpp>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

struct Range {
    uint64_t first = 0, count = 0;
    uint32_t seed = 0;
    bool pattern = false;
    uint64_t checksum = blk::kChecksumStart;
    uint64_t wrong = 0;
};

int usage(const char* why) {
    std::fprintf(stderr,
                 "moat-diskcheck: %s\n"
                 "usage: moat-diskcheck IMAGE --fill BYTE [--size-mib N] [--pattern FIRST:COUNT:SEED]... "
                 "[--skip FIRST:COUNT]...\n",
                 why);
    return 2;
}

bool number(const char* s, uint64_t* out, char** end) {
    errno = 0;
    *out = std::strtoull(s, end, 0);
    return errno == 0 && *end != s;
}

bool parse_range(const char* s, bool pattern, Range* r) {
    char* end;
    if (!number(s, &r->first, &end) || *end != ':') return false;
    if (!number(end + 1, &r->count, &end) || r->count == 0) return false;
    r->pattern = pattern;
    if (pattern) {
        uint64_t seed;
        if (*end != ':' || !number(end + 1, &seed, &end) || seed > 0xFFFFFFFFu) return false;
        r->seed = uint32_t(seed);
    }
    return *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
    const char* image = nullptr;
    int fill = -1;
    uint64_t size_mib = 0;
    std::vector<Range> ranges;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        char* end;
        uint64_t v;
        if (!std::strcmp(a, "--fill") && i + 1 < argc) {
            if (!number(argv[++i], &v, &end) || *end || v > 255) return usage("--fill takes a byte");
            fill = int(v);
        } else if (!std::strcmp(a, "--size-mib") && i + 1 < argc) {
            if (!number(argv[++i], &size_mib, &end) || *end) return usage("--size-mib takes a number");
        } else if ((!std::strcmp(a, "--pattern") || !std::strcmp(a, "--skip")) && i + 1 < argc) {
            Range r;
            bool pattern = a[2] == 'p';
            if (!parse_range(argv[++i], pattern, &r))
                return usage(pattern ? "--pattern takes FIRST:COUNT:SEED" : "--skip takes FIRST:COUNT");
            ranges.push_back(r);
        } else if (a[0] != '-' && !image) {
            image = a;
        } else {
            return usage("unknown argument");
        }
    }
    if (!image || fill < 0) return usage("IMAGE and --fill are required");
    for (size_t i = 0; i < ranges.size(); ++i)
        for (size_t j = i + 1; j < ranges.size(); ++j)
            if (ranges[i].first < ranges[j].first + ranges[j].count && ranges[j].first < ranges[i].first + ranges[i].count)
                return usage("ranges overlap");

    std::FILE* f = std::fopen(image, "rb");
    if (!f) {
        std::fprintf(stderr, "moat-diskcheck: %s: %s\n", image, std::strerror(errno));
        return 2;
    }
    uint8_t sector[blk::kSectorBytes];
    uint64_t s = 0, fill_sectors = 0, skipped = 0, fill_wrong = 0;
    bool reported = false;
    size_t got;
    while ((got = std::fread(sector, 1, sizeof sector, f)) == sizeof sector) {
        Range* in = nullptr;
        for (Range& r : ranges)
            if (s >= r.first && s - r.first < r.count) in = &r;
        if (in && !in->pattern) {
            ++skipped;
        } else if (in) {
            uint64_t v = s - in->first;
            size_t off;
            in->checksum = blk::checksum(in->checksum, sector, sizeof sector);
            if (!blk::pattern_matches(in->seed, v, sector, &off)) {
                if (!reported) {
                    uint8_t want[blk::kSectorBytes];
                    blk::pattern_sector(in->seed, v, want);
                    std::printf("diskcheck: FIRST MISMATCH at sector %" PRIu64
                                " (virtual sector %" PRIu64 " of the pattern of seed %u): byte %zu is 0x%02x, "
                                "expected 0x%02x\n",
                                s, v, in->seed, off, sector[off], want[off]);
                    reported = true;
                }
                ++in->wrong;
            }
        } else {
            ++fill_sectors;
            for (size_t off = 0; off < sizeof sector; ++off)
                if (sector[off] != fill) {
                    if (!reported) {
                        std::printf("diskcheck: FIRST MISMATCH at sector %" PRIu64
                                    " (outside every guest's range): byte %zu is 0x%02x, expected the fill 0x%02x\n",
                                    s, off, sector[off], fill);
                        reported = true;
                    }
                    ++fill_wrong;
                    break;
                }
        }
        ++s;
    }
    bool read_error = std::ferror(f);
    std::fclose(f);
    if (read_error) {
        std::fprintf(stderr, "moat-diskcheck: %s: read error\n", image);
        return 2;
    }
    bool ok = got == 0 && !reported;
    if (got != 0) std::printf("diskcheck: %s: %zu bytes after the last whole sector\n", image, got);
    if (size_mib && s != size_mib * 2048) {
        std::printf("diskcheck: %s: %" PRIu64 " sectors, expected %" PRIu64 "\n", image, s, size_mib * 2048);
        ok = false;
    }
    for (const Range& r : ranges) {
        if (r.first + r.count > s) {
            std::printf("diskcheck: range %" PRIu64 "+%" PRIu64 " beyond the image's %" PRIu64 " sectors\n", r.first,
                        r.count, s);
            ok = false;
        }
        if (r.pattern)
            std::printf("diskcheck: sectors %" PRIu64 "+%" PRIu64 ": pattern of seed %u: %s (%" PRIu64
                        " sectors wrong), checksum %016" PRIx64 "\n",
                        r.first, r.count, r.seed, r.wrong ? "WRONG" : "ok", r.wrong, r.checksum);
    }
    std::printf("diskcheck: %" PRIu64 " other sectors: fill 0x%02x: %s (%" PRIu64 " wrong), %" PRIu64 " skipped\n",
                fill_sectors, fill, fill_wrong ? "WRONG" : "ok", fill_wrong, skipped);
    std::printf("diskcheck: %s: %s\n", image, ok ? "all right" : "NOT right");
    return ok ? 0 : 1;
}
