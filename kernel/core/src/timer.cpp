#include <core/domain.hpp>
#include <core/evtchn.hpp>
#include <core/hypercall.hpp>
#include <core/platform.hpp>
#include <core/sched.hpp>
#include <core/timer.hpp>

#include <abi/event_channel.hpp>

namespace core {

namespace {

// ns = ((tsc_delta << shift) * mul) >> 32 with mul < 2^32: the smallest
// shift that makes the shifted TSC rate exceed 1 GHz.
void tsc_scale(uint64_t khz, uint32_t* mul, int8_t* shift) {
    uint64_t hz = khz ? khz * 1000 : 1;
    int8_t s = 0;
    while (s < 32 && (hz << s) <= 1000000000ull) ++s;
    *shift = s;
    *mul = static_cast<uint32_t>((1000000000ull << 32) / (hz << s));
}

}  // namespace

void publish_time(Vcpu& v) {
    if (!v.info) return;
    abi::VcpuTimeInfo& t = v.info->time;
    // The TSC rate never changes after boot: scale it once.
    static uint64_t khz;
    static uint32_t mul;
    static int8_t shift;
    if (khz != platform::tsc_khz()) {
        khz = platform::tsc_khz();
        tsc_scale(khz, &mul, &shift);
    }
    uint32_t ver = t.version;
    __atomic_store_n(&t.version, ver | 1, __ATOMIC_SEQ_CST);
    t.tsc_timestamp = platform::tsc();
    t.system_time = platform::now_ns();
    t.tsc_to_system_mul = mul;
    t.tsc_shift = shift;
    __atomic_store_n(&t.version, (ver | 1) + 1, __ATOMIC_SEQ_CST);
}

void refresh_time(Vcpu& v) {
    static uint64_t one_second;   // in TSC ticks; the rate is fixed after boot
    if (!one_second) one_second = platform::tsc_khz() * 1000;
    if (v.info && platform::tsc() - v.info->time.tsc_timestamp > one_second) publish_time(v);
}

// Both walk the list of domains (those that exist), never the id space.
void expire_timers(uint64_t now) {
    for (Domain* d = domains_first(); d; d = d->next) {
        if (d->state != DomainState::running) continue;
        for (auto& v : d->vcpu) {
            if (v.timer_deadline && v.timer_deadline <= now) {
                v.timer_deadline = 0;
                send_virq(v, uint32_t(abi::Virq::timer));
            }
            if (v.periodic_period && v.periodic_next <= now) {
                // Missed periods are not made up for: one event, the next period from now.
                v.periodic_next = now + v.periodic_period;
                send_virq(v, uint32_t(abi::Virq::timer));
            }
            if (v.poll_deadline && v.poll_deadline <= now) {   // a poll timed out
                v.poll_deadline = 0;
                v.npoll = 0;
                vcpu_wake(v);
            }
        }
    }
}

bool timers_armed() {
    for (Domain* d = domains_first(); d; d = d->next) {
        if (d->state != DomainState::running) continue;
        for (auto& v : d->vcpu)
            if ((v.timer_deadline || v.poll_deadline || v.periodic_period) && v.state != VcpuState::down)
                return true;
    }
    return false;
}

void set_oneshot_timer(Vcpu& v, uint64_t deadline) {
    v.timer_deadline = deadline;
    if (deadline && deadline <= platform::now_ns()) {   // already due: fire now
        v.timer_deadline = 0;
        send_virq(v, uint32_t(abi::Virq::timer));
    }
}

int64_t hc_set_timer_op(Vcpu& v, Regs& r) {
    set_oneshot_timer(v, r.rdi);
    return 0;
}

}  // namespace core
