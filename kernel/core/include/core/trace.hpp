#pragma once
// The kernel's trace buffers (abi/trace.hpp, docs/hypercalls.md "trace"): a
// ring of fixed 32-byte records per physical CPU, the oldest overwritten,
// filled only while tracing is started. Off, every hook costs one
// predictable branch on g_trace_on (the hypercall path not even that: it
// switches dispatch tables, hypercall.cpp).
//
// Start, read and stop need the Trace capability (domctl trace); a mark in
// the caller's own name needs nothing. No kernel frame is ever mapped into a
// domain: a read copies whole records out, a bounded number per call, under
// the caller's budget.

#include <cstdint>

#include <abi/trace.hpp>

namespace core {

struct Vcpu;
struct Domain;

// Storage per CPU for the kernel's CPU limit (arch::kMaxCpus, which
// entry_c.cpp checks against this), of which trace_cpus() run now.
constexpr unsigned kTraceCpus = 8;

// Whether recording is on. Written by trace_ctl only.
extern bool g_trace_on;

// The buffers in use: the CPUs running (one today; issue 12 brings more).
unsigned trace_cpus();

// One record into this CPU's ring (tracing must be on: the hooks check).
void trace_put(abi::TraceKind kind, uint16_t domain, uint16_t vcpu, uint64_t arg0, uint64_t arg1, uint64_t time_ns);

// Hooks: each a branch when tracing is off.
// The scheduler picked `next` (nullptr: the CPU idles); recorded only when
// it differs from the last one recorded on this CPU.
void trace_sched_slow(const Vcpu* next);
inline void trace_sched(const Vcpu* next) {
    if (g_trace_on) [[unlikely]]
        trace_sched_slow(next);
}
// An event made pending for domain `receiver` on `port`.
void trace_event_slow(uint16_t receiver, uint32_t port);
inline void trace_event(uint16_t receiver, uint32_t port) {
    if (g_trace_on) [[unlikely]]
        trace_event_slow(receiver, port);
}
// A grant-table operation `cmd` of `count` entries by the running vCPU's domain.
void trace_grant_slow(const Vcpu& v, uint64_t cmd, uint64_t count);
inline void trace_grant(const Vcpu& v, uint64_t cmd, uint64_t count) {
    if (g_trace_on) [[unlikely]]
        trace_grant_slow(v, cmd, count);
}

// domctl trace (DomctlCmd::trace): checks every field of `t` (the caller's,
// copied in), then starts, reads, stops or marks. 0, 1 (a mark while not
// tracing), or -errno: EPERM without the Trace capability (start, read,
// stop), EINVAL for an unknown op, a cpu not below trace_cpus(), a cursor
// past the newest record or a length below one record, EFAULT when the
// buffer cannot be written. `t` carries the outputs back.
[[nodiscard]] long trace_ctl(Vcpu& v, abi::DomctlTrace& t);

// Tells hypercall dispatch to time and record every call (hypercall.cpp).
void hypercall_trace(bool on);

}  // namespace core
