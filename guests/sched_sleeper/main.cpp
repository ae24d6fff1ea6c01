// An I/O-like domain for the scheduler test: sleeps on its timer (VIRQ_TIMER,
// an event) again and again while CPU-bound domains run, and checks each
// event is delivered and wakes it promptly (the wake-up boost).

#include <rt/console.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/traps.hpp>

#include <abi/event_channel.hpp>

namespace {
volatile unsigned g_events;

void on_event(rt::TrapFrame&) {
    abi::VcpuInfo& vi = rt::vcpu_info();
    vi.evtchn_upcall_pending = 0;
    uint64_t sel = __atomic_exchange_n(&vi.evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    for (unsigned w = 0; w < 64; ++w)
        if (sel & (1ull << w)) __atomic_exchange_n(&rt::shared_info().evtchn_pending[w], 0, __ATOMIC_SEQ_CST);
    g_events = g_events + 1;
}
}  // namespace

void rt::main() {
    constexpr unsigned kRounds = 40;
    constexpr uint64_t kPeriod = 10'000'000;   // 10 ms
    rt::set_event_handler(on_event);
    abi::EvtchnBindVirq b{uint32_t(abi::Virq::timer), 0, 0};
    long r = rt::hypercall(abi::Hypercall::event_channel_op, uint64_t(abi::EvtchnOp::bind_virq), rt::ptr(&b));
    if (r != 0) {
        rt::printf("FAIL sleeper.bind_virq: %ld\n", r);
        return;
    }
    uint64_t worst = 0;
    unsigned woken = 0;
    for (unsigned i = 0; i < kRounds; ++i) {
        unsigned before = g_events;
        uint64_t deadline = rt::now_ns() + kPeriod;
        rt::set_timer(deadline);
        while (g_events == before) rt::sched_op(abi::SchedOp::block);
        uint64_t late = rt::now_ns() - deadline;
        if (late > worst) worst = late;
        ++woken;
        rt::printf("sleeper: event %u\n", i);
    }
    rt::printf("sleeper: %u timer events, worst wake-up %lu us after the deadline\n", woken, worst / 1000);
    if (woken == kRounds) rt::printf("PASS sleeper.events_delivered_under_load\n");

    // sched_op poll: waits for a port even while it is masked, and times out.
    abi::SharedInfo& si = rt::shared_info();
    uint32_t port = b.port;
    __atomic_fetch_or(&si.evtchn_mask[port / 64], 1ull << (port % 64), __ATOMIC_SEQ_CST);
    uint64_t deadline = rt::now_ns() + kPeriod;
    rt::set_timer(deadline);
    abi::SchedPoll poll{rt::ptr(&port), 1, 0};
    long pr = rt::sched_op(abi::SchedOp::poll, &poll);
    bool pending = __atomic_load_n(&si.evtchn_pending[port / 64], __ATOMIC_SEQ_CST) & (1ull << (port % 64));
    if (pr == 0 && pending && rt::now_ns() >= deadline) rt::printf("PASS sleeper.poll_wakes_on_masked_port\n");
    else rt::printf("FAIL sleeper.poll_wakes_on_masked_port: rc %ld pending %d\n", pr, int(pending));
    __atomic_fetch_and(&si.evtchn_pending[port / 64], ~(1ull << (port % 64)), __ATOMIC_SEQ_CST);

    uint64_t until = rt::now_ns() + kPeriod;
    abi::SchedPoll timed{rt::ptr(&port), 1, until};
    pr = rt::sched_op(abi::SchedOp::poll, &timed);
    if (pr == 0 && rt::now_ns() >= until) rt::printf("PASS sleeper.poll_times_out\n");
    else rt::printf("FAIL sleeper.poll_times_out: rc %ld\n", pr);
}
