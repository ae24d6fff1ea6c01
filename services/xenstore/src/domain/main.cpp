// The XenStore domain (docs/system.md): serves Xen's xenstore protocol to the
// master (the builder, privileged, connected from the start: its grant ref 1
// and the port on our command line) and to every domain the master
// introduces (XS_INTRODUCE: map that domain's grant ref 1, bind its port;
// XS_RELEASE: unmap and close).
//
// Command line: master=<domid> master-port=<port> [domains=<n>] (master
// defaults to 0; domains: see Memory below).
//
// Main loop: take the ports that fired (rt's fired-port set: the cost is the
// ports that fired, not the ports bound), make their connections ready, and
// serve one round of the ready list (ring_server.hpp: one pass each, round
// robin, kicking the port of each connection whose ring indices moved);
// when nothing is ready, sleep in sched_op block with event delivery masked
// while we look at the set, so an event that arrives after the look still
// ends the sleep. A peer that breaks its ring protocol is logged once and
// not served again; nobody else notices. A peer destroyed while still
// introduced takes its page with it: the page fault that follows is caught,
// the connection put on the vanished list and dropped (on_page_fault).
//
// Memory: at start the store maps every frame it was given beyond the
// initial region (map_spare_frames) and lays out, in that memory and the
// free tail of the initial region, one connection and one ring window page
// for each domain it serves, and the engine's pools (xenstore/config.hpp:
// Sizing; Engine::sizing_for). How many domains: `domains=<n>` on the
// command line, else as many as memory allows with every domain's full
// reserve. The start line says what each domain is guaranteed. Nothing is
// allocated after that.

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

// Everything below is sized at start (lay_out): one of each per connection,
// g_conns of them (one per domain served and the master's).
size_t g_conns;
// Every introduced domain's ring page is mapped at once, one window page each.
uint8_t (*g_window)[4096];
rt::ForeignSlot* g_window_slots;
// The connection (pool slot + 1) whose ring is mapped at each window page.
uint16_t* g_conn_of_page;
// Connections (by pool slot) whose ring page went away under us, and the
// list of them (each once) for the main loop to drop.
bool* g_vanished;
bool* g_listed;  // on g_vanished_list (at most once each)
uint16_t* g_vanished_list;
size_t g_vanished_count;

size_t page_of(const void* va) { return size_t((rt::ptr(va) - rt::ptr(g_window[0])) / 4096); }

size_t slot_of(const xs::Connection& c) { return g_server->index_of(c); }

// ---------------------------------------------------------------------------
// Command line.

struct Cmdline {
    uint32_t master = 0;
    uint32_t master_port = 0;
    uint32_t domains = 0;  // 0: as many as memory allows with full reserves
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
        } else if (key_is(w, eq, "domains")) {
            if (!base::parse_u32(v, vn, c.domains) || c.domains == 0 || c.domains > xs::kDomainSlotsMax) c.bad = true;
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
    if (c) {
        g_vanished[slot_of(*c)] = false;
        g_conn_of_page[page_of(page)] = uint16_t(slot_of(*c) + 1);
    }
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
    g_conn_of_page[page_of(page)] = 0;
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
    g_conn_of_page[page_of(page)] = 0;
    g_server->detach(dom);
    close_port(port);
    long r = rt::unmap_grant(page);
    if (r != 0 && r != long(abi::GntStatus::bad_handle))
        rt::printf("domain %u: its ring was not unmapped (status %ld)\n", dom, r);
}

void drop_all_vanished() {
    while (g_vanished_count) {
        size_t i = g_vanished_list[--g_vanished_count];
        g_listed[i] = false;
        if (g_vanished[i]) drop_vanished(g_server->at(i));
    }
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
        g_server->set_port(*c, 0);
        long p = rt::bind_interdomain(dom, port);
        if (p < 0) {
            rt::printf("domain %u: bind of its port %u failed with error %ld\n", dom, port, p);
            return;
        }
        g_server->set_port(*c, uint32_t(p));
        g_server->make_ready(*c);
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
    g_server->set_port(c, 0);
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
    if (!g_window || va < rt::ptr(g_window[0]) || va >= rt::ptr(g_window[g_conns])) return false;
    size_t slot = g_conn_of_page[page_of(reinterpret_cast<void*>(va))];
    if (!slot) return false;
    xs::Connection& c = g_server->at(slot - 1);
    if (!c.attached() || rt::ptr(c.ring()) != va) return false;
    uint64_t own = rt::mfn_of_pfn((va - rt::kVirtBase) >> 12) << 12;
    if (rt::update_va_mapping(va, own | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD) != 0) return false;
    g_vanished[slot - 1] = true;
    if (!g_listed[slot - 1]) {
        g_listed[slot - 1] = true;
        g_vanished_list[g_vanished_count++] = uint16_t(slot - 1);
    }
    // Served again before the main loop drops it: it reads what is there now.
    return true;
}

