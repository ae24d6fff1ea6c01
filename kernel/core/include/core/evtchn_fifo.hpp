#pragma once
// Event channels, Xen's FIFO ABI (public/event_channel.h; the behaviour of
// Xen's common/event_fifo.c). With EVTCHNOP_init_control the guest gives the
// hypervisor a control block per vCPU (a READY bit and the HEAD port of one
// queue per priority); with EVTCHNOP_expand_array, pages of 32-bit event
// words (abi::kEvtchnFifo*: PENDING, MASKED, LINKED, BUSY, a 17-bit LINK).
// Raising a port sets PENDING in its word and, if the port is neither masked
// nor already linked, links it at the tail of its priority's queue on its
// vCPU: into the LINK field of the queue's tail word, or into the HEAD word
// when the queue was empty (then READY is set and the upcall raised). The
// first init_control switches the domain from the 2-level ABI for good.
//
// Every word the guest can write is hostile. The hypervisor keeps each
// queue's tail itself (a port it linked, always one with an event word),
// writes only the LINK field of that one word and the HEAD word of the
// control block, and never reads a LINK or a HEAD: it follows no chain, so no
// value the guest wrote is ever used as an index. The guest may clear LINKED
// on the tail at any time (it consumed the queue): linking then falls back to
// writing HEAD. Words change only by atomic operations; a compare-and-swap
// that keeps losing to the guest gives up after a few tries, with BUSY set
// on the tail meanwhile (the guest must not clear MASKED while it is set),
// so no loop waits for the guest.

#include <cstdint>

#include <abi/event_channel.hpp>
#include <core/evtchn.hpp>
#include <core/frame_table.hpp>

namespace core {

struct Domain;
struct Vcpu;

// vCPUs per domain (Domain::vcpu; checked in evtchn_fifo.cpp).
constexpr unsigned kFifoVcpus = 1;
// Event-array pages that cover every port a domain can have.
constexpr unsigned kFifoMaxArrayPages =
    (kMaxEvtchnPorts + abi::kEvtchnFifoWordsPerPage - 1) / abi::kEvtchnFifoWordsPerPage;

// A domain's FIFO event-channel state (Domain::fifo).
//
// Invariants:
//  - `active` is false until the domain's first successful init_control and
//    stays true until evtchn_fifo_destroy; while it is false every other
//    field is as default-constructed.
//  - control[v].mfn != 0 exactly when vCPU v registered a control block;
//    array_mfn[i] != 0 exactly for i < array_pages. Each such frame is the
//    domain's and holds one general and one `writable` type reference for
//    being here (so it cannot become a page table or leave the domain), given
//    back by evtchn_fifo_destroy only.
//  - array_pages never shrinks while active; a port has an event word exactly
//    when it is below array_pages * kEvtchnFifoWordsPerPage.
//  - control[v].tail[q] is 0 or a port with an event word.
//  - a port's Channel::fifo_saved is set only while it has no event word
//    (raised before the page that holds its word was added).
// Locking: none of its own, like the rest of a domain's event-channel state:
// it changes only on the one CPU with interrupts off (hypercalls, timer and
// IRQ delivery all run so). Several CPUs (issue 12) need a per-domain event
// lock around every function below.
struct EvtchnFifo {
    struct Control {
        Mfn mfn = 0;                                     // 0: not registered
        uint32_t offset = 0;                             // of the block in the frame
        uint32_t tail[abi::kEvtchnFifoMaxQueues] = {};   // last port linked per priority, 0 = none
    };
    bool active = false;
    Control control[kFifoVcpus];
    Mfn array_mfn[kFifoMaxArrayPages] = {};
    unsigned array_pages = 0;
    // Per-port priority, last queue and saved pending bit live in the
    // port's Channel (as in Xen's struct evtchn), so a domain pays for them
    // only in the buckets it uses.
};

// EVTCHNOP_init_control for `v`'s domain: checks everything (vcpu -ENOENT;
// offset -EINVAL; already registered -EINVAL; the frame the domain's own
// and able to take a writable type -EINVAL), then registers the block; the
// first one switches the domain to FIFO (bound ports' pending state carried
// over). Sets a.link_bits. Costs at most kFifoInitCost budget units.
[[nodiscard]] long evtchn_fifo_init_control(Vcpu& v, abi::EvtchnInitControl& a);
// EVTCHNOP_expand_array: adds one page of event words (-EOPNOTSUPP before
// init_control, -ENOSPC when all ports are covered, -EINVAL for a frame as
// above) and raises the ports that became pending while they had no word.
// Costs at most kFifoExpandCost.
[[nodiscard]] long evtchn_fifo_expand_array(Vcpu& v, uint64_t gfn);
// EVTCHNOP_set_priority: port < kMaxEvtchnPorts -EINVAL, FIFO -ENOSYS,
// priority <= 15 -EINVAL. Applies to the next time the port is linked.
[[nodiscard]] long evtchn_fifo_set_priority(Domain& d, uint32_t port, uint32_t priority);

// The most budget units the two set-up calls take (the caller continues the
// hypercall first when fewer are left).
constexpr uint32_t kFifoInitCost = 2 + kMaxEvtchnPorts / 16;
constexpr uint32_t kFifoExpandCost = 2 + kMaxEvtchnPorts / 16 + 2 * abi::kEvtchnFifoWordsPerPage;

// Delivery in FIFO mode (d.fifo.active; port < kMaxEvtchnPorts).
// Raises `port`: true when it was not pending before (pollers may wake).
bool evtchn_fifo_set_pending(Domain& d, uint32_t port);
// EVTCHNOP_unmask: clears MASKED and links the port if it is pending.
void evtchn_fifo_unmask(Domain& d, uint32_t port);
// A port was just allocated: the default priority (Xen's evtchn_fifo_init).
void evtchn_fifo_port_init(Domain& d, uint32_t port);
// A port is being closed: no longer pending (its word, or the saved state).
void evtchn_fifo_port_close(Domain& d, uint32_t port);
bool evtchn_fifo_is_pending(const Domain& d, uint32_t port);

// Gives back every frame reference FIFO holds and returns the domain to the
// 2-level ABI (its state default again). evtchn_destroy calls it.
void evtchn_fifo_destroy(Domain& d);

}  // namespace core
