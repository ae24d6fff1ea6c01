// The granting helper of finding 1 (attack_grant_va): the front-end of a
// RING connection to the attacker. It fills two pages with a pattern, grants
// the attacker the first writable (ref 8) and the second read-only (ref 9),
// publishes ring-ref 8 and state 3 (Initialised) under its device/ring node,
// and waits until the attacker writes its back-end state 6 (Closed). Then it
// ends both grants (which must succeed: the attacker holds no mapping any
// more) and checks its pages.

#include "common.hpp"

using namespace attack;

namespace {

alignas(4096) uint64_t g_pages[2][512];
constexpr uint32_t kRef = 8;

uint64_t pattern(unsigned page, unsigned i) { return 0x4752414E54000000ull | uint64_t(page) << 16 | i; }

}  // namespace

void rt::main() {
    rt::events_init();
    check(bool(rt::xs_init()), "attack.grant_va.granter_xenstore");
    RingEnd ring;
    bool found = find_backend(ring);
    check(found, "attack.grant_va.granter_found_attacker");
    if (!found) return done();
    for (unsigned p = 0; p < 2; ++p)
        for (unsigned i = 0; i < 512; ++i) g_pages[p][i] = pattern(p, i);
    grant::Table& gt = rt::grant_table();
    bool granted = gt.size() > kRef + 1 &&
                   gt.grant_access(kRef, uint16_t(ring.peer), uint32_t(mfn_of_va(g_pages[0])), false) &&
                   gt.grant_access(kRef + 1, uint16_t(ring.peer), uint32_t(mfn_of_va(g_pages[1])), true);
    char path[160], value[24];
    base::snformat(value, sizeof value, "%u", kRef);
    bool published = granted && rt::xs_write(node(path, sizeof path, ring.mine, "ring-ref"), value) &&
                     rt::xs_write(node(path, sizeof path, ring.mine, "state"), "3");
    check(published, "attack.grant_va.granter_published", "granted %d", granted);
    rt::printf("granted domain %ld frames %#lx (rw, ref %u) and %#lx (ro, ref %u)\n", ring.peer,
               mfn_of_va(g_pages[0]), kRef, mfn_of_va(g_pages[1]), kRef + 1);

    // The attacker says it is done by closing its end (and waits for us to
    // close ours; it may be gone already if it did not).
    bool closed = wait_number_or_gone(node(path, sizeof path, ring.theirs, "state"), 6, rt::now_ns() + 120 * kSecond);
    check(closed, "attack.grant_va.granter_saw_attacker_close");
    bool ended = gt.end_access(kRef) && gt.end_access(kRef + 1);
    check(ended, "attack.grant_va.granter_grants_ended", "flags %#x %#x", gt.flags(kRef), gt.flags(kRef + 1));
    unsigned bad = 0;
    for (unsigned i = 0; i < 512; ++i) bad += g_pages[1][i] != pattern(1, i);
    check(bad == 0, "attack.grant_va.granter_readonly_page_intact", "%u words changed", bad);
    (void)rt::xs_write(node(path, sizeof path, ring.mine, "state"), "6");
    done();
}
