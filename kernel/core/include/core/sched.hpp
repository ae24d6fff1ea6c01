#pragma once
// Choosing which vCPU runs: the credit scheduler (core/credit.hpp) over the
// vCPUs of running, unpaused domains. A vCPU is schedulable when its state is
// runnable and its domain is neither paused nor dying; these functions keep
// the scheduler's view in step with that.

#include <core/domain.hpp>

namespace core {

// The vCPU to run next on this CPU: `current` again if nothing asked for a
// reschedule and it may go on, otherwise the scheduler's choice. nullptr
// when nothing can run.
Vcpu* sched_pick(Vcpu* current, bool resched);

// Timer tick: accounting, expired guest timers; true if the running vCPU
// should be preempted.
bool sched_tick();

void sched_add(Vcpu& v);                      // a new vCPU (not yet runnable)
// The arch code switched this CPU from `prev` (may be null) to `next` and
// loaded next's address space: runstates, and next's runstate area.
void vcpu_switched(Vcpu* prev, Vcpu& next);
void sched_remove(Vcpu& v);                   // its domain is going away
void sched_set_params(Vcpu& v, uint32_t weight, uint32_t cap_pct);
uint64_t sched_runtime_ns(const Vcpu& v);     // CPU time it has had

void vcpu_start(Vcpu& v);                     // down -> runnable (built, context set)
void vcpu_block(Vcpu& v);                     // waits for an event
void vcpu_wake(Vcpu& v);                      // an event arrived
void vcpu_yield(Vcpu& v);
void domain_pause(Domain& d);
void domain_unpause(Domain& d);

}  // namespace core
