// The hypercall-fuzzing guest (docs/hcfuzz.md). A seeded PRNG drives every
// hypercall number and sub-op with random, boundary and hostile arguments,
// while a victim guest and the demo's services run beside it. Whatever the
// hypervisor accepts that it must refuse is a "FAIL hcfuzz.<what>" line; the
// fuzzer checks its own state (its page tables, its scratch hierarchy, its
// ports, capabilities, reservation, a canary) every `check` calls.
//
// Command line: seed=N calls=N [check=N] [progress=N] [trace=N [trace_hv]]
// [only=NR] [emulate=PCT] [peer_ring=K] [victim_ring=K] (manifest connection
// indices of the RING to the other fuzzer and to the victim). trace=N prints every call
// from the N-th on (and each multicall entry), with trace_hv also into the
// hypervisor's log; only=NR makes every top-level call hypercall NR (64:
// out-of-range numbers); emulate=PCT makes that percentage of the calls
// privileged instructions instead (emul.cpp; 3 by default, 0 with only=).
// At the end: a summary (calls per hypercall, results per class), then
// "PASS hcfuzz.calls_made", "PASS hcfuzz.invariants_held",
// "PASS hcfuzz.refusals_held" (or FAIL lines), "hcfuzz: done, N failed".

#include "hcfuzz.hpp"

#include <rt/caps.hpp>
#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/traps.hpp>
#include <rt/xenbus.hpp>

#include <base/format.hpp>

#include <cstdarg>

namespace hcf {

Rng g_rng;
alignas(4096) Area g_area;
Frames g_fr;
uint8_t g_frame_bits[kMaxFrames];
Ids g_ids;
Caps g_caps;
PortTrack g_ports;
MapTrack g_maps;
Builder g_b;
uint64_t g_call_index;
unsigned g_only = 65;

namespace {

constexpr long kEnosys = abi::neg(abi::Errno::enosys);
constexpr uint64_t kResultSentinel = 0x7EADBEEF7EADBEEFull;

// Structures that do not fit in Area::args (a multicall of many big
// entries): same rules, no over-read array here.
alignas(4096) uint8_t g_overflow[16 * 4096];
uint64_t g_overflow_used;

// A page of ours the checks map other frames of ours at (read-only).
alignas(4096) uint8_t g_window[4096];
uint64_t g_window_pte;   // its own mapping, put back after each use

// Snapshots taken at the end of start of day.
uint64_t g_pt_snap[32][512];
uint64_t* g_m2p_snap;   // [pfn] for the initial region
alignas(8) uint64_t g_m2p_snap_store[8192];
uint32_t g_canary[1024];
abi::GrantEntryV1 g_grant_snap[kPeerRefs];
uint64_t g_low_unmapped;   // set if anything is mapped below VIRT_BASE (then low addresses are no "unmapped" pool)

// Configuration.
uint64_t g_seed, g_calls, g_check_every, g_progress, g_trace_from;
unsigned g_emulate_pct;

// Statistics.
constexpr unsigned kNrSlots = 65;   // 0..63, 64: out of range
uint64_t g_count_top[kNrSlots], g_count_mc[kNrSlots];
constexpr unsigned kClasses = sizeof abi::kAllErrnos / sizeof abi::kAllErrnos[0] + 3;
uint64_t g_class[kClasses];   // [0] 0, [1] > 0, [2 + i] -kAllErrnos[i], [last] other negative
uint64_t g_mc_entries_run;
uint64_t g_blocks, g_invariant_checks, g_slowest;
uint64_t g_ok_maps, g_ok_copies, g_ok_ports, g_ok_caps;

// Failures, per kind.
struct FailKind {
    const char* what;
    uint64_t count;
};
FailKind g_fail_kinds[64];
unsigned g_n_fail_kinds;
uint64_t g_refusal_failures, g_invariant_failures;
bool g_broken;   // an invariant does not hold: stop fuzzing

// The call being judged, and the last few before it.
Call g_cur;
long g_cur_rc;
constexpr unsigned kHistory = 8;
Call g_history[kHistory];
long g_history_rc[kHistory];

long hc(abi::Hypercall nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0) {
    return rt::hypercall(nr, a1, a2, a3, a4, a5);
}

// ---------------------------------------------------------------------------
// Issuing a fuzzed call: through the hypercall page (as a PV kernel does) or
// a bare syscall (any number). With clear_ts, fpu_taskswitch(0) follows in
// the same instruction sequence, before any code of ours could touch the FPU.

long raw_call(uint64_t nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6) {
    register uint64_t r10 asm("r10") = a4;
    register uint64_t r8 asm("r8") = a5;
    register uint64_t r9 asm("r9") = a6;
    asm volatile("syscall"
                 : "+a"(nr), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8), "+r"(r9)
                 :
                 : "memory", "rcx", "r11");
    return long(nr);
}

long raw_call_clear_ts(uint64_t nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
    register uint64_t r10 asm("r10") = a4;
    register uint64_t r8 asm("r8") = a5;
    uint64_t saved;
    asm volatile(
        "syscall\n\t"
        "mov %%rax, %[s]\n\t"
        "mov $5, %%eax\n\t"
        "xor %%edi, %%edi\n\t"
        "syscall"
        : "+a"(nr), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8), [s] "=&r"(saved)
        :
        : "memory", "rcx", "r11", "r9");
    return long(saved);
}

long page_call(unsigned nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
    register uint64_t r10 asm("r10") = a4;
    register uint64_t r8 asm("r8") = a5;
    long ret;
    void* entry = hypercall_page + nr * 32;
    asm volatile("call *%[entry]"
                 : "=a"(ret), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
                 : [entry] "r"(entry)
                 : "memory", "rcx", "r11", "r9");
    return ret;
}

long invoke(const Call& c, bool clear_ts) {
    if (clear_ts) return raw_call_clear_ts(c.nr, c.a[0], c.a[1], c.a[2], c.a[3], c.a[4]);
    if (c.nr < 128 && c.nr != uint64_t(abi::Hypercall::iret) && g_rng.pct(50))
        return page_call(unsigned(c.nr), c.a[0], c.a[1], c.a[2], c.a[3], c.a[4]);
    return raw_call(c.nr, c.a[0], c.a[1], c.a[2], c.a[3], c.a[4], g_rng.next());
}

unsigned slot_of(uint64_t nr) { return nr < 64 ? unsigned(nr) : 64; }

const char* nr_name(unsigned slot) {
    if (slot == 64) return "out_of_range";
    const char* n = abi::hypercall_name(slot);
    return n ? n : nullptr;
}

unsigned class_of(long rc) {
    if (rc == 0) return 0;
    if (rc > 0) return 1;
    for (unsigned i = 0; i < kClasses - 3; ++i)
        if (rc == abi::neg(abi::kAllErrnos[i])) return 2 + i;
    return kClasses - 1;
}

const char* class_name(unsigned k) {
    if (k == 0) return "0";
    if (k == 1) return "positive";
    if (k == kClasses - 1) return "other";
    return abi::errno_name(abi::kAllErrnos[k - 2]);
}

