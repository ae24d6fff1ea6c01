#pragma once
// Event channels, Xen's 2-level ABI: per-domain ports whose pending and mask
// bits live in the shared info page; a newly pending, unmasked port sets its
// word's bit in the vCPU's pending selector and the vCPU's upcall flag, and
// wakes the vCPU. A domain that registers a FIFO control block uses Xen's
// FIFO ABI from then on (core/evtchn_fifo.hpp): the functions below deliver
// to whichever the domain uses. Binding a port to another domain needs an
// Event capability naming that domain.

#include <cstdint>

namespace core {

struct Domain;
struct Vcpu;

// Every port the 2-level ABI can name (64 x 64 bits of the shared info page):
// a back-end serving thousands of front-ends needs one each.
constexpr unsigned kMaxEvtchnPorts = 4096;
// Ports come in buckets allocated as they are first used (Domain::evtchn_bucket).
constexpr unsigned kEvtchnBucketPorts = 32;
constexpr unsigned kEvtchnBuckets = kMaxEvtchnPorts / kEvtchnBucketPorts;
static_assert(kMaxEvtchnPorts % kEvtchnBucketPorts == 0);

enum class ChannelState : uint8_t { free, unbound, interdomain, virq, pirq, ipi };

struct Channel {
    ChannelState state = ChannelState::free;
    uint8_t virq = 0;
    // FIFO ABI (core/evtchn_fifo.hpp), per port as in Xen's struct evtchn:
    // its priority (set_priority; default 7 from when it is allocated) and
    // the queue (vCPU * 16 + priority) it was last linked on. Kept when the
    // port closes, as Xen keeps them.
    uint8_t priority = 0;
    uint8_t last_queue = 0;
    // FIFO ABI: raised while no event-array page held its word; raised again
    // when one does (Xen keeps this in the 2-level bitmap it leaves behind).
    bool fifo_saved = false;
    uint16_t remote_dom = 0;     // unbound: who may bind; interdomain: the peer
    uint32_t remote_port = 0;    // interdomain: the peer's port
};
static_assert(sizeof(Channel) == 12);

// A virtual IRQ raised per vCPU (timer, debug, ...) rather than for the
// domain (Xen's virq_is_global, x86: VIRQ_MCA is global).
bool virq_is_per_vcpu(uint32_t virq);

// Marks `port` pending in `d` and notifies its vCPU as the ABI says.
void evtchn_set_pending(Domain& d, uint32_t port);

// Whether `port` of `d` is pending (masked or not), in the ABI it uses.
bool evtchn_is_pending(const Domain& d, uint32_t port);

// Raises a virtual IRQ on a vCPU, if its domain bound a port to it.
void send_virq(Vcpu& v, uint32_t virq);

// Closes every port of a dying domain; interdomain peers see their port
// become unbound, as if the domain had closed it. Gives back the frame
// references of its FIFO control blocks and event array.
void evtchn_destroy(Domain& d);

// d's interdomain `port` is closing: the peer's end of the channel (if it
// still is that, whatever state the peer is in) becomes unbound, bindable
// again by d.
void evtchn_unlink_peer(Domain& d, uint32_t port);

}  // namespace core
