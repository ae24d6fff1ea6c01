#pragma once
// Shared by the IPC test domains (cap_root, ping, pong, intruder): who is who,
// which ports and grant references they use, and small helpers. Boot order
// fixes the domain ids; port numbers follow from Xen's lowest-free-port rule.

#include <rt/caps.hpp>
#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>

#include <abi/errno.hpp>
#include <abi/grant_table.hpp>
#include <base/format.hpp>
#include <grant/grant.hpp>
#include <ring/ring.hpp>

#include "../echo_ring.hpp"

namespace ipc {

constexpr uint16_t kRoot = 0, kPing = 1, kPong = 2, kIntruder = 3;

// Ports. root: 1 <-> ping, 2 <-> pong. ping: 1 = root, 2 = ring (offered to
// pong). pong: 1 = root, 2 = offered to ping (for the after-revoke bind),
// 3 = ring.
constexpr uint32_t kRootPortPing = 1, kRootPortPong = 2;
constexpr uint32_t kPingPortRoot = 1, kPingPortRing = 2;
constexpr uint32_t kPongPortRoot = 1, kPongPortOffer = 2, kPongPortRing = 3;

// Grant references: ping grants the ring page as 8; pong grants a read-only
// page with a known pattern as 9.
constexpr uint32_t kRingRef = 8, kPatternRef = 9;

using echo_ring::Back;
using echo_ring::Front;
using echo_ring::kQuit;
using echo_ring::Request;
using echo_ring::Response;

using rt::check;

inline long gnttab_op(abi::GnttabOp op, void* arg, uint64_t count = 1) {
    return rt::hypercall(abi::Hypercall::grant_table_op, uint64_t(op), rt::ptr(arg), count);
}

// Our grant table: one frame, mapped over `page` (a page of our image).
inline grant::Table setup_grant_table(uint8_t* page) {
    uint64_t frame = 0;
    abi::GnttabSetupTable st{abi::kDomidSelf, 1, 0, rt::ptr(&frame)};
    if (gnttab_op(abi::GnttabOp::setup_table, &st) != 0 || st.status != 0) return grant::Table();
    if (rt::update_va_mapping(rt::ptr(page), (frame << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD) != 0)
        return grant::Table();
    return grant::Table(reinterpret_cast<abi::GrantEntryV1*>(page), abi::kGrantEntriesV1PerPage);
}

inline uint64_t mfn_of(const void* p) { return rt::mfn_of_pfn((rt::ptr(p) - rt::kVirtBase) >> 12); }

// Waits until our CSpace's slot holds a capability of `type` (the root
// installs them after boot).
inline void wait_for_cap(uint32_t slot, abi::CapType type) {
    while (rt::cap_inspect(slot).type != uint32_t(type)) rt::sched_op(abi::SchedOp::yield);
}

// Retries an operation that fails until the peer has set up its side.
template <typename F>
long retry(F&& f, unsigned tries = 100000) {
    long r = f();
    for (unsigned i = 0; r < 0 && i < tries; ++i) {
        rt::sched_op(abi::SchedOp::yield);
        r = f();
    }
    return r;
}

}  // namespace ipc