// ---------------------------------------------------------------------------
// Tracing: straight into the hypervisor's log (console_io), so that the last
// calls before a hypervisor panic reach the serial line with its report.
void trace_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void trace_line(const char* fmt, ...) {
    char buf[240];
    va_list ap;
    va_start(ap, fmt);
    buf[0] = '\n';   // after whatever a fuzzed console_io left unfinished
    size_t n = 1 + base::vsnformat(buf + 1, sizeof buf - 2, fmt, ap);
    va_end(ap);
    if (n > sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    hc(abi::Hypercall::console_io, uint64_t(abi::ConsoleIo::write), n, rt::ptr(buf));
}

// Traced calls go to our console (reliable, but what is still in the ring
// when the hypervisor panics is lost) and with trace_hv also to the
// hypervisor's log (reaches the serial line even after a panic, but is rate
// limited per domain by kernels that limit log lines).
bool g_trace_hv;
void trace_out(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void trace_out(const char* fmt, ...) {
    char buf[240];
    va_list ap;
    va_start(ap, fmt);
    base::vsnformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    rt::printf("%s\n", buf);
    if (g_trace_hv) trace_line("%s", buf);
}

bool in_args(uint64_t p, uint64_t bytes) {
    return p >= va(g_area.args) && p + bytes <= va(g_area.args) + sizeof g_area.args;
}

// The first words behind each argument that points at what was built.
void trace_pointees(const char* what, const uint64_t* a, unsigned n) {
    for (unsigned k = 0; k < n; ++k) {
        if (!in_args(a[k], 64)) continue;
        auto* w = reinterpret_cast<const uint64_t*>(a[k]);
        trace_out("hcfuzz #%lu   %s arg %u -> %#lx %#lx %#lx %#lx %#lx %#lx %#lx %#lx", g_call_index, what, k + 1, w[0],
                  w[1], w[2], w[3], w[4], w[5], w[6], w[7]);
    }
}

void trace_call(const Call& c) {
    trace_out("hcfuzz #%lu nr %lu args %#lx %#lx %#lx %#lx %#lx", g_call_index, c.nr, c.a[0], c.a[1], c.a[2],
               c.a[3], c.a[4]);
    if (c.nr != uint64_t(abi::Hypercall::multicall)) trace_pointees("", c.a, 5);
    if (c.nr == uint64_t(abi::Hypercall::multicall) && c.a[0] >= va(g_area.args) &&
        c.a[0] < va(g_area.args) + sizeof g_area.args) {
        auto* e = reinterpret_cast<const abi::MulticallEntry*>(c.a[0]);
        uint64_t n = c.a[1] < 140 ? c.a[1] : 140;
        for (uint64_t i = 0; i < n && va(&e[i + 1]) <= va(g_area.args) + sizeof g_area.args; ++i)
        {
            trace_out("hcfuzz #%lu   [%lu] nr %lu args %#lx %#lx %#lx %#lx %#lx", g_call_index, i, e[i].op,
                       e[i].args[0], e[i].args[1], e[i].args[2], e[i].args[3], e[i].args[4]);
            trace_pointees("entry", e[i].args, 5);
        }
    }
}

}  // namespace

// ---------------------------------------------------------------------------
// Failures.

void fail(const char* what, const char* fmt, ...) {
    FailKind* k = nullptr;
    for (unsigned i = 0; i < g_n_fail_kinds; ++i)
        if (__builtin_strcmp(g_fail_kinds[i].what, what) == 0) k = &g_fail_kinds[i];
    if (!k && g_n_fail_kinds < 64) {
        k = &g_fail_kinds[g_n_fail_kinds++];
        *k = FailKind{what, 0};
    }
    uint64_t seen = k ? k->count++ : 0;
    ++rt::g_failed_checks;
    if (__builtin_strncmp(what, "invariant.", 10) == 0) ++g_invariant_failures;
    else ++g_refusal_failures;
    if (seen >= 3) return;   // the first three of each kind in full
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    base::vsnformat(why, sizeof why, fmt, ap);
    va_end(ap);
    rt::printf("FAIL hcfuzz.%s: call #%lu (seed %lu): nr %lu (%#lx, %#lx, %#lx, %#lx, %#lx) -> %ld; %s\n", what,
               g_call_index, g_seed, g_cur.nr, g_cur.a[0], g_cur.a[1], g_cur.a[2], g_cur.a[3], g_cur.a[4], g_cur_rc,
               why);
    // Also into the hypervisor's log, in case what comes next is a panic.
    trace_line("hcfuzz: FAIL %s at call #%lu (seed %lu)", what, g_call_index, g_seed);
}

// ---------------------------------------------------------------------------
// The builder of a call.

void* alloc_args(uint64_t bytes, uint64_t align) {
    uint64_t limit = g_b.tail_taken ? g_b.tail : sizeof g_area.args;
    uint64_t at = (g_b.used + align - 1) & ~(align - 1);
    if (at + bytes <= limit) {
        g_b.used = at + bytes;
        return g_area.args + at;
    }
    at = (g_overflow_used + align - 1) & ~(align - 1);
    if (at + bytes > sizeof g_overflow) at = 0;   // the generators keep well below this
    g_overflow_used = at + bytes;
    return g_overflow + at;
}

uint64_t args_left() { return (g_b.tail_taken ? g_b.tail : sizeof g_area.args) - g_b.used; }

void* alloc_tail(uint64_t bytes) {
    if (g_b.tail_taken) return nullptr;
    bytes = (bytes + 63) & ~63ull;
    if (bytes + 4096 > sizeof g_area.args || sizeof g_area.args - bytes < g_b.used + 4096) return nullptr;
    g_b.tail = sizeof g_area.args - bytes;
    g_b.tail_taken = true;
    return g_area.args + g_b.tail;
}

void post(PostKind k, const char* what, uint64_t addr, uint64_t a, uint64_t b, uint64_t x) {
    if (g_b.n_posts >= kMaxPosts) {
        fail("invariant.too_many_checks", "a call with more than %u checks", kMaxPosts);
        return;
    }
    g_b.posts[g_b.n_posts++] = Post{k, what, g_b.in_mc ? g_b.rc_addr : 0, addr, a, b, x};
}

// ---------------------------------------------------------------------------
// Tracking.

void track_port(uint32_t port, PortKind k) {
    if (port == 0 || port >= 4096 || port_protected(port)) return;
    for (unsigned i = 0; i < g_ports.n; ++i)
        if (g_ports.port[i] == port) {
            g_ports.kind[i] = k;
            return;
        }
    if (g_ports.n < 256) {
        g_ports.port[g_ports.n] = port;
        g_ports.kind[g_ports.n++] = k;
    }
}

void untrack_port(uint32_t port) {
    for (unsigned i = 0; i < g_ports.n; ++i)
        if (g_ports.port[i] == port) {
            g_ports.port[i] = g_ports.port[--g_ports.n];
            g_ports.kind[i] = g_ports.kind[g_ports.n];
            return;
        }
}

PortKind port_kind(uint32_t port) {
    for (unsigned i = 0; i < g_ports.n; ++i)
        if (g_ports.port[i] == port) return g_ports.kind[i];
    return PortKind::none;
}

bool port_protected(uint64_t port) {
    return port && (port == g_ids.console_port || port == g_ids.store_port || port == g_ids.timer_port);
}

namespace {

const uint64_t* window_map(uint64_t m);
void window_restore();

void set_bits(uint64_t m, uint8_t b) {
    if (m < kMaxFrames) g_frame_bits[m] |= b;
}
void clear_bits(uint64_t m, uint8_t b) {
    if (m < kMaxFrames) g_frame_bits[m] &= uint8_t(~b);
}

void gained(uint64_t m) {
    if (m >= kMaxFrames) {
        fail("invariant.gained_frame_beyond_tracking", "frame %#lx", m);
        return;
    }
    if ((bits_of(m) & kOwn) && !(bits_of(m) & kFreed)) {
        fail("invariant.gained_frame_already_ours", "frame %#lx", m);
        return;
    }
    clear_bits(m, kFreed);
    set_bits(m, kOwn | kClean);
    // A frame we get must hold nothing of its last owner (Xen scrubs them);
    // and it is cleared all the same, so nothing written by another domain
    // ever becomes part of our scratch tables.
    if (const uint64_t* t = window_map(m)) {
        unsigned i = 0;
        while (i < 512 && t[i] == 0) ++i;
        uint64_t w = i < 512 ? t[i] : 0;
        window_restore();
        if (i < 512) fail("memory_op.gained_frame_not_scrubbed", "frame %#lx word %u is %#lx", m, i, w);
    } else {
        fail("memory_op.gained_frame_not_ours", "frame %#lx cannot be mapped", m);
    }
    rt::mmuext(abi::MmuextCmd::clear_page, m);
    ++g_fr.expected_pages;
    ++g_fr.gained;
    if (g_fr.n_spare < kMaxSpare) g_fr.spare[g_fr.n_spare++] = m;
}

void given_back(uint64_t m) {
    unsigned i = 0;
    while (i < g_fr.n_spare && g_fr.spare[i] != m) ++i;
    if (i == g_fr.n_spare) {
        fail("memory_op.decrease_of_frame_in_use_accepted", "frame %#lx was given back", m);
        return;
    }
    g_fr.spare[i] = g_fr.spare[--g_fr.n_spare];
    set_bits(m, kFreed);
    clear_bits(m, kClean);
    --g_fr.expected_pages;
    ++g_fr.given_back;
}

// The operation a check judged, as four words (for the report).
const char* op_words(uint64_t x) {
    static char buf[120];
    buf[0] = 0;
    if (!x) return buf;
    auto* w = reinterpret_cast<const uint64_t*>(x);
    base::snformat(buf, sizeof buf, "; operation: %#lx %#lx %#lx %#lx", w[0], w[1], w[2], w[3]);
    return buf;
}

void run_posts(long rc) {
    for (unsigned i = 0; i < g_b.n_posts; ++i) {
        const Post& p = g_b.posts[i];
        long r = rc;
        if (p.rc_addr) {
            uint64_t v = *reinterpret_cast<const volatile uint64_t*>(p.rc_addr);
            if (v == kResultSentinel) continue;   // that entry never ran
            r = long(v);
        }
        switch (p.kind) {
        case kMustFail:
            if (r >= 0) fail(p.what, "returned %ld, must fail%s", r, p.rc_addr ? " (multicall entry)" : "");
            break;
        case kMustEnosys:
            if (r != kEnosys) fail(p.what, "returned %ld, must be -ENOSYS", r);
            break;
        case kDoneAtMost:
            if (p.addr) {
                uint64_t done = *reinterpret_cast<const volatile uint64_t*>(p.addr);
                if (done > p.a)
                    fail(p.what, "done %lu, but request %lu must have been refused%s", done, p.a, op_words(p.x));
            } else if (r == 0 && p.a < p.b) {
                fail(p.what, "all %lu done, but request %lu must have been refused%s", p.b, p.a, op_words(p.x));
            }
            break;
        case kRcAtMost:
            if (r > long(p.a)) fail(p.what, "returned %ld, at most %lu allowed", r, p.a);
            break;
        case kStatusFail: {
            int16_t s = *reinterpret_cast<const volatile int16_t*>(p.addr);
            if (s == 0) fail(p.what, "status 0, must be refused%s", op_words(p.x));
            break;
        }
        case kTrackPort:
            if (r == 0) {
                track_port(*reinterpret_cast<const uint32_t*>(p.addr), PortKind(p.a));
                ++g_ok_ports;
            }
            break;
        case kUntrackPort:
            if (r == 0) untrack_port(uint32_t(p.a));
            break;
        case kTrackMap: {
            auto* op = reinterpret_cast<const abi::GnttabMapGrantRef*>(p.addr);
            g_ok_maps += op->status == 0;
            if (op->status == 0 && g_maps.n < 64) {
                unsigned k = g_maps.n++;
                g_maps.handle[k] = op->handle;
                g_maps.host_addr[k] = op->host_addr;
                g_maps.by_pte[k] = op->flags & abi::kGntmapContainsPte;
                g_maps.host[k] = op->flags & abi::kGntmapHostMap;
                g_maps.dev[k] = (op->flags & abi::kGntmapDeviceMap) ? op->dev_bus_addr : 0;
            }
            break;
        }
        case kUntrackMap: {
            // What an unmap that succeeded took away (as the hypervisor does):
            // the host part if it named it (host_addr) or if that is all there
            // is; the device part if it named it (dev_bus_addr). The mapping
            // is gone with both.
            auto* op = reinterpret_cast<const abi::GnttabUnmapGrantRef*>(p.addr);
            if (op->status == 0)
                for (unsigned k = 0; k < g_maps.n; ++k)
                    if (g_maps.handle[k] == op->handle) {
                        if (g_maps.host[k] && (op->host_addr || !g_maps.dev[k])) g_maps.host[k] = false;
                        if (g_maps.dev[k] && op->dev_bus_addr) g_maps.dev[k] = 0;
                        if (g_maps.host[k] || g_maps.dev[k]) break;
                        --g_maps.n;
                        g_maps.handle[k] = g_maps.handle[g_maps.n];
                        g_maps.host_addr[k] = g_maps.host_addr[g_maps.n];
                        g_maps.by_pte[k] = g_maps.by_pte[g_maps.n];
                        g_maps.host[k] = g_maps.host[g_maps.n];
                        g_maps.dev[k] = g_maps.dev[g_maps.n];
                        break;
                    }
            break;
        }
        case kGain:
            if (r > long(p.a)) {
                auto* arr = reinterpret_cast<const uint64_t*>(p.addr);
                uint64_t end = uint64_t(r) - p.a > kGainSliceEntries ? p.a + kGainSliceEntries : uint64_t(r);
                for (uint64_t k = p.a; k < end && k < kGainSliceEntries; ++k) gained(arr[k]);
                if (uint64_t(r) > end) fail("invariant.gain_beyond_slice", "returned %ld", r);
            }
            break;
        case kGiveBack:
            if (r > long(p.a)) {
                auto* arr = reinterpret_cast<const uint64_t*>(p.addr);
                for (uint64_t k = p.a; k < uint64_t(r); ++k) given_back(arr[k]);
            }
            break;
        case kCapDerive:
            if (r == 0) {
                ++g_ok_caps;
                auto* a = reinterpret_cast<const abi::CapOpArgs*>(p.addr);
                abi::MoatCap src = rt::cap_inspect(uint32_t(p.a)), dst = rt::cap_inspect(uint32_t(p.b));
                bool mint = (g_cur.a[0] & 0xFFFFFFFF) == uint32_t(abi::CapOp::mint);
                if (src.type == uint32_t(abi::CapType::grant) && !(src.rights & abi::kCapRightCopy))
                    fail("cap_op.grant_copied_without_copy_right", "slot %lu -> %lu", p.a, p.b);
                if (mint && src.badge != 0) fail("cap_op.badged_capability_minted_again", "slot %lu", p.a);
                if (dst.type != src.type || dst.object != src.object || (dst.rights & ~(src.rights & a->rights)) ||
                    dst.badge != (mint ? a->badge : src.badge))
                    fail(p.what, "slot %lu (type %u rights %#x) -> slot %lu (type %u rights %#x badge %#lx), mask %#x",
                         p.a, src.type, src.rights, p.b, dst.type, dst.rights, dst.badge, a->rights);
            }
            break;
        case kCountCopy:
            g_ok_copies += *reinterpret_cast<const volatile int16_t*>(p.addr) == 0;
            break;
        case kSetIopl:
            if (r == 0) g_iopl = uint32_t(p.a);
            break;
        case kVirqSend:
            if (r == 0) fail(p.what, "send on port %lu (a VIRQ of ours) returned 0; Xen refuses it (-EINVAL)", p.a);
            break;
        }
    }
}

// ---------------------------------------------------------------------------
// Putting right what a call may have changed on purpose.

uint64_t g_rsp_top;

void install_traps() {
    // #NM: fpu_taskswitch leaves TS set; the hypervisor clears it when it
    // delivers #NM, so returning is enough.
    rt::set_trap_handler(7, [](rt::TrapFrame&) { return true; });
    install_emulation_traps();
}

void repair(uint32_t dirty) {
    if (dirty & kDirtyFpu) hc(abi::Hypercall::fpu_taskswitch, 0);
    if (dirty & kDirtyTraps) {
        hc(abi::Hypercall::set_trap_table, 0);
        install_traps();
    }
    if (dirty & (kDirtyCallbacks | kDirtyNmi)) {
        hc(abi::Hypercall::set_callbacks, rt::event_entry_address(), 0, 0);
        abi::CallbackUnregister u{uint16_t(abi::CallbackType::nmi), 0};
        hc(abi::Hypercall::callback_op, uint64_t(abi::CallbackOp::unregister), rt::ptr(&u));
        hc(abi::Hypercall::nmi_op, uint64_t(abi::NmiOp::unregister_callback), 0);
    }
    if (dirty & kDirtySeg) {
        hc(abi::Hypercall::set_segment_base, uint64_t(abi::SegBase::fs), 0);
        hc(abi::Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_kernel), 0);
        hc(abi::Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_user), 0);
    }
    if (dirty & kDirtyStack) hc(abi::Hypercall::stack_switch, abi::kFlatKernelSs, g_rsp_top);
    rt::vcpu_info().evtchn_upcall_mask = 1;
}

