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

constexpr unsigned kMaxEvtchnPorts = 1024;   // of the 4096 the 2-level ABI can name

enum class ChannelState : uint8_t { free, unbound, interdomain, virq, pirq, ipi };

struct Channel {
    ChannelState state = ChannelState::free;
    uint8_t virq = 0;
    uint16_t remote_dom = 0;     // unbound: who may bind; interdomain: the peer
    uint32_t remote_port = 0;    // interdomain: the peer's port
};

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
