#pragma once
// Event channels from inside a domain: the runtime's upcall handler moves
// pending ports into a private set, which take_port() and wait_port() read.

#include <cstdint>

#include <abi/event_channel.hpp>
#include <abi/memory.hpp>
#include <rt/hypercall.hpp>

namespace rt {

// Registers the event upcall (replaces any handler set with set_event_handler)
// and unmasks event delivery.
void events_init();

// Called first thing in every event upcall (e.g. to timestamp it); null: none.
void set_event_hook(void (*hook)());

// True once if `port` fired since the last call.
bool take_port(uint32_t port);

// Blocks until `port` fires.
void wait_port(uint32_t port);

// Sleeps until one of `ports` (at most 64) fires or `deadline` (now_ns()'s
// clock; 0: none) passes. Returns which fired (bit i: ports[i]), 0 at the
// deadline; their events are taken, also those of masked ports (a device
// line not acknowledged yet) still pending in shared info. Event delivery is
// masked from the look at the ports to the sleep (sched_op poll), so an
// event between the two is not lost.
uint64_t wait_ports(const uint32_t* ports, unsigned n, uint64_t deadline);

inline long evtchn_op(abi::EvtchnOp op, void* arg) {
    return hypercall(abi::Hypercall::event_channel_op, uint64_t(op), ptr(arg));
}

// Port numbers, or a negative errno.
inline long alloc_unbound(uint16_t remote) {
    abi::EvtchnAllocUnbound a{abi::kDomidSelf, remote, 0};
    long r = evtchn_op(abi::EvtchnOp::alloc_unbound, &a);
    return r ? r : long(a.port);
}
inline long bind_interdomain(uint16_t remote, uint32_t remote_port) {
    abi::EvtchnBindInterdomain b{remote, remote_port, 0};
    long r = evtchn_op(abi::EvtchnOp::bind_interdomain, &b);
    return r ? r : long(b.local_port);
}
inline long notify(uint32_t port) {
    abi::EvtchnSend s{port};
    return evtchn_op(abi::EvtchnOp::send, &s);
}

}  // namespace rt

// The fired-port set, for domains that serve many ports and must learn
// which fired without testing each (after events_init; the same set that
// take_port takes from, so each fired port is taken once, by one of them).
namespace rt {

// Moves up to `cap` fired ports into `out`, lowest first within each word,
// and returns how many; the rest stay for the next call. Costs the ports
// that fired (and one look at a summary word), not the ports bound.
unsigned take_fired_ports(uint32_t* out, unsigned cap);
// Sleeps until a port fires; returns at once if one fired and was not taken.
void wait_fired_ports();

}  // namespace rt
