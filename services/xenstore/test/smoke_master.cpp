// The master of the XenStore smoke test (see smoke.hpp).
#include "smoke.hpp"

#include <abi/moat.hpp>

using namespace smoke;

namespace {

alignas(4096) uint8_t g_ring[4096];

// Waits for a watch event on `path` (and `token`, if given); false after ~5 s.
bool wait_event(const char* path, const char* token = nullptr) {
    uint64_t deadline = rt::now_ns() + 5'000'000'000ull;
    rt::XsWatchEvent ev;
    for (;;) {
        auto r = rt::xs_wait_watch_event(ev, deadline);
        if (!r) {
            rt::printf("smoke_master: no event for %s (%s)\n", path, rt::xs_error_name(r.error()));
            return false;
        }
        if (streq(ev.path, path) && (!token || streq(ev.token, token))) return true;
    }
}

long domctl(abi::DomctlCmd cmd, uint16_t dom, abi::MoatDomctl* out = nullptr) {
    abi::MoatDomctl op{};
    op.version = abi::kMoatDomctlVersion;
    op.cmd = uint32_t(cmd);
    op.domain = dom;
    long r = rt::hypercall(abi::Hypercall::domctl, rt::ptr(&op));
    if (out) *out = op;
    return r;
}

// Until the domain is gone (or stopped); false after ~5 s.
bool wait_gone(uint16_t dom) {
    uint64_t deadline = rt::now_ns() + 5'000'000'000ull;
    while (rt::now_ns() < deadline) {
        abi::MoatDomctl op;
        if (domctl(abi::DomctlCmd::getinfo, dom, &op) != 0 || op.u.info.state != 1) return true;
        sleep_ms(5);
    }
    return false;
}

void talk_with_guest() {
    wait_port(kick_port(kGuest));  // its ring is granted, its port allocated
    check(rt::xs_introduce(kGuest, 0, kGuestStorePort).ok(), "xs_smoke.introduce_guest");
    check(wait_event("@introduceDomain", "in"), "xs_smoke.introduce_event");
    auto is = rt::xs_is_domain_introduced(kGuest);
    check(is.ok() && is.value(), "xs_smoke.guest_is_introduced");

    // The guest writes ready; we answer by writing where it watches.
    check(wait_event("/local/domain/2/ready"), "xs_smoke.guest_ready_seen");
    char buf[64];
    auto rd = rt::xs_read("/local/domain/2/data", buf, sizeof buf);
    check(rd.ok() && streq(buf, "from guest"), "xs_smoke.master_reads_guest_data");
    check(rt::xs_write("/local/domain/2/watched/x", "1").ok(), "xs_smoke.master_pokes_guest");
    check(wait_event("/local/domain/2/done"), "xs_smoke.guest_done_seen");

    // The guest breaks its ring, waits until the store flagged it, kicks us.
    wait_port(kick_port(kGuest));
    check(rt::xs_release(kGuest).ok(), "xs_smoke.release_guest");
    check(wait_event("@releaseDomain", "out"), "xs_smoke.release_event");
    auto gone = rt::xs_is_domain_introduced(kGuest);
    check(gone.ok() && !gone.value(), "xs_smoke.guest_not_introduced");
    check(rt::xs_rm("/local/domain/2").ok(), "xs_smoke.guest_home_removed");
    rt::notify(kick_port(kGuest));
}

void outlive_dying_guest() {
    check(rt::xs_watch("/local/domain/3/alive", "alive").ok(), "xs_smoke.master_watches_dying_guest");
    wait_port(kick_port(kDying));
    check(rt::xs_introduce(kDying, 0, kGuestStorePort).ok(), "xs_smoke.introduce_dying_guest");
    check(wait_event("/local/domain/3/alive", "alive"), "xs_smoke.dying_guest_alive_seen");
    // It powers off right after; the hypervisor takes its pages back, and
    // with them the store's mapping of its ring.
    check(wait_gone(kDying), "xs_smoke.dying_guest_gone");
    // The store serves only rings that have something to do: an event for
    // the dead guest's watch makes it touch that ring (and fault) before the
    // release; the release then finds no connection.
    check(rt::xs_write("/local/domain/3/alive", "2").ok() && rt::xs_write("/tool/poke", "1").ok(),
          "xs_smoke.store_serves_after_guest_died");
    check(rt::xs_release(kDying).ok(), "xs_smoke.release_dying_guest");
    check(wait_event("@releaseDomain", "out"), "xs_smoke.release_dying_event");
}

}  // namespace

