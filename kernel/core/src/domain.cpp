#include <core/descriptors.hpp>
#include <core/domain.hpp>
#include <core/evtchn.hpp>
#include <core/gnttab.hpp>
#include <core/iommu.hpp>
#include <core/irq.hpp>
#include <core/kmem.hpp>
#include <core/vcpu.hpp>
#include <core/log.hpp>
#include <core/m2p.hpp>
#include <core/memory.hpp>
#include <core/mm.hpp>
#include <core/sched.hpp>
#include <core/platform.hpp>

#include <abi/console.hpp>
#include <base/format.hpp>

namespace core {

namespace {
// The id table: two levels, leaves of kIdLeaf pointers allocated when the
// first id in them is taken and given back when the last one goes.
// Invariants: g_ids[i] is non-null iff g_leaf_used[i] > 0; g_leaf_used[i]
// counts the non-null entries of leaf i; a domain is in the table (at its
// id) exactly when it is on the list of domains (g_first), i.e. not free.
constexpr unsigned kIdLeaf = 512;
constexpr unsigned kIdLeaves = (kMaxDomains + kIdLeaf - 1) / kIdLeaf;
Domain** g_ids[kIdLeaves];
uint16_t g_leaf_used[kIdLeaves];
unsigned g_next_id;       // where the search for a free id starts (one after the last handed out)
Domain* g_first;          // the list of domains not free
Domain* g_dying_first;    // the list of dying domains
unsigned g_in_use;        // domains on the list
unsigned g_dying;   // dying domains with `reaped` set (reap_dying has work iff this is not 0)
uint64_t g_domain_bytes;  // the sum of hv_bytes of every domain not yet given back
// A domain taken apart while its vCPU is this CPU's current one (it shut
// itself down): the arch code still saves that vCPU's state when it switches
// away, so its memory is given back only once it is no longer current.
Domain* g_zombie;

const char* reason_name(abi::ShutdownReason r) {
    switch (r) {
    case abi::ShutdownReason::poweroff: return "poweroff";
    case abi::ShutdownReason::reboot: return "reboot";
    case abi::ShutdownReason::suspend: return "suspend";
    case abi::ShutdownReason::crash: return "crash";
    case abi::ShutdownReason::watchdog: return "watchdog";
    case abi::ShutdownReason::soft_reset: return "soft_reset";
    }
    return "unknown";
}

// "<name>: <line>" into the kernel log (abi/console.hpp: the name made safe).
void console_flush(Domain& d) {
    if (d.console_len == 0) return;
    char name[abi::kConsoleNameMax + 1];
    abi::console_name(d.name, sizeof d.name, d.id, name);
    char line[sizeof name + 2 + sizeof d.console_line + 1];
    size_t n = base::snformat(line, sizeof line, "%s: %.*s\n", name, static_cast<int>(d.console_len),
                              d.console_line);
    d.console_len = 0;
    if (log_allowed(d)) log_line(line, n < sizeof line ? n : sizeof line - 1);
}

// A free id, searching from g_next_id (and wrapping), or -1. Whole leaves
// not allocated are free at once.
long find_free_id() {
    for (unsigned n = 0, id = g_next_id % kMaxDomains; n < kMaxDomains; ++n, id = (id + 1) % kMaxDomains) {
        Domain** leaf = g_ids[id / kIdLeaf];
        if (!leaf || !leaf[id % kIdLeaf]) return long(id);
    }
    return -1;
}

bool table_put(Domain& d) {
    unsigned l = d.id / kIdLeaf;
    if (!g_ids[l]) {
        g_ids[l] = static_cast<Domain**>(kmem::alloc(kIdLeaf * sizeof(Domain*)));
        if (!g_ids[l]) return false;
    }
    g_ids[l][d.id % kIdLeaf] = &d;
    ++g_leaf_used[l];
    return true;
}

void table_remove(Domain& d) {
    unsigned l = d.id / kIdLeaf;
    if (!g_ids[l] || g_ids[l][d.id % kIdLeaf] != &d) return;
    g_ids[l][d.id % kIdLeaf] = nullptr;
    if (--g_leaf_used[l] == 0) {
        kmem::free(g_ids[l], kIdLeaf * sizeof(Domain*));
        g_ids[l] = nullptr;
    }
}

void list_add(Domain*& head, Domain& d, Domain* Domain::*next, Domain* Domain::*prev) {
    d.*prev = nullptr;
    d.*next = head;
    if (head) head->*prev = &d;
    head = &d;
}

void list_remove(Domain*& head, Domain& d, Domain* Domain::*next, Domain* Domain::*prev) {
    (d.*prev ? d.*prev->*next : head) = d.*next;
    if (d.*next) d.*next->*prev = d.*prev;
    d.*next = d.*prev = nullptr;
}

void give_back(Domain* d) {
    g_domain_bytes -= d->hv_bytes;
    kmem::destroy(d);
}

// Gives back the zombie once its vCPU is no longer this CPU's current one.
void bury_zombie() {
    if (!g_zombie) return;
    Vcpu* cur = platform::current_vcpu();
    if (cur && cur->domain == g_zombie) return;
    give_back(g_zombie);
    g_zombie = nullptr;
}

// The last step of taking it apart: its id free, it off every list, its
// memory given back (or kept as the zombie until it is no longer current).
// Everything it allocated for its state is gone by now but for what is
// given back here.
void domain_free(Domain& d) {
    table_remove(d);
    list_remove(g_first, d, &Domain::next, &Domain::prev);
    --g_in_use;
    if (d.maptrack_dir) {
        for (unsigned i = 0; i < kMaptrackChunks; ++i)
            domain_mem_free(d, d.maptrack_dir[i], kMaptrackChunk * sizeof(Maptrack));
        domain_mem_free(d, d.maptrack_dir, kMaptrackChunks * sizeof(Maptrack*));
        d.maptrack_dir = nullptr;
    }
    for (auto*& b : d.evtchn_bucket) {   // evtchn_destroy gave them back already
        domain_mem_free(d, b, kEvtchnBucketPorts * sizeof(Channel));
        b = nullptr;
    }
    if (d.io_bitmap) domain_mem_free(d, d.io_bitmap, kIoBitmapBytes);
    d.io_bitmap = nullptr;
    d.io_open = false;
    d.state = DomainState::free;
    bury_zombie();
    Vcpu* cur = platform::current_vcpu();
    if (cur && cur->domain == &d) {
        g_zombie = &d;
        return;
    }
    give_back(&d);
}
}  // namespace

void* domain_mem_alloc(Domain& d, size_t bytes) {
    void* p = kmem::alloc(bytes);
    if (!p) return nullptr;
    d.hv_bytes += kmem::footprint(bytes);
    g_domain_bytes += kmem::footprint(bytes);
    return p;
}

void domain_mem_free(Domain& d, void* p, size_t bytes) {
    if (!p) return;
    kmem::free(p, bytes);
    d.hv_bytes -= kmem::footprint(bytes);
    g_domain_bytes -= kmem::footprint(bytes);
}

void domain_count_shared_info(Domain& d) {
    d.hv_bytes += 4096;
    g_domain_bytes += 4096;
}

uint64_t domain_bytes() { return g_domain_bytes; }

uint64_t domain_table_bytes() {
    uint64_t n = 0;
    for (auto* l : g_ids) n += l ? kmem::footprint(kIdLeaf * sizeof(Domain*)) : 0;
    return n;
}

Domain* domain_at(unsigned id) {
    if (id >= kMaxDomains) return nullptr;
    Domain** leaf = g_ids[id / kIdLeaf];
    return leaf ? leaf[id % kIdLeaf] : nullptr;
}

Domain* domains_first() { return g_first; }

unsigned domains_alive() {
    unsigned n = 0;
    for (Domain* d = g_first; d; d = d->next) n += d->state == DomainState::running;
    return n;
}

unsigned domains_in_use() { return g_in_use; }

// A Domain and its vCPU fill two frames at most: what a minimal domain costs
// the hypervisor (docs/architecture.md) counts on it.
static_assert(sizeof(Domain) <= 8192, "a Domain no longer fits its 8 KiB block");

Domain* domain_alloc(const char* name, uint32_t cspace_slots) {
    bury_zombie();
    if (cspace_slots == 0 || cspace_slots > caps::kMaxSlots) return nullptr;
    long id = find_free_id();
    if (id < 0) return nullptr;
    Domain* d = kmem::make<Domain>();
    if (!d) return nullptr;
    d->hv_bytes = kmem::footprint(sizeof(Domain));
    g_domain_bytes += d->hv_bytes;
    d->id = static_cast<DomId>(id);
    base::snformat(d->name, sizeof d->name, "%s", name);
    for (unsigned v = 0; v < 1; ++v) {
        d->vcpu[v].domain = d;
        d->vcpu[v].id = v;
        // Offline from now until first scheduled (as Xen starts a vCPU):
        // its running time counts from then, not from the machine's boot.
        d->vcpu[v].runstate.state = int32_t(abi::RunstateState::offline);
        d->vcpu[v].runstate.state_entry_time = platform::now_ns();
    }
    if (!table_put(*d)) {
        give_back(d);
        return nullptr;
    }
    if (!caps::init_domain(*d, cspace_slots)) {
        table_remove(*d);
        give_back(d);
        return nullptr;
    }
    list_add(g_first, *d, &Domain::next, &Domain::prev);
    ++g_in_use;
    g_next_id = unsigned(id) + 1;
    d->state = DomainState::running;
    sched_add(d->vcpu[0]);
    return d;
}

namespace {
// Takes its vCPUs off the scheduler. If it is the domain running here (it
// shut itself down), its page tables are the ones loaded and its vCPU is in
// this CPU's frame: leave both. (Another domain destroying or stopping it
// keeps running in its own address space.)
void stop_vcpus(Domain& d) {
    for (auto& v : d.vcpu) {
        v.state = VcpuState::down;
        runstate_change(v, abi::RunstateState::offline, platform::now_ns());
        sched_remove(v);
    }
    Vcpu* cur = platform::current_vcpu();
    if (cur && cur->domain == &d) {
        platform::leave_guest_address_space();
        platform::request_reschedule();
    }
}

// Its frames back to the allocator, each once nothing references it; one
// still referenced (a bookkeeping error) is held back for good instead, so
// it can never reach another domain.
bool free_frames(Domain& d, Budget& b) {
    FrameTable& ft = frame_table();
    uint64_t& m = d.teardown_cursor;
    for (; m < ft.nframes(); ++m) {
        if ((m & 3) == 0 && !b.spend(cost::kFrameScan)) return false;
        FrameInfo& f = ft[m];
        if (f.owner != d.id) continue;
        if (f.count == 0 && f.type_count == 0 && !(f.flags & (kFrameCleanup | kFramePinned))) {
            if (!b.spend(cost::kPage)) return false;
            m2p_set(m, kM2pInvalid);
            free_domain_frame(m);
            ++d.teardown_freed;
        } else {
            hold_frame(m);
            ++d.teardown_held;
        }
    }
    return true;
}

// After the last step: is anything of it still anywhere? Nothing, unless the
// hypervisor's bookkeeping is wrong; the log says which. (Mappings of its
// grants are counted as they are made and dropped, so this looks at no other
// domain; channels of others to it were unbound by evtchn_destroy.)
void report_taken_apart(Domain& d) {
    unsigned maptrack = d.grants_mapped;
    unsigned lines = irq_lines_bound_to(d);
    if (d.teardown_held == 0 && maptrack == 0 && lines == 0) {
        log("domain %u (%s) taken apart: %lu frames freed, nothing left behind", d.id, d.name, d.teardown_freed);
        return;
    }
    log("domain %u (%s) taken apart: %lu frames freed; LEFT BEHIND: %lu frames held (still referenced), "
        "%u mappings of its grants, %u interrupt lines",
        d.id, d.name, d.teardown_freed, d.teardown_held, maptrack, lines);
}
}  // namespace

namespace {
void reap_later(Domain& d) {
    d.reaped = true;
    ++g_dying;
}
}  // namespace

void domain_kill(Domain& d) {
    if (d.state != DomainState::running && d.state != DomainState::stopped) return;
    console_flush(d);
    log_domain_gone(d.id);   // if it drives the UART, the kernel takes it back
    d.state = DomainState::dying;
    d.reaped = false;
    // Domains it was destroying: the reaper finishes them.
    for (Domain* o = g_dying_first; o; o = o->dying_next)
        if (!o->reaped && o->destroyer == d.id) reap_later(*o);
    list_add(g_dying_first, d, &Domain::dying_next, &Domain::dying_prev);
    stop_vcpus(d);
    // Its devices stop reaching memory (every function detached, the IOTLB
    // flushed) before any of its frames can go back.
    iommu_release(d);
    // Nothing may reach it from here on: its ports close first (peers see
    // their end become unbound), and every lookup of a live domain skips a
    // dying one.
    evtchn_destroy(d);
    d.teardown = TeardownStep::grants_held;
    d.teardown_cursor = 0;
    d.teardown_freed = d.teardown_held = 0;
}

bool domain_teardown(Domain& d, Budget& b) {
    if (d.state == DomainState::free) return true;
    if (d.state != DomainState::dying) return false;
    auto next = [&](TeardownStep s) {
        d.teardown = s;
        d.teardown_cursor = 0;
    };
    for (;;) {
        switch (d.teardown) {
        case TeardownStep::grants_held:
            if (!gnttab_release_held(d, d.teardown_cursor, b)) return false;
            next(TeardownStep::grants_given);
            break;
        case TeardownStep::grants_given:
            if (!gnttab_release_given(d, d.teardown_cursor, b)) return false;
            next(TeardownStep::foreign);
            break;
        case TeardownStep::foreign:
            if (!release_foreign_mappings(d, d.teardown_cursor, b)) return false;
            next(TeardownStep::tables);
            break;
        case TeardownStep::tables:
            if (d.teardown_cursor == 0)
                for (auto& v : d.vcpu) {   // its vcpu_info and GDT frames
                    vcpu_release(v);
                    gdt_release(v);
                }
            if (!relinquish_tables(d, d.teardown_cursor, b)) return false;
            // Nothing of it may still translate anywhere once its frames go.
            tlb_flush_all();
            next(TeardownStep::frames);
            break;
        case TeardownStep::frames:
            if (!free_frames(d, b)) return false;
            d.shared_info = nullptr;
            d.shared_info_mfn = 0;
            for (auto& v : d.vcpu) v.info = nullptr;
            d.tot_pages = 0;
            next(TeardownStep::caps);
            break;
        case TeardownStep::caps:
            if (!caps::destroy_domain(d, b)) return false;
            next(TeardownStep::done);
            break;
        case TeardownStep::done:
            log_flush_dropped(d);
            report_taken_apart(d);
            if (d.reaped) --g_dying;
            d.reaped = false;
            list_remove(g_dying_first, d, &Domain::dying_next, &Domain::dying_prev);
            domain_free(d);   // d is gone from here on
            return true;
        }
    }
}

#if MOAT_HOSTED
void domains_reset_for_tests() {
    // Their CSpaces leave the registry and their vCPUs the scheduler, as the
    // kernel would have it; their memory goes with the fake machine's.
    for (Domain* d = g_first; d; d = d->next) {
        Budget unlimited = Budget::unlimited();
        if (d->cspace) (void)caps::destroy_domain(*d, unlimited);
        sched_remove(d->vcpu[0]);
    }
    for (auto& l : g_ids) l = nullptr;
    for (auto& n : g_leaf_used) n = 0;
    g_first = g_dying_first = g_zombie = nullptr;
    g_in_use = g_dying = g_next_id = 0;
    g_domain_bytes = 0;
    iommu_reset_for_tests();
    kmem::reset_for_tests();
}
#endif

bool reap_dying(Budget& b) {
    bury_zombie();
    if (g_dying == 0) return true;   // the common case, on every slow exit to a guest
    for (Domain* d = g_dying_first; d;) {
        Domain* next = d->dying_next;   // d may be gone after its teardown
        if (d->reaped && !domain_teardown(*d, b)) return false;
        d = next;
    }
    return true;
}

void domain_destroy_now(Domain& d) {
    domain_kill(d);
    Budget b = Budget::unlimited();
    (void)domain_teardown(d, b);
}

void domain_shutdown(Domain& d, abi::ShutdownReason reason) {
    if (d.state != DomainState::running) return;
    d.shutdown_reason = reason;
    console_flush(d);
    log("domain %u (%s) shut down: %s", d.id, d.name, reason_name(reason));
    if (!d.held_after_shutdown) {
        domain_kill(d);
        reap_later(d);   // reap_dying finishes it, a budget at a time
        platform::request_reschedule();
        return;
    }
    d.state = DomainState::stopped;
    stop_vcpus(d);
    // Once per shutdown: a walk of the domains, the few that bound the VIRQ
    // looked at closer.
    for (Domain* o = g_first; o; o = o->next) {
        if (o->state == DomainState::running && o != &d && o->vcpu[0].virq_port[uint32_t(abi::Virq::dom_exc)] &&
            caps::allows(*o, cap::Type::domain, d.id, cap::right::control))
            send_virq(o->vcpu[0], uint32_t(abi::Virq::dom_exc));
    }
}

void domain_crash(Domain& d, const char* fmt, ...) {
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    base::vsnformat(why, sizeof why, fmt, ap);
    va_end(ap);
    console_flush(d);
    log("domain %u (%s) crashed: %s", d.id, d.name, why);
    domain_shutdown(d, abi::ShutdownReason::crash);
}

unsigned domain_console_write(Domain& d, const char* s, size_t n) {
    unsigned lines = 0;
    for (size_t i = 0; i < n; ++i) {
        char c = s[i];
        if (c == '\n') {
            lines += d.console_len != 0;
            console_flush(d);
            continue;
        }
        if (c == '\r') continue;
        // A guest does not get to send escape sequences to the operator's terminal.
        if ((c < 0x20 && c != '\t') || c == 0x7F) c = '?';
        d.console_line[d.console_len++] = c;
        if (d.console_len == sizeof d.console_line) {
            ++lines;
            console_flush(d);
        }
    }
    return lines;
}

}  // namespace core
