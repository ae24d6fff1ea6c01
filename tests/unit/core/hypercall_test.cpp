// Hypercalls through core::hypercall, as the syscall entry calls it: number
// in rax, arguments in rdi, rsi, rdx, r10, r8, result back in rax.

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include <abi/errno.hpp>
#include <abi/hypercall.hpp>
#include <abi/memory.hpp>
#include <abi/x86_64.hpp>
#include <abi/event_channel.hpp>
#include <cap/capability.hpp>
#include <core/caps.hpp>
#include <core/hypercall.hpp>
#include <core/irq.hpp>
#include <core/pte.hpp>

#include "test_domain.hpp"

namespace {

using namespace coretest;
using abi::Hypercall;
namespace pte = core::pte;

constexpr int64_t kEnosys = -38, kEfault = -14, kEinval = -22;

class Hypercalls : public DomainTest {
protected:
    void SetUp() override {
        DomainTest::SetUp();
        if (HasFatalFailure()) return;
        scratch = kImageEnd + 0x200000;   // well inside the region, past the start-of-day data
        ASSERT_LT(scratch + 0x10000, l.v_end);
        ASSERT_GT(scratch, l.stack_va);
    }

    using DomainTest::call;
    int64_t call(Hypercall h, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0) {
        return call(uint64_t(h), a1, a2, a3);
    }

    // The L1 entry that maps `va` in the domain's tables.
    uint64_t l1e(uint64_t va) {
        uint64_t m = v->guest_table;
        for (unsigned level = 4; level > 1; --level) m = pte::mfn(fake::table(m)[pte::index(va, level)]);
        return fake::table(m)[pte::index(va, 1)];
    }
    core::Mfn mfn_at(uint64_t va) { return pte::mfn(l1e(va)); }

