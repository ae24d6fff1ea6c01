#pragma once
// The XenStore smoke test (boot=all, four modules): domain 0 plays the
// builder (the master), domain 1 is the `xenstore` image (in 8 MiB), domains
// 2 and 3 are guests (the same image; 3 has `die` on its command line).
//   master: hands the store Grant+Event capabilities for itself and the
//           guests and the guests Event(master); grants its ring page as ref
//           1 to the store, allocates port 1 for it (the store's command line
//           says master-port=1), and ports 2 and 3 for the guests' kicks.
//   guests: grant their own ring page as ref 1 to the store, allocate their
//           store port (1), bind the master's port 2 (3) and kick it.
//   master: introduces guest 2 (XS_INTRODUCE 2 0 1); they talk through the
//           store; guest 2 then breaks its own ring on purpose and waits
//           until the store has flagged it, kicks the master, which releases
//           it (unmap, close) and kicks back.
//           Introduces guest 3, which writes once and powers off while still
//           introduced: its page goes away under the store, which must drop
//           the connection and go on. The master releases it, checks the
//           store still answers, and destroys the store.

#include <rt/caps.hpp>
#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

namespace smoke {

constexpr uint16_t kMaster = 0, kStore = 1, kGuest = 2, kDying = 3;
constexpr uint32_t kStoreRef = 1;
constexpr uint32_t kMasterStorePort = 1;
constexpr uint32_t kGuestStorePort = 1;
// The master's port for guest g's kicks is g.
inline uint32_t kick_port(uint16_t guest) { return guest; }

using rt::check;

inline uint64_t mfn_of(const void* p) { return rt::mfn_of_pfn((rt::ptr(p) - rt::kVirtBase) >> 12); }

inline void sleep_ms(uint64_t ms) {
    uint32_t none = 0;
    abi::SchedPoll p{rt::ptr(&none), 0, rt::now_ns() + ms * 1'000'000};
    rt::sched_op(abi::SchedOp::poll, &p);
}

// Blocks until `port` fires: events masked while we look, sched_op block
// unmasks and sleeps only if nothing is pending.
inline void wait_port(uint32_t port) {
    abi::VcpuInfo& vi = rt::vcpu_info();
    for (;;) {
        __atomic_store_n(&vi.evtchn_upcall_mask, 1, __ATOMIC_SEQ_CST);
        if (rt::take_port(port)) {
            __atomic_store_n(&vi.evtchn_upcall_mask, 0, __ATOMIC_SEQ_CST);
            return;
        }
        rt::sched_op(abi::SchedOp::block);
    }
}

template <typename F>
long retry(F&& f, unsigned tries = 2000) {
    long r = f();
    for (unsigned i = 0; r < 0 && i < tries; ++i) {
        sleep_ms(1);
        r = f();
    }
    return r;
}

inline bool streq(const char* a, const char* b) {
    while (*a && *a == *b) ++a, ++b;
    return *a == *b;
}

}  // namespace smoke
