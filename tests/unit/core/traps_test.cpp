// Exception delivery to a built domain: Xen's bounce frame on the guest
// kernel stack, read back through the guest's page tables.

#include <gtest/gtest.h>

#include <array>

#include <abi/hypercall.hpp>
#include <abi/x86_64.hpp>
#include <core/debugreg.hpp>
#include <core/traps.hpp>

#include <core/kmem.hpp>

#include "test_domain.hpp"

namespace {

using namespace coretest;

constexpr uint64_t kPfHandler = 0x400200;
constexpr uint64_t kGpHandler = 0x400300;
constexpr uint64_t kSoftHandler = 0x400400;
constexpr uint64_t kUdHandler = 0x400500;
constexpr uint64_t kDbHandler = 0x400800;
constexpr uint64_t kFailsafe = 0x400900;
constexpr uint64_t kDr6Bs = 1u << 14;
constexpr uint64_t kDr6B0 = 1u << 0;
constexpr uint64_t kXenVersion = uint64_t(abi::Hypercall::xen_version);
constexpr uint64_t kIret = uint64_t(abi::Hypercall::iret);

// Xen's failsafe frame: {rcx, r11, ds, es, fs, gs, rip, cs, rflags, rsp, ss}.
using FailsafeFrame = std::array<uint64_t, 11>;
constexpr unsigned kFailsafeDs = 2, kFailsafeRip = 6;

class Traps : public DomainTest {
protected:
    void SetUp() override {
        DomainTest::SetUp();
        if (HasFatalFailure()) return;
        r = v->regs;
        r.rip = 0x400123;
        r.rcx = 0xc0c0c0c0;
        r.r11 = 0x1111;
        r.rsp = l.stack_va + 4096 - 0x28;   // deliberately not 16-byte aligned
        r.rflags = 0x202 | 0x1 /*CF*/ | core::flags::kTf;
    }
    // Where the frame goes from kernel mode: (rsp & ~15) minus its size.
    uint64_t frame_at(uint64_t rsp, unsigned words) const { return (rsp & ~15ull) - words * 8; }