void sleep_ns(uint64_t ns) {
    uint32_t none = 0;
    abi::SchedPoll p{rt::ptr(&none), 0, rt::now_ns() + ns};
    rt::sched_op(abi::SchedOp::poll, &p);
}

// ---------------------------------------------------------------------------
// Memory.

// A page of ours to map other frames at for a moment.
alignas(4096) uint8_t g_scratch[4096];

// Maps our frames beyond the initial region at va_of_pfn(pfn), where rt
// expects every frame of ours (unmap_grant puts a window page's own frame
// back from that), and returns how many are mapped. The L1 tables come from
// the top of those frames: each is filled through the scratch page (so
// nothing depends on what a fresh frame holds), then linked into the L2 of
// the initial region, which validates it. Stops at the first refusal, or
// where the initial L2 ends (1 GiB): what is mapped by then is used.
uint64_t map_spare_frames() {
    const abi::StartInfo& si = rt::start_info();
    uint64_t first = rt::first_unmapped_pfn();
    if (si.nr_pages <= first) return 0;
    uint64_t avail = si.nr_pages - first;
    uint64_t tables = (avail + 512) / 513;  // each maps 512 frames
    uint64_t data = avail - tables;
    constexpr uint64_t kData = rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD;
    uint64_t scratch = rt::ptr(g_scratch);
    uint64_t scratch_own = (rt::mfn_of_pfn((scratch - rt::kVirtBase) >> 12) << 12) | kData;
    uint64_t mapped = 0;
    for (uint64_t t = 0; t < tables && mapped < data; ++t) {
        uint64_t va = rt::va_of_pfn(first + mapped);
        uint64_t l2e = rt::l1e_maddr(va, nullptr, 2);
        if (!l2e || (va >> 30) != (rt::kVirtBase >> 30)) break;
        uint64_t l1 = rt::mfn_of_pfn(first + data + t);
        uint64_t n = data - mapped < 512 ? data - mapped : 512;
        if (rt::update_va_mapping(scratch, (l1 << 12) | kData) != 0) break;
        auto* e = reinterpret_cast<volatile uint64_t*>(g_scratch);
        for (uint64_t i = 0; i < 512; ++i) e[i] = i < n ? (rt::mfn_of_pfn(first + mapped + i) << 12) | kData : 0;
        bool restored = rt::update_va_mapping(scratch, scratch_own) == 0;
        if (!restored || rt::mmu_update_one(l2e, (l1 << 12) | rt::kPteP | rt::kPteRw | rt::kPteA) != 0) break;
        mapped += n;
    }
    return mapped;
}

// What a connection costs beside the engine: the Connection, its window
// page and the bookkeeping above.
constexpr size_t kPerConnection = sizeof(xs::Connection) + 4096 + sizeof(rt::ForeignSlot) + sizeof(uint16_t) * 2 + 2;

// Engine bytes left when `conns` connections take their share of `bytes`.
size_t engine_share(size_t bytes, size_t conns) {
    size_t c = conns * kPerConnection + 2 * 4096;  // and alignment
    return bytes > c ? bytes - c : 0;
}

// How many domains to serve in `bytes`: `wanted` if given and it fits (the
// engine scales every domain's reserve down as far as kMinReserve for it),
// else the most that fit; with no `wanted`, the most that keep every
// domain's full reserve. Both searches are over a property that only gets
// harder to meet with more domains.
xs::Sizing choose_sizing(size_t bytes, uint32_t wanted) {
    auto fits = [&](uint32_t d) {
        xs::Sizing s = xs::Engine::sizing_for(engine_share(bytes, d + 1u), d);
        if (s.domains != d) return false;
        return wanted || (s.reserve[xs::Res::records] == xs::kReserve[xs::Res::records] &&
                          s.reserve[xs::Res::blocks] == xs::kReserve[xs::Res::blocks]);
    };
    uint32_t lo = 0, hi = wanted ? wanted : uint32_t(xs::kDomainSlotsMax);  // fits(lo) or lo == 0
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (fits(mid)) lo = mid;
        else hi = mid - 1;
    }
    if (lo == 0) lo = 1;  // the reserve scaled down for one, if that fits at all
    return xs::Engine::sizing_for(engine_share(bytes, lo + 1u), lo);
}