void zero_args() {
    __builtin_memset(g_area.args, 0, g_b.used);
    if (g_b.tail_taken) __builtin_memset(g_area.args + g_b.tail, 0, sizeof g_area.args - g_b.tail);
    if (g_overflow_used) __builtin_memset(g_overflow, 0, g_overflow_used);
    g_overflow_used = 0;
}

void reset_builder() {
    g_b.used = 0;
    g_b.tail = 0;
    g_b.tail_taken = false;
    g_b.in_mc = false;
    g_b.mc_fpu = false;
    g_b.mc_last = false;
    g_b.rc_addr = 0;
    g_b.dirty = 0;
    g_b.gain_slices = 0;
    g_b.n_posts = 0;
    g_b.mc_entries = 0;
}

// ---------------------------------------------------------------------------
// Invariants.

const uint64_t* live_table_va(uint64_t mfn) {
    return reinterpret_cast<const uint64_t*>(rt::va_of_pfn(rt::m2p()[mfn]));
}

uint64_t own_pte(const void* p) {
    uint64_t pfn = (rt::ptr(p) - rt::kVirtBase) >> 12;
    return (rt::mfn_of_pfn(pfn) << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD;
}

// Maps frame m of ours read-only at the window; false if refused.
const uint64_t* window_map(uint64_t m) {
    long r = rt::update_va_mapping(rt::ptr(g_window), (m << 12) | kPteP | kPteA);
    return r == 0 ? reinterpret_cast<const uint64_t*>(g_window) : nullptr;
}
void window_restore() {
    long r = rt::update_va_mapping(rt::ptr(g_window), g_window_pte);
    if (r != 0) {
        fail("invariant.window_restore", "update_va_mapping of our own page: %ld", r);
        g_broken = true;
    }
}

struct Walk {
    uint64_t tables[64];
    unsigned n_tables;
    uint64_t rw_leaves[512];
    unsigned n_rw;
    bool ok;
};
uint64_t g_walk_buf[4][512];

void walk_table(Walk& w, uint64_t m, unsigned level, uint64_t via_entry) {
    uint8_t b = bits_of(m);
    if (!(b & kClean) || (b & (kLivePt | kTaint | kFreed))) {
        fail("invariant.scratch_reaches_unclean_frame", "L%u table %#lx (bits %#x) linked by entry %#lx", level, m,
             b, via_entry);
        w.ok = false;
        return;
    }
    for (unsigned i = 0; i < w.n_tables; ++i)
        if (w.tables[i] == m) return;
    if (w.n_tables == 64) return;
    w.tables[w.n_tables++] = m;
    const uint64_t* t = window_map(m);
    if (!t) {
        fail("invariant.scratch_table_unmappable", "L%u table %#lx cannot be mapped read-only", level, m);
        w.ok = false;
        return;
    }
    uint64_t* buf = g_walk_buf[level - 1];
    __builtin_memcpy(buf, t, 4096);
    window_restore();
    for (unsigned i = 0; i < 512 && w.ok; ++i) {
        uint64_t e = buf[i];
        if (!(e & kPteP)) continue;
        uint64_t child = (e & kPteAddr) >> 12;
        if (level == 1) {
            if (e & kPteGrant) continue;   // a grant mapping of the peer's
            uint8_t cb = bits_of(child);
            if (cb & kFreed) {
                fail("invariant.freed_frame_still_mapped", "L1 %#lx[%u] = %#lx", m, i, e);
                w.ok = false;
            } else if (!(cb & kOwn)) {
                fail("invariant.foreign_frame_mapped", "L1 %#lx[%u] = %#lx", m, i, e);
                w.ok = false;
            } else if (cb & kTaint) {
                fail("invariant.tainted_frame_mapped", "L1 %#lx[%u] = %#lx", m, i, e);
                w.ok = false;
            } else if ((e & kPteRw) && (cb & kLivePt)) {
                fail("invariant.page_table_writable", "L1 %#lx[%u] = %#lx maps a running table writable", m, i, e);
                w.ok = false;
            } else if ((e & kPteRw) && w.n_rw < 512) {
                w.rw_leaves[w.n_rw++] = child;
            }
            if (e & (kPtePse | kPtePcd | kPtePwt | (0x7FFull << 52))) {
                fail("invariant.bad_flags_present", "L1 %#lx[%u] = %#lx", m, i, e);
                w.ok = false;
            }
        } else {
            if (e & (kPtePse | kPteG | kPtePcd | kPtePwt | (0x7FFull << 52))) {
                fail("invariant.bad_flags_present", "L%u %#lx[%u] = %#lx", level, m, i, e);
                w.ok = false;
                continue;
            }
            walk_table(w, child, level - 1, e);
        }
    }
}

bool check_invariants() {
    ++g_invariant_checks;
    bool ok = true;
    auto bad = [&](const char* what, const char* fmt, auto... args) {
        fail(what, fmt, args...);
        ok = false;
    };
    // 1. The hypercall path and our canary.
    long v = hc(abi::Hypercall::xen_version, 0);
    if (v != (4 << 16 | 21)) bad("invariant.xen_version", "xen_version returned %ld", v);
    for (unsigned i = 0; i < 1024; ++i)
        if (g_canary[i] != uint32_t(i * 2654435761u ^ uint32_t(g_seed))) {
            bad("invariant.canary", "word %u changed", i);
            break;
        }
    // 2. Our running page tables, entry for entry (accessed/dirty aside), but
    // the scratch slot.
    for (unsigned k = 0; k < g_fr.n_live_pt; ++k) {
        const uint64_t* t = live_table_va(g_fr.live_pt[k]);
        for (unsigned i = 0; i < 512; ++i) {
            if (g_fr.live_level[k] == 4 && i == kScratchSlot) continue;
            if ((t[i] ^ g_pt_snap[k][i]) & ~(kPteA | kPteD)) {
                bad("invariant.running_page_table_changed", "L%u %#lx[%u]: %#lx, was %#lx", g_fr.live_level[k],
                    g_fr.live_pt[k], i, t[i], g_pt_snap[k][i]);
                break;
            }
        }
    }
    // 3. The read-only page is still read-only and all 0xFF (its entry is
    // in the snapshot); the guards are unmapped (likewise).
    for (unsigned i = 0; i < 512; ++i)
        if (reinterpret_cast<const uint64_t*>(g_area.ro)[i] != ~0ull) {
            bad("invariant.read_only_page_written", "word %u", i);
            break;
        }
    // 4. The M2P entries of the initial region.
    uint64_t first_unmapped = rt::first_unmapped_pfn();
    for (uint64_t pfn = 0; pfn < first_unmapped; ++pfn)
        if (rt::m2p()[rt::mfn_of_pfn(pfn)] != g_m2p_snap[pfn]) {
            bad("invariant.m2p_of_running_frame_changed", "pfn %lu: %#lx, was %#lx", pfn,
                rt::m2p()[rt::mfn_of_pfn(pfn)], g_m2p_snap[pfn]);
            break;
        }
    // 5. Our reservation: what we gave back and gained, nothing else.
    uint16_t self = abi::kDomidSelf;
    long cur = hc(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::current_reservation), rt::ptr(&self));
    if (cur != g_fr.expected_pages)
        bad("invariant.reservation", "current_reservation %ld, expected %ld (gained %lu, given back %lu)", cur,
            g_fr.expected_pages, g_fr.gained, g_fr.given_back);
    // 6. The ports we live on.
    auto status = [&](uint32_t port, abi::EvtchnStat want, const char* name) {
        abi::EvtchnStatus st{};
        st.dom = abi::kDomidSelf;
        st.port = port;
        long r = rt::evtchn_op(abi::EvtchnOp::status, &st);
        if (r != 0 || st.status != uint32_t(want))
            bad("invariant.port", "%s port %u: status %u (rc %ld), want %u", name, port, st.status, r, uint32_t(want));
    };
    if (g_ids.console_port) status(g_ids.console_port, abi::EvtchnStat::interdomain, "console");
    if (g_ids.store_port) status(g_ids.store_port, abi::EvtchnStat::interdomain, "store");
    status(g_ids.timer_port, abi::EvtchnStat::virq, "timer");
    // 7. Our capabilities at start of day, still in their slots.
    for (uint32_t s = 0; s < g_caps.size && s < 64; ++s) {
        if (!g_caps.original[s]) continue;
        abi::MoatCap c = rt::cap_inspect(s);
        const abi::MoatCap& o = g_caps.orig[s];
        // Capabilities naming the peer or the victim go when that domain does
        // (and the slot is ours to fuzz from then on).
        bool names_guest = o.object == g_ids.peer || o.object == g_ids.victim;
        if (names_guest && (c.type != o.type || c.object != o.object)) {
            g_caps.original[s] = false;
            continue;
        }
        if (c.type != o.type || c.rights != o.rights || c.object != o.object || c.badge != o.badge)
            bad("invariant.capability_changed", "slot %u: type %u rights %#x object %lu, was type %u rights %#x object %lu",
                s, c.type, c.rights, c.object, o.type, o.rights, o.object);
    }
    // 8. What we grant the peer.
    if (g_ids.peer != 0xFFFF) {
        abi::GrantEntryV1 now[kPeerRefs];
        if (const uint64_t* t = window_map(g_fr.grant[0])) {
            __builtin_memcpy(now, reinterpret_cast<const abi::GrantEntryV1*>(t) + kPeerRefFirst, sizeof now);
            window_restore();
            constexpr uint16_t kKept = abi::kGtfTypeMask | abi::kGtfReadonly;
            for (unsigned i = 0; i < kPeerRefs; ++i)
                if ((now[i].flags & kKept) != (g_grant_snap[i].flags & kKept) || now[i].domid != g_grant_snap[i].domid ||
                    now[i].frame != g_grant_snap[i].frame)
                    bad("invariant.grant_entry_changed", "ref %u: flags %#x domid %u frame %#x", kPeerRefFirst + i,
                        now[i].flags, now[i].domid, now[i].frame);
        } else {
            bad("invariant.grant_frame_unmappable", "grant frame %#lx", g_fr.grant[0]);
        }
    }
    // 9. The scratch hierarchy: everything it reaches is ours and clean, and
    // no table in it is mapped writable.
    const uint64_t* l4 = live_table_va(g_fr.l4);
    uint64_t e4 = l4[kScratchSlot];
    if (e4 & kPteP) {
        static Walk w;
        w.n_tables = 0;
        w.n_rw = 0;
        w.ok = true;
        walk_table(w, (e4 & kPteAddr) >> 12, 3, e4);
        for (unsigned i = 0; i < w.n_rw && w.ok; ++i)
            for (unsigned k = 0; k < w.n_tables; ++k)
                if (w.rw_leaves[i] == w.tables[k]) {
                    fail("invariant.page_table_writable", "scratch table %#lx is mapped writable in the scratch slot",
                         w.tables[k]);
                    w.ok = false;
                    break;
                }
        ok &= w.ok;
    }
    if (!ok) {
        g_broken = true;
        rt::printf("hcfuzz: the last calls before the invariants broke:\n");
        for (unsigned i = kHistory; i > 0; --i) {
            if (g_call_index + 1 < i) continue;
            uint64_t idx = g_call_index + 1 - i;
            const Call& h = g_history[idx % kHistory];
            rt::printf("hcfuzz:   #%lu nr %lu (%#lx, %#lx, %#lx, %#lx, %#lx) -> %ld\n", idx, h.nr, h.a[0], h.a[1],
                       h.a[2], h.a[3], h.a[4], g_history_rc[idx % kHistory]);
        }
    }
    return ok;
}

