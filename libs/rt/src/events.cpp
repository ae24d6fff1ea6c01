#include <rt/events.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/traps.hpp>

namespace rt {

namespace {
// Ports that fired and were not taken yet (the runtime's copy; the shared
// pending bits are cleared as soon as they are seen).
uint64_t g_fired[abi::kEvtchnWords];
void (*g_hook)();

void upcall(TrapFrame&) {
    if (g_hook) g_hook();
    abi::VcpuInfo& vi = vcpu_info();
    abi::SharedInfo& si = shared_info();
    __atomic_store_n(&vi.evtchn_upcall_pending, 0, __ATOMIC_SEQ_CST);
    uint64_t sel = __atomic_exchange_n(&vi.evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    while (sel) {
        unsigned w = static_cast<unsigned>(__builtin_ctzll(sel));
        sel &= sel - 1;
        uint64_t bits = __atomic_load_n(&si.evtchn_pending[w], __ATOMIC_SEQ_CST) &
                        ~__atomic_load_n(&si.evtchn_mask[w], __ATOMIC_SEQ_CST);
        __atomic_fetch_and(&si.evtchn_pending[w], ~bits, __ATOMIC_SEQ_CST);
        __atomic_fetch_or(&g_fired[w], bits, __ATOMIC_SEQ_CST);
    }
}
}  // namespace

void events_init() {
    set_event_handler(upcall);
    vcpu_info().evtchn_upcall_mask = 0;
}

void set_event_hook(void (*hook)()) { g_hook = hook; }

bool take_port(uint32_t port) {
    uint64_t bit = 1ull << (port % 64);
    return __atomic_fetch_and(&g_fired[port / 64], ~bit, __ATOMIC_SEQ_CST) & bit;
}

// The look at our set and the sleep must be one step for the upcall: an
// event handled between them would leave us asleep with its port taken and
// nothing pending. So events stay masked from the look to sched_op block,
// which unmasks them and returns at once if one is pending (its upcall then
// runs on the way back).
void wait_port(uint32_t port) {
    abi::VcpuInfo& vi = vcpu_info();
    for (;;) {
        __atomic_store_n(&vi.evtchn_upcall_mask, 1, __ATOMIC_SEQ_CST);
        if (take_port(port)) break;
        sched_op(abi::SchedOp::block);
    }
    __atomic_store_n(&vi.evtchn_upcall_mask, 0, __ATOMIC_SEQ_CST);
    // Events of other ports that came while masked: delivered now (any
    // hypercall returns through the upcall when one is pending).
    if (__atomic_load_n(&vi.evtchn_upcall_pending, __ATOMIC_SEQ_CST)) hypercall(abi::Hypercall::xen_version, 0);
}

namespace {

// Takes port's event, whether the upcall moved it to our set or it is still
// pending in shared info (a masked port). Delivery is masked by the caller.
bool take_event(uint32_t port) {
    abi::SharedInfo& si = shared_info();
    uint64_t bit = 1ull << (port % 64);
    bool pending = __atomic_fetch_and(&si.evtchn_pending[port / 64], ~bit, __ATOMIC_SEQ_CST) & bit;
    return take_port(port) || pending;
}

}  // namespace

uint64_t wait_ports(const uint32_t* ports, unsigned n, uint64_t deadline) {
    abi::VcpuInfo& vi = vcpu_info();
    if (n > 64) n = 64;
    uint8_t was = __atomic_exchange_n(&vi.evtchn_upcall_mask, 1, __ATOMIC_SEQ_CST);
    auto take_any = [&] {
        uint64_t fired = 0;
        for (unsigned i = 0; i < n; ++i)
            if (take_event(ports[i])) fired |= 1ull << i;
        return fired;
    };
    uint64_t fired = take_any();
    if (!fired && !(deadline && now_ns() >= deadline)) {
        // Returns at once if one of them is pending already.
        abi::SchedPoll p{ptr(ports), n, deadline};
        sched_op(abi::SchedOp::poll, &p);
        fired = take_any();
    }
    __atomic_store_n(&vi.evtchn_upcall_mask, was, __ATOMIC_SEQ_CST);
    // Other ports' events that came meanwhile: delivered now.
    if (!was && __atomic_load_n(&vi.evtchn_upcall_pending, __ATOMIC_SEQ_CST)) hypercall(abi::Hypercall::xen_version, 0);
    return fired;
}

}  // namespace rt
