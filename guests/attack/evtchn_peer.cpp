// Finding 6, the front-ends of guests/attack/evtchn.cpp (A), both on a RING
// connection with A. Command line: role=stop or role=stay.
//  stop ("B"): grants A a page (A maps it, which holds the builder's reap of
//    B until A unmaps), offers A a port, and as soon as A sends on it, powers
//    off: it stays stopped while the builder reaps it.
//  stay ("C"): offers A a port and waits (20 s of guest time at most) for
//    one event from A on it, answers it, and waits for A to close its end.

#include "common.hpp"

using namespace attack;

namespace {
alignas(4096) uint8_t g_page[4096];
constexpr uint32_t kRef = 8;
}  // namespace

void rt::main() {
    rt::events_init();
    bool stop = rt::has_arg("role=stop");
    bool xs = bool(rt::xs_init());
    RingEnd ring;
    bool found = xs && find_backend(ring);
    check(found, stop ? "attack.evtchn.stopper_found_peer" : "attack.evtchn.stayer_found_peer");
    if (!found) return done();
    bool granted = !stop || rt::grant_table().grant_access(kRef, uint16_t(ring.peer), uint32_t(mfn_of_va(g_page)), true);
    long port = rt::alloc_unbound(uint16_t(ring.peer));
    char path[160], value[24];
    base::snformat(value, sizeof value, "%ld", port);
    bool published = granted && port > 0 && rt::xs_write(node(path, sizeof path, ring.mine, "role"), stop ? "stop" : "stay") &&
                     rt::xs_write(node(path, sizeof path, ring.mine, "event-channel"), value);
    base::snformat(value, sizeof value, "%u", kRef);
    published = published && (!stop || rt::xs_write(node(path, sizeof path, ring.mine, "ring-ref"), value)) &&
                rt::xs_write(node(path, sizeof path, ring.mine, "state"), "3");
    check(published, stop ? "attack.evtchn.stopper_offered_port" : "attack.evtchn.stayer_offered_port", "port %ld", port);
    if (!published) return done();
    uint32_t p = uint32_t(port);
    if (stop) {
        bool got = wait_port_until(p, rt::now_ns() + 60 * kSecond);
        check(got, "attack.evtchn.stopper_got_event");
        rt::printf("powering off with port %u bound to domain %ld\n", p, ring.peer);
        return done();
    }
    bool got = wait_port_until(p, rt::now_ns() + 20 * kSecond);
    check(got, "attack.evtchn.peer_received", "no event from domain %ld on port %u in 20 s", ring.peer, p);
    if (got) rt::notify(p);
    (void)wait_number_or_gone(node(path, sizeof path, ring.theirs, "state"), 6, rt::now_ns() + 20 * kSecond);
    done();
}