// ---------------------------------------------------------------------------
// Start of day.

uint16_t ring_peer(uint64_t k) {
    char path[96];
    base::snformat(path, sizeof path, "device/ring/%lu/backend-id", k);
    if (auto r = rt::xs_read_number(path)) return uint16_t(*r);
    static char dir[1024];
    auto l = rt::xs_directory("backend/ring", dir, sizeof dir);
    if (!l) return 0xFFFF;
    for (const char* n = rt::xs_next_name(dir, *l, nullptr); n; n = rt::xs_next_name(dir, *l, n)) {
        base::snformat(path, sizeof path, "backend/ring/%s/%lu/frontend-id", n, k);
        if (auto r = rt::xs_read_number(path)) return uint16_t(*r);
    }
    return 0xFFFF;
}

bool setup() {
    const abi::StartInfo& si = rt::start_info();
    g_rsp_top = uint64_t(__builtin_frame_address(0));

    // Who we are, and who the peer and the victim are.
    if (!rt::xs_init()) {
        rt::printf("FAIL hcfuzz.setup: no XenStore\n");
        return false;
    }
    if (auto d = rt::xs_read_number("domid")) g_ids.self = uint16_t(*d);
    uint64_t k;
    if ((k = rt::cmdline_number("peer_ring", ~0ull)) != ~0ull) g_ids.peer = ring_peer(k);
    if ((k = rt::cmdline_number("victim_ring", ~0ull)) != ~0ull) g_ids.victim = ring_peer(k);
    g_ids.console_port = si.console.domU.evtchn;
    g_ids.store_port = si.store_evtchn;
    auto remote_of = [](uint32_t port) -> uint16_t {
        abi::EvtchnStatus st{};
        st.dom = abi::kDomidSelf;
        st.port = port;
        if (!port || rt::evtchn_op(abi::EvtchnOp::status, &st) != 0) return 0xFFFF;
        if (st.status == uint32_t(abi::EvtchnStat::interdomain)) return st.u.interdomain.dom;
        if (st.status == uint32_t(abi::EvtchnStat::unbound)) return st.u.unbound.dom;
        return 0xFFFF;
    };
    g_ids.console = remote_of(g_ids.console_port);
    g_ids.store = remote_of(g_ids.store_port);
    abi::EvtchnBindVirq bv{uint32_t(abi::Virq::timer), 0, 0};
    if (rt::evtchn_op(abi::EvtchnOp::bind_virq, &bv) != 0) {
        rt::printf("FAIL hcfuzz.setup: cannot bind the timer\n");
        return false;
    }
    g_ids.timer_port = bv.port;

    // Our frames.
    g_fr.max_ram = uint64_t(hc(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::maximum_ram_page)));
    if (g_fr.max_ram >= kMaxFrames) {
        rt::printf("FAIL hcfuzz.setup: %lu frames of RAM, more than the %u tracked\n", g_fr.max_ram + 1, kMaxFrames);
        return false;
    }
    for (uint64_t pfn = 0; pfn < si.nr_pages; ++pfn) set_bits(rt::mfn_of_pfn(pfn), kOwn);
    g_fr.shared_info = si.shared_info >> 12;
    set_bits(g_fr.shared_info, kOwn | kSpecial);
    grant::Table& gt = rt::grant_table();
    abi::GnttabQuerySize qs{abi::kDomidSelf, 0, 0, 0};
    rt::gnttab_op(abi::GnttabOp::query_size, &qs);
    uint64_t frames[8] = {};
    abi::GnttabSetupTable st{abi::kDomidSelf, qs.max_nr_frames < 8 ? qs.max_nr_frames : 8, 0, rt::ptr(frames)};
    if (gt.size() == 0 || rt::gnttab_op(abi::GnttabOp::setup_table, &st) != 0 || st.status != 0) {
        rt::printf("FAIL hcfuzz.setup: no grant table\n");
        return false;
    }
    for (unsigned i = 0; i < st.nr_frames && i < 4; ++i) {
        g_fr.grant[g_fr.n_grant++] = frames[i];
        set_bits(frames[i], kOwn | kSpecial);
    }
    uint64_t m2p_mfn = 0;
    abi::XenMachphysMfnList ml{1, rt::ptr(&m2p_mfn), 0};
    if (hc(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::machphys_mfn_list), rt::ptr(&ml)) == 0)
        g_fr.m2p_frame = m2p_mfn;

    // The buffer: guards unmapped, the read-only page, the text.
    __builtin_memset(g_area.ro, 0xFF, sizeof g_area.ro);
    g_fr.ro_frame = rt::mfn_of_pfn((va(g_area.ro) - rt::kVirtBase) >> 12);
    uint8_t* guards[] = {g_area.guard1, g_area.guard2, g_area.guard3, g_area.guard4};
    for (uint8_t* g : guards)
        if (rt::update_va_mapping(va(g), 0) != 0) {
            rt::printf("FAIL hcfuzz.setup: cannot unmap a guard page\n");
            return false;
        }
    if (rt::update_va_mapping(va(g_area.ro), (g_fr.ro_frame << 12) | kPteP | kPteA) != 0) {
        rt::printf("FAIL hcfuzz.setup: cannot map the read-only page\n");
        return false;
    }
    {
        const char line[] = "console_io write from the hypercall fuzzer: harmless text ~~~~~~";
        for (unsigned i = 0; i < sizeof g_area.text; ++i) {
            unsigned j = i % 64;
            g_area.text[i] = j == 63 ? '\n' : line[j];
        }
    }
    g_window_pte = own_pte(g_window);

    // Our running page tables (all in the initial region, mapped read-only)
    // and what they map writable.
    g_fr.l4 = rt::mfn_of_pfn((si.pt_base - rt::kVirtBase) >> 12);
    uint64_t first_unmapped = rt::first_unmapped_pfn();
    auto add_pt = [&](uint64_t m, unsigned level) -> bool {
        if (g_fr.n_live_pt >= 32 || rt::m2p()[m] >= first_unmapped) return false;
        g_fr.live_pt[g_fr.n_live_pt] = m;
        g_fr.live_level[g_fr.n_live_pt++] = uint8_t(level);
        set_bits(m, kLivePt);
        return true;
    };
    if (!add_pt(g_fr.l4, 4)) return false;
    const uint64_t* l4 = live_table_va(g_fr.l4);
    for (unsigned i4 = 0; i4 < 256; ++i4) {
        if (!(l4[i4] & kPteP)) continue;
        if (i4 != 0) {
            rt::printf("FAIL hcfuzz.setup: L4 slot %u in use at start of day\n", i4);
            return false;
        }
        uint64_t m3 = (l4[i4] & kPteAddr) >> 12;
        if (!add_pt(m3, 3)) return false;
        const uint64_t* l3 = live_table_va(m3);
        for (unsigned i3 = 0; i3 < 512; ++i3) {
            if (!(l3[i3] & kPteP)) continue;
            uint64_t m2 = (l3[i3] & kPteAddr) >> 12;
            if (!add_pt(m2, 2)) return false;
            const uint64_t* l2 = live_table_va(m2);
            for (unsigned i2 = 0; i2 < 512; ++i2) {
                if (!(l2[i2] & kPteP)) continue;
                uint64_t base2 = (uint64_t(i4) << 39) | (uint64_t(i3) << 30) | (uint64_t(i2) << 21);
                if (base2 < rt::kVirtBase && g_low_unmapped == 0) g_low_unmapped = 1;   // something below VIRT_BASE
                uint64_t m1 = (l2[i2] & kPteAddr) >> 12;
                if (!add_pt(m1, 1)) return false;
                const uint64_t* l1 = live_table_va(m1);
                for (unsigned i1 = 0; i1 < 512; ++i1) {
                    uint64_t e = l1[i1];
                    if (!(e & kPteP) || !(e & kPteRw)) continue;
                    uint64_t vaddr = base2 | (uint64_t(i1) << 12);
                    if (vaddr == va(g_window)) continue;
                    uint64_t m = (e & kPteAddr) >> 12;
                    if ((bits_of(m) & kLiveRw) || g_fr.n_live_rw >= 4096) continue;
                    set_bits(m, kLiveRw);
                    g_fr.live_rw[g_fr.n_live_rw++] = m;
                }
            }
        }
    }
    if (g_low_unmapped) {
        rt::printf("FAIL hcfuzz.setup: something is mapped below %#lx\n", rt::kVirtBase);
        return false;
    }

    // Scratch frames: unmapped frames of ours beyond the initial region.
    uint64_t pfn = first_unmapped;
    auto take = [&]() -> uint64_t {
        while (pfn < si.nr_pages - 2) {   // the last two: console and store rings
            uint64_t m = rt::mfn_of_pfn(pfn++);
            if (!(bits_of(m) & (kLivePt | kLiveRw | kSpecial))) return m;
        }
        return 0;
    };
    for (auto& m : g_fr.scratch_pt) m = take();
    for (auto& m : g_fr.scratch_data) m = take();
    for (auto& m : g_fr.tainted) m = take();
    for (unsigned i = 0; i < 48; ++i) g_fr.spare[g_fr.n_spare++] = take();
    for (uint64_t m : g_fr.scratch_pt) set_bits(m, kClean);
    for (uint64_t m : g_fr.scratch_data) set_bits(m, kClean);
    for (uint64_t m : g_fr.tainted) set_bits(m, kTaint);
    for (unsigned i = 0; i < g_fr.n_spare; ++i) set_bits(g_fr.spare[i], kClean);
    if (!g_fr.spare[g_fr.n_spare - 1]) {
        rt::printf("FAIL hcfuzz.setup: not enough memory for the scratch frames\n");
        return false;
    }
    auto clear = [](uint64_t m) { return rt::mmuext(abi::MmuextCmd::clear_page, m) == 0; };
    bool cleared = true;
    for (uint64_t m : g_fr.scratch_pt) cleared &= clear(m);
    for (uint64_t m : g_fr.scratch_data) cleared &= clear(m);
    for (uint64_t m : g_fr.tainted) cleared &= clear(m);
    for (unsigned i = 0; i < g_fr.n_spare; ++i) cleared &= clear(g_fr.spare[i]);
    // The hierarchy: L4[1] -> L3 -> L2 x2 -> L1 x4 -> the scratch data.
    abi::MmuUpdate reqs[64];
    unsigned n = 0;
    const uint64_t tf = kPteP | kPteRw | kPteA | kPteU;
    for (unsigned l1 = 0; l1 < 4; ++l1)
        for (unsigned i = 0; i < kScratchData; ++i)
            reqs[n++] = {(g_fr.scratch_pt[3 + l1] << 12) | (i * 8),
                         (g_fr.scratch_data[(i + l1) % kScratchData] << 12) | tf | kPteD};
    for (unsigned l2 = 0; l2 < 2; ++l2)
        for (unsigned i = 0; i < 2; ++i) reqs[n++] = {(g_fr.scratch_pt[1 + l2] << 12) | (i * 8), (g_fr.scratch_pt[3 + 2 * l2 + i] << 12) | tf};
    for (unsigned i = 0; i < 2; ++i) reqs[n++] = {(g_fr.scratch_pt[0] << 12) | (i * 8), (g_fr.scratch_pt[1 + i] << 12) | tf};
    reqs[n++] = {(g_fr.l4 << 12) | (kScratchSlot * 8), (g_fr.scratch_pt[0] << 12) | tf};
    uint64_t done = 0;
    long r = rt::mmu_update(reqs, n, &done);
    if (!cleared || r != 0) {
        rt::printf("FAIL hcfuzz.setup: cannot build the scratch hierarchy (%ld, %lu of %u)\n", r, done, n);
        return false;
    }

    // What we grant the peer: refs 8..11 writable (tainted frames), 12..15
    // read-only (clean scratch data).
    if (g_ids.peer != 0xFFFF) {
        for (unsigned i = 0; i < kPeerRefs; ++i) {
            bool ro = i >= 4;
            uint64_t m = ro ? g_fr.scratch_data[i - 4] : g_fr.tainted[i];
            if (!gt.grant_access(kPeerRefFirst + i, g_ids.peer, uint32_t(m), ro)) {
                rt::printf("FAIL hcfuzz.setup: cannot grant ref %u\n", kPeerRefFirst + i);
                return false;
            }
            g_grant_snap[i] = abi::GrantEntryV1{uint16_t(abi::kGtfPermitAccess | (ro ? abi::kGtfReadonly : 0)),
                                                g_ids.peer, uint32_t(m)};
        }
    }

    // Our capabilities.
    abi::CapOpArgs ca{};
    ca.domain = abi::kDomidSelf;
    long size = rt::cap_op(abi::CapOp::size, ca);
    g_caps.size = size > 0 ? uint32_t(size) : 0;
    for (uint32_t s = 0; s < g_caps.size && s < 64; ++s) {
        g_caps.orig[s] = rt::cap_inspect(s);
        g_caps.original[s] = g_caps.orig[s].type != uint32_t(abi::CapType::null);
        if (g_caps.original[s] && g_caps.orig[s].type != uint32_t(abi::CapType::grant) &&
            g_caps.orig[s].type != uint32_t(abi::CapType::event))
            g_caps.only_grant_event = false;
    }

    uint16_t self = abi::kDomidSelf;
    g_fr.expected_pages = hc(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::current_reservation), rt::ptr(&self));
    long max_pages = hc(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::maximum_reservation), rt::ptr(&self));
    if (max_pages - g_fr.expected_pages + kMaxSpare > long(kGainSliceEntries) - 8) {
        rt::printf("FAIL hcfuzz.setup: %ld frames of headroom: too many for the gain slices\n",
                   max_pages - g_fr.expected_pages);
        return false;
    }
    install_traps();

    // Snapshots.
    for (unsigned i = 0; i < g_fr.n_live_pt; ++i)
        __builtin_memcpy(g_pt_snap[i], live_table_va(g_fr.live_pt[i]), 4096);
    if (first_unmapped > sizeof g_m2p_snap_store / 8) {
        rt::printf("FAIL hcfuzz.setup: initial region too large\n");
        return false;
    }
    g_m2p_snap = g_m2p_snap_store;
    for (uint64_t p = 0; p < first_unmapped; ++p) g_m2p_snap[p] = rt::m2p()[rt::mfn_of_pfn(p)];
    for (unsigned i = 0; i < 1024; ++i) g_canary[i] = uint32_t(i * 2654435761u ^ uint32_t(g_seed));

    rt::printf("hcfuzz: domain %u, peer %d, victim %d, console %u, store %u; %lu pages, RAM to frame %#lx; "
               "%u running tables, %u frames mapped writable, %u capabilities (size %u)%s\n",
               g_ids.self, g_ids.peer == 0xFFFF ? -1 : int(g_ids.peer), g_ids.victim == 0xFFFF ? -1 : int(g_ids.victim),
               g_ids.console, g_ids.store, si.nr_pages, g_fr.max_ram, g_fr.n_live_pt, g_fr.n_live_rw,
               [] {
                   unsigned n = 0;
                   for (uint32_t s = 0; s < g_caps.size && s < 64; ++s) n += g_caps.original[s];
                   return n;
               }(),
               g_caps.size, g_caps.only_grant_event ? "" : " (not only Grant/Event: fewer checks)");
    return true;
}

