// Event channels for several vCPUs (kernel/core/src/hc_evtchn.cpp):
// bind_ipi, bind_vcpu, and sends on IPI ports.
//
// What must hold: IPI ports and moves name only vCPUs that exist (Moat runs
// one per domain: every other id is -ENOENT); bind_vcpu moves only what Xen
// lets move (not an IPI, not a per-vCPU VIRQ, not a free port); a send on an
// IPI port reaches only the domain that bound it, so a number that is an
// IPI port of another domain's (the helper publishes eight of its own) is
// only ever a port of ours, or nothing, when we send on it; another domain's
// IPI port cannot be bound as an interdomain channel nor its status read;
// and binding IPI ports until none is left costs us our own ports only.

#include "env.hpp"

namespace pv {

namespace {

long evtchn(abi::EvtchnOp op, void* arg) { return rt::evtchn_op(op, arg); }

long bind_ipi(uint32_t vcpu, uint32_t* port) {
    abi::EvtchnBindIpi b{vcpu, 0};
    long r = evtchn(abi::EvtchnOp::bind_ipi, &b);
    if (port) *port = b.port;
    return r;
}
long bind_vcpu(uint32_t port, uint32_t vcpu) {
    abi::EvtchnBindVcpu b{port, vcpu};
    return evtchn(abi::EvtchnOp::bind_vcpu, &b);
}
long close(uint32_t port) {
    abi::EvtchnClose c{port};
    return evtchn(abi::EvtchnOp::close, &c);
}
long status(uint16_t dom, uint32_t port, abi::EvtchnStatus& st) {
    st = abi::EvtchnStatus{};
    st.dom = dom;
    st.port = port;
    return evtchn(abi::EvtchnOp::status, &st);
}
bool pending(uint32_t port) {
    return (__atomic_load_n(&rt::shared_info().evtchn_pending[port / 64], __ATOMIC_SEQ_CST) >> (port % 64)) & 1;
}
void clear_pending(uint32_t port) {
    __atomic_fetch_and(&rt::shared_info().evtchn_pending[port / 64], ~(1ull << (port % 64)), __ATOMIC_SEQ_CST);
}
void set_mask(uint32_t port, bool on) {
    uint64_t bit = 1ull << (port % 64);
    if (on) __atomic_fetch_or(&rt::shared_info().evtchn_mask[port / 64], bit, __ATOMIC_SEQ_CST);
    else __atomic_fetch_and(&rt::shared_info().evtchn_mask[port / 64], ~bit, __ATOMIC_SEQ_CST);
}

void other_vcpus() {
    unsigned refused = 0, n = 0;
    for (uint32_t vcpu : {1u, 2u, 31u, 127u, 0x80000000u, 0xFFFFFFFFu}) {
        ++n;
        uint32_t p = 0;
        refused += bind_ipi(vcpu, &p) == kEnoent;
    }
    check(refused == n, "attack.pv.evtchn.bind_ipi_other_vcpus_refused", "%u of %u refused with -ENOENT", refused, n);
}

void ipi_lifecycle() {
    uint32_t p = 0;
    long b = bind_ipi(0, &p);
    abi::EvtchnStatus st;
    long s1 = status(abi::kDomidSelf, p, st);
    bool is_ipi = s1 == 0 && st.status == uint32_t(abi::EvtchnStat::ipi) && st.vcpu == 0;
    set_mask(p, true);
    clear_pending(p);
    long snd = rt::notify(p);
    bool shows = pending(p);
    clear_pending(p);
    set_mask(p, false);
    long c = close(p);
    long s2 = status(abi::kDomidSelf, p, st);
    bool closed = s2 == 0 && st.status == uint32_t(abi::EvtchnStat::closed);
    long snd2 = rt::notify(p);
    long c2 = close(p);
    check(b == 0 && is_ipi && snd == 0 && shows && c == 0 && closed && snd2 == kEinval && c2 == kEinval,
          "attack.pv.evtchn.ipi_port_lifecycle",
          "bind %ld (port %u), ipi %d, send %ld (pending %d), close %ld, closed %d, send after %ld, close again %ld", b, p,
          is_ipi, snd, shows, c, closed, snd2, c2);
}

void bind_vcpu_refusals(uint16_t helper) {
    uint32_t ipi = 0;
    (void)bind_ipi(0, &ipi);
    abi::EvtchnBindVirq bv{uint32_t(abi::Virq::timer), 0, 0};
    long vr = evtchn(abi::EvtchnOp::bind_virq, &bv);
    long unbound = rt::alloc_unbound(helper);
    struct {
        const char* what;
        uint32_t port, vcpu;
        long want;
    } cases[] = {
        {"an IPI port to vCPU 0", ipi, 0, kEinval},
        {"an IPI port to vCPU 1", ipi, 1, kEnoent},
        {"the per-vCPU timer VIRQ to vCPU 0", bv.port, 0, kEinval},
        {"an unbound port to vCPU 1", uint32_t(unbound), 1, kEnoent},
        {"an unbound port to vCPU ~0", uint32_t(unbound), 0xFFFFFFFF, kEnoent},
        {"port 0", 0, 0, kEinval},
        {"port 4095 (free)", 4095, 0, kEinval},
        {"port 4096 (beyond the 2-level ABI)", 4096, 0, kEinval},
        {"port ~0", 0xFFFFFFFF, 0, kEinval},
        {"a free port", 1000, 0, kEinval},
    };
    unsigned ok = 0, n = 0;
    for (auto& c : cases) {
        ++n;
        long r = bind_vcpu(c.port, c.vcpu);
        if (r == c.want) ++ok;
        else rt::printf("evidence: bind_vcpu of %s: %ld (want %ld)\n", c.what, r, c.want);
    }
    long legit = unbound > 0 ? bind_vcpu(uint32_t(unbound), 0) : -1;
    check(vr == 0 && unbound > 0 && ok == n && legit == 0, "attack.pv.evtchn.bind_vcpu_refused",
          "%u of %u as Xen answers; an unbound port to vCPU 0 %ld", ok, n, legit);
    (void)close(ipi);
    (void)close(bv.port);
    (void)close(uint32_t(unbound));
}

// The helper's IPI port numbers, from our side.
void peer_ipi_numbers(const attack::RingEnd& ring) {
    char path[160], list[96];
    auto r = rt::xs_read(attack::node(path, sizeof path, ring.theirs, "ipi-ports"), list, sizeof list - 1);
    uint32_t theirs[16];
    unsigned n = 0;
    if (r) {
        list[*r] = 0;
        uint32_t v = 0;
        bool in = false;
        for (size_t i = 0; i <= *r && n < 16; ++i) {
            char ch = i < *r ? list[i] : ' ';
            if (ch >= '0' && ch <= '9') {
                v = v * 10 + uint32_t(ch - '0');
                in = true;
            } else if (in) {
                theirs[n++] = v;
                v = 0;
                in = false;
            }
        }
    }
    // Those numbers in our own table first: whatever they are (nothing, or
    // one of our ports), a send goes nowhere near the helper.
    unsigned free_refused = 0, free_n = 0, bind_refused = 0, status_refused = 0;
    for (unsigned i = 0; i < n; ++i) {
        abi::EvtchnStatus st;
        if (status(abi::kDomidSelf, theirs[i], st) == 0 && st.status == uint32_t(abi::EvtchnStat::closed)) {
            ++free_n;
            free_refused += rt::notify(theirs[i]) == kEinval;
        }
        bind_refused += rt::bind_interdomain(uint16_t(ring.peer), theirs[i]) < 0;
        status_refused += status(uint16_t(ring.peer), theirs[i], st) < 0;
    }
    // Then our own IPI ports on the same numbers, and sends on every one of them.
    uint32_t mine[64];
    unsigned nm = 0;
    bool covered = false;
    while (nm < 64 && !covered) {
        uint32_t p;
        if (bind_ipi(0, &p) != 0) break;
        set_mask(p, true);
        mine[nm++] = p;
        covered = true;
        for (unsigned i = 0; i < n; ++i) {
            bool have = false;
            for (unsigned k = 0; k < nm; ++k) have |= mine[k] == theirs[i];
            covered &= have;
        }
    }
    unsigned local = 0;
    for (unsigned i = 0; i < n; ++i) {
        clear_pending(theirs[i]);
        long s = rt::notify(theirs[i]);
        abi::EvtchnStatus st;
        bool ours_ipi = status(abi::kDomidSelf, theirs[i], st) == 0 && st.status == uint32_t(abi::EvtchnStat::ipi);
        local += !ours_ipi || (s == 0 && pending(theirs[i]));
        clear_pending(theirs[i]);
    }
    for (unsigned k = 0; k < nm; ++k) {
        set_mask(mine[k], false);
        (void)close(mine[k]);
    }
    rt::printf("the helper's IPI ports %s: %u free here, %u ours now\n", list, free_n, nm);
    check(n == 8 && free_refused == free_n && bind_refused == n && status_refused == n && covered && local == n,
          "attack.pv.evtchn.peer_ipi_numbers_unreachable",
          "%u numbers; sends on free ones refused %u of %u; bind_interdomain refused %u, status refused %u; our IPIs on "
          "them %d (%u local)",
          n, free_refused, free_n, bind_refused, status_refused, covered, local);
}

// IPI ports until none is left, a send on each, then all closed.
void exhaustion() {
    static uint32_t ports[4096];   // kMaxEvtchnPorts: the 2-level ABI's every port
    unsigned n = 0;
    long last = 0;
    for (;;) {
        uint32_t p;
        last = bind_ipi(0, &p);
        if (last != 0 || n >= 4096) break;
        set_mask(p, true);
        ports[n++] = p;
    }
    unsigned sent = 0;
    for (unsigned i = 0; i < n; ++i) sent += rt::notify(ports[i]) == 0;
    for (unsigned i = 0; i < n; ++i) {
        clear_pending(ports[i]);
        set_mask(ports[i], false);
        (void)close(ports[i]);
    }
    uint32_t again = 0;
    long r = bind_ipi(0, &again);
    if (r == 0) (void)close(again);
    check(n > 4000 && last == abi::neg(abi::Errno::enospc) && sent == n && r == 0,
          "attack.pv.evtchn.ipi_exhaustion_contained", "%u IPI ports before %ld, %u sends, a bind after closing: %ld", n,
          last, sent, r);
}

}  // namespace

void scenario_evtchn() {
    bool xs = bool(rt::xs_init());
    attack::RingEnd ring;
    bool found = xs && find_helper(ring);
    check(found, "attack.pv.evtchn.found_helper");
    other_vcpus();
    ipi_lifecycle();
    bind_vcpu_refusals(found ? uint16_t(ring.peer) : 0);
    if (found) peer_ipi_numbers(ring);
    exhaustion();
    if (found) {
        attack::sleep_ns(20 * kMs);   // the helper looks at its ports meanwhile
        char path[160];
        (void)rt::xs_write(attack::node(path, sizeof path, ring.mine, "state"), "6");
        bool closed = attack::wait_number_or_gone(attack::node(path, sizeof path, ring.theirs, "state"), 6,
                                                  rt::now_ns() + 10 * kSecond);
        check(closed, "attack.pv.evtchn.helper_closed");
    }
}

}  // namespace pv
