#pragma once
// What the XenStore attack guests share (tests/system/xenstore_quota.cmake).

#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

#include <abi/hypercall.hpp>
#include <base/format.hpp>

namespace xsattack {

constexpr uint64_t kMs = 1'000'000;

// Where a filler says how far it got ("fill", then "full"; always four
// bytes, so rewriting it needs nothing from a full store), readable by
// every domain.
constexpr const char* kStateNode = "data/xsfill-state";

// Sleeps `ns` of guest time (sched_op poll on no port, with a timeout;
// again if an event woke it early).
inline void sleep_ns(uint64_t ns) {
    const uint64_t until = rt::now_ns() + ns;
    while (rt::now_ns() < until) {
        abi::SchedPoll p{0, 0, until};
        rt::hypercall(abi::Hypercall::sched_op, uint64_t(abi::SchedOp::poll), rt::ptr(&p));
    }
}

inline const char* name_of(const rt::XsStatus& s) { return s ? "OK" : rt::xs_error_name(s.error()); }
template <typename T>
inline const char* name_of(const rt::XsResult<T>& r) {
    return r ? "OK" : rt::xs_error_name(r.error());
}

inline void done() { rt::printf("done, %u failed\n", rt::g_failed_checks); }

}  // namespace xsattack