// ---------------------------------------------------------------------------
// One fuzzed call.

void arm_timer_for_block() {
    rt::set_timer(rt::now_ns() + 10'000 + g_rng.below(150'000));
}

// Puts the read-only page back (mapped writable for a moment).
void restore_ro_page() {
    uint64_t f = g_fr.ro_frame << 12;
    if (rt::update_va_mapping(va(g_area.ro), f | kPteP | kPteRw | kPteA | kPteD) != 0) {
        fail("invariant.read_only_page_unrestorable", "cannot map it writable");
        g_broken = true;
        return;
    }
    __builtin_memset(g_area.ro, 0xFF, sizeof g_area.ro);
    if (rt::update_va_mapping(va(g_area.ro), f | kPteP | kPteA) != 0) {
        fail("invariant.read_only_page_unrestorable", "cannot map it read-only again");
        g_broken = true;
    }
}

void one_call() {
    reset_builder();
    unsigned nr = pick_hypercall(false);
    Call c{};
    generate(nr, c);
    g_cur = c;
    bool clear_ts = c.nr == uint64_t(abi::Hypercall::fpu_taskswitch) || g_b.mc_fpu;
    bool block = c.nr == uint64_t(abi::Hypercall::sched_op) && uint32_t(c.a[0]) == uint32_t(abi::SchedOp::block);
    if (block) {
        arm_timer_for_block();
        ++g_blocks;
    }
    if (g_call_index >= g_trace_from) trace_call(c);
    uint64_t t0 = rt::now_ns();
    long rc = invoke(c, clear_ts);
    uint64_t took = rt::now_ns() - t0;
    if (took > g_slowest) g_slowest = took;
    if (took > 5'000'000 && !block)
        rt::printf("hcfuzz: call #%lu at %lu ms took %lu us (nr %lu, %#lx, %#lx, %#lx, %#lx) -> %ld\n", g_call_index,
                   t0 / 1'000'000, took / 1000, c.nr, c.a[0], c.a[1], c.a[2], c.a[3], rc);
    g_cur_rc = rc;
    ++g_count_top[slot_of(c.nr)];
    ++g_class[class_of(rc)];
    if (c.nr == uint64_t(abi::Hypercall::multicall) && c.a[0] >= va(g_area.args) &&
        c.a[0] < va(g_area.args) + sizeof g_area.args) {
        auto* e = reinterpret_cast<const abi::MulticallEntry*>(c.a[0]);
        uint64_t n = g_b.mc_entries;
        for (uint64_t i = 0; i < n && va(&e[i + 1]) <= va(g_area.args) + sizeof g_area.args; ++i) {
            if (e[i].result == kResultSentinel) continue;
            ++g_count_mc[slot_of(e[i].op)];
            ++g_class[class_of(long(e[i].result))];
            ++g_mc_entries_run;
        }
    }
    run_posts(rc);
    repair(g_b.dirty);
    g_history[g_call_index % kHistory] = c;
    g_history_rc[g_call_index % kHistory] = rc;
    // Cheap enough after every call: the read-only page is still all 0xFF.
    // Nothing may write it: it is mapped read-only and no pool names its
    // frame as a write target; only page-table operations that must fail
    // (pins, links) name it.
    const uint64_t* ro = reinterpret_cast<const uint64_t*>(g_area.ro);
    for (unsigned i = 0; i < 512; ++i)
        if (ro[i] != ~0ull) {
            unsigned last = i;
            while (last + 1 < 512 && ro[last + 1] != ~0ull) ++last;
            // Which operation of an mmuext_op batch named the frame.
            char which[80] = "";
            if (c.nr == uint64_t(abi::Hypercall::mmuext_op) && c.a[0] >= va(g_area.args) &&
                c.a[0] < va(g_area.args) + sizeof g_area.args) {
                auto* ops = reinterpret_cast<const abi::MmuextOp*>(c.a[0]);
                for (uint64_t k = 0; k < (c.a[1] & 0xFFFF) && va(&ops[k + 1]) <= va(g_area.args) + sizeof g_area.args; ++k)
                    if (ops[k].arg1.mfn == g_fr.ro_frame && ops[k].cmd != uint32_t(abi::MmuextCmd::copy_page)) {
                        base::snformat(which, sizeof which, "; op %lu: mmuext cmd %u on that frame", k, ops[k].cmd);
                        break;
                    }
            }
            fail("refused_call_changed_memory",
                 "words %u..%u of a frame of ours (read-only, 0xFF, never a valid table) are now %#lx: a call that "
                 "must fail wrote into it%s",
                 i, last, ro[i], which);
            restore_ro_page();
            break;
        }
    zero_args();
}

