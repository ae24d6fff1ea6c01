#include <core/descriptors.hpp>
#include <core/domain.hpp>
#include <core/evtchn.hpp>
#include <core/gnttab.hpp>
#include <core/irq.hpp>
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
Domain g_domains[kMaxDomains];
unsigned g_dying;   // dying domains with `reaped` set (reap_dying has work iff this is not 0)

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
}  // namespace

Domain* domain_at(unsigned slot) { return slot < kMaxDomains ? &g_domains[slot] : nullptr; }

unsigned domains_alive() {
    unsigned n = 0;
    for (auto& d : g_domains) n += d.state == DomainState::running;
    return n;
}

unsigned domains_in_use() {
    unsigned n = 0;
    for (auto& d : g_domains) n += d.state != DomainState::free;
    return n;
}

Domain* domain_alloc(const char* name, uint32_t cspace_slots) {
    for (unsigned i = 0; i < kMaxDomains; ++i) {
        Domain& d = g_domains[i];
        if (d.state != DomainState::free) continue;
        d.~Domain();
        new (&d) Domain();
        d.id = static_cast<DomId>(i);
        base::snformat(d.name, sizeof d.name, "%s", name);
        for (unsigned v = 0; v < 1; ++v) {
            d.vcpu[v].domain = &d;
            d.vcpu[v].id = v;
        }
        if (!caps::init_domain(d, cspace_slots)) return nullptr;
        d.state = DomainState::running;
        sched_add(d.vcpu[0]);
        return &d;
    }
    return nullptr;
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
// hypervisor's bookkeeping is wrong; the log says which.
void report_taken_apart(Domain& d) {
    unsigned maptrack = 0, channels = 0;
    for (auto& o : g_domains) {
        if (&o == &d || o.state == DomainState::free) continue;
        for (unsigned k = 0; k < o.maptrack_limit; ++k) maptrack += o.maptrack[k].used && o.maptrack[k].granter == d.id;
        for (const Channel& c : o.evtchn) channels += c.state == ChannelState::interdomain && c.remote_dom == d.id;
    }
    unsigned lines = irq_lines_bound_to(d);
    if (d.teardown_held == 0 && maptrack == 0 && channels == 0 && lines == 0) {
        log("domain %u (%s) taken apart: %lu frames freed, nothing left behind", d.id, d.name, d.teardown_freed);
        return;
    }
    log("domain %u (%s) taken apart: %lu frames freed; LEFT BEHIND: %lu frames held (still referenced), "
        "%u mappings of its grants, %u channels to it, %u interrupt lines",
        d.id, d.name, d.teardown_freed, d.teardown_held, maptrack, channels, lines);
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
    for (auto& o : g_domains)
        if (o.state == DomainState::dying && !o.reaped && &o != &d && o.destroyer == d.id) reap_later(o);
    stop_vcpus(d);
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
            d.state = DomainState::free;
            if (d.reaped) --g_dying;
            d.reaped = false;
            return true;
        }
    }
}

#if MOAT_HOSTED
void domains_reset_for_tests() {
    for (auto& d : g_domains) d.state = DomainState::free;
    g_dying = 0;
}
#endif

bool reap_dying(Budget& b) {
    if (g_dying == 0) return true;   // the common case, on every slow exit to a guest
    for (auto& d : g_domains)
        if (d.state == DomainState::dying && d.reaped && !domain_teardown(d, b)) return false;
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
    for (unsigned i = 0; i < kMaxDomains; ++i) {
        Domain& o = g_domains[i];
        if (o.state == DomainState::running && &o != &d && o.vcpu[0].virq_port[uint32_t(abi::Virq::dom_exc)] &&
            caps::allows(o, cap::Type::domain, d.id, cap::right::control))
            send_virq(o.vcpu[0], uint32_t(abi::Virq::dom_exc));
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