    core::Regs r{};
};

TEST_F(Traps, PageFaultBuildsXenFrame) {
    v->traps[14] = core::TrapHandler{kPfHandler, 0, false};
    v->info->evtchn_upcall_mask = 0;
    const core::Regs before = r;
    // The CPU reports a user-mode access (the guest kernel runs in ring 3).
    core::guest_exception(*v, r, 14, 0x7 /*present|write|user*/, 0xdeadb000);
    ASSERT_FALSE(crashed()) << fake::log();

    uint64_t at = frame_at(before.rsp, 8);
    EXPECT_EQ(r.rsp, at);
    EXPECT_EQ(r.rip, kPfHandler);
    EXPECT_EQ(r.cs, 0xe033u);
    EXPECT_EQ(r.ss, 0xe02bu);
    EXPECT_TRUE(r.rflags & core::flags::kIf);
    EXPECT_FALSE(r.rflags & core::flags::kTf) << "TF must be cleared in the handler";

    auto f = read_guest<abi::BounceFrameErrorCode>(at);
    EXPECT_EQ(f.rcx, before.rcx);
    EXPECT_EQ(f.r11, before.r11);
    EXPECT_EQ(f.error_code, 0x3u) << "the user bit is cleared for a guest-kernel fault";
    EXPECT_EQ(f.rip, before.rip);
    EXPECT_EQ(f.cs, 0xe030u) << "RPL cleared, saved upcall mask 0";
    EXPECT_EQ(f.rflags, before.rflags) << "IF set: events were not masked";
    EXPECT_EQ(f.rsp, before.rsp);
    EXPECT_EQ(f.ss, before.ss);
    EXPECT_EQ(v->info->arch.cr2, 0xdeadb000u);
    EXPECT_EQ(v->info->evtchn_upcall_mask, 0) << "a trap without mask_events leaves the mask";
}

TEST_F(Traps, SavedMaskRidesInCsAndIf) {
    v->traps[14] = core::TrapHandler{kPfHandler, 0, true};
    v->info->evtchn_upcall_mask = 1;
    const core::Regs before = r;
    core::guest_exception(*v, r, 14, 0x4, 0x1000);
    ASSERT_FALSE(crashed()) << fake::log();
    auto f = read_guest<abi::BounceFrameErrorCode>(frame_at(before.rsp, 8));
    EXPECT_EQ(f.cs, 0xe030u | (1ull << 32));
    EXPECT_EQ(f.cs, abi::bounce_cs(0xe030, 1));
    EXPECT_FALSE(f.rflags & core::flags::kIf) << "IF = !saved mask";
    EXPECT_EQ(f.rflags, abi::bounce_rflags(before.rflags, 1));
    EXPECT_EQ(f.error_code, 0u);
    EXPECT_EQ(v->info->evtchn_upcall_mask, 1);

    // mask_events sets the mask for the handler, the frame keeps the old one.
    core::Regs r2 = before;
    v->info->evtchn_upcall_mask = 0;
    core::guest_exception(*v, r2, 14, 0x4, 0x2000);
    auto f2 = read_guest<abi::BounceFrameErrorCode>(frame_at(before.rsp, 8));
    EXPECT_EQ(f2.cs >> 32, 0u);
    EXPECT_TRUE(f2.rflags & core::flags::kIf);
    EXPECT_EQ(v->info->evtchn_upcall_mask, 1);
}

TEST_F(Traps, ExceptionWithoutErrorCodeHasShortFrame) {
    v->traps[6] = core::TrapHandler{kUdHandler, 0, false};
    const core::Regs before = r;
    core::guest_exception(*v, r, 6, 0, 0);
    ASSERT_FALSE(crashed()) << fake::log();
    uint64_t at = frame_at(before.rsp, 7);
    EXPECT_EQ(r.rsp, at);
    auto f = read_guest<abi::BounceFrame>(at);
    EXPECT_EQ(f.rcx, before.rcx);
    EXPECT_EQ(f.rip, before.rip);
    EXPECT_EQ(f.rsp, before.rsp);
    EXPECT_EQ(f.ss, before.ss);
}

TEST_F(Traps, FromUserModeUsesKernelStack) {
    // A user address space (the same tables will do) and a kernel stack.
    v->guest_table_user = v->guest_table;
    v->kernel_sp = l.stack_va + 4096;
    v->kernel_mode = false;
    v->gs_base_kernel = 0x9000;
    v->traps[14] = core::TrapHandler{kPfHandler, 0, false};
    v->info->evtchn_upcall_mask = 0;
    r.rsp = 0x7ff0;   // the user's stack: not even mapped
    const core::Regs before = r;
    core::guest_exception(*v, r, 14, 0x6, 0x5000);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_TRUE(v->kernel_mode);
    ASSERT_FALSE(fake::calls().active_gs_base.empty());
    EXPECT_EQ(fake::calls().active_gs_base.back(), 0x9000u);
    EXPECT_EQ(fake::current_l4(), v->guest_table);
    uint64_t at = frame_at(v->kernel_sp, 8);
    EXPECT_EQ(r.rsp, at);
    auto f = read_guest<abi::BounceFrameErrorCode>(at);
    EXPECT_EQ(f.error_code, 0x6u) << "user bit kept for a guest-user fault";
    EXPECT_EQ(f.cs, 0xe033u) << "RPL 3 for user mode";
    EXPECT_EQ(f.rsp, before.rsp);
}

// A user process's `syscall` with no syscall callback registered is its own
// #UD (at the instruction), not the death of its domain (Xen since 4.14).
TEST_F(Traps, UserSyscallWithoutCallbackIsUd) {
    v->guest_table_user = v->guest_table;
    v->kernel_sp = l.stack_va + 4096;
    v->kernel_mode = false;
    v->traps[6] = core::TrapHandler{kUdHandler, 0, false};
    r.rip = r.rcx = 0x400802;   // just past a `syscall`
    core::guest_user_syscall(*v, r);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_TRUE(v->kernel_mode);
    EXPECT_EQ(r.rip, kUdHandler);
    auto f = read_guest<abi::BounceFrame>(r.rsp);
    EXPECT_EQ(f.rip, 0x400800u) << "the fault is at the syscall itself";
    // Without a #UD handler either, the domain is crashed.
    v->kernel_mode = false;
    v->traps[6] = core::TrapHandler{};
    r.rip = r.rcx = 0x400802;
    core::guest_user_syscall(*v, r);
    EXPECT_TRUE(crashed());
}

TEST_F(Traps, NoHandlerCrashesDomain) {
    uint64_t free_before = core::frame_allocator().free_frames();
    uint64_t hv_frames = core::kmem::stats().frames;   // its state: all of the hypervisor's here
    core::guest_exception(*v, r, 14, 0x4, 0x1234);
    EXPECT_TRUE(crashed()) << fake::log();
    EXPECT_NE(fake::log().find("#PF"), std::string::npos) << fake::log();
    reap();
    EXPECT_TRUE(is_gone(d));
    EXPECT_EQ(core::frame_allocator().free_frames(), free_before + kPages + 1 + hv_frames);
    EXPECT_EQ(core::kmem::stats().frames, 0u);
}

TEST_F(Traps, UnwritableStackCrashesDomain) {
    v->traps[14] = core::TrapHandler{kPfHandler, 0, false};
    r.rsp = l.v_end + 0x100;   // nothing mapped there
    core::guest_exception(*v, r, 14, 0x4, 0x1234);
    EXPECT_TRUE(crashed()) << fake::log();
    // And a read-only stack: the page tables.
    fake::reset();
    SetUp();
    v->traps[14] = core::TrapHandler{kPfHandler, 0, false};
    r.rsp = l.pt_va + 0x800;
    core::guest_exception(*v, r, 14, 0x4, 0x1234);
    EXPECT_TRUE(crashed()) << fake::log();
}

TEST_F(Traps, SoftwareInterruptWithDpl3EntryIsBounced) {
    v->traps[0x80] = core::TrapHandler{kSoftHandler, 3, false};
    v->traps[13] = core::TrapHandler{kGpHandler, 0, false};
    const core::Regs before = r;
    core::guest_exception(*v, r, 13, 0x80 * 8 + 2, 0);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_EQ(r.rip, kSoftHandler);
    uint64_t at = frame_at(before.rsp, 7);   // no error code for int $n
    EXPECT_EQ(r.rsp, at);
    auto f = read_guest<abi::BounceFrame>(at);
    EXPECT_EQ(f.rip, before.rip + 2) << "past the two-byte int $0x80";
    EXPECT_EQ(f.rcx, before.rcx);
    EXPECT_EQ(f.rsp, before.rsp);
}

TEST_F(Traps, SoftwareInterruptWithDpl0EntryIsGp) {
    v->traps[0x80] = core::TrapHandler{kSoftHandler, 0, false};
    v->traps[13] = core::TrapHandler{kGpHandler, 0, false};
    const core::Regs before = r;
    core::guest_exception(*v, r, 13, 0x80 * 8 + 2, 0);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_EQ(r.rip, kGpHandler);
    auto f = read_guest<abi::BounceFrameErrorCode>(frame_at(before.rsp, 8));
    EXPECT_EQ(f.error_code, 0x80u * 8 + 2);
    EXPECT_EQ(f.rip, before.rip) << "rip not advanced for #GP";
}

TEST_F(Traps, SoftwareInterruptDpl1AllowedFromKernelOnly) {
    // The guest kernel counts as CPL 1.
    v->traps[0x81] = core::TrapHandler{kSoftHandler, 1, false};
    v->traps[13] = core::TrapHandler{kGpHandler, 0, false};
    core::guest_exception(*v, r, 13, 0x81 * 8 + 2, 0);
    EXPECT_EQ(r.rip, kSoftHandler);
}

TEST_F(Traps, DeviceNotAvailableClearsVirtualTs) {
    v->traps[7] = core::TrapHandler{0x400600, 0, false};
    v->fpu_ts = true;
    core::guest_exception(*v, r, 7, 0, 0);
    EXPECT_FALSE(v->fpu_ts);
    EXPECT_EQ(r.rip, 0x400600u);
    ASSERT_FALSE(fake::calls().fpu_trap.empty());
    EXPECT_FALSE(fake::calls().fpu_trap.back());
}

TEST_F(Traps, EventsDeliveredOnlyWhenPendingAndUnmasked) {
    v->event_callback = 0x400700;
    core::Regs before = r;
    v->info->evtchn_upcall_pending = 1;
    v->info->evtchn_upcall_mask = 1;
    core::deliver_events(*v, r);
    EXPECT_EQ(r.rip, before.rip);
    v->info->evtchn_upcall_mask = 0;
    core::deliver_events(*v, r);
    EXPECT_EQ(r.rip, 0x400700u);
    EXPECT_EQ(v->info->evtchn_upcall_mask, 1) << "the upcall masks events";
    auto f = read_guest<abi::BounceFrame>(frame_at(before.rsp, 7));
    EXPECT_EQ(f.rip, before.rip);
    EXPECT_EQ(f.cs >> 32, 0u);
}

// ---- #DB after a hypercall (core/traps.hpp hypercall_debug_trap) ----

// A hypercall made with TF set completes, then the guest gets the
// single-step trap of its `syscall`: a #DB at the instruction after it, with
// DR6.BS, on a frame still carrying TF (its handler returns into the step).
TEST_F(Traps, SingleStepTrapAfterHypercall) {
    v->traps[1] = core::TrapHandler{kDbHandler, 0, false};
    r.rip = r.rcx = 0x400802;
    const core::Regs before = r;
    core::hypercall_debug_trap(*v, r, kXenVersion, before.rip, before.rflags, 0);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_EQ(r.rip, kDbHandler);
    EXPECT_FALSE(r.rflags & core::flags::kTf) << "the handler runs without TF";
    auto f = read_guest<abi::BounceFrame>(frame_at(before.rsp, 7));
    EXPECT_EQ(f.rip, before.rip) << "reported after the syscall";
    EXPECT_TRUE(f.rflags & core::flags::kTf) << "the interrupted frame still single-steps";
    EXPECT_EQ(v->dr[6], core::kDr6Default | kDr6Bs);
}

TEST_F(Traps, NoSingleStepTrapWithoutTf) {
    v->traps[1] = core::TrapHandler{kDbHandler, 0, false};
    r.rflags &= ~core::flags::kTf;
    const core::Regs before = r;
    core::hypercall_debug_trap(*v, r, kXenVersion, before.rip, before.rflags, 0);
    EXPECT_EQ(r.rip, before.rip);
    EXPECT_EQ(r.rsp, before.rsp);
    EXPECT_EQ(v->dr[6], core::kDr6Default);
}

// The guest's rflags at the `syscall` decide, not the frame's now.
TEST_F(Traps, SingleStepFollowsEntryFlags) {
    v->traps[1] = core::TrapHandler{kDbHandler, 0, false};
    uint64_t entry_rip = r.rip, entry_flags = r.rflags;
    r.rflags &= ~core::flags::kTf;
    core::hypercall_debug_trap(*v, r, kXenVersion, entry_rip, entry_flags, 0);
    EXPECT_EQ(r.rip, kDbHandler);
}

TEST_F(Traps, NoSingleStepTrapForIret) {
    v->traps[1] = core::TrapHandler{kDbHandler, 0, false};
    const core::Regs before = r;
    core::hypercall_debug_trap(*v, r, kIret, before.rip, before.rflags, 0);
    EXPECT_EQ(r.rip, before.rip);
    EXPECT_EQ(v->dr[6], core::kDr6Default);
}

// Continued: rip is back on the `syscall`; the trap waits for completion.
TEST_F(Traps, NoSingleStepTrapWhileContinued) {
    v->traps[1] = core::TrapHandler{kDbHandler, 0, false};
    uint64_t entry_rip = r.rip;
    r.rip = r.rcx = entry_rip - 2;
    core::hypercall_debug_trap(*v, r, kXenVersion, entry_rip, r.rflags, 0);
    EXPECT_EQ(r.rip, entry_rip - 2);
    EXPECT_EQ(v->dr[6], core::kDr6Default);
}

// A data breakpoint of a `mov %ss` held back onto the syscall entry: the
// guest's, merged with the single step into one #DB; delivered even when the
// hypercall is continued (nothing would raise it again).
TEST_F(Traps, HeldDebugTrapMergedAndNeverDropped) {
    v->traps[1] = core::TrapHandler{kDbHandler, 0, false};
    const core::Regs before = r;
    core::hypercall_debug_trap(*v, r, kXenVersion, before.rip, before.rflags, core::kDr6Default | kDr6B0);
    EXPECT_EQ(r.rip, kDbHandler);
    EXPECT_EQ(v->dr[6], core::kDr6Default | kDr6B0 | kDr6Bs);

    fake::reset();
    SetUp();
    v->traps[1] = core::TrapHandler{kDbHandler, 0, false};
    uint64_t entry_rip = r.rip;
    r.rip = entry_rip - 2;
    core::hypercall_debug_trap(*v, r, kXenVersion, entry_rip, r.rflags, core::kDr6Default | kDr6B0);
    EXPECT_EQ(r.rip, kDbHandler);
    EXPECT_EQ(v->dr[6], core::kDr6Default | kDr6B0);
    auto f = read_guest<abi::BounceFrame>(r.rsp);
    EXPECT_EQ(f.rip, entry_rip - 2) << "the hypercall resumes after the handler";
}

// Held behind an exception's entry (int3): on top of that bounce.
TEST_F(Traps, HeldDebugTrapOnTopOfException) {
    v->traps[1] = core::TrapHandler{kDbHandler, 0, false};
    v->traps[3] = core::TrapHandler{kSoftHandler, 3, false};
    core::guest_exception(*v, r, 3, 0, 0);
    core::deliver_held_debug_trap(*v, r, core::kDr6Default | kDr6B0);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_EQ(r.rip, kDbHandler);
    auto f = read_guest<abi::BounceFrame>(r.rsp);
    EXPECT_EQ(f.rip, kSoftHandler) << "at the first instruction of the #BP handler";
    core::Regs untouched = r;
    core::deliver_held_debug_trap(*v, r, 0);
    EXPECT_EQ(r.rip, untouched.rip) << "0: nothing held";
}

TEST_F(Traps, NoDebugTrapForAVcpuGone) {
    v->traps[1] = core::TrapHandler{kDbHandler, 0, false};
    core::domain_crash(*d, "test");
    const core::Regs before = r;
    core::hypercall_debug_trap(*v, r, kXenVersion, before.rip, before.rflags, 0);
    EXPECT_EQ(r.rip, before.rip);
}

// ---- the exit path (core/traps.hpp) ----

TEST_F(Traps, NoncanonicalRipIsGpAtThatRip) {
    v->traps[13] = core::TrapHandler{kGpHandler, 0, false};
    r.rip = 0x0000800000000000ull;
    const core::Regs before = r;
    core::guest_noncanonical_rip(*v, r);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_EQ(r.rip, kGpHandler);
    auto f = read_guest<abi::BounceFrameErrorCode>(frame_at(before.rsp, 8));
    EXPECT_EQ(f.error_code, 0u);
    EXPECT_EQ(f.rip, before.rip);
}

TEST_F(Traps, RefusedFrameGoesToFailsafeOrCrashes) {
    v->failsafe_callback = kFailsafe;
    r.ss = 0x13;
    const core::Regs before = r;
    core::guest_frame_refused(*v, r);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_EQ(r.rip, kFailsafe);
    auto f = read_guest<FailsafeFrame>(r.rsp);
    EXPECT_EQ(f[kFailsafeRip], before.rip);
    EXPECT_EQ(f[10], 0x13u);

    fake::reset();
    SetUp();
    core::guest_frame_refused(*v, r);
    EXPECT_TRUE(crashed());
}

// Selectors that no longer load on the way back onto the CPU: the failsafe
// frame carries the ones the vCPU had (they differ from its null ones now).
TEST_F(Traps, RefusedSelectorsGoToFailsafeWithTheWantedOnes) {
    v->failsafe_callback = kFailsafe;
    const uint16_t wanted[4] = {0x13, 0x1b, 0x23, 0x2b};
    const core::Regs before = r;
    core::segments_refused(*v, r, wanted);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_EQ(r.rip, kFailsafe);
    auto f = read_guest<FailsafeFrame>(frame_at(before.rsp, 11));
    for (unsigned i = 0; i < 4; ++i) EXPECT_EQ(f[kFailsafeDs + i], wanted[i]) << i;
    EXPECT_EQ(f[kFailsafeRip], before.rip);

    // Without a failsafe callback: the null selectors stay, nothing else.
    fake::reset();
    SetUp();
    const core::Regs again = r;
    core::segments_refused(*v, r, wanted);
    EXPECT_FALSE(crashed());
    EXPECT_EQ(r.rip, again.rip);
    EXPECT_EQ(r.rsp, again.rsp);
}

}  // namespace