// A privileged instruction instead of a hypercall (emul.cpp), judged there.
void one_emulated() {
    reset_builder();
    if (g_call_index >= g_trace_from) trace_out("hcfuzz #%lu an emulated instruction", g_call_index);
    uint64_t t0 = rt::now_ns();
    emulated_instruction();
    uint64_t took = rt::now_ns() - t0;
    if (took > g_slowest) g_slowest = took;
    repair(g_b.dirty);
    g_history[g_call_index % kHistory] = Call{~0ull, {}};
    g_history_rc[g_call_index % kHistory] = 0;
}

// Lines of at most ~200 characters (the console splits longer ones).
struct LineOut {
    char buf[220];
    size_t n = 0;
    const char* head;
    explicit LineOut(const char* h) : head(h) { start(); }
    void start() { n = base::snformat(buf, sizeof buf, "hcfuzz: summary: %s", head); }
    void add(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
        char item[96];
        va_list ap;
        va_start(ap, fmt);
        size_t k = base::vsnformat(item, sizeof item, fmt, ap);
        va_end(ap);
        if (n + k > 200) {
            flush();
            start();
        }
        n += base::snformat(buf + n, sizeof buf - n, "%s", item);
    }
    void flush() { rt::printf("%s\n", buf); }
};

void print_summary(uint64_t made, uint64_t ms) {
    rt::printf("hcfuzz: summary: %lu calls in %lu ms (seed %lu), %lu multicall entries run, %lu blocks, "
               "%lu invariant checks, slowest call %lu us\n",
               made, ms, g_seed, g_mc_entries_run, g_blocks, g_invariant_checks, g_slowest / 1000);
    rt::printf("hcfuzz: summary: accepted: %lu grant maps, %lu grant copies, %lu ports, %lu frames gained, "
               "%lu given back, %lu capabilities derived\n",
               g_ok_maps, g_ok_copies, g_ok_ports, g_fr.gained, g_fr.given_back, g_ok_caps);
    rt::printf("hcfuzz: summary: %lu privileged instructions for the hypervisor to emulate, %lu of them faulted\n",
               g_emulated, g_emulated_faults);
    LineOut by_nr("calls by hypercall (incl. multicall entries):");
    for (unsigned s = 0; s < kNrSlots; ++s) {
        uint64_t total = g_count_top[s] + g_count_mc[s];
        if (!total) continue;
        const char* name = nr_name(s);
        if (name) by_nr.add(" %s=%lu", name, total);
        else by_nr.add(" nr%u=%lu", s, total);
    }
    by_nr.flush();
    LineOut by_class("results by class:");
    for (unsigned k = 0; k < kClasses; ++k)
        if (g_class[k]) by_class.add(" %s=%lu", class_name(k), g_class[k]);
    by_class.flush();
    if (g_n_fail_kinds) {
        LineOut fails("failures by kind:");
        for (unsigned i = 0; i < g_n_fail_kinds; ++i) fails.add(" %s=%lu", g_fail_kinds[i].what, g_fail_kinds[i].count);
        fails.flush();
    }
}

}  // namespace

}  // namespace hcf