    uint64_t scratch = 0;
};

// ---- dispatch ---------------------------------------------------------------

TEST_F(Hypercalls, UnknownNumbersAreEnosys) {
    for (uint64_t nr : {63ull, 64ull, 1000ull, ~0ull, 11ull, 44ull, 0x8000000000000017ull}) {
        EXPECT_EQ(call(nr, 0x1000, 0x2000, 0x3000), kEnosys) << nr;
        EXPECT_EQ(r.rip, kSyscallRip) << nr;
    }
    EXPECT_FALSE(crashed());
}

TEST_F(Hypercalls, XenVersion) {
    EXPECT_EQ(call(Hypercall::xen_version, uint64_t(abi::XenVersion::version)), (4 << 16) | 21);
    EXPECT_EQ(call(Hypercall::xen_version, uint64_t(abi::XenVersion::pagesize)), 4096);
    EXPECT_EQ(call(Hypercall::xen_version, uint64_t(abi::XenVersion::extraversion), scratch), 0);
    auto ev = read_guest<std::array<char, 16>>(scratch);
    EXPECT_STREQ(ev.data(), "-moat");
    EXPECT_EQ(call(Hypercall::xen_version, uint64_t(abi::XenVersion::capabilities), scratch + 64), 0);
    auto cap = read_guest<std::array<char, 32>>(scratch + 64);
    EXPECT_STREQ(cap.data(), "xen-3.0-x86_64");
    // A bad buffer is -EFAULT, read-only or unmapped alike.
    EXPECT_EQ(call(Hypercall::xen_version, uint64_t(abi::XenVersion::extraversion), l.pt_va), kEfault);
    EXPECT_EQ(call(Hypercall::xen_version, uint64_t(abi::XenVersion::extraversion), l.v_end), kEfault);
    EXPECT_EQ(call(Hypercall::xen_version, 99), kEnosys);
}

// ---- console_io ---------------------------------------------------------------

TEST_F(Hypercalls, ConsoleWrite) {
    const char msg[] = "hello, world\n";
    ASSERT_TRUE(platform::copy_to_guest(scratch, msg, sizeof msg - 1));
    EXPECT_EQ(call(Hypercall::console_io, uint64_t(abi::ConsoleIo::write), sizeof msg - 1, scratch), 0);
    EXPECT_NE(fake::log().find("test: hello, world\n"), std::string::npos) << fake::log();
}

TEST_F(Hypercalls, ConsoleWriteBadPointerIsEfault) {
    EXPECT_EQ(call(Hypercall::console_io, uint64_t(abi::ConsoleIo::write), 16, l.v_end), kEfault);
    EXPECT_EQ(call(Hypercall::console_io, uint64_t(abi::ConsoleIo::write), 16, 0xFFFF800000001000ull), kEfault);
    EXPECT_EQ(call(Hypercall::console_io, uint64_t(abi::ConsoleIo::write), 16, 0x0000800000000000ull - 8),
              kEfault);
    // Starts mapped, runs off the end of the region.
    EXPECT_EQ(call(Hypercall::console_io, uint64_t(abi::ConsoleIo::write), 64, l.v_end - 32), kEfault);
    EXPECT_FALSE(crashed());
}

TEST_F(Hypercalls, LongConsoleWriteContinues) {
    std::vector<char> buf(10000, 'a');
    ASSERT_TRUE(platform::copy_to_guest(scratch, buf.data(), buf.size()));
    EXPECT_EQ(call(Hypercall::console_io, uint64_t(abi::ConsoleIo::write), buf.size(), scratch),
              int64_t(Hypercall::console_io));
    EXPECT_EQ(r.rip, kSyscallRip - 2) << "rewound onto the syscall";
    EXPECT_EQ(r.rcx, r.rip);
    EXPECT_EQ(r.rsi, buf.size() - 4096);
    EXPECT_EQ(r.rdx, scratch + 4096);
}

// ---- set_trap_table -------------------------------------------------------------

TEST_F(Hypercalls, SetTrapTableContinuesUntilDone) {
    constexpr unsigned kEntries = 150;
    std::vector<abi::TrapInfo> table(kEntries + 1);
    for (unsigned i = 0; i < kEntries; ++i)
        table[i] = abi::TrapInfo{uint8_t(i), abi::trap_info_flags(i % 4, i & 1), 0xe033, 0x400000 + 16 * (i + 1)};
    table[kEntries] = abi::TrapInfo{};
    ASSERT_TRUE(platform::copy_to_guest(scratch, table.data(), table.size() * sizeof table[0]));

    r = v->regs;
    r.rax = uint64_t(Hypercall::set_trap_table);
    r.rdi = scratch;
    r.rip = kSyscallRip;
    unsigned calls = 0, continuations = 0;
    for (;;) {
        uint64_t rdi = r.rdi;
        ++calls;
        core::hypercall(*v, r);
        ASSERT_LT(calls, 10u) << "never finishes";
        if (r.rip == kSyscallRip) break;
        // A continuation: the hypercall number is back in rax, rip is on the
        // syscall again, the table pointer has moved on.
        ++continuations;
        ASSERT_EQ(r.rip, kSyscallRip - 2);
        EXPECT_EQ(r.rax, uint64_t(Hypercall::set_trap_table));
        EXPECT_GT(r.rdi, rdi);
        EXPECT_EQ((r.rdi - scratch) % sizeof(abi::TrapInfo), 0u);
        r.rip += 2;   // the guest executes the syscall again
    }
    EXPECT_EQ(r.rax, 0u);
    EXPECT_GE(continuations, 1u);
    for (unsigned i = 0; i < kEntries; ++i) {
        EXPECT_EQ(v->traps[i].address, 0x400000 + 16 * (i + 1)) << "vector " << i;
        EXPECT_EQ(v->traps[i].dpl, i % 4) << "vector " << i;
        EXPECT_EQ(v->traps[i].mask_events, bool(i & 1)) << "vector " << i;
    }
    EXPECT_EQ(v->traps[kEntries].address, 0u);
}

TEST_F(Hypercalls, SetTrapTableRefusals) {
    EXPECT_EQ(call(Hypercall::set_trap_table, l.v_end), kEfault);
    abi::TrapInfo bad[2] = {{14, 0, 0xe033, 0xFFFF800000100000ull}, {}};
    ASSERT_TRUE(platform::copy_to_guest(scratch, bad, sizeof bad));
    EXPECT_EQ(call(Hypercall::set_trap_table, scratch), kEinval);
    EXPECT_EQ(v->traps[14].address, 0u);
    // A null table clears everything.
    v->traps[3].address = 0x400000;
    EXPECT_EQ(call(Hypercall::set_trap_table, 0), 0);
    EXPECT_EQ(v->traps[3].address, 0u);
}

// ---- iret -----------------------------------------------------------------------

TEST_F(Hypercalls, IretRestoresFrameAndEventMask) {
    v->info->evtchn_upcall_mask = 1;
    uint64_t sp = l.stack_va + 4096 - sizeof(abi::IretContext) - 8;
    // A frame from a bounce: CS with RPL 0 and a saved mask of 1 in bits
    // 32-39, RFLAGS with IF set (the guest wants events on).
    abi::IretContext c{0x77, 0x246, 0x400abc, 0, 0x400999, 0xe030 | (1ull << 32), 0x202 | 0x1, 0x4ff000, 0xe02b};
    write_guest(sp, c);
    r = v->regs;
    r.rax = uint64_t(Hypercall::iret);
    r.rsp = sp;
    core::hypercall(*v, r);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_EQ(r.rip, 0x400999u);
    EXPECT_EQ(r.rsp, 0x4ff000u);
    EXPECT_EQ(r.cs, 0xe033u);
    EXPECT_EQ(r.ss, 0xe02bu);
    EXPECT_EQ(r.rax, 0x77u);
    EXPECT_EQ(r.rcx, 0x400abcu);
    EXPECT_EQ(r.r11, 0x246u);
    EXPECT_TRUE(r.rflags & 0x1);
    EXPECT_TRUE(r.rflags & core::flags::kIf);
    EXPECT_EQ(v->info->evtchn_upcall_mask, 0) << "IF in the frame unmasks events";
    EXPECT_TRUE(v->kernel_mode);

    // IF clear: events masked again; IOPL cannot be smuggled in.
    c.rflags = 0x2 | core::flags::kIopl;
    c.cs = 0xe030;
    write_guest(sp, c);
    r.rsp = sp;
    r.rax = uint64_t(Hypercall::iret);
    core::hypercall(*v, r);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_EQ(v->info->evtchn_upcall_mask, 1);
    EXPECT_EQ(r.rflags & core::flags::kIopl, 0u);
    EXPECT_TRUE(r.rflags & core::flags::kIf);
}

TEST_F(Hypercalls, IretToUserModeSwitchesTables) {
    v->guest_table_user = v->guest_table;
    v->gs_base_user = 0x7000;
    uint64_t sp = l.stack_va + 0x800;
    abi::IretContext c{0, 0, 0, 0, 0x1000, 0xe033, 0x202, 0x2000, 0xe02b};
    write_guest(sp, c);
    r = v->regs;
    r.rax = uint64_t(Hypercall::iret);
    r.rsp = sp;
    core::hypercall(*v, r);
    ASSERT_FALSE(crashed()) << fake::log();
    EXPECT_FALSE(v->kernel_mode);
    EXPECT_EQ(fake::calls().active_gs_base.back(), 0x7000u);
    EXPECT_EQ(fake::calls().loaded_l4.back(), v->guest_table_user);
}

TEST_F(Hypercalls, IretToUserModeWithoutUserTablesCrashes) {
    uint64_t sp = l.stack_va + 0x800;
    write_guest(sp, abi::IretContext{0, 0, 0, 0, 0x1000, 0xe033, 0x202, 0x2000, 0xe02b});
    r = v->regs;
    r.rax = uint64_t(Hypercall::iret);
    r.rsp = sp;
    core::hypercall(*v, r);
    EXPECT_TRUE(crashed()) << fake::log();
}

TEST_F(Hypercalls, IretBadSelectorCrashesDomain) {
    uint64_t sp = l.stack_va + 0x800;
    write_guest(sp, abi::IretContext{0, 0, 0, 0, 0x400999, 0x10, 0x202, 0x4ff000, 0xe02b});
    r = v->regs;
    r.rax = uint64_t(Hypercall::iret);
    r.rsp = sp;
    core::hypercall(*v, r);
    EXPECT_TRUE(crashed()) << fake::log();
    reap();
    EXPECT_TRUE(is_gone(d));
    EXPECT_EQ(core::frame_allocator().free_frames(), free_at_start);
}

TEST_F(Hypercalls, IretBadFrameCrashesDomain) {
    // Non-canonical rip.
    uint64_t sp = l.stack_va + 0x800;
    write_guest(sp, abi::IretContext{0, 0, 0, 0, 0x0000800000000000ull, 0xe033, 0x202, 0x4ff000, 0xe02b});
    r = v->regs;
    r.rax = uint64_t(Hypercall::iret);
    r.rsp = sp;
    core::hypercall(*v, r);
    EXPECT_TRUE(crashed()) << fake::log();
}

TEST_F(Hypercalls, IretUnreadableFrameCrashesDomain) {
    r = v->regs;
    r.rax = uint64_t(Hypercall::iret);
    r.rsp = l.v_end - 16;
    core::hypercall(*v, r);
    EXPECT_TRUE(crashed()) << fake::log();
}

// ---- small state hypercalls ---------------------------------------------------------

TEST_F(Hypercalls, StackSwitchSegmentBaseFpu) {
    EXPECT_EQ(call(Hypercall::stack_switch, 0xe028, 0x4f0000), 0);
    EXPECT_EQ(v->kernel_ss, 0xe02bu);
    EXPECT_EQ(v->kernel_sp, 0x4f0000u);

    EXPECT_EQ(call(Hypercall::set_segment_base, uint64_t(abi::SegBase::fs), 0x12345000), 0);
    EXPECT_EQ(v->fs_base, 0x12345000u);
    EXPECT_EQ(fake::calls().fs_base.back(), 0x12345000u);
    EXPECT_EQ(call(Hypercall::set_segment_base, uint64_t(abi::SegBase::fs), 0x0000800000000000ull), kEinval);
    EXPECT_EQ(call(Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_kernel), 0x6000), 0);
    EXPECT_EQ(fake::calls().active_gs_base.back(), 0x6000u);
    EXPECT_EQ(call(Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_user), 0x7000), 0);
    EXPECT_EQ(v->gs_base_user, 0x7000u);
    EXPECT_EQ(fake::calls().active_gs_base.back(), 0x6000u) << "user GS is not active in kernel mode";

    EXPECT_EQ(call(Hypercall::fpu_taskswitch, 1), 0);
    EXPECT_TRUE(v->fpu_ts);
    EXPECT_TRUE(fake::calls().fpu_trap.back());
    EXPECT_EQ(call(Hypercall::fpu_taskswitch, 0), 0);
    EXPECT_FALSE(v->fpu_ts);
}

