// The first domain: the kernel gave it every capability, and it hands out
// exactly what the other domains need - ping and pong get Grant and Event
// capabilities naming each other (and an Event one for the root), the
// intruder nothing. It then exercises domain control (create/destroy loops,
// building a domain through foreign mappings, pause/unpause) and, once ping
// reports, revokes ping's capabilities for pong.

#include "common.hpp"

#include <abi/moat.hpp>
#include <abi/x86_64.hpp>

using namespace ipc;

// A tiny position-independent program for a domain the root builds itself:
// prints one line with console_io and powers off with sched_op.
asm(R"(
    .pushsection .rodata
    .globl child_code, child_code_end
child_code:
    mov     $18, %eax               /* console_io */
    xor     %edi, %edi              /* write */
    mov     $(child_msg_end - child_msg), %esi
    lea     child_msg(%rip), %rdx
    syscall
    mov     $29, %eax               /* sched_op */
    mov     $2, %edi                /* shutdown */
    lea     child_reason(%rip), %rsi
    syscall
    ud2
child_msg:
    .ascii  "PASS domctl.built_domain_runs\n"
child_msg_end:
    .balign 4
child_reason:
    .long   0                       /* poweroff */
child_code_end:
    .popsection
)");
extern "C" const uint8_t child_code[], child_code_end[];

namespace {

alignas(4096) uint8_t g_scratch[4096];
constexpr uint16_t kOthers[] = {kPing, kPong, kIntruder};

long domctl(abi::MoatDomctl& op) {
    op.version = abi::kMoatDomctlVersion;
    return rt::hypercall(abi::Hypercall::domctl, rt::ptr(&op));
}

abi::DomctlInfo info(uint16_t dom) {
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::getinfo);
    op.domain = dom;
    return domctl(op) == 0 ? op.u.info : abi::DomctlInfo{};
}

abi::DomctlPhysinfo physinfo() {
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::physinfo);
    return domctl(op) == 0 ? op.u.physinfo : abi::DomctlPhysinfo{};
}

// A domain that shut down by itself is taken apart by the kernel in the
// background, a budget at a time: wait until none is (every slot in use
// belongs to a domain getinfo still sees), so that free memory only moves
// with what we do.
void wait_for_teardowns() {
    for (unsigned k = 0; k < 100000; ++k) {
        uint32_t visible = 1 + (info(kPing).max_pages != 0) + (info(kPong).max_pages != 0) +
                           (info(kIntruder).max_pages != 0);
        if (physinfo().domains == visible) return;
        rt::sched_op(abi::SchedOp::yield);
    }
}

long create(uint64_t pages, abi::DomctlCreate* out = nullptr) {
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::create);
    op.u.create = abi::DomctlCreate{pages, 1, 8, 0, 0, 0, 0, 0, 0, {}};
    long r = domctl(op);
    if (out) *out = op.u.create;
    return r ? r : long(op.domain);
}

long control(abi::DomctlCmd cmd, uint16_t dom) {
    abi::MoatDomctl op{};
    op.cmd = uint32_t(cmd);
    op.domain = dom;
    return domctl(op);
}

