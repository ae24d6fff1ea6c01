// The victim beside the hostile driver domain (main.cpp, common.hpp): the
// front-end of their RING connection. It grants the attacker two pages, each
// filled with a canary nobody else can predict (mixed with its TSC): one
// read-only (the attacker maps it once to learn where it is) and one
// read-write (DMA into it works while the attacker maps it; that is checked
// here: the sector arrives). When the attacker says it is done (or is gone)
// both pages must hold exactly what this domain last put there.
//
// PASS lines: victim.published, victim.granted_dma_arrived,
// victim.canary_intact, victim.granted_frame_intact_after_unmap.

#include "common.hpp"

#include "../canary.hpp"

using namespace dma;

namespace {

alignas(4096) volatile uint64_t g_canary[512];
alignas(4096) volatile uint64_t g_shared[512];

uint64_t g_seed;
uint64_t pattern(uint64_t i) { return canary::word(g_seed, i); }

// The first word of `page` that is not the canary from `base` on, or -1.
long damage(const volatile uint64_t* page, uint64_t base) {
    for (uint64_t i = 0; i < 512; ++i)
        if (page[i] != pattern(base + i)) return long(i);
    return -1;
}

// Polls the attacker's `stage` until it is at least `want`, or its directory
// is gone (the builder removed the home of a domain that stopped: crashed by
// the kernel, say); false at the deadline.
bool wait_stage(const RingEnd& ring, long want, uint64_t deadline) {
    char stage[160], buf[32];
    node(stage, sizeof stage, ring.theirs, "stage");
    for (;;) {
        if (read_number(stage) >= want) return true;
        auto r = rt::xs_read(ring.theirs, buf, sizeof buf);
        if (!r && (r.error() == rt::XsError::noent || r.error() == rt::XsError::acces)) return true;
        if (rt::now_ns() > deadline) return false;
        sleep_ns(kMs);
    }
}

}  // namespace

void rt::main() {
    rt::events_init();
    g_seed = rt::rdtsc() * 0x2545F4914F6CDD1Dull;
    for (uint64_t i = 0; i < 512; ++i) g_canary[i] = pattern(i);
    for (uint64_t i = 0; i < 512; ++i) g_shared[i] = pattern(512 + i);

    bool xs = bool(rt::xs_init());
    RingEnd ring;
    char path[160], value[24];
    bool found = xs && find_backend(ring);
    grant::Table& gt = rt::grant_table();
    bool granted = found && gt.size() > kSharedRef &&
                   gt.grant_access(kCanaryRef, uint16_t(ring.peer), uint32_t(mfn_of_va(const_cast<uint64_t*>(g_canary))), true) &&
                   gt.grant_access(kSharedRef, uint16_t(ring.peer), uint32_t(mfn_of_va(const_cast<uint64_t*>(g_shared))), false);
    base::snformat(value, sizeof value, "%u", kCanaryRef);
    bool published = granted && rt::xs_write(node(path, sizeof path, ring.mine, "canary-ref"), value);
    base::snformat(value, sizeof value, "%u", kSharedRef);
    published = published && rt::xs_write(node(path, sizeof path, ring.mine, "shared-ref"), value) &&
                rt::xs_write(node(path, sizeof path, ring.mine, "state"), "3");
    check(published, "victim.published", "found %d granted %d", found, granted);
    if (!published) return done();
    rt::printf("canary page at machine frame %#lx, shared page at %#lx\n",
               mfn_of_va(const_cast<uint64_t*>(g_canary)), mfn_of_va(const_cast<uint64_t*>(g_shared)));

    // Stage 1: the attacker read its pattern sector into the shared page
    // while it mapped it. (It may skip that attack: stage 2 at once, or gone.)
    const uint64_t deadline = rt::now_ns() + 240 * kSecond;
    const char* stage = node(path, sizeof path, ring.theirs, "stage");
    bool answered = wait_stage(ring, 1, deadline);
    bool expect_granted = answered && read_number(stage) == 1;
    if (expect_granted) {
        const auto* bytes = reinterpret_cast<const volatile uint8_t*>(g_shared);
        uint32_t same = 0;
        for (uint32_t i = 0; i < kSector; ++i) same += bytes[i] == pattern_byte(i);
        long rest = -1;
        for (uint64_t i = kSector / 8; i < 512 && rest < 0; ++i)
            if (g_shared[i] != pattern(512 + i)) rest = long(i);
        check(same == kSector && rest < 0, "victim.granted_dma_arrived",
              "%u of %u bytes of the sector arrived; word %ld beyond it changed", same, kSector, rest);
        // A fresh canary for the attack after the unmap.
        for (uint64_t i = 0; i < 512; ++i) g_shared[i] = pattern(1024 + i);
        (void)rt::xs_write(node(path, sizeof path, ring.mine, "state"), "5");
    }

    bool over = wait_stage(ring, 2, deadline);
    long c = damage(g_canary, 0);
    check(over && c < 0, "victim.canary_intact", "%s; word %ld of the canary page changed",
          over ? "the attacker is done" : "the attacker never finished", c);
    if (expect_granted) {
        long s = damage(g_shared, 1024);
        check(over && s < 0, "victim.granted_frame_intact_after_unmap", "word %ld of the shared page changed", s);
    }
    (void)gt.end_access(kCanaryRef);
    (void)gt.end_access(kSharedRef);
    done();
}