TEST_F(Hypercalls, SchedOp) {
    unsigned before = fake::calls().reschedule;
    EXPECT_EQ(call(Hypercall::sched_op, uint64_t(abi::SchedOp::yield)), 0);
    EXPECT_EQ(fake::calls().reschedule, before + 1);
    write_guest(scratch, abi::SchedShutdown{99});
    EXPECT_EQ(call(Hypercall::sched_op, uint64_t(abi::SchedOp::shutdown), scratch), kEinval);
    EXPECT_EQ(call(Hypercall::sched_op, uint64_t(abi::SchedOp::shutdown), l.v_end), kEfault);
    write_guest(scratch, abi::SchedShutdown{uint32_t(abi::ShutdownReason::poweroff)});
    EXPECT_EQ(call(Hypercall::sched_op, uint64_t(abi::SchedOp::shutdown), scratch), 0);
    reap();
    EXPECT_TRUE(is_gone(d));
    EXPECT_EQ(core::frame_allocator().free_frames(), free_at_start);
}

// ---- update_va_mapping ---------------------------------------------------------------

class UpdateVaMapping : public Hypercalls {
protected:
    int64_t uvm(uint64_t va, uint64_t val, uint64_t flags = abi::kUvmfNone) {
        return call(Hypercall::update_va_mapping, va, val, flags);
    }
    void expect_consistent() { EXPECT_EQ(check_frame_accounting(v->guest_table, d->id), 0); }
};

