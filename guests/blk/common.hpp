#pragma once
// The block test guest's roles (main.cpp):
//   (default)      pattern.cpp: the whole disk written with the pattern of
//                  `seed=N`, flushed, read back and compared; with `ro`, a
//                  read-only disk: reads work, writes and discards refused
//   role=hostile   hostile.cpp: a front-end that breaks every rule, with
//                  indirect requests too, and multipage.cpp: rings of
//                  several pages, good and bad
//   role=bench     bench.cpp: BENCH blk_iops_4k

#include <rt/blkfront.hpp>
#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>

#include <blk/blk.hpp>

namespace blkguest {

using rt::check;

inline constexpr uint64_t kConnectNs = 120'000'000'000;   // guest time, generous under TCG

// The domain's disk (its pages must be static).
rt::Blkfront& disk();

// "key=N" from the command line, or `def`.
inline unsigned arg(const char* key, unsigned def) { return unsigned(rt::cmdline_number(key, def)); }

void pattern_test();
void hostile_test();
void bench();

// indirect.cpp: BLKIF_OP_INDIRECT by hand over disk()'s data pages, the
// segment list in its last data page.
inline constexpr unsigned kListPage = rt::Blkfront::kDataPages - 1;
// A number from the back-end's directory, or `def`.
unsigned backend_number(const char* key, unsigned def);
// n segments of `per` sectors (per divides 8) over data pages 0.. in
// order: together they cover n * per consecutive sectors, laid out in the
// data pages as one buffer (the pages are consecutive in memory).
void lay_segments(unsigned n, unsigned per, abi::BlkifSegment* out);
// Writes segs[0..n) into the list page and returns an indirect request
// naming it (nr_segments as given: a hostile one may lie).
abi::BlkifRequest indirect_request(uint8_t op, uint64_t sector, const abi::BlkifSegment* segs, unsigned n,
                                   uint16_t nr_segments);
// Pushes r and waits for its response: the status, or kBroken if the
// response is not r's (its id, and the indirect_op as its operation).
int indirect_round_trip(const abi::BlkifRequest& r, uint64_t deadline);
// A read or write of n segments of `per` sectors from `sector`, through
// the data pages (lay_segments); the status.
int indirect_io(uint8_t op, uint64_t sector, unsigned n, unsigned per, uint64_t deadline);

// multipage.cpp (role=hostile): rings of several pages, refused and served.
void multipage_test();

}  // namespace blkguest
