// The XenStore domain (docs/system.md): serves Xen's xenstore protocol to the
// master (the builder, privileged, connected from the start: its grant ref 1
// and the port on our command line) and to every domain the master
// introduces (XS_INTRODUCE: map that domain's grant ref 1, bind its port;
// XS_RELEASE: unmap and close).
//
// Command line: master=<domid> master-port=<port> (master defaults to 0).
//
// Main loop: serve every connection until nothing moves (kicking the port of
// each connection whose ring indices moved), then sleep in sched_op block
// with event delivery masked while we look for fired ports, so an event that
// arrives after the look still ends the sleep. A peer that breaks its ring
// protocol is logged once and not served again; nobody else notices. A peer
// destroyed while still introduced takes its page with it: the page fault
// that follows is caught, the connection dropped (on_page_fault).
//
// Memory: the engine and the connection table are static (the image's bss
// is about 5.6 MiB, the engine's pools and every domain's reserve in them
// included: xenstore/config.hpp; it runs in 8 MiB); nothing is allocated at
// run time.

#include <xenstore/engine.hpp>
#include <xenstore/ring_server.hpp>

#include <abi/event_channel.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/traps.hpp>

#include <new>
#include <base/number.hpp>

namespace {

// Xen reserves grant reference 1 for the xenstore page.
constexpr uint32_t kStoreRef = 1;

alignas(xs::Engine) uint8_t g_engine_mem[sizeof(xs::Engine)];
alignas(xs::RingServer) uint8_t g_server_mem[sizeof(xs::RingServer)];
xs::Engine* g_engine;
xs::RingServer* g_server;
// Connections (by table slot) whose ring page went away under us.
bool g_vanished[xs::kMaxConnections];

size_t slot_of(const xs::Connection& c) { return size_t(&c - &g_server->at(0)); }

// ---------------------------------------------------------------------------
// Command line.

struct Cmdline {
    uint32_t master = 0;
    uint32_t master_port = 0;
    bool has_master_port = false;
    bool bad = false;
};

bool key_is(const char* s, size_t n, const char* key) {
    size_t i = 0;
    for (; key[i]; ++i)
        if (i >= n || s[i] != key[i]) return false;
    return i == n;
}

// Words separated by blanks; unknown words are ignored (the builder may pass
// more than we need).
Cmdline parse_cmdline(const char* s, size_t cap) {
    Cmdline c;
    size_t i = 0;
    while (i < cap && s[i]) {
        while (i < cap && (s[i] == ' ' || s[i] == '\t')) ++i;
        size_t start = i;
        while (i < cap && s[i] && s[i] != ' ' && s[i] != '\t') ++i;
        size_t n = i - start;
        const char* w = s + start;
        size_t eq = 0;
        while (eq < n && w[eq] != '=') ++eq;
        if (eq == n) continue;
        const char* v = w + eq + 1;
        size_t vn = n - eq - 1;
        if (key_is(w, eq, "master")) {
            if (!base::parse_u32(v, vn, c.master) || c.master >= xs::kDomIdLimit) c.bad = true;
        } else if (key_is(w, eq, "master-port")) {
            if (!base::parse_u32(v, vn, c.master_port)) c.bad = true;
            else c.has_master_port = true;
        }
    }
    return c;
}

// ---------------------------------------------------------------------------
// Connections.

void close_port(uint32_t port) {
    if (port == 0) return;
    abi::EvtchnClose c{port};
    long r = rt::evtchn_op(abi::EvtchnOp::close, &c);
    if (r != 0) rt::printf("cannot close port %u (error %ld)\n", port, r);
}

// Maps dom's store page and binds its port; attaches the connection. Errors
// are printed and leave dom without a connection (its requests are never
// read); they never stop the store.
bool connect(xs::DomId dom, uint32_t remote_port, bool quiet_failure = false) {
    long err = 0;
    void* page = rt::map_grant(dom, kStoreRef, false, &err);
    if (!page) {
        if (!quiet_failure)
            rt::printf("domain %u: map of grant ref %u failed with status %ld\n", dom, kStoreRef, err);
        return false;
    }
    long port = rt::bind_interdomain(dom, remote_port);
    if (port < 0) {
        if (!quiet_failure)
            rt::printf("domain %u: bind of its port %u failed with error %ld\n", dom, remote_port, port);
        rt::unmap_grant(page);
        return false;
    }
    xs::Connection* c = g_server->attach(dom, static_cast<abi::XenstoreDomainInterface*>(page), uint32_t(port));
    if (c) g_vanished[slot_of(*c)] = false;
    if (!c) {
        rt::printf("domain %u: no room for another connection (%u in use)\n", dom,
                   unsigned(g_server->connections()));
        close_port(uint32_t(port));
        rt::unmap_grant(page);
        return false;
    }
    return true;
}

void disconnect(xs::DomId dom) {
    xs::Connection* c = g_server->find(dom);
    if (!c) return;
    uint32_t port = c->port();
    void* page = c->ring();
    g_server->detach(dom);
    close_port(port);
    long r = rt::unmap_grant(page);
    // The domain may be gone already, and its page with it (bad_handle).
    if (r == long(abi::GntStatus::bad_handle))
        rt::printf("domain %u: its ring page had gone already\n", dom);
    else if (r != 0)
        rt::printf("domain %u: its ring was not unmapped (status %ld)\n", dom, r);
}

// Drops a connection whose page went away (on_page_fault). The grant
// mapping is gone already: the unmap only gives the window slot back (the
// hypervisor answers bad_handle).
void drop_vanished(xs::Connection& c) {
    g_vanished[slot_of(c)] = false;
    if (!c.attached()) return;
    xs::DomId dom = c.dom();
    uint32_t port = c.port();
    void* page = c.ring();
    rt::printf("domain %u: its ring page went away (domain destroyed?); no longer served\n", dom);
    g_server->detach(dom);
    close_port(port);
    long r = rt::unmap_grant(page);
    if (r != 0 && r != long(abi::GntStatus::bad_handle))
        rt::printf("domain %u: its ring was not unmapped (status %ld)\n", dom, r);
}

void drop_all_vanished() {
    for (size_t i = 0; i < g_server->used(); ++i)
        if (g_vanished[i]) drop_vanished(g_server->at(i));
}

// Hooks::introduced: XS_INTRODUCE from the master (or a re-introduction).
void on_introduced(void*, xs::DomId dom, uint64_t ring_mfn, uint32_t port) {
    xs::Connection* c = g_server->find(dom);
    if (c && g_vanished[slot_of(*c)]) {
        drop_vanished(*c);
        c = nullptr;
    }
    if (c && !c->broken()) {
        // Xen: introducing a connected domain again recreates its event channel.
        close_port(c->port());
        c->set_port(0);
        long p = rt::bind_interdomain(dom, port);
        if (p < 0) {
            rt::printf("domain %u: bind of its port %u failed with error %ld\n", dom, port, p);
            return;
        }
        c->set_port(uint32_t(p));
        rt::printf("domain %u reintroduced (port %u)\n", dom, port);
        return;
    }
    if (c) disconnect(dom);  // a broken ring starts over
    if (connect(dom, port))
        rt::printf("domain %u introduced (ring mfn %#lx, port %u)\n", dom, (unsigned long)ring_mfn, port);
}

// Hooks::released: XS_RELEASE from the master.
void on_released(void*, xs::DomId dom) {
    if (xs::Connection* c = g_server->find(dom); c && g_vanished[slot_of(*c)]) drop_vanished(*c);
    bool had = g_server->find(dom) != nullptr;
    disconnect(dom);
    rt::printf("domain %u released%s\n", dom, had ? "" : " (it had no connection)");
}

void notify_conn(void*, xs::Connection& c) {
    if (c.port()) rt::notify(c.port());
}

void broke_conn(void*, xs::Connection& c) {
    // A page that went away reads as garbage first: drop_vanished says why.
    if (!g_vanished[slot_of(c)])
        rt::printf("domain %u: %s (%u); no longer served\n", c.dom(), xs::break_reason_name(c.break_reason()),
                   c.break_detail());
    // Its events would only wake us for nothing; the page stays mapped
    // until the master releases the domain.
    close_port(c.port());
    c.set_port(0);
}

// A domain destroyed while we still map its ring takes the page with it
// (the hypervisor removes our mapping): the next touch faults. Put our own
// frame back under that address (what unmapping would have done) and
// resume; the ring code reads whatever is there as hostile input anyway.
// The main loop then drops the connection. Any other fault is a bug of
// ours and crashes the domain, as before.
bool on_page_fault(rt::TrapFrame&) {
    if (!g_server) return false;
    uint64_t va = rt::vcpu_info().arch.cr2 & ~uint64_t(4095);
    for (size_t i = 0; i < g_server->used(); ++i) {
        xs::Connection& c = g_server->at(i);
        if (!c.attached() || rt::ptr(c.ring()) != va) continue;
        uint64_t own = rt::mfn_of_pfn((va - rt::kVirtBase) >> 12) << 12;
        if (rt::update_va_mapping(va, own | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD) != 0) return false;
        g_vanished[i] = true;
        return true;
    }
    return false;
}

void sleep_ns(uint64_t ns) {
    uint32_t none = 0;
    abi::SchedPoll p{rt::ptr(&none), 0, rt::now_ns() + ns};
    rt::sched_op(abi::SchedOp::poll, &p);
}

// Sleeps until a port of ours fires. Event delivery is masked while we look,
// and sched_op block unmasks it and sleeps only if nothing is pending, so an
// event arriving after the look is never slept through.
void wait_for_events() {
    abi::VcpuInfo& vi = rt::vcpu_info();
    __atomic_store_n(&vi.evtchn_upcall_mask, 1, __ATOMIC_SEQ_CST);
    bool fired = false;
    for (size_t i = 0; i < g_server->used(); ++i) {
        xs::Connection& c = g_server->at(i);
        if (c.attached() && c.port() && rt::take_port(c.port())) fired = true;
    }
    if (fired) {
        __atomic_store_n(&vi.evtchn_upcall_mask, 0, __ATOMIC_SEQ_CST);
        return;
    }
    rt::sched_op(abi::SchedOp::block);
}

}  // namespace

