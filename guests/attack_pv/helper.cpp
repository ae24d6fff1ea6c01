// The helper (role=helper): the front-end of a RING connection to the
// attacker. It grants the attacker one page read-only (ref 9) and binds
// eight IPI ports of its own, masked, whose numbers it publishes
// (`ipi-ports`, under its device/ring node); then, until the attacker closes
// its end, it watches them: no IPI port of its may become pending (it never
// sends on them but once, at start, to see that a send would show), each
// stays an IPI port, and its read-only page stays as it was.

#include "env.hpp"

#include <rt/gnttab.hpp>

namespace pv {

namespace {

alignas(4096) uint64_t g_page[512];
constexpr uint32_t kRef = 9;
constexpr unsigned kIpis = 8;

uint64_t pattern(unsigned i) { return 0x48454C5045520000ull | i; }

bool pending(uint32_t port) {
    return (__atomic_load_n(&rt::shared_info().evtchn_pending[port / 64], __ATOMIC_SEQ_CST) >> (port % 64)) & 1;
}
void clear_pending(uint32_t port) {
    __atomic_fetch_and(&rt::shared_info().evtchn_pending[port / 64], ~(1ull << (port % 64)), __ATOMIC_SEQ_CST);
}
void mask(uint32_t port) {
    __atomic_fetch_or(&rt::shared_info().evtchn_mask[port / 64], 1ull << (port % 64), __ATOMIC_SEQ_CST);
}

}  // namespace

void role_helper() {
    check(bool(rt::xs_init()), "attack.pv.helper.xenstore");
    attack::RingEnd ring;
    bool found = attack::find_backend(ring);
    check(found, "attack.pv.helper.found_attacker");
    if (!found) return;
    for (unsigned i = 0; i < 512; ++i) g_page[i] = pattern(i);
    grant::Table& gt = rt::grant_table();
    bool granted = gt.size() > kRef && gt.grant_access(kRef, uint16_t(ring.peer), uint32_t(attack::mfn_of_va(g_page)), true);

    uint32_t ports[kIpis] = {};
    unsigned bound = 0;
    char list[96] = "";
    size_t len = 0;
    for (unsigned i = 0; i < kIpis; ++i) {
        abi::EvtchnBindIpi b{0, 0};
        if (rt::evtchn_op(abi::EvtchnOp::bind_ipi, &b) != 0) break;
        ports[bound++] = b.port;
        mask(b.port);
        len += base::snformat(list + len, sizeof list - len, "%s%u", i ? " " : "", b.port);
    }
    // A send of ours shows (the watch below would see one of the attacker's).
    bool shows = false;
    if (bound) {
        clear_pending(ports[0]);
        shows = rt::notify(ports[0]) == 0 && pending(ports[0]);
        clear_pending(ports[0]);
    }
    check(bound == kIpis && shows, "attack.pv.helper.ipi_ports_bound", "%u of %u, own send shows %d", bound, kIpis, shows);

    char path[160], value[24];
    base::snformat(value, sizeof value, "%u", kRef);
    bool published = granted && rt::xs_write(attack::node(path, sizeof path, ring.mine, "ipi-ports"), list) &&
                     rt::xs_write(attack::node(path, sizeof path, ring.mine, "ring-ref"), value) &&
                     rt::xs_write(attack::node(path, sizeof path, ring.mine, "state"), "3");
    check(published, "attack.pv.helper.published", "granted %d", granted);
    rt::printf("granted frame %#lx read-only (ref %u); IPI ports %s\n", attack::mfn_of_va(g_page), kRef, list);

    // Watch until the attacker closes its end (or is gone).
    uint64_t deadline = rt::now_ns() + 120 * kSecond, looks = 0, seen = 0;
    uint32_t first = 0;
    bool closed = false;
    while (!closed && rt::now_ns() < deadline) {
        for (unsigned i = 0; i < bound; ++i)
            if (pending(ports[i])) {
                if (!seen++) first = ports[i];
                clear_pending(ports[i]);
            }
        ++looks;
        char buf[32];
        auto st = rt::xs_read(attack::node(path, sizeof path, ring.theirs, "state"), buf, sizeof buf - 1);
        if (!st && (st.error() == rt::XsError::noent || st.error() == rt::XsError::acces)) closed = true;
        else if (attack::read_number(path) >= 6) closed = true;
        else attack::sleep_ns(kMs);
    }
    // One more look: a pending bit stays until we clear it.
    for (unsigned i = 0; i < bound; ++i)
        if (pending(ports[i]) && !seen++) first = ports[i];
    ++looks;
    check(closed, "attack.pv.helper.saw_attacker_close");
    check(looks >= 2 && seen == 0, "attack.pv.helper.ipi_ports_untouched",
          "%lu of %lu looks found an IPI port of ours pending (first %u): someone else's send reached it", seen, looks,
          first);
    unsigned still = 0;
    for (unsigned i = 0; i < bound; ++i) {
        abi::EvtchnStatus st{};
        st.dom = abi::kDomidSelf;
        st.port = ports[i];
        still += rt::evtchn_op(abi::EvtchnOp::status, &st) == 0 && st.status == uint32_t(abi::EvtchnStat::ipi);
    }
    check(still == bound, "attack.pv.helper.ipi_ports_still_ipi", "%u of %u", still, bound);
    bool ended = gt.end_access(kRef);
    unsigned bad = 0;
    for (unsigned i = 0; i < 512; ++i) bad += g_page[i] != pattern(i);
    check(ended && bad == 0, "attack.pv.helper.readonly_page_intact", "grant ended %d, %u words changed", ended, bad);
    (void)rt::xs_write(attack::node(path, sizeof path, ring.mine, "state"), "6");
}

}  // namespace pv
