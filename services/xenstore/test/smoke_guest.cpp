// A guest of the XenStore smoke test (see smoke.hpp): talks to the store
// through the runtime's xenbus client, then breaks its ring on purpose; or,
// with `die` on its command line, writes once and powers off while still
// introduced.
#include "smoke.hpp"

using namespace smoke;

namespace {
alignas(4096) uint8_t g_ring[4096];

bool has_word(const char* s, size_t cap, const char* w) {
    for (size_t i = 0; i < cap && s[i]; ++i) {
        if (i && s[i - 1] != ' ') continue;
        size_t k = 0;
        while (w[k] && i + k < cap && s[i + k] == w[k]) ++k;
        if (!w[k] && (i + k == cap || s[i + k] == ' ' || s[i + k] == '\0')) return true;
    }
    return false;
}

void dying(uint32_t kick) {
    rt::notify(kick);
    auto w = rt::xs_write("alive", "1");  // waits until introduced
    // A watch the master fires once we are gone: the event sends the store
    // to our ring, whose page went with us (the store must catch the fault).
    auto watched = rt::xs_watch("alive", "alive");
    check(w.ok() && watched.ok(), "xs_smoke.dying_guest_wrote");
    rt::printf("smoke_guest: powering off with its ring still introduced\n");
}

void talking(uint32_t port, uint32_t kick) {
    rt::notify(kick);
    // Not introduced yet: requests time out, the client stays usable.
    rt::xs_set_timeout(20'000'000);
    char buf[64];
    auto early = rt::xs_read("domid", buf, sizeof buf);
    check(!early.ok() && rt::xs_client().connected(), "xs_smoke.guest_early_request_times_out", "error %ld",
          early.ok() ? 0L : long(early.error()));
    rt::xs_set_timeout(0);

    auto w = rt::xs_write("data", "from guest");  // waits until introduced
    check(w.ok(), "xs_smoke.guest_write_relative");
    auto rd = rt::xs_read("/local/domain/2/data", buf, sizeof buf);
    check(rd.ok() && streq(buf, "from guest"), "xs_smoke.guest_read_absolute");
    check(rt::xs_read("/tool/smoke", buf, sizeof buf).error() == rt::XsError::acces, "xs_smoke.guest_eacces");
    char path[32];
    auto dp = rt::xs_get_domain_path(kGuest, path, sizeof path);
    check(dp.ok() && streq(path, "/local/domain/2"), "xs_smoke.guest_domain_path");

    check(rt::xs_watch("watched", "tok").ok(), "xs_smoke.guest_watch");
    rt::XsWatchEvent ev;
    check(rt::xs_wait_watch_event(ev).ok() && streq(ev.path, "watched") && streq(ev.token, "tok"),
          "xs_smoke.guest_watch_registration_event");
    check(rt::xs_write("ready", "1").ok(), "xs_smoke.guest_ready");
    auto got = rt::xs_wait_watch_event(ev, rt::now_ns() + 5'000'000'000ull);
    check(got.ok() && streq(ev.path, "watched/x"), "xs_smoke.guest_watch_event", "error %ld",
          got.ok() ? 0L : long(got.error()));
    check(rt::xs_write("done", "1").ok(), "xs_smoke.guest_done");

    // Break our own ring: a producer index far beyond the ring. The store
    // must drop this connection (and say so in the error field), nothing else.
    auto* ring = reinterpret_cast<abi::XenstoreDomainInterface*>(g_ring);
    __atomic_store_n(&ring->req_prod, ring->req_prod + 5000, __ATOMIC_RELEASE);
    rt::notify(port);
    uint64_t deadline = rt::now_ns() + 5'000'000'000ull;
    while (__atomic_load_n(&ring->error, __ATOMIC_ACQUIRE) == abi::kXenstoreErrorNone && rt::now_ns() < deadline)
        sleep_ms(1);
    check(ring->error == abi::kXenstoreErrorRingidx, "xs_smoke.store_flagged_broken_ring", "error %ld", long(ring->error));
    check(rt::xs_write("more", "1").error() == rt::XsError::proto, "xs_smoke.guest_sees_broken_ring");
    // Let the master release us, and wait for it.
    rt::notify(kick);
    wait_port(kick);
}

}  // namespace

void rt::main() {
    rt::events_init();
    const abi::StartInfo& si = rt::start_info();
    bool die = has_word(reinterpret_cast<const char*>(si.cmd_line), sizeof si.cmd_line, "die");
    const char* who = die ? "dying_guest" : "guest";
    bool granted = rt::grant_table().grant_access(kStoreRef, kStore, uint32_t(mfn_of(g_ring)), false);
    long port = rt::alloc_unbound(kStore);
    char name[64];
    base::snformat(name, sizeof name, "xs_smoke.%s_ring_offered", who);
    check(granted && port == long(kGuestStorePort), name, "port %ld", port);
    uint32_t mine = die ? kick_port(kDying) : kick_port(kGuest);
    long kick = retry([&] { return rt::bind_interdomain(kMaster, mine); });
    base::snformat(name, sizeof name, "xs_smoke.%s_bound_to_master", who);
    check(kick > 0, name, "rc %ld", kick);
    if (kick > 0) wait_port(uint32_t(kick));  // a new binding starts pending
    check(rt::xs_init(g_ring, uint32_t(port)).ok(), die ? "xs_smoke.dying_guest_init" : "xs_smoke.guest_init");
    if (die) dying(uint32_t(kick));
    else talking(uint32_t(port), uint32_t(kick));
    rt::printf("smoke_%s: done, %u failed\n", who, rt::g_failed_checks);
}
