#include <rt/events.hpp>
#include <rt/rt.hpp>
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

void wait_port(uint32_t port) {
    while (!take_port(port)) sched_op(abi::SchedOp::block);
}

}  // namespace rt
