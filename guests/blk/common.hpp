#pragma once
// The block test guest's roles (main.cpp):
//   (default)      pattern.cpp: the whole disk written with the pattern of
//                  `seed=N`, flushed, read back and compared; with `ro`, a
//                  read-only disk: reads work, writes and discards refused
//   role=hostile   hostile.cpp: a front-end that breaks every rule
//   role=bench     bench.cpp: BENCH blk_iops_4k

#include <rt/blkfront.hpp>
#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>

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

}  // namespace blkguest
