#include <core/sched.hpp>

namespace core {

Vcpu* sched_pick(Vcpu* current, bool resched) {
    if (current && !resched && current->state == VcpuState::runnable &&
        current->domain->state == DomainState::running)
        return current;

    // Round robin: start after the current domain so everyone gets a turn.
    unsigned start = current ? current->domain->id + 1u : 0u;
    for (unsigned i = 0; i < kMaxDomains; ++i) {
        Domain* d = domain_at((start + i) % kMaxDomains);
        if (d->state != DomainState::running) continue;
        for (auto& v : d->vcpu)
            if (v.state == VcpuState::runnable) return &v;
    }
    return nullptr;
}

void vcpu_block(Vcpu& v) {
    if (v.state == VcpuState::runnable) v.state = VcpuState::blocked;
}

void vcpu_wake(Vcpu& v) {
    if (v.state == VcpuState::blocked) v.state = VcpuState::runnable;
}

}  // namespace core
