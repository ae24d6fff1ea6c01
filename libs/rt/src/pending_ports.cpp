// Which ports fired, without asking port by port (rt/events.hpp: the
// fired-port set). A server with thousands of ports (the XenStore domain,
// one per domain) must not test each of them on every wakeup: this upcall
// handler records fired ports in a two-level set, a summary word with one
// bit per word of Xen's 2-level event ABI (64 words of 64 ports), and
// take_fired_ports() empties it at a cost in the ports that fired.

#include <rt/events.hpp>
#include <rt/rt.hpp>
#include <rt/traps.hpp>

namespace rt {

namespace {

static_assert(abi::kEvtchnWords <= 64, "one summary bit per word of ports");

// Fired and not taken yet. The upcall sets a port's bit, then its word's
// summary bit; take_fired_ports clears the summary bit first, then the word:
// an upcall between the two leaves at worst a summary bit over an empty
// word, never a fired port without its summary bit.
uint64_t g_words[abi::kEvtchnWords];
uint64_t g_summary;

void upcall(TrapFrame&) {
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
        __atomic_fetch_or(&g_words[w], bits, __ATOMIC_SEQ_CST);
        __atomic_fetch_or(&g_summary, 1ull << w, __ATOMIC_SEQ_CST);
    }
}

}  // namespace

void fired_ports_init() {
    set_event_handler(upcall);
    vcpu_info().evtchn_upcall_mask = 0;
}

unsigned take_fired_ports(uint32_t* out, unsigned cap) {
    unsigned n = 0;
    uint64_t sum = __atomic_exchange_n(&g_summary, 0, __ATOMIC_SEQ_CST);
    while (sum) {
        unsigned w = static_cast<unsigned>(__builtin_ctzll(sum));
        sum &= sum - 1;
        uint64_t bits = __atomic_exchange_n(&g_words[w], 0, __ATOMIC_SEQ_CST);
        while (bits && n < cap) {
            unsigned b = static_cast<unsigned>(__builtin_ctzll(bits));
            bits &= bits - 1;
            out[n++] = w * 64 + b;
        }
        if (bits) {
            // No room: what is left stays in the set for the next call.
            __atomic_fetch_or(&g_words[w], bits, __ATOMIC_SEQ_CST);
            __atomic_fetch_or(&g_summary, (1ull << w) | sum, __ATOMIC_SEQ_CST);
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
    if (__atomic_load_n(&g_summary, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&vi.evtchn_upcall_mask, 0, __ATOMIC_SEQ_CST);
        return;
    }
    sched_op(abi::SchedOp::block);
}

}  // namespace rt