// Maps frame `mfn` of domain `dom` at our scratch page (the foreign-mapping
// path: an mmu_update naming `dom`, allowed by our Domain capability with build).
long map_foreign(uint16_t dom, uint64_t mfn) {
    abi::MmuUpdate u{rt::l1e_maddr(rt::ptr(g_scratch)), (mfn << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD};
    return rt::hypercall(abi::Hypercall::mmu_update, rt::ptr(&u), 1, 0, dom);
}

long unmap_scratch() {
    return rt::update_va_mapping(rt::ptr(g_scratch), (mfn_of(g_scratch) << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD);
}

void hand_out_capabilities() {
    long grant_ping = rt::cap_find(abi::CapType::grant, kPing), grant_pong = rt::cap_find(abi::CapType::grant, kPong);
    long event_ping = rt::cap_find(abi::CapType::event, kPing), event_pong = rt::cap_find(abi::CapType::event, kPong);
    long event_root = rt::cap_find(abi::CapType::event, kRoot);
    check(grant_ping >= 0 && grant_pong >= 0 && event_ping >= 0 && event_pong >= 0 && event_root >= 0,
          "root.holds_boot_capabilities");
    uint32_t grant_rights = abi::kCapRightMapRo | abi::kCapRightMapRw | abi::kCapRightCopy;
    long r = rt::cap_install(kPing, uint32_t(grant_pong), 0, grant_rights) |
             rt::cap_install(kPing, uint32_t(event_pong), 1, abi::kCapRightBind) |
             rt::cap_install(kPing, uint32_t(event_root), 2, abi::kCapRightBind) |
             rt::cap_install(kPong, uint32_t(grant_ping), 0, grant_rights) |
             rt::cap_install(kPong, uint32_t(event_ping), 1, abi::kCapRightBind) |
             rt::cap_install(kPong, uint32_t(event_root), 2, abi::kCapRightBind);
    check(r == 0, "root.installed_ping_pong_capabilities", "rc %ld", r);
}

void test_create_destroy() {
    // The others are paused meanwhile, so only this loop changes free memory.
    // Ping and pong wait for us; the intruder may have finished already, and
    // its capabilities went with it.
    bool paused[3] = {};
    for (unsigned i = 0; i < 3; ++i) paused[i] = control(abi::DomctlCmd::pause, kOthers[i]) == 0;
    check(paused[0] && paused[1], "domctl.pause_others");
    wait_for_teardowns();
    uint64_t before = info(kRoot).free_frames;
    bool ok = before > 0;
    for (unsigned i = 0; i < 20 && ok; ++i) {
        long d = create(256);
        ok = d > 0;
        uint64_t gpfns[16];
        for (unsigned k = 0; k < 16; ++k) gpfns[k] = k;
        abi::XenMemoryReservation res{rt::ptr(gpfns), 16, 0, 0, uint16_t(d)};
        ok = ok && rt::hypercall(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::populate_physmap), rt::ptr(&res)) == 16;
        ok = ok && control(abi::DomctlCmd::destroy, uint16_t(d)) == 0;
    }
    uint64_t after = info(kRoot).free_frames;
    check(ok && after == before, "domctl.create_destroy_returns_every_frame", "free frames %ld before, %ld after",
          long(before), long(after));
    bool resumed = true;
    for (unsigned i = 0; i < 3; ++i)
        if (paused[i]) resumed &= control(abi::DomctlCmd::unpause, kOthers[i]) == 0;
    check(resumed, "domctl.unpause_others");
}

void test_build_domain() {
    abi::DomctlCreate created;
    long x = create(64, &created);
    check(x > 0, "domctl.create", "rc %ld", x);
    if (x <= 0) return;
    uint16_t dom = uint16_t(x);
    rt::printf("root: built domain is %u\n", dom);

    // Six frames: L4, L3, L2, L1, code, stack.
    uint64_t f[6] = {0, 1, 2, 3, 4, 5};
    abi::XenMemoryReservation res{rt::ptr(f), 6, 0, 0, dom};
    long r = rt::hypercall(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::populate_physmap), rt::ptr(&res));
    check(r == 6 && info(dom).tot_pages == 6, "domctl.populate_foreign_memory", "rc %ld", r);

    auto fill = [&](uint64_t mfn, auto&& body) {
        long m = map_foreign(dom, mfn);
        if (m == 0) body(reinterpret_cast<uint64_t*>(g_scratch));
        return m == 0 && unmap_scratch() == 0;
    };
    constexpr uint64_t kTable = rt::kPteP | rt::kPteRw | rt::kPteA;
    bool ok = fill(f[0], [&](uint64_t* t) { t[0] = (f[1] << 12) | kTable; });
    ok &= fill(f[1], [&](uint64_t* t) { t[0] = (f[2] << 12) | kTable; });
    ok &= fill(f[2], [&](uint64_t* t) { t[2] = (f[3] << 12) | kTable; });   // 4 MiB
    ok &= fill(f[3], [&](uint64_t* t) {
        t[0] = (f[4] << 12) | rt::kPteP | rt::kPteA;                             // code at 4 MiB, read-only
        t[1] = (f[5] << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD;   // stack
    });
    ok &= fill(f[4], [&](uint64_t* t) { __builtin_memcpy(t, child_code, size_t(child_code_end - child_code)); });
    check(ok, "domctl.foreign_mapping_writes_child_memory");

    // Pinning its L4 validates its tables against its own frames.
    abi::MmuextOp pin{};
    pin.cmd = uint32_t(abi::MmuextCmd::pin_l4_table);
    pin.arg1.mfn = f[0];
    r = rt::hypercall(abi::Hypercall::mmuext_op, rt::ptr(&pin), 1, 0, dom);
    check(r == 0, "domctl.pin_child_page_tables", "rc %ld", r);

    static abi::VcpuGuestContext ctx;
    ctx = abi::VcpuGuestContext{};
    ctx.user_regs.rip = 0x400000;
    ctx.user_regs.rsp = 0x402000;
    ctx.user_regs.rflags = 0x200;
    ctx.ctrlreg[3] = f[0] << 12;
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::setvcpucontext);
    op.domain = dom;
    op.u.context = rt::ptr(&ctx);
    r = domctl(op);
    check(r == 0, "domctl.setvcpucontext", "rc %ld", r);

    check(control(abi::DomctlCmd::pause, dom) == 0 && info(dom).paused == 2, "domctl.pause");
    check(control(abi::DomctlCmd::unpause, dom) == 0 && info(dom).paused == 1, "domctl.unpause_once");
    check(control(abi::DomctlCmd::unpause, dom) == 0, "domctl.unpause_runs_it");
}

}  // namespace

void rt::main() {
    rt::events_init();
    hand_out_capabilities();
    long p1 = rt::alloc_unbound(kPing), p2 = rt::alloc_unbound(kPong);
    check(p1 == long(kRootPortPing) && p2 == long(kRootPortPong), "root.offered_ports", "ports %ld %ld", p1, p2);

    test_create_destroy();
    test_build_domain();

    // Ping reports its ping-pong done: revoke what it holds for pong.
    rt::wait_port(kRootPortPing);
    long grant_pong = rt::cap_find(abi::CapType::grant, kPong), event_pong = rt::cap_find(abi::CapType::event, kPong);
    long r = rt::cap_revoke(uint32_t(grant_pong));
    r |= rt::cap_revoke(uint32_t(event_pong));
    check(r == 0, "root.revoked_ping_capabilities_for_pong", "rc %ld", r);
    // Our own capabilities stay.
    check(rt::cap_find(abi::CapType::grant, kPong) == grant_pong, "root.revoke_keeps_the_original");
    rt::notify(kRootPortPing);
    rt::wait_port(kRootPortPing);   // ping finished
    rt::printf("root: done, %u failed\n", rt::g_failed_checks);
}
