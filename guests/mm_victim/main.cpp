// The bystander of the memory attacks: runs alongside mm_attack, keeps a
// known pattern in its memory, and reports a heartbeat while it works. The
// system test checks that heartbeats arrive while the attacks (including a
// million-entry batch) are under way, and that its memory is untouched.

#include <rt/console.hpp>
#include <rt/rt.hpp>

namespace {
constexpr unsigned kBeats = 60;
constexpr uint64_t kSpin = 4'000'000;
uint8_t g_pattern[1 << 20];

uint8_t expected(uint64_t i) { return static_cast<uint8_t>(i * 131 + 7); }
}  // namespace

void rt::main() {
    for (uint64_t i = 0; i < sizeof g_pattern; ++i) g_pattern[i] = expected(i);
    bool intact = true;
    for (unsigned beat = 0; beat < kBeats; ++beat) {
        for (volatile uint64_t spin = 0; spin < kSpin; spin = spin + 1) {
        }
        for (uint64_t i = 0; i < sizeof g_pattern; i += 61) intact &= g_pattern[i] == expected(i);
        rt::printf("victim: heartbeat %u\n", beat);
    }
    for (uint64_t i = 0; i < sizeof g_pattern; ++i) intact &= g_pattern[i] == expected(i);
    if (intact) rt::printf("PASS victim.memory_intact\n");
    else rt::printf("FAIL victim.memory_intact: the pattern changed\n");
    rt::printf("PASS victim.ran_to_the_end\n");
}
