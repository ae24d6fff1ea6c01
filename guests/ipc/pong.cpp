// The back end: maps the ring ping granted it, answers every request (never
// trusting the ring: libs/ring copies each request once and bounds every
// index), and grants ping a read-only page with a known pattern.

#include "common.hpp"

using namespace ipc;

namespace {
alignas(4096) uint8_t g_ring_map[4096];
alignas(4096) uint8_t g_gnttab_page[4096];
alignas(4096) uint8_t g_pattern[4096];
}  // namespace

void rt::main() {
    rt::events_init();
    wait_for_cap(2, abi::CapType::event);   // Grant(ping), Event(ping), Event(root)
    long root_port = retry([] { return rt::bind_interdomain(kRoot, kRootPortPong); });
    check(root_port == long(kPongPortRoot), "ipc.pong_bound_to_root", "port %ld", root_port);
    rt::wait_port(kPongPortRoot);   // a new binding starts pending

    for (unsigned i = 0; i < 4096; ++i) g_pattern[i] = uint8_t(i * 7 + 3);
    grant::Table gt = setup_grant_table(g_gnttab_page);
    check(gt.size() > 0 && gt.grant_access(kPatternRef, kPing, uint32_t(mfn_of(g_pattern)), true),
          "ipc.pattern_granted_readonly");
    long offer = rt::alloc_unbound(kPing);
    check(offer == long(kPongPortOffer), "ipc.pong_port_offered", "port %ld", offer);

    long ring_port = retry([] { return rt::bind_interdomain(kPing, kPingPortRing); });
    check(ring_port == long(kPongPortRing), "ipc.pong_bound_ring_port", "port %ld", ring_port);
    rt::wait_port(kPongPortRing);
    abi::GnttabMapGrantRef m{};
    m.host_addr = rt::ptr(g_ring_map);
    m.flags = abi::kGntmapHostMap;
    m.ref = kRingRef;
    m.dom = kPing;
    long r = retry([&] { return gnttab_op(abi::GnttabOp::map_grant_ref, &m) ? -1L : (m.status ? -1L : 0L); });
    check(r == 0, "ipc.pong_mapped_ring", "status %ld", long(m.status));
    Back back;
    back.init(g_ring_map, sizeof g_ring_map);
    rt::notify(kPongPortRing);   // connected

    unsigned served = 0;
    for (;;) {
        Request q;
        if (!back.take_request(q)) {
            if (back.broken()) break;
            if (!back.final_check_for_requests()) rt::wait_port(kPongPortRing);
            continue;
        }
        if (q.seq == kQuit) break;
        Response p{q.seq, {}};
        for (unsigned i = 0; i < sizeof p.payload; ++i) p.payload[i] = uint8_t(q.payload[i] + 1);
        back.push_response(p);
        if (back.push_responses_and_check_notify()) rt::notify(kPongPortRing);
        ++served;
    }
    check(!back.broken() && served == 500, "ipc.pong_served_every_request", "served %ld", long(served));
    abi::GnttabUnmapGrantRef u{rt::ptr(g_ring_map), 0, m.handle, 0};
    check(gnttab_op(abi::GnttabOp::unmap_grant_ref, &u) == 0 && u.status == 0, "ipc.pong_unmapped_ring");
    rt::notify(kPongPortRing);   // ping may go now
    rt::printf("pong: done, %u failed\n", rt::g_failed_checks);
}
