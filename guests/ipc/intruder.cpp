// A domain the system manifest does not connect to anyone: it holds no
// capability, and every attempt to reach pong - map its grant, copy from it,
// bind to its port, place a capability in it, control it, map its memory -
// is refused with a clear error, while ping and pong carry on.

#include "common.hpp"

#include <abi/moat.hpp>

using namespace ipc;

namespace {
alignas(4096) uint8_t g_page[4096];
constexpr long kEperm = abi::neg(abi::Errno::eperm);
constexpr int16_t kDenied = int16_t(abi::GntStatus::permission_denied);
}  // namespace

void rt::main() {
    check(rt::cap_inspect(0).type == uint32_t(abi::CapType::null), "intruder.holds_no_capability");

    abi::GnttabMapGrantRef m{};
    m.host_addr = rt::ptr(g_page);
    m.flags = abi::kGntmapHostMap | abi::kGntmapReadonly;
    m.ref = kPatternRef;
    m.dom = kPong;
    long r = gnttab_op(abi::GnttabOp::map_grant_ref, &m);
    check(r == 0 && m.status == kDenied, "intruder.grant_map_refused", "status %ld", long(m.status));

    abi::GnttabCopy c{};
    c.source.u.ref = kPatternRef;
    c.source.domid = kPong;
    c.dest.u.gmfn = mfn_of(g_page);
    c.dest.domid = abi::kDomidSelf;
    c.len = 64;
    c.flags = abi::kGntcopySourceGref;
    r = gnttab_op(abi::GnttabOp::copy, &c);
    check(r == 0 && c.status == kDenied, "intruder.grant_copy_refused", "status %ld", long(c.status));

    r = rt::bind_interdomain(kPong, kPongPortOffer);
    check(r == kEperm, "intruder.bind_refused", "rc %ld", r);
    r = rt::cap_install(kPong, 0, 5, ~0u);
    check(r == kEperm, "intruder.install_capability_refused", "rc %ld", r);

    abi::MoatDomctl op{};
    op.version = abi::kMoatDomctlVersion;
    op.cmd = uint32_t(abi::DomctlCmd::pause);
    op.domain = kPong;
    r = rt::hypercall(abi::Hypercall::domctl, rt::ptr(&op));
    check(r == kEperm, "intruder.domctl_pause_refused", "rc %ld", r);
    op.cmd = uint32_t(abi::DomctlCmd::create);
    op.u.create = abi::DomctlCreate{16, 1, 8, 0, 0, 0, 0, 0, 0, {}};
    r = rt::hypercall(abi::Hypercall::domctl, rt::ptr(&op));
    check(r == kEperm, "intruder.domctl_create_refused", "rc %ld", r);

    abi::MmuUpdate u{rt::l1e_maddr(rt::ptr(g_page)), (1ull << 12) | rt::kPteP};
    r = rt::hypercall(abi::Hypercall::mmu_update, rt::ptr(&u), 1, 0, kPong);
    check(r == kEperm, "intruder.foreign_mapping_refused", "rc %ld", r);
    uint64_t gpfn = 0;
    abi::XenMemoryReservation res{rt::ptr(&gpfn), 1, 0, 0, kPong};
    r = rt::hypercall(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::populate_physmap), rt::ptr(&res));
    check(r == kEperm, "intruder.foreign_memory_refused", "rc %ld", r);
    rt::printf("intruder: done, %u failed\n", rt::g_failed_checks);
}