void rt::main() {
    using namespace hcf;
    rt::events_init();
    rt::vcpu_info().evtchn_upcall_mask = 1;   // events stay masked but while we block
    g_seed = rt::cmdline_number("seed", 1);
    g_calls = rt::cmdline_number("calls", 100000);
    g_check_every = rt::cmdline_number("check", 2048);
    g_progress = rt::cmdline_number("progress", 100000);
    g_trace_from = rt::cmdline_number("trace", ~0ull);
    g_only = unsigned(rt::cmdline_number("only", 65));
    g_trace_hv = rt::has_arg("trace_hv");
    if (g_only > 64) g_only = 65;
    // Privileged instructions instead of calls: 3 % by default, none with only=NR unless asked.
    g_emulate_pct = unsigned(rt::cmdline_number("emulate", g_only == 65 ? 3 : 0));
    if (g_emulate_pct > 100) g_emulate_pct = 100;
    if (!g_check_every) g_check_every = 2048;
    if (!g_progress) g_progress = ~0ull;
    g_rng.seed(g_seed);
    rt::printf("hcfuzz: seed %lu, %lu calls, invariants every %lu calls\n", g_seed, g_calls, g_check_every);

    if (!setup()) {
        rt::printf("hcfuzz: done, %u failed\n", rt::g_failed_checks + 1);
        return;
    }
    if (!check_invariants()) {
        rt::printf("FAIL hcfuzz.setup: the invariants do not hold at start\n");
        rt::printf("hcfuzz: done, %u failed\n", rt::g_failed_checks);
        return;
    }
    const uint64_t start = rt::now_ns();
    rt::printf("hcfuzz: fuzzing from %lu ms (system time)\n", start / 1'000'000);
    uint64_t made = 0;
    for (g_call_index = 0; g_call_index < g_calls && !g_broken; ++g_call_index) {
        // A few percent of the calls are privileged instructions (emulate=N).
        if (g_emulate_pct && g_rng.pct(g_emulate_pct)) one_emulated();
        else one_call();
        ++made;
        if ((g_call_index + 1) % g_check_every == 0) check_invariants();
        if ((g_call_index + 1) % g_progress == 0)
            rt::printf("hcfuzz: %lu calls, %lu ms, %lu failures\n", g_call_index + 1, (rt::now_ns() - start) / 1'000'000,
                       g_refusal_failures + g_invariant_failures);
    }
    if (!g_broken) check_invariants();
    uint64_t ms = (rt::now_ns() - start) / 1'000'000;
    print_summary(made, ms);
    rt::check(made == g_calls, "hcfuzz.calls_made", "%lu of %lu calls made", made, g_calls);
    if (g_invariant_failures == 0) rt::printf("PASS hcfuzz.invariants_held\n");
    else rt::printf("hcfuzz: %lu invariant failures (FAIL lines above)\n", g_invariant_failures);
    if (g_refusal_failures == 0) rt::printf("PASS hcfuzz.refusals_held\n");
    else rt::printf("hcfuzz: %lu calls accepted that must be refused (FAIL lines above)\n", g_refusal_failures);
    rt::printf("hcfuzz: done, %u failed\n", rt::g_failed_checks);
}
