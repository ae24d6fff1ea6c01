#pragma once
// What the hostile driver domain (main.cpp) and its victim (victim.cpp)
// agree on. They are the two ends of a RING connection (victim front-end,
// attacker back-end: the builder gives the attacker a Grant capability for
// the victim's pages and writes the xenbus nodes below).
//
// The victim's directory (device/ring/<n>):
//   canary-ref  a page of its own filled with a canary, granted read-only:
//               the attacker maps it only to learn its machine frame, unmaps
//               it, and aims DMA at it
//   shared-ref  a page granted read-write: DMA into it works while the
//               attacker maps it, and must not once it has unmapped it
//   state       3: both granted; 5: it saw the attacker's sector arrive in
//               the shared page and filled the page with a canary again
// The attacker's directory (backend/ring/<fe>/<n>):
//   stage       1: a sector was read into the mapped shared page; 2: every
//               attack is over (the victim then checks its pages)

#include "../attack/common.hpp"

namespace dma {

using namespace attack;

constexpr uint32_t kCanaryRef = 8;
constexpr uint32_t kSharedRef = 9;

// The sector the attacker writes first with a pattern both sides know (its
// own write DMA, then every legitimate read and the read into the shared
// page bring it back).
constexpr uint64_t kPatternSector = 8;
constexpr uint32_t kSector = 512;
inline uint8_t pattern_byte(uint32_t i) { return uint8_t(i * 13 + 7); }

}  // namespace dma
