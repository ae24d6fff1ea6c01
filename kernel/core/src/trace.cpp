// The kernel's trace buffers (core/trace.hpp). One CPU today: every record
// goes to buffer 0, with nothing to lock (the hypervisor is not preempted
// while it writes one). With SMP each CPU writes its own buffer only.

#include <core/budget.hpp>
#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/log.hpp>
#include <core/platform.hpp>
#include <core/trace.hpp>

#include <abi/errno.hpp>

namespace core {

bool g_trace_on = false;

namespace {

// The kinds a start asked for (a bit per abi::TraceKind): others are not
// written. Written by trace_ctl only.
uint64_t g_trace_kinds = abi::kTraceKindsAll;

constexpr long err(abi::Errno e) { return abi::neg(e); }

constexpr uint32_t kIdleVcpu = uint32_t(abi::kTraceIdle) << 16;
constexpr uint32_t kUnknownVcpu = uint32_t(abi::kTraceUnknown) << 16;

// A CPU's ring. Invariant: record n (counting from the last start) is
// rec[n % kTraceRecords] while head - n <= kTraceRecords; head only grows
// until the next start.
struct Ring {
    abi::TraceRecord rec[abi::kTraceRecords];
    uint64_t head = 0;                  // records written since the start
    uint32_t last_run = kUnknownVcpu;   // domain << 16 | vcpu last recorded running
};
Ring g_rings[kTraceCpus];

// This CPU's index: 0 while Moat runs on one (issue 12 gives the core one).
unsigned this_cpu_index() { return 0; }

uint32_t run_of(const Vcpu* v) { return v ? uint32_t(v->domain->id) << 16 | (v->id & 0xFFFF) : kIdleVcpu; }

}  // namespace

unsigned trace_cpus() { return 1; }

void trace_put(abi::TraceKind kind, uint16_t domain, uint16_t vcpu, uint64_t arg0, uint64_t arg1, uint64_t time_ns) {
    if (!(g_trace_kinds & (uint64_t(1) << unsigned(kind)))) return;
    unsigned cpu = this_cpu_index();
    Ring& r = g_rings[cpu];
    abi::TraceRecord& x = r.rec[r.head % abi::kTraceRecords];
    x = abi::TraceRecord{time_ns, uint8_t(kind), uint8_t(cpu), domain, vcpu, 0, arg0, arg1};
    ++r.head;
}

void trace_sched_slow(const Vcpu* next) {
    Ring& r = g_rings[this_cpu_index()];
    uint32_t now = run_of(next);
    if (now == r.last_run) return;
    trace_put(abi::TraceKind::sched, uint16_t(now >> 16), uint16_t(now), r.last_run >> 16, r.last_run & 0xFFFF,
              platform::now_ns());
    r.last_run = now;
}

void trace_event_slow(uint16_t receiver, uint32_t port) {
    trace_put(abi::TraceKind::event, receiver, 0, port, 0, platform::now_ns());
}

void trace_grant_slow(const Vcpu& v, uint64_t cmd, uint64_t count) {
    trace_put(abi::TraceKind::grant, v.domain->id, uint16_t(v.id), cmd, count, platform::now_ns());
}

long trace_ctl(Vcpu& v, abi::DomctlTrace& t) {
    Domain& d = *v.domain;
    auto op = static_cast<abi::TraceCtl>(t.op);
    if (op == abi::TraceCtl::mark) {
        // Anyone, in its own name: as cheap as a record, and bounded by the
        // ring like every other record (the oldest goes).
        if (!g_trace_on) return 1;
        trace_put(abi::TraceKind::mark, d.id, uint16_t(v.id), t.arg0, t.arg1, platform::now_ns());
        return 0;
    }
    if (op != abi::TraceCtl::start && op != abi::TraceCtl::read && op != abi::TraceCtl::stop)
        return err(abi::Errno::einval);
    if (!caps::holds_type(d, cap::Type::trace, cap::right::use)) {
        log_for(d, "domain %u: trace %u refused: no Trace capability", d.id, t.op);
        return err(abi::Errno::eperm);
    }
    t.cpus = trace_cpus();
    switch (op) {
    case abi::TraceCtl::start:
        if (t.arg0 & ~abi::kTraceKindsAll) return err(abi::Errno::einval);
        g_trace_kinds = t.arg0 ? t.arg0 : abi::kTraceKindsAll;
        // Nothing to clear but the counts: a record past head is never read.
        for (Ring& r : g_rings) {
            r.head = 0;
            r.last_run = kUnknownVcpu;
        }
        g_trace_on = true;
        // The timing wrapper only when hypercalls are wanted: the rest cost
        // nothing more than with tracing off.
        hypercall_trace(g_trace_kinds & (uint64_t(1) << unsigned(abi::TraceKind::hypercall)));
        trace_sched_slow(&v);   // who runs now: the caller
        return 0;
    case abi::TraceCtl::stop:
        g_trace_on = false;
        hypercall_trace(false);
        return 0;
    default:
        break;
    }
    // Read. Decode: every argument checked before anything is copied.
    if (t.cpu >= trace_cpus()) return err(abi::Errno::einval);
    if (t.len < sizeof(abi::TraceRecord)) return err(abi::Errno::einval);
    const Ring& r = g_rings[t.cpu];
    if (t.cursor > r.head) return err(abi::Errno::einval);   // a record not yet written
    uint64_t oldest = r.head > abi::kTraceRecords ? r.head - abi::kTraceRecords : 0;
    uint64_t from = t.cursor < oldest ? oldest : t.cursor;
    uint64_t n = r.head - from;
    if (n > t.len / sizeof(abi::TraceRecord)) n = t.len / sizeof(abi::TraceRecord);
    if (n > abi::kTraceReadMax) n = abi::kTraceReadMax;
    uint64_t bytes = n * sizeof(abi::TraceRecord);
    if (t.buf + bytes < t.buf) return err(abi::Errno::efault);
    // Invoke: at most two pieces (the ring wraps), 8 KiB at most.
    v.work.charge(uint32_t(bytes / 4096 + 1) * cost::kPage);
    uint64_t at = from % abi::kTraceRecords;
    uint64_t first = n < abi::kTraceRecords - at ? n : abi::kTraceRecords - at;
    if (first && !platform::copy_to_guest(t.buf, &r.rec[at], first * sizeof(abi::TraceRecord)))
        return err(abi::Errno::efault);
    if (n > first &&
        !platform::copy_to_guest(t.buf + first * sizeof(abi::TraceRecord), &r.rec[0],
                                 (n - first) * sizeof(abi::TraceRecord)))
        return err(abi::Errno::efault);
    t.lost = from - t.cursor;
    t.cursor = from + n;
    t.count = uint32_t(n);
    return 0;
}

}  // namespace core
