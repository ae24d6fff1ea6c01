#pragma once
// Choosing which vCPU runs. Round robin over runnable vCPUs for now; the
// credit scheduler with weights and caps replaces the policy, not this API.

#include <core/domain.hpp>

namespace core {

// The vCPU to run next on this CPU: `current` again if it is still runnable and
// `resched` is false, otherwise the next runnable one after it. nullptr when
// nothing is runnable.
Vcpu* sched_pick(Vcpu* current, bool resched);

void vcpu_block(Vcpu& v);
void vcpu_wake(Vcpu& v);

}  // namespace core
