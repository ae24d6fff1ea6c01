#pragma once
// System time (ns since the hypervisor started) from the vcpu_time_info the
// hypervisor publishes in shared info (the pvclock protocol), and guest
// timers (set_timer_op, delivered as VIRQ_TIMER).

#include <cstdint>

#include <abi/shared_info.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>

namespace rt {

inline uint64_t rdtsc() {
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t(hi) << 32) | lo;
}

inline uint64_t now_ns() {
    const volatile abi::VcpuTimeInfo& t = vcpu_info().time;
    for (;;) {
        uint32_t v = t.version;
        asm volatile("" ::: "memory");
        uint64_t delta = rdtsc() - t.tsc_timestamp;
        int8_t shift = t.tsc_shift;
        uint64_t ns = t.system_time + static_cast<uint64_t>(
                                          (static_cast<unsigned __int128>(shift >= 0 ? delta << shift : delta >> -shift) *
                                           t.tsc_to_system_mul) >> 32);
        asm volatile("" ::: "memory");
        if (!(v & 1) && v == t.version) return ns;
    }
}

// Arms the one-shot timer for an absolute system time (0 cancels).
inline long set_timer(uint64_t deadline_ns) { return hypercall(abi::Hypercall::set_timer_op, deadline_ns); }

}  // namespace rt
