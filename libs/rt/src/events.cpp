#include <rt/events.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/traps.hpp>

namespace rt {

namespace {
static_assert(abi::kEvtchnWords <= 64, "one summary bit per word of ports");

// Ports that fired and were not taken yet (the runtime's copy; the shared
// pending bits are cleared as soon as they are seen), and a summary word
// with a bit for each word of g_fired that may hold one, so a server with
// thousands of ports learns which fired at a cost in those that did
// (take_fired_ports). The upcall sets a port's bit, then its word's
// summary bit; take_fired_ports clears the summary bit first, then the
// word: at worst a summary bit stands over an empty word (take_port takes
// bits without touching the summary), never a fired port without one.
uint64_t g_fired[abi::kEvtchnWords];
uint64_t g_fired_summary;
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
        if (!bits) continue;
        __atomic_fetch_and(&si.evtchn_pending[w], ~bits, __ATOMIC_SEQ_CST);
        __atomic_fetch_or(&g_fired[w], bits, __ATOMIC_SEQ_CST);
        __atomic_fetch_or(&g_fired_summary, 1ull << w, __ATOMIC_SEQ_CST);
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

unsigned take_fired_ports(uint32_t* out, unsigned cap) {
    unsigned n = 0;
    uint64_t sum = __atomic_exchange_n(&g_fired_summary, 0, __ATOMIC_SEQ_CST);
    while (sum) {
        unsigned w = static_cast<unsigned>(__builtin_ctzll(sum));
        sum &= sum - 1;
        uint64_t bits = __atomic_exchange_n(&g_fired[w], 0, __ATOMIC_SEQ_CST);
        while (bits && n < cap) {
            unsigned b = static_cast<unsigned>(__builtin_ctzll(bits));
            bits &= bits - 1;
            out[n++] = w * 64 + b;
        }
        if (bits) {
            // No room: what is left stays in the set for the next call.
            __atomic_fetch_or(&g_fired[w], bits, __ATOMIC_SEQ_CST);
            __atomic_fetch_or(&g_fired_summary, (1ull << w) | sum, __ATOMIC_SEQ_CST);
            break;
        }
    }
    return n;
}

// As wait_port: delivery is masked from the look at the set to sched_op
// block, which unmasks it and returns at once if an event is pending (its
// upcall runs on the way back), so nothing fired after the look is slept
// through.
void wait_fired_ports() {
    abi::VcpuInfo& vi = vcpu_info();
    __atomic_store_n(&vi.evtchn_upcall_mask, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&g_fired_summary, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&vi.evtchn_upcall_mask, 0, __ATOMIC_SEQ_CST);
        return;
    }
    sched_op(abi::SchedOp::block);
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