TEST_F(UpdateVaMapping, RefusesWritableMappingOfPageTable) {
    uint64_t old = l1e(scratch);
    for (uint64_t i = 0; i < l.nr_pt_frames; ++i) {
        core::Mfn t = mfn_at(l.pt_va + i * 4096);
        EXPECT_EQ(uvm(scratch, pte::make(t, pte::kPresent | pte::kWritable)), kEinval) << "table " << i;
        EXPECT_EQ(l1e(scratch), old);
    }
    // The L4 by its own frame number.
    EXPECT_EQ(uvm(scratch, pte::make(v->guest_table, pte::kPresent | pte::kWritable)), kEinval);
    EXPECT_EQ(l1e(scratch), old);
    expect_consistent();
}

TEST_F(UpdateVaMapping, DeviceMemoryNeedsAnMmioCapability) {
    uint64_t old = l1e(scratch);
    core::Mfn dev = 0xFEBF0;   // beyond RAM: a BAR's page
    EXPECT_EQ(uvm(scratch, pte::make(dev, pte::kPresent | pte::kWritable)), kEinval) << "no capability";
    EXPECT_EQ(l1e(scratch), old);
    ASSERT_GE(core::caps::give_root(*d, cap::Capability{cap::Type::mmio, cap::right::use, dev << 12, 0x2000, 0}), 0);
    EXPECT_EQ(uvm(scratch, pte::make(dev + 1, pte::kPresent | pte::kWritable)), 0) << "inside the range";
    EXPECT_EQ(pte::mfn(l1e(scratch)), dev + 1);
    expect_consistent();
    EXPECT_EQ(uvm(scratch + 4096, pte::make(dev + 2, pte::kPresent)), kEinval) << "just past the range";
    EXPECT_EQ(uvm(scratch, old), 0) << "and unmapped again, no references to give back";
    expect_consistent();
    // Device registers may be mapped uncached; RAM may not.
    EXPECT_EQ(uvm(scratch, pte::make(dev, pte::kPresent | pte::kWritable)), 0);
    EXPECT_EQ(uvm(scratch, pte::make(dev, pte::kPresent | pte::kWritable | pte::kPcd | pte::kPwt)), 0)
        << "the same frame, made uncached";
    EXPECT_EQ(uvm(scratch, pte::make(dev, pte::kPresent | pte::kWritable | pte::kPcd)), 0) << "flags only";
    EXPECT_EQ(uvm(scratch, old), 0);
    EXPECT_EQ(uvm(scratch, old | pte::kPcd), kEinval) << "RAM uncached";
    EXPECT_EQ(l1e(scratch), old);
    expect_consistent();
    // RAM stays refused whatever Mmio capability a domain holds.
    core::Mfn free_frame = 0;
    for (core::Mfn m = fake::kReservedFrames; m < fake::nframes(); ++m)
        if (core::frame_allocator().is_free(m)) { free_frame = m; break; }
    ASSERT_GE(core::caps::give_root(*d, cap::Capability{cap::Type::mmio, cap::right::use, free_frame << 12, 4096, 0}), 0);
    EXPECT_EQ(uvm(scratch, pte::make(free_frame, pte::kPresent)), kEinval);
}

