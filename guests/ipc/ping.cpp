// The front end: offers a ring to pong through a grant and an event channel
// (both allowed by capabilities the root installed), ping-pongs over it,
// exercises grant map and copy of pong's read-only page, then - after the
// root revoked its capabilities for pong - finds every new map, copy and bind
// refused.

#include "common.hpp"

using namespace ipc;

namespace {
alignas(4096) uint8_t g_ring_page[4096];
alignas(4096) uint8_t g_gnttab_page[4096];
alignas(4096) uint8_t g_map_page[4096];   // where pong's page gets mapped
alignas(4096) uint8_t g_copy_page[4096];  // grant copy destination

constexpr int16_t kDenied = int16_t(abi::GntStatus::permission_denied);

int16_t map_pattern(bool readonly, uint32_t* handle) {
    abi::GnttabMapGrantRef m{};
    m.host_addr = rt::ptr(g_map_page);
    m.flags = abi::kGntmapHostMap | (readonly ? abi::kGntmapReadonly : 0);
    m.ref = kPatternRef;
    m.dom = kPong;
    long r = gnttab_op(abi::GnttabOp::map_grant_ref, &m);
    *handle = m.handle;
    return r ? int16_t(-100) : m.status;
}

int16_t unmap(uint32_t handle) {
    abi::GnttabUnmapGrantRef u{rt::ptr(g_map_page), 0, handle, 0};
    long r = gnttab_op(abi::GnttabOp::unmap_grant_ref, &u);
    return r ? int16_t(-100) : u.status;
}

int16_t copy_pattern() {
    abi::GnttabCopy c{};
    c.source.u.ref = kPatternRef;
    c.source.domid = kPong;
    c.dest.u.gmfn = mfn_of(g_copy_page);
    c.dest.domid = abi::kDomidSelf;
    c.len = 4096;
    c.flags = abi::kGntcopySourceGref;
    long r = gnttab_op(abi::GnttabOp::copy, &c);
    return r ? int16_t(-100) : c.status;
}

bool pattern_ok(const uint8_t* p) {
    for (unsigned i = 0; i < 4096; ++i)
        if (p[i] != uint8_t(i * 7 + 3)) return false;
    return true;
}
}  // namespace

void rt::main() {
    rt::events_init();
    wait_for_cap(2, abi::CapType::event);   // slots 0-2: Grant(pong), Event(pong), Event(root)
    long root_port = retry([] { return rt::bind_interdomain(kRoot, kRootPortPing); });
    check(root_port == long(kPingPortRoot), "ipc.ping_bound_to_root", "port %ld", root_port);
    rt::wait_port(kPingPortRoot);   // a new binding starts pending (nothing sent before it is lost)

    grant::Table gt = setup_grant_table(g_gnttab_page);
    check(gt.size() > 0, "ipc.grant_table_setup");
    check(gt.grant_access(kRingRef, kPong, uint32_t(mfn_of(g_ring_page)), false), "ipc.ring_granted");
    Front front;
    front.init(g_ring_page, sizeof g_ring_page);
    long ring_port = rt::alloc_unbound(kPong);
    check(ring_port == long(kPingPortRing), "ipc.ring_port_offered", "port %ld", ring_port);
    rt::wait_port(kPingPortRing);   // pong bound and mapped the ring

    constexpr unsigned kRounds = 500;
    unsigned ok = 0;
    for (unsigned n = 0; n < kRounds; ++n) {
        Request q{n, {}};
        for (unsigned i = 0; i < sizeof q.payload; ++i) q.payload[i] = uint8_t(n + i);
        front.push_request(q);
        if (front.push_requests_and_check_notify()) rt::notify(kPingPortRing);
        Response p;
        while (!front.take_response(p))
            if (!front.final_check_for_responses()) rt::wait_port(kPingPortRing);
        bool good = p.seq == n;
        for (unsigned i = 0; i < sizeof p.payload; ++i) good &= p.payload[i] == uint8_t(n + i + 1);
        ok += good;
    }
    check(ok == kRounds && !front.broken(), "ipc.ping_pong_500_round_trips", "%ld of 500 right", long(ok));

    uint32_t h = 0;
    check(map_pattern(true, &h) == 0 && pattern_ok(g_map_page), "ipc.grant_map_readonly");
    check(unmap(h) == 0, "ipc.grant_unmap");
    check(map_pattern(false, &h) == kDenied, "ipc.grant_map_writable_of_readonly_grant_refused");
    check(copy_pattern() == 0 && pattern_ok(g_copy_page), "ipc.grant_copy");

    // Let the root revoke our capabilities for pong, then try again.
    rt::notify(kPingPortRoot);
    rt::wait_port(kPingPortRoot);
    check(rt::cap_inspect(0).type == uint32_t(abi::CapType::null), "ipc.revoked_capability_gone");
    check(map_pattern(true, &h) == kDenied, "ipc.revoked_map_refused");
    check(copy_pattern() == kDenied, "ipc.revoked_copy_refused");
    long b = rt::bind_interdomain(kPong, kPongPortOffer);
    check(b == abi::neg(abi::Errno::eperm), "ipc.revoked_bind_refused", "rc %ld", b);

    // The channel bound before the revoke still carries the quit request.
    // Pong answers it by unmapping our ring and then signalling: only then
    // may we go (our grants, and pong's mapping of them, go with us).
    (void)rt::take_port(kPingPortRing);
    Request quit{kQuit, {}};
    front.push_request(quit);
    front.push_requests();
    rt::notify(kPingPortRing);
    rt::wait_port(kPingPortRing);
    rt::notify(kPingPortRoot);
    rt::printf("ping: done, %u failed\n", rt::g_failed_checks);
}
