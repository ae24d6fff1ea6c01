#pragma once
// Event channels: the PV interrupt mechanism. event_channel_op(cmd, arg)
// with one of the structures below; virtual IRQ numbers for bind_virq.

#include <cstddef>
#include <cstdint>

#include <abi/types.hpp>

namespace abi {

enum class EvtchnOp : uint32_t {
  bind_interdomain = 0,
  bind_virq = 1,
  bind_pirq = 2,
  close = 3,
  send = 4,
  status = 5,
  alloc_unbound = 6,
  bind_ipi = 7,
  bind_vcpu = 8,
  unmask = 9,
  reset = 10,
  init_control = 11,  // FIFO ABI
  expand_array = 12,  // FIFO ABI
  set_priority = 13,  // FIFO ABI
  reset_cont = 14,
};

// Virtual interrupt sources. Per-vCPU ones (timer, debug, xenoprof, xenpmu)
// are bound once per vCPU; global ones once per domain.
enum class Virq : uint32_t {
  timer = 0,       // per-vCPU: timer expiry / periodic tick
  debug = 1,       // per-vCPU: dump state
  console = 2,     // global, dom0: emergency console input
  dom_exc = 3,     // global, dom0: some domain changed state
  tbuf = 4,        // global, dom0: trace buffer records
  debugger = 6,    // global, dom0: a domain paused for debugging
  xenoprof = 7,    // per-vCPU
  con_ring = 8,    // global, dom0: hypervisor console ring has data
  pcpu_state = 9,  // global, dom0
  mem_event = 10,  // global, dom0
  argo = 11,       // global: Argo message notification
  enomem = 12,     // global, dom0: hypervisor low on memory
  xenpmu = 13,     // per-vCPU: PMU interrupt
  arch_0 = 16,     // x86: machine check
  arch_1 = 17,
  arch_2 = 18,
  arch_3 = 19,
  arch_4 = 20,
  arch_5 = 21,
  arch_6 = 22,
  arch_7 = 23,
};
inline constexpr uint32_t kNrVirqs = 24;

// Offer a port that domain remote_dom may later bind to.
struct EvtchnAllocUnbound {
  DomId dom;          // in: owner of the new port (kDomidSelf)
  DomId remote_dom;   // in
  EvtchnPort port;    // out
};
static_assert(sizeof(EvtchnAllocUnbound) == 8);
static_assert(offsetof(EvtchnAllocUnbound, remote_dom) == 2);
static_assert(offsetof(EvtchnAllocUnbound, port) == 4);

struct EvtchnBindInterdomain {
  DomId remote_dom;        // in
  EvtchnPort remote_port;  // in
  EvtchnPort local_port;   // out
};
static_assert(sizeof(EvtchnBindInterdomain) == 12);
static_assert(offsetof(EvtchnBindInterdomain, remote_port) == 4);
static_assert(offsetof(EvtchnBindInterdomain, local_port) == 8);

struct EvtchnBindVirq {
  uint32_t virq;    // in: Virq
  uint32_t vcpu;    // in
  EvtchnPort port;  // out
};
static_assert(sizeof(EvtchnBindVirq) == 12);
static_assert(offsetof(EvtchnBindVirq, vcpu) == 4);
static_assert(offsetof(EvtchnBindVirq, port) == 8);

inline constexpr uint32_t kBindPirqWillShare = 1u << 0;

struct EvtchnBindPirq {
  uint32_t pirq;
  uint32_t flags;   // kBindPirq*
  EvtchnPort port;  // out
};
static_assert(sizeof(EvtchnBindPirq) == 12);
static_assert(offsetof(EvtchnBindPirq, port) == 8);

struct EvtchnBindIpi {
  uint32_t vcpu;
  EvtchnPort port;  // out
};
static_assert(sizeof(EvtchnBindIpi) == 8);
static_assert(offsetof(EvtchnBindIpi, port) == 4);

struct EvtchnClose {
  EvtchnPort port;
};
static_assert(sizeof(EvtchnClose) == 4);

struct EvtchnSend {
  EvtchnPort port;
};
static_assert(sizeof(EvtchnSend) == 4);

enum class EvtchnStat : uint32_t {
  closed = 0,
  unbound = 1,
  interdomain = 2,
  pirq = 3,
  virq = 4,
  ipi = 5,
};

struct EvtchnStatus {
  DomId dom;         // in
  EvtchnPort port;   // in
  uint32_t status;   // out: EvtchnStat
  uint32_t vcpu;     // out: vCPU notified
  union {
    struct {
      DomId dom;
    } unbound;
    struct {
      DomId dom;
      EvtchnPort port;
    } interdomain;
    uint32_t pirq;
    uint32_t virq;
  } u;
};
static_assert(sizeof(EvtchnStatus) == 24);
static_assert(offsetof(EvtchnStatus, port) == 4);
static_assert(offsetof(EvtchnStatus, status) == 8);
static_assert(offsetof(EvtchnStatus, vcpu) == 12);
static_assert(offsetof(EvtchnStatus, u) == 16);
static_assert(offsetof(EvtchnStatus, u.interdomain.port) == 20);

struct EvtchnBindVcpu {
  EvtchnPort port;
  uint32_t vcpu;
};
static_assert(sizeof(EvtchnBindVcpu) == 8);

struct EvtchnUnmask {
  EvtchnPort port;
};
static_assert(sizeof(EvtchnUnmask) == 4);

struct EvtchnReset {
  DomId dom;
};
static_assert(sizeof(EvtchnReset) == 2);

// FIFO ABI setup: register a vCPU's control block (control_gfn, offset:
// 8-byte aligned, the block inside the page). link_bits is written back.
struct EvtchnInitControl {
  uint64_t control_gfn;
  uint32_t offset;
  uint32_t vcpu;
  uint8_t link_bits;  // out
  uint8_t _pad[7];
};
static_assert(sizeof(EvtchnInitControl) == 24);
static_assert(offsetof(EvtchnInitControl, offset) == 8);
static_assert(offsetof(EvtchnInitControl, vcpu) == 12);
static_assert(offsetof(EvtchnInitControl, link_bits) == 16);

// FIFO ABI: add one page of event words (kEvtchnFifoWordsPerPage ports).
struct EvtchnExpandArray {
  uint64_t array_gfn;
};
static_assert(sizeof(EvtchnExpandArray) == 8);

struct EvtchnSetPriority {
  EvtchnPort port;
  uint32_t priority;
};
static_assert(sizeof(EvtchnSetPriority) == 8);

// The FIFO ABI. Every port has a 32-bit event word, in pages the guest adds
// with expand_array; each vCPU has a control block (init_control) with one
// queue per priority: a READY bit and the port at the queue's HEAD. A queued
// port is LINKED and its LINK field names the next port of the queue (0:
// none). BUSY is set by the hypervisor on a tail word while it links a new
// port to it: the guest must not clear MASKED then.
inline constexpr uint32_t kEvtchnFifoPriorityMax = 0;       // highest
inline constexpr uint32_t kEvtchnFifoPriorityDefault = 7;
inline constexpr uint32_t kEvtchnFifoPriorityMin = 15;      // lowest
inline constexpr uint32_t kEvtchnFifoMaxQueues = kEvtchnFifoPriorityMin + 1;

using EventWord = uint32_t;
inline constexpr unsigned kEvtchnFifoPending = 31;   // bit numbers in an EventWord
inline constexpr unsigned kEvtchnFifoMasked = 30;
inline constexpr unsigned kEvtchnFifoLinked = 29;
inline constexpr unsigned kEvtchnFifoBusy = 28;
inline constexpr uint32_t kEvtchnFifoLinkBits = 17;
inline constexpr uint32_t kEvtchnFifoLinkMask = (1u << kEvtchnFifoLinkBits) - 1;
inline constexpr uint32_t kEvtchnFifoNrChannels = 1u << kEvtchnFifoLinkBits;
inline constexpr uint32_t kEvtchnFifoWordsPerPage = 4096 / sizeof(EventWord);

struct EvtchnFifoControlBlock {
  uint32_t ready;                        // bit per priority: its queue is not empty
  uint32_t _rsvd;
  uint32_t head[kEvtchnFifoMaxQueues];   // per priority: first port, 0 = none
};
static_assert(sizeof(EvtchnFifoControlBlock) == 72);
static_assert(offsetof(EvtchnFifoControlBlock, head) == 8);

// Argument of the old event_channel_op_compat hypercall (16): the command
// followed by the op structure in place.
struct EvtchnOpCompat {
  uint32_t cmd;  // EvtchnOp
  union {
    EvtchnAllocUnbound alloc_unbound;
    EvtchnBindInterdomain bind_interdomain;
    EvtchnBindVirq bind_virq;
    EvtchnBindPirq bind_pirq;
    EvtchnBindIpi bind_ipi;
    EvtchnClose close;
    EvtchnSend send;
    EvtchnStatus status;
    EvtchnBindVcpu bind_vcpu;
    EvtchnUnmask unmask;
  } u;
};
static_assert(sizeof(EvtchnOpCompat) == 28);
static_assert(offsetof(EvtchnOpCompat, u) == 4);

}  // namespace abi