TEST_F(UpdateVaMapping, RefusesFramesTheDomainDoesNotOwn) {
    uint64_t old = l1e(scratch);
    // A reserved frame, a free frame, the end of memory and beyond.
    core::Mfn free_frame = 0;
    for (core::Mfn m = fake::kReservedFrames; m < fake::nframes(); ++m)
        if (core::frame_allocator().is_free(m)) { free_frame = m; break; }
    ASSERT_NE(free_frame, 0u);
    for (core::Mfn m : {core::Mfn{1}, free_frame, fake::nframes() - 1 + 1, core::Mfn{0xFFFFFFFFF}}) {
        EXPECT_EQ(uvm(scratch, pte::make(m, pte::kPresent)), kEinval) << m;
        EXPECT_EQ(uvm(scratch, pte::make(m, pte::kPresent | pte::kWritable)), kEinval) << m;
    }
    // Another domain's frame.
    auto r2 = core::build_pv_domain(spec(kPages));
    ASSERT_TRUE(r2.ok());
    core::Mfn theirs = (*r2)->vcpu[0].guest_table;
    platform::load_page_table(v->guest_table);
    EXPECT_EQ(uvm(scratch, pte::make(theirs, pte::kPresent)), kEinval);
    core::Mfn their_data = (*r2)->shared_info_mfn;
    EXPECT_EQ(uvm(scratch, pte::make(their_data, pte::kPresent | pte::kWritable)), kEinval);
    EXPECT_EQ(l1e(scratch), old);
    expect_consistent();
    EXPECT_EQ(check_frame_accounting((*r2)->vcpu[0].guest_table, (*r2)->id), 0);
}

