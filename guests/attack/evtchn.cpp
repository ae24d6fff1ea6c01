// Finding 6: event channels.
//
// (a) EVTCHNOP_send on a VIRQ port marks it pending today, so a guest fakes
//     its own timer event; Xen returns -EINVAL and nothing happens.
// (b) Closing a channel whose peer is stopped leaves the peer's end pointing
//     at our port; when our next channel takes the same port number and the
//     stopped peer is then destroyed, its teardown resets our reused port to
//     unbound, breaking an unrelated channel.
//
// A ("evtchn") is the back-end of RING connections with two front-ends of
// guests/attack/evtchn_peer.cpp: the stopper B (role=stop) and the stayer C
// (role=stay). A maps B's granted page (so the builder, reaping B, waits for
// A to unmap) and binds B's port as port p; B powers off on A's first event.
// When B's home disappears (B is stopped and being reaped), A closes p and
// binds C's port, which gets the same number p. Then A unmaps B's page, the
// builder destroys B, and A checks its channel with C: still interdomain
// with C's port, and a send on it still reaches C (C answers).

#include "common.hpp"

using namespace attack;

namespace {

bool pending_bit(uint32_t port) {
    return (__atomic_load_n(&rt::shared_info().evtchn_pending[port / 64], __ATOMIC_SEQ_CST) >> (port % 64)) & 1;
}
void clear_pending_bit(uint32_t port) {
    __atomic_fetch_and(&rt::shared_info().evtchn_pending[port / 64], ~(1ull << (port % 64)), __ATOMIC_SEQ_CST);
}

long status_of(uint32_t port, abi::EvtchnStatus& st) {
    st = abi::EvtchnStatus{};
    st.dom = abi::kDomidSelf;
    st.port = port;
    return rt::evtchn_op(abi::EvtchnOp::status, &st);
}

void fake_timer_event() {
    abi::EvtchnBindVirq bv{uint32_t(abi::Virq::timer), 0, 0};
    long r = rt::evtchn_op(abi::EvtchnOp::bind_virq, &bv);
    check(r == 0, "attack.evtchn.bound_timer", "rc %ld", r);
    if (r != 0) return;
    // No timer is armed: only the send can make the port pending.
    (void)rt::set_timer(0);
    abi::VcpuInfo& vi = rt::vcpu_info();
    __atomic_store_n(&vi.evtchn_upcall_mask, 1, __ATOMIC_SEQ_CST);
    clear_pending_bit(bv.port);
    (void)rt::take_port(bv.port);
    long s = rt::notify(bv.port);
    bool faked = pending_bit(bv.port);
    clear_pending_bit(bv.port);
    __atomic_store_n(&vi.evtchn_upcall_mask, 0, __ATOMIC_SEQ_CST);
    sleep_ns(2 * kMs);
    faked |= rt::take_port(bv.port);
    check(s == kEinval, "attack.evtchn.virq_send_refused", "send on VIRQ_TIMER port %u returned %ld", bv.port, s);
    check(!faked, "attack.evtchn.virq_not_faked", "the timer port %u became pending by a send", bv.port);
}

}  // namespace

void rt::main() {
    rt::events_init();
    fake_timer_event();

    check(bool(rt::xs_init()), "attack.evtchn.xenstore");
    RingEnd ends[2];
    char path[160], role[16];
    unsigned n = find_frontends(ends, 2);
    int b = -1, c = -1;
    for (unsigned i = 0; i < n; ++i) {
        if (!wait_number(node(path, sizeof path, ends[i].theirs, "state"), 3, rt::now_ns() + 60 * kSecond)) continue;
        auto r = rt::xs_read(node(path, sizeof path, ends[i].theirs, "role"), role, sizeof role);
        if (r && role[0] == 's' && role[2] == 'o') b = int(i);
        if (r && role[0] == 's' && role[2] == 'a') c = int(i);
    }
    check(b >= 0 && c >= 0, "attack.evtchn.found_peers", "%u front-ends", n);
    if (b < 0 || c < 0) return done();
    const uint16_t bdom = uint16_t(ends[b].peer), cdom = uint16_t(ends[c].peer);
    long bport = read_number(node(path, sizeof path, ends[b].theirs, "event-channel"));
    long bref = read_number(node(path, sizeof path, ends[b].theirs, "ring-ref"));
    long cport = read_number(node(path, sizeof path, ends[c].theirs, "event-channel"));

    // B: hold its page (the builder's reap of B waits for it), bind, kick.
    long err = 0;
    void* page = bref > 0 ? rt::map_grant(bdom, uint32_t(bref), true, &err) : nullptr;
    long p = bport > 0 ? rt::bind_interdomain(bdom, uint32_t(bport)) : -1;
    if (p > 0) {
        sleep_ns(kMs);
        (void)rt::take_port(uint32_t(p));   // pending from the bind, as in Xen
        (void)rt::notify(uint32_t(p));
    }
    check(page && p > 0, "attack.evtchn.bound_to_stopper", "map %ld, port %ld", err, p);
    if (!page || p <= 0) return done();

    // B stopped: the builder removed its home and waits for our unmap.
    bool stopped = wait_gone(node(path, sizeof path, ends[b].theirs, "state"), rt::now_ns() + 60 * kSecond);
    bool still_there = rt::cap_find(abi::CapType::event, bdom) >= 0;
    abi::EvtchnClose cl{uint32_t(p)};
    long rc = rt::evtchn_op(abi::EvtchnOp::close, &cl);
    long p2 = cport > 0 ? rt::bind_interdomain(cdom, uint32_t(cport)) : -1;
    check(stopped && still_there && rc == 0 && p2 == p, "attack.evtchn.port_reused_while_peer_stopped",
          "stopper seen stopped %d, not yet destroyed %d, close %ld, new port %ld (want %ld)", stopped, still_there, rc,
          p2, p);
    if (p2 <= 0) return done();
    sleep_ns(kMs);
    (void)rt::take_port(uint32_t(p2));   // pending from the bind

    // Let B go: the builder destroys it now.
    long ur = rt::unmap_grant(page);
    bool destroyed = wait_cap_gone(abi::CapType::event, bdom, rt::now_ns() + 60 * kSecond);
    check(ur == 0 && destroyed, "attack.evtchn.stopper_destroyed", "unmap %ld", ur);

    abi::EvtchnStatus st;
    long sr = status_of(uint32_t(p2), st);
    check(sr == 0 && st.status == uint32_t(abi::EvtchnStat::interdomain) && st.u.interdomain.dom == cdom &&
              st.u.interdomain.port == uint32_t(cport),
          "attack.evtchn.channel_survives_peer_destroy",
          "port %ld after the stopper's end: status %u (want interdomain %u), peer %u port %u (want %u port %ld)", p2,
          st.status, uint32_t(abi::EvtchnStat::interdomain), st.u.interdomain.dom, st.u.interdomain.port, cdom, cport);

    (void)rt::take_port(uint32_t(p2));
    long s = rt::notify(uint32_t(p2));
    bool answered = wait_port_until(uint32_t(p2), rt::now_ns() + 25 * kSecond);
    check(s == 0 && answered, "attack.evtchn.send_reaches_peer", "send %ld; no answer from domain %u", s, cdom);

    (void)rt::xs_write(node(path, sizeof path, ends[c].mine, "state"), "6");
    done();
}
