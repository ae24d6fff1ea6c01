#pragma once
// Guest time: the per-vCPU one-shot timer of set_timer_op (delivered as
// VIRQ_TIMER) and the system time a guest reads from its vcpu_time_info.

#include <cstdint>

namespace core {

struct Vcpu;

// Publishes the current system time and TSC scale in the vCPU's
// vcpu_time_info (the pvclock protocol: version odd while it changes).
void publish_time(Vcpu& v);

// The same, only if what the vCPU has is over a second old. System time is a
// fixed linear function of the TSC, so a guest extrapolates correctly from
// any published pair; republishing only bounds rounding drift. Cheap enough
// for every context switch.
void refresh_time(Vcpu& v);

// Arms the vCPU's one-shot timer for system time `deadline` (0: none); one
// already due fires at once (set_timer_op, VCPUOP_set_singleshot_timer).
void set_oneshot_timer(Vcpu& v, uint64_t deadline);

// Fires every expired vCPU timer, one-shot and periodic (VIRQ_TIMER).
// Called on each timer tick.
void expire_timers(uint64_t now_ns);

// Is any vCPU waiting on a timer? (Then an idle CPU has something to wait for.)
bool timers_armed();

}  // namespace core