TEST_F(UpdateVaMapping, AcceptsReadOnlyAliasOfL4) {
    core::Mfn l4 = v->guest_table;
    core::Mfn old_frame = mfn_at(scratch);
    uint32_t l4_count = core::frame_table()[l4].count;
    EXPECT_EQ(uvm(scratch, pte::make(l4, pte::kPresent), abi::kUvmfInvlpg), 0);
    EXPECT_EQ(mfn_at(scratch), l4);
    EXPECT_TRUE(l1e(scratch) & pte::kUser) << "user is forced on";
    EXPECT_EQ(core::frame_table()[l4].count, l4_count + 1);
    EXPECT_EQ(core::frame_table()[l4].type, core::PageType::l4);
    EXPECT_EQ(core::frame_table()[old_frame].type_count, 0u) << "the old writable reference is dropped";
    ASSERT_FALSE(fake::calls().invlpg.empty());
    EXPECT_EQ(fake::calls().invlpg.back(), scratch);
    // The guest reads its L4 there, and cannot write it.
    EXPECT_EQ(read_guest<uint64_t>(scratch + 256 * 8), fake::hv_slot_marker(256));
    EXPECT_FALSE(platform::copy_to_guest(scratch, "x", 1));
    expect_consistent();
    // Making the alias writable is refused, and changes nothing.
    EXPECT_EQ(uvm(scratch, pte::make(l4, pte::kPresent | pte::kWritable)), kEinval);
    EXPECT_EQ(core::frame_table()[l4].count, l4_count + 1);
    expect_consistent();
}

TEST_F(UpdateVaMapping, MovesReferencesBetweenFrames) {
    uint64_t a = scratch, b = scratch + 0x1000, c = scratch + 0x2000;
    core::Mfn fb = mfn_at(b);
    // Map b's frame at a as well, writable: two writable references.
    EXPECT_EQ(uvm(a, pte::make(fb, pte::kPresent | pte::kWritable | pte::kAccessed | pte::kDirty),
                  abi::kUvmfTlbFlush), 0);
    EXPECT_EQ(fake::calls().flush_tlb, 1u);
    EXPECT_EQ(core::frame_table()[fb].type_count, 2u);
    expect_consistent();
    uint32_t x = 0xfeedface;
    ASSERT_TRUE(platform::copy_to_guest(a, &x, 4));
    EXPECT_EQ(read_guest<uint32_t>(b), x);
    // Downgrade to read-only.
    EXPECT_EQ(uvm(a, pte::make(fb, pte::kPresent)), 0);
    EXPECT_EQ(core::frame_table()[fb].type_count, 1u);
    expect_consistent();
    // Unmap both a and c.
    EXPECT_EQ(uvm(a, 0), 0);
    EXPECT_EQ(uvm(c, 0), 0);
    uint8_t byte;
    EXPECT_FALSE(platform::copy_from_guest(&byte, a, 1));
    expect_consistent();
    // Re-map the same entry with the same value: counts do not drift.
    uint64_t e = l1e(b);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(uvm(b, e), 0);
    EXPECT_EQ(core::frame_table()[fb].type_count, 1u);
    expect_consistent();
}

TEST_F(UpdateVaMapping, RefusesBadFlagsAndAddresses) {
    core::Mfn f = mfn_at(scratch + 0x1000);
    uint64_t old = l1e(scratch);
    EXPECT_EQ(uvm(scratch, pte::make(f, pte::kPresent | pte::kPcd)), kEinval);
    EXPECT_EQ(uvm(scratch, pte::make(f, pte::kPresent | pte::kPse)), kEinval);   // PAT
    EXPECT_EQ(uvm(scratch, pte::make(f, pte::kPresent) | (1ull << 52)), kEinval);
    EXPECT_EQ(l1e(scratch), old);
    EXPECT_EQ(uvm(0xFFFF800000000000ull, 0), kEinval);
    EXPECT_EQ(uvm(0x0000800000000000ull, 0), kEinval);
    EXPECT_EQ(uvm(0x40000000, pte::make(f, pte::kPresent)), kEinval) << "no L1 there";
    expect_consistent();
}