void rt::main() {
    rt::events_init();
    // Capabilities the store needs: map our ring and the guests', bind our
    // port and the guests'. The guests bind ours.
    long g0 = rt::cap_find(abi::CapType::grant, kMaster), e0 = rt::cap_find(abi::CapType::event, kMaster);
    long g2 = rt::cap_find(abi::CapType::grant, kGuest), e2 = rt::cap_find(abi::CapType::event, kGuest);
    long g3 = rt::cap_find(abi::CapType::grant, kDying), e3 = rt::cap_find(abi::CapType::event, kDying);
    uint32_t map = abi::kCapRightMapRw | abi::kCapRightMapRo;
    long r = rt::cap_install(kStore, uint32_t(g0), 0, map) | rt::cap_install(kStore, uint32_t(e0), 1, abi::kCapRightBind) |
             rt::cap_install(kStore, uint32_t(g2), 2, map) | rt::cap_install(kStore, uint32_t(e2), 3, abi::kCapRightBind) |
             rt::cap_install(kStore, uint32_t(g3), 4, map) | rt::cap_install(kStore, uint32_t(e3), 5, abi::kCapRightBind) |
             rt::cap_install(kGuest, uint32_t(e0), 0, abi::kCapRightBind) |
             rt::cap_install(kDying, uint32_t(e0), 0, abi::kCapRightBind);
    check(g0 >= 0 && e0 >= 0 && g2 >= 0 && e2 >= 0 && g3 >= 0 && e3 >= 0 && r == 0, "xs_smoke.capabilities_installed",
          "rc %ld", r);

    // Our store ring, as the builder sets it up, and the guests' kick ports.
    bool granted = rt::grant_table().grant_access(kStoreRef, kStore, uint32_t(mfn_of(g_ring)), false);
    long port = rt::alloc_unbound(kStore);
    check(granted && port == long(kMasterStorePort), "xs_smoke.master_ring_offered", "port %ld", port);
    long k2 = rt::alloc_unbound(kGuest), k3 = rt::alloc_unbound(kDying);
    check(k2 == long(kick_port(kGuest)) && k3 == long(kick_port(kDying)), "xs_smoke.guest_ports_offered");

    check(rt::xs_init(g_ring, uint32_t(port)).ok(), "xs_smoke.master_init");
    // The first request waits until the store has mapped our ring.
    auto w = rt::xs_write("/tool/smoke", "hello");
    check(w.ok(), "xs_smoke.master_write", "error %ld", w.ok() ? 0L : long(w.error()));
    char buf[64];
    auto rd = rt::xs_read("/tool/smoke", buf, sizeof buf);
    check(rd.ok() && streq(buf, "hello"), "xs_smoke.master_read");
    check(rt::xs_mkdir("/tool/smoke-dir/a").ok() && rt::xs_mkdir("/tool/smoke-dir/b").ok(), "xs_smoke.master_mkdir");
    auto dir = rt::xs_directory("/tool/smoke-dir", buf, sizeof buf);
    check(dir.ok() && dir.value() == 4, "xs_smoke.master_directory", "len %ld", dir.ok() ? long(dir.value()) : -1L);
    auto tx = rt::xs_transaction_start();
    bool tx_ok = tx.ok() && rt::xs_write("/tool/smoke-tx", "1", tx.value()).ok() &&
                 rt::xs_transaction_end(tx.value(), true).ok();
    check(tx_ok && rt::xs_read("/tool/smoke-tx", buf, sizeof buf).ok(), "xs_smoke.master_transaction");
    check(rt::xs_read("/tool/none", buf, sizeof buf).error() == rt::XsError::noent, "xs_smoke.master_enoent");
    check(rt::xs_watch("@introduceDomain", "in").ok() && rt::xs_watch("@releaseDomain", "out").ok() &&
              rt::xs_watch("/local/domain/2/ready", "ready").ok() && rt::xs_watch("/local/domain/2/done", "done").ok(),
          "xs_smoke.master_watches");
    rt::XsWatchEvent ev;
    while (rt::xs_next_watch_event(ev)) {
    }

    talk_with_guest();
    outlive_dying_guest();

    auto rd3 = rt::xs_read("/tool/smoke", buf, sizeof buf);
    check(rd3.ok() && streq(buf, "hello"), "xs_smoke.store_still_serves");
    rt::printf("smoke_master: done, %u failed\n", rt::g_failed_checks);
    check(domctl(abi::DomctlCmd::destroy, kStore) == 0, "xs_smoke.store_destroyed");
}
