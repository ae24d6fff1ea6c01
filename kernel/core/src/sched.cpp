#include <core/credit.hpp>
#include <core/platform.hpp>
#include <core/sched.hpp>
#include <core/timer.hpp>
#include <core/trace.hpp>
#include <core/vcpu.hpp>

#include <cstddef>

namespace core {

namespace {

// One CPU today; one scheduler per CPU when there are more.
CreditScheduler g_credit;

Vcpu* vcpu_of(SchedEntity* e) {
    return e ? reinterpret_cast<Vcpu*>(reinterpret_cast<char*>(e) - offsetof(Vcpu, se)) : nullptr;
}

bool schedulable(const Vcpu& v) {
    return v.state == VcpuState::runnable && v.domain->state == DomainState::running && !v.domain->paused;
}

// What the scheduler was last told runs on this CPU.
SchedEntity* g_running;

}  // namespace

Vcpu* sched_pick(Vcpu* current, bool resched) {
    if (current && !resched && schedulable(*current) && g_running == &current->se) return current;
    uint64_t now = platform::now_ns();
    g_running = g_credit.pick(g_running, now);
    trace_sched(vcpu_of(g_running));   // a switch, or the CPU idling: recorded when it changes
    return vcpu_of(g_running);
}

bool sched_tick() {
    uint64_t now = platform::now_ns();
    expire_timers(now);
    return g_credit.tick(g_running, now);
}

void sched_add(Vcpu& v) { g_credit.add(v.se); }

void vcpu_switched(Vcpu* prev, Vcpu& next) {
    uint64_t now = platform::now_ns();
    if (prev && prev->state == VcpuState::runnable) runstate_change(*prev, abi::RunstateState::runnable, now);
    runstate_change(next, abi::RunstateState::running, now);
    runstate_publish(next);   // its address space is the loaded one now
}

void sched_remove(Vcpu& v) {
    g_credit.remove(v.se);
    if (g_running == &v.se) g_running = nullptr;
}

void sched_set_params(Vcpu& v, uint32_t weight, uint32_t cap_pct) {
    v.se.weight = weight ? weight : SchedEntity::kDefaultWeight;
    v.se.cap = cap_pct;
}

uint64_t sched_runtime_ns(const Vcpu& v) { return v.se.runtime_ns; }

void vcpu_start(Vcpu& v) {
    v.state = VcpuState::runnable;
    uint64_t now = platform::now_ns();
    runstate_change(v, abi::RunstateState::runnable, now);
    if (schedulable(v)) g_credit.wake(v.se, now);
    platform::request_reschedule();
}

void vcpu_block(Vcpu& v) {
    if (v.state != VcpuState::runnable) return;
    bool was = schedulable(v);
    v.state = VcpuState::blocked;
    uint64_t now = platform::now_ns();
    runstate_change(v, abi::RunstateState::blocked, now);
    if (was) g_credit.block(v.se, now);
    platform::request_reschedule();
}

void vcpu_wake(Vcpu& v) {
    if (v.state != VcpuState::blocked) return;
    v.state = VcpuState::runnable;
    uint64_t now = platform::now_ns();
    runstate_change(v, abi::RunstateState::runnable, now);
    if (schedulable(v)) g_credit.wake(v.se, now);
    platform::request_reschedule();   // a woken vCPU should run soon
}

void vcpu_yield(Vcpu& v) {
    g_credit.yield(v.se);
    platform::request_reschedule();
}

void domain_pause(Domain& d) {
    bool was = schedulable(d.vcpu[0]);
    ++d.paused;
    if (was) g_credit.block(d.vcpu[0].se, platform::now_ns());
    platform::request_reschedule();
}

void domain_unpause(Domain& d) {
    if (d.paused == 0) return;
    --d.paused;
    if (schedulable(d.vcpu[0])) g_credit.wake(d.vcpu[0].se, platform::now_ns());
    platform::request_reschedule();
}

}  // namespace core