TEST_F(UpdateVaMapping, ShutdownAfterRemappingReturnsEverything) {
    core::Mfn l4 = v->guest_table;
    EXPECT_EQ(uvm(scratch, pte::make(l4, pte::kPresent)), 0);
    EXPECT_EQ(uvm(scratch + 0x1000, 0), 0);
    EXPECT_EQ(uvm(scratch + 0x2000, pte::make(mfn_at(scratch + 0x3000), pte::kPresent | pte::kWritable)), 0);
    expect_consistent();
    core::domain_shutdown(*d, abi::ShutdownReason::poweroff);
    reap();
    EXPECT_EQ(core::frame_allocator().free_frames(), free_at_start);
    EXPECT_TRUE(core::frame_allocator().check_invariants());
}

}  // namespace

// ---- physical interrupts as events ----------------------------------------

namespace {

class Interrupts : public Hypercalls {
protected:
    int64_t bind_pirq(uint32_t line, uint32_t* port) {
        abi::EvtchnBindPirq b{line, 0, 0};
        EXPECT_TRUE(platform::copy_to_guest(scratch, &b, sizeof b));
        int64_t rc = call(Hypercall::event_channel_op, uint64_t(abi::EvtchnOp::bind_pirq), scratch);
        EXPECT_TRUE(platform::copy_from_guest(&b, scratch, sizeof b));
        *port = b.port;
        return rc;
    }
    int64_t evtchn(abi::EvtchnOp op, uint32_t port) {
        EXPECT_TRUE(platform::copy_to_guest(scratch, &port, sizeof port));
        return call(Hypercall::event_channel_op, uint64_t(op), scratch);
    }
    bool pending(uint32_t port) { return (d->shared_info->evtchn_pending[port / 64] >> (port % 64)) & 1; }
    bool last_mask(unsigned line, bool* masked) {
        for (auto it = fake::calls().irq_masked.rbegin(); it != fake::calls().irq_masked.rend(); ++it)
            if (it->first == line) return *masked = it->second, true;
        return false;
    }
};

TEST_F(Interrupts, BindNeedsAnIrqCapability) {
    uint32_t port = 0;
    EXPECT_EQ(bind_pirq(4, &port), -1);   // EPERM
    EXPECT_TRUE(fake::calls().irq_masked.empty()) << "a refused bind touches no line";
}

TEST_F(Interrupts, FireMasksMarksPendingAndUnmaskAcknowledges) {
    ASSERT_GE(core::caps::give_root(*d, cap::Capability{cap::Type::irq, cap::right::use, 4, 0, 0}), 0);
    uint32_t port = 0;
    ASSERT_EQ(bind_pirq(4, &port), 0);
    ASSERT_GT(port, 0u);
    bool masked = true;
    ASSERT_TRUE(last_mask(4, &masked));
    EXPECT_FALSE(masked) << "binding unmasks the line";
    uint32_t other = 0;
    EXPECT_EQ(bind_pirq(4, &other), -16) << "one domain per line (EBUSY)";
    EXPECT_EQ(bind_pirq(5, &other), -1) << "no capability for line 5";

    uint64_t before = core::irq_count(4);
    core::irq_fire(4);
    EXPECT_EQ(core::irq_count(4), before + 1);
    EXPECT_TRUE(pending(port));
    ASSERT_TRUE(last_mask(4, &masked));
    EXPECT_TRUE(masked) << "the line stays masked until the domain acknowledges";

    EXPECT_EQ(evtchn(abi::EvtchnOp::unmask, port), 0);
    ASSERT_TRUE(last_mask(4, &masked));
    EXPECT_FALSE(masked) << "unmasking the port acknowledges the line";

    EXPECT_EQ(evtchn(abi::EvtchnOp::close, port), 0);
    ASSERT_TRUE(last_mask(4, &masked));
    EXPECT_TRUE(masked) << "closing the port masks the line";
    EXPECT_EQ(bind_pirq(4, &other), 0) << "and frees it";
}

TEST_F(Interrupts, AnUnboundLineIsMaskedWhenItFires) {
    core::irq_fire(7);
    bool masked = false;
    ASSERT_TRUE(last_mask(7, &masked));
    EXPECT_TRUE(masked);
}

}  // namespace
