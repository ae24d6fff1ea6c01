#pragma once
// The kernel's trace buffers (docs/hypercalls.md "trace", docs/control.md
// "moat trace"): one ring of fixed 32-byte records per physical CPU, read by
// whoever holds the Trace capability through domctl trace (DomctlCmd::trace)
// and marked by any domain in its own name. This is the one definition of a
// record: the kernel writes it, the toolstack copies it as bytes, and the
// host's decoder (tools/moat/trace_cli.cpp) reads it.

#include <cstddef>
#include <cstdint>

#include <abi/moat.hpp>
#include <abi/types.hpp>

namespace abi {

// The capability type of the right to start, read and stop tracing (cap::Type
// trace, as libs/cap numbers it).
inline constexpr CapType kCapTypeTrace = CapType::trace;

// What a record says. Every record has the time it was taken (the kernel's
// system time, ns since boot, as guests' vcpu_time_info computes it), the
// CPU, and the domain and vCPU it is about.
enum class TraceKind : uint8_t {
  none = 0,
  // The CPU switched to `domain`/`vcpu` at `time_ns` (domain kTraceIdle: to
  // nothing, the CPU idles). arg0: the domain it ran before (kTraceIdle, or
  // kTraceUnknown for the first record after a start), arg1: that one's vCPU.
  sched = 1,
  // A hypercall of `domain`: it started at time_ns and took arg1 ns. arg0:
  // the hypercall's number (bits 0-15) and its result (bits 32-63, as int32:
  // 0, a positive count or -errno; a continued call shows its own number).
  hypercall = 2,
  // An event was made pending for `domain` (the receiver) on port arg0.
  event = 3,
  // `domain` made a grant-table operation: arg0 the command (GnttabOp), arg1
  // the count of entries it asked for (before any check).
  grant = 4,
  // A mark a domain made in its own name (domctl trace mark): arg0 and arg1
  // are its own (back-ends: kMarkNetTx.. below, and how many requests).
  mark = 5,
};
inline constexpr uint16_t kTraceIdle = 0x7FFF;      // Xen's DOMID_IDLE
inline constexpr uint16_t kTraceUnknown = 0x7FF4;   // Xen's DOMID_INVALID

struct TraceRecord {
  uint64_t time_ns;
  uint8_t kind;      // TraceKind
  uint8_t cpu;       // the physical CPU whose buffer holds it
  uint16_t domain;
  uint16_t vcpu;
  uint16_t pad;      // 0
  uint64_t arg0, arg1;
};
static_assert(sizeof(TraceRecord) == 32);
static_assert(offsetof(TraceRecord, kind) == 8);
static_assert(offsetof(TraceRecord, domain) == 10);
static_assert(offsetof(TraceRecord, arg0) == 16);

// Back-ends' marks (TraceKind::mark arg0): a batch of requests served; arg1
// is how many.
inline constexpr uint64_t kMarkNetTx = 1;    // netback: packets a frontend sent
inline constexpr uint64_t kMarkNetRx = 2;    // netback: packets delivered to a frontend
inline constexpr uint64_t kMarkBlk = 3;      // blkback: block requests

// domctl trace (MoatDomctl.u, DomctlCmd::trace). `domain` is unused.
enum class TraceCtl : uint32_t {
  start = 1,   // Trace capability: clears every buffer, records from now on (the kinds
               // in arg0: a bit per TraceKind, 1 << sched ...; 0 all); out: cpus
  read = 2,    // Trace capability: records of buffer `cpu` from `cursor` into buf
  stop = 3,    // Trace capability: stops recording (what was recorded stays readable)
  mark = 4,    // anyone: a mark record in the caller's name (arg0, arg1); 1 when not tracing
};

struct DomctlTrace {
  uint32_t op;         // TraceCtl
  uint32_t cpu;        // read: which buffer (below cpus)
  uint64_t cursor;     // read: in, the first record wanted (0 after a start); out, the next one
  GuestHandle buf;     // read: where the records go
  uint64_t len;        // read: bytes at buf (whole records are copied: at least 32)
  uint64_t lost;       // read: out, records overwritten before they were read
  uint32_t cpus;       // start, read: out, how many buffers there are
  uint32_t count;      // read: out, how many records were copied
  uint64_t arg0, arg1; // mark
};
static_assert(sizeof(DomctlTrace) == 64);
static_assert(offsetof(DomctlTrace, buf) == 16);
static_assert(offsetof(DomctlTrace, arg0) == 48);

// A buffer holds the last kTraceRecords records of its CPU; a read copies at
// most kTraceReadMax of them (a bounded amount of work per call).
inline constexpr uint32_t kTraceRecords = 2048;
inline constexpr uint32_t kTraceReadMax = 256;
// Every kind a start may name (bits 1 to 5).
inline constexpr uint64_t kTraceKindsAll = 0x3E;

}  // namespace abi