// Every introduced domain's ring page is mapped at once.
alignas(4096) uint8_t g_window[xs::kMaxConnections][4096];
rt::ForeignSlot g_window_slots[xs::kMaxConnections];

void rt::main() {
    rt::set_foreign_window(g_window, g_window_slots, xs::kMaxConnections);
    rt::events_init();
    rt::set_trap_handler(14, on_page_fault);
    const abi::StartInfo& si = rt::start_info();
    const char* cmd = reinterpret_cast<const char*>(si.cmd_line);
    Cmdline cl = parse_cmdline(cmd, sizeof si.cmd_line);
    if (cl.bad || !cl.has_master_port) {
        rt::printf("bad command line \"%.*s\": want master=<domid> master-port=<port>\n",
                   int(sizeof si.cmd_line), cmd);
        rt::shutdown(abi::ShutdownReason::crash);
    }
    xs::DomId master = xs::DomId(cl.master);

    g_engine = new (g_engine_mem) xs::Engine(master, xs::Hooks{nullptr, on_introduced, on_released});
    g_server = new (g_server_mem) xs::RingServer(*g_engine);

    // The master is connected from the start. It granted its page and
    // allocated the port before building us; still, give it a moment (its
    // capabilities for us may be installed just after we start).
    constexpr unsigned kTries = 500;  // 10 ms apart: 5 s
    unsigned tries = 0;
    while (!connect(master, cl.master_port, tries + 1 < kTries)) {
        if (++tries == kTries) {
            rt::printf("cannot connect to master domain %u; giving up\n", master);
            rt::shutdown(abi::ShutdownReason::crash);
        }
        sleep_ns(10'000'000);
    }
    rt::printf("ready, master domain %u\n", master);

    for (;;) {
        g_server->serve_all(nullptr, notify_conn, broke_conn);
        drop_all_vanished();
        wait_for_events();
    }
}