template <class T>
T* carve(uint8_t*& at, size_t n, size_t align = alignof(T)) {
    at = reinterpret_cast<uint8_t*>((rt::ptr(at) + align - 1) & ~uint64_t(align - 1));
    T* p = reinterpret_cast<T*>(at);
    at += n * sizeof(T);
    return p;
}

// Lays out the connections and the engine in [lo, hi) for `wanted` domains
// (0: as many as fit with full reserves); false if not even one fits.
bool lay_out(uint8_t* lo, uint8_t* hi, uint32_t wanted, xs::DomId master) {
    size_t bytes = size_t(hi - lo);
    xs::Sizing s = choose_sizing(bytes, wanted);
    if (s.domains == 0) return false;
    g_conns = s.domains + 1u;
    uint8_t* at = lo;
    g_window = carve<uint8_t[4096]>(at, g_conns, 4096);
    g_window_slots = carve<rt::ForeignSlot>(at, g_conns);
    g_conn_of_page = carve<uint16_t>(at, g_conns);
    g_vanished_list = carve<uint16_t>(at, g_conns);
    g_vanished = carve<bool>(at, g_conns);
    g_listed = carve<bool>(at, g_conns);
    auto* pool = carve<xs::Connection>(at, g_conns);
    for (size_t i = 0; i < g_conns; ++i) {
        g_conn_of_page[i] = 0;
        g_vanished[i] = g_listed[i] = false;
        new (&pool[i]) xs::Connection;
    }
    uint8_t* arena = carve<uint8_t>(at, 0, 64);
    size_t need = xs::Engine::arena_bytes(s);
    if (arena + need > hi) return false;
    rt::set_foreign_window(g_window, g_window_slots, unsigned(g_conns));
    g_engine = new (g_engine_mem) xs::Engine(master, xs::Hooks{nullptr, on_introduced, on_released}, s, arena, need);
    g_server = new (g_server_mem) xs::RingServer(*g_engine, pool, g_conns);
    // Two lines: the console cuts long ones.
    rt::printf("serving up to %u domains in %lu KiB\n", s.domains, (unsigned long)(bytes >> 10));
    rt::printf("each domain is guaranteed %u records, %u byte blocks, %u watches, %u events, %u transactions\n",
               s.reserve[xs::Res::records], s.reserve[xs::Res::blocks], s.reserve[xs::Res::watches],
               s.reserve[xs::Res::events], s.reserve[xs::Res::transactions]);
    return true;
}

// The connections of the ports that fired since the last look join the
// ready list; returns whether any did.
bool take_fired() {
    uint32_t ports[64];
    bool any = false;
    for (unsigned n; (n = rt::take_fired_ports(ports, 64)) != 0;) {
        for (unsigned i = 0; i < n; ++i) g_server->port_fired(ports[i]);
        any = true;
    }
    return any;
}

}  // namespace

void rt::main() {
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

    // Our memory: the free tail of the initial region (after the bootstrap
    // stack) and every frame beyond it.
    uint64_t spare = map_spare_frames();
    auto* lo = reinterpret_cast<uint8_t*>(si.pt_base + si.nr_pt_frames * 4096 + 4096);
    auto* hi = reinterpret_cast<uint8_t*>(rt::initial_region_end() + spare * 4096);
    if (!lay_out(lo, hi, cl.domains, master)) {
        rt::printf("not enough memory for one domain (%lu KiB)\n", (unsigned long)((hi - lo) >> 10));
        rt::shutdown(abi::ShutdownReason::crash);
    }

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
        take_fired();
        if (g_server->ready() == 0) {
            drop_all_vanished();
            rt::wait_fired_ports();
            continue;
        }
        g_server->serve_round(nullptr, notify_conn, broke_conn);
        drop_all_vanished();
    }
}
