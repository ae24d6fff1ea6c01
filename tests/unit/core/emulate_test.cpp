// The instruction decoder and the emulation of a PV kernel's privileged
// instructions (core/x86_insn.hpp, core/emulate.hpp): each instruction
// placed in guest memory, faulted as the CPU would fault it, and emulated
// (or not, and then delivered) against the vCPU's virtual state.

#include <gtest/gtest.h>

#include <vector>

#include <abi/moat.hpp>
#include <core/emulate.hpp>
#include <core/traps.hpp>
#include <core/x86_insn.hpp>

#include "test_domain.hpp"

namespace {

using namespace coretest;
namespace x86 = core::x86;

// ---- decoder -----------------------------------------------------------------

x86::Insn dec(std::vector<uint8_t> b) {
    x86::Insn in;
    EXPECT_TRUE(x86::decode(b.data(), b.size(), &in));
    return in;
}
bool refuses(std::vector<uint8_t> b) {
    x86::Insn in;
    return !x86::decode(b.data(), b.size(), &in);
}

TEST(Decode, PrivilegedInstructions) {
    EXPECT_EQ(dec({0x0F, 0x30}).opcode, 0x0F30);
    EXPECT_EQ(dec({0x0F, 0x30}).len, 2);
    EXPECT_EQ(dec({0x0F, 0x32}).opcode, 0x0F32);
    auto movcr = dec({0x0F, 0x20, 0xE0});   // mov %cr4, %rax
    EXPECT_EQ(movcr.reg, 4);
    EXPECT_EQ(movcr.rm, 0);
    EXPECT_FALSE(movcr.memory);
    auto movcr3 = dec({0x41, 0x0F, 0x22, 0xDB});   // mov %r11, %cr3
    EXPECT_EQ(movcr3.opcode, 0x0F22);
    EXPECT_EQ(movcr3.reg, 3);
    EXPECT_EQ(movcr3.rm, 11);
    EXPECT_EQ(dec({0xFA}).len, 1);
    auto in_imm = dec({0xE4, 0x60});
    EXPECT_EQ(in_imm.imm, 0x60);
    EXPECT_EQ(in_imm.len, 2);
    EXPECT_TRUE(dec({0x66, 0xED}).opsize16);
}

TEST(Decode, MemoryOperands) {
    // lock cmpxchg %rcx, 0x10(%rdi,%rsi,8)
    auto c = dec({0xF0, 0x48, 0x0F, 0xB1, 0x4C, 0xF7, 0x10});
    EXPECT_TRUE(c.lock);
    EXPECT_EQ(c.opcode, 0x0FB1);
    EXPECT_EQ(c.opsize(), 8u);
    EXPECT_TRUE(c.memory);
    EXPECT_EQ(c.reg, 1);
    EXPECT_TRUE(c.has_base && c.has_index);
    EXPECT_EQ(c.base, 7);
    EXPECT_EQ(c.index, 6);
    EXPECT_EQ(c.scale, 8);
    EXPECT_EQ(c.disp, 0x10);
    EXPECT_EQ(c.len, 7);
    core::Regs r{};
    r.rdi = 0x1000;
    r.rsi = 3;
    EXPECT_EQ(x86::effective_address(c, r, 0), 0x1000u + 24 + 0x10);
    // mov %rax, 0x1234(%rip)
    auto rip = dec({0x48, 0x89, 0x05, 0x34, 0x12, 0, 0});
    EXPECT_TRUE(rip.rip_relative);
    EXPECT_EQ(x86::effective_address(rip, r, 0x400000), 0x400000u + 7 + 0x1234);
    // lock btr $5, (%r12): REX.B extends the SIB-less base
    auto btr = dec({0xF0, 0x49, 0x0F, 0xBA, 0x34, 0x24, 0x05});
    EXPECT_EQ(btr.reg & 7, 6);
    EXPECT_EQ(btr.base, 12);
    EXPECT_EQ(btr.imm, 5);
    // movq $-1, -8(%rbp): imm32 sign-extended
    auto imm = dec({0x48, 0xC7, 0x45, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF});
    EXPECT_EQ(imm.imm, -1);
    EXPECT_EQ(imm.disp, -8);
    // andq $~0x40, (%rdi) (group 1, imm8)
    EXPECT_EQ(dec({0x48, 0x83, 0x27, 0xBF}).imm, -0x41);
}

TEST(Decode, RefusesWhatItDoesNotEmulateAndWhatIsCut) {
    EXPECT_TRUE(refuses({0x90}));                       // nop
    EXPECT_TRUE(refuses({0x0F, 0x05}));                 // syscall
    EXPECT_TRUE(refuses({0x0F, 0x01, 0xD1}));           // xsetbv
    EXPECT_TRUE(refuses({0x67, 0x89, 0x07}));           // 32-bit addressing
    EXPECT_TRUE(refuses({0x48, 0x89}));                 // ModRM missing
    EXPECT_TRUE(refuses({0x48, 0x89, 0x84, 0x24}));     // SIB + disp32 cut short
    EXPECT_TRUE(refuses({0x48, 0xC7, 0x07, 0xFF}));     // imm32 cut short
    EXPECT_TRUE(refuses({0x0F}));
    EXPECT_TRUE(refuses({}));
    // Fifteen prefixes and nothing else: beyond the architectural length.
    EXPECT_TRUE(refuses(std::vector<uint8_t>(15, 0x66)));
    std::vector<uint8_t> long_one(14, 0x66);
    long_one.push_back(0xFA);
    EXPECT_EQ(dec(long_one).len, 15);
}

// ---- emulation -------------------------------------------------------------

constexpr uint64_t kGpHandler = 0x400300, kUdHandler = 0x400500;

class Emulate : public DomainTest {
protected:
    void SetUp() override {
        DomainTest::SetUp();
        if (HasFatalFailure()) return;
        code = kImageEnd + 0x200000;
        v->traps[13] = core::TrapHandler{kGpHandler, 0, false};
        v->traps[6] = core::TrapHandler{kUdHandler, 0, false};
        r = v->regs;
        r.rsp = l.stack_va + 4096 - 64;
    }
    // Places `bytes` at `code` and faults on them with `vector`.
    void run(std::vector<uint8_t> bytes, unsigned vector = 13) {
        ASSERT_TRUE(platform::copy_to_guest(code, bytes.data(), bytes.size()));
        r.rip = code;
        core::guest_exception(*v, r, vector, 0, 0);
    }
    bool emulated(size_t len) const { return r.rip == code + len; }
    bool delivered(uint64_t handler) const { return r.rip == handler; }

    uint64_t code = 0;
    core::Regs r{};
};

TEST_F(Emulate, WrmsrAndRdmsrOfTheSegmentBases) {
    r.rcx = 0xC0000101;   // GS_BASE: the kernel's while in kernel mode
    r.rdx = 0xFFFFFFFF;
    r.rax = 0x81234000;
    run({0x0F, 0x30});
    EXPECT_TRUE(emulated(2));
    EXPECT_EQ(v->gs_base_kernel, 0xFFFFFFFF81234000ull);
    r.rcx = 0xC0000102;   // the other one
    r.rdx = 0;
    r.rax = 0x7000;
    run({0x0F, 0x30});
    EXPECT_EQ(v->gs_base_user, 0x7000u);
    r.rcx = 0xC0000101;
    r.rax = r.rdx = 0;
    run({0x0F, 0x32});
    EXPECT_TRUE(emulated(2));
    EXPECT_EQ((r.rdx << 32) | r.rax, 0xFFFFFFFF81234000ull);
    // Not canonical: #GP to the guest, nothing changed.
    r.rcx = 0xC0000100;
    r.rdx = 0x00800000;
    r.rax = 0;
    run({0x0F, 0x30});
    EXPECT_TRUE(delivered(kGpHandler));
}

TEST_F(Emulate, UnknownMsrsFault) {
    for (uint32_t msr : {0x1Bu, 0x48u, 0x10Au, 0x8Bu, 0xC0000103u, 0xFFFFFFFFu}) {
        r.rcx = msr;
        run({0x0F, 0x32});
        EXPECT_TRUE(delivered(kGpHandler)) << std::hex << msr;
        r.rcx = msr;
        run({0x0F, 0x30});
        EXPECT_TRUE(delivered(kGpHandler)) << std::hex << msr;
    }
    r.rcx = 0x277;   // PAT: Xen's value, and only that
    run({0x0F, 0x32});
    EXPECT_EQ((r.rdx << 32) | r.rax, core::kXenPat);
    r.rcx = 0x277;
    r.rax = 0x06060606;
    r.rdx = 0;
    run({0x0F, 0x30});
    EXPECT_TRUE(delivered(kGpHandler));
}

TEST_F(Emulate, ControlRegisters) {
    run({0x0F, 0x20, 0xC0});   // mov %cr0, %rax
    EXPECT_TRUE(emulated(3));
    EXPECT_EQ(r.rax, 0x80050033u);
    r.rax |= 8;   // TS
    run({0x0F, 0x22, 0xC0});
    EXPECT_TRUE(emulated(3));
    EXPECT_TRUE(v->fpu_ts);
    r.rax = 0x80000001;   // dropping WP and friends: refused
    run({0x0F, 0x22, 0xC0});
    EXPECT_TRUE(delivered(kGpHandler));
    run({0x0F, 0x06});   // clts
    EXPECT_FALSE(v->fpu_ts);
    run({0x0F, 0x20, 0xD9});   // mov %cr3, %rcx
    EXPECT_EQ(r.rcx, v->guest_table << 12);
    run({0x0F, 0x20, 0xE2});   // mov %cr4, %rdx
    EXPECT_EQ(r.rdx, 0x660u) << "the host's PAE, MCE, OSFXSR, OSXMMEXCPT only";
    r.rdx = ~0ull;   // anything goes in; only TSD and DE stay
    run({0x0F, 0x22, 0xE2});
    EXPECT_TRUE(emulated(3));
    run({0x0F, 0x20, 0xE2});
    EXPECT_EQ(r.rdx, 0x660u | 0xC);
    run({0x44, 0x0F, 0x20, 0xC0});   // mov %cr8, %rax: no
    EXPECT_TRUE(delivered(kGpHandler));
    // From user mode nothing is emulated.
    v->kernel_mode = false;
    v->guest_table_user = v->guest_table;
    r.rsp = l.stack_va + 4096 - 64;
    v->kernel_sp = l.stack_va + 4096 - 64;
    run({0x0F, 0x20, 0xC0});
    EXPECT_TRUE(delivered(kGpHandler));
}

TEST_F(Emulate, IoAndInterruptFlagNeedTheVirtualIopl) {
    v->info->evtchn_upcall_mask = 0;
    run({0xFA});   // cli without IOPL
    EXPECT_TRUE(delivered(kGpHandler));
    EXPECT_EQ(v->info->evtchn_upcall_mask, 0);
    // physdev_op set_iopl, as Linux does at boot.
    abi::PhysdevSetIopl io{1};
    ASSERT_TRUE(platform::copy_to_guest(code + 0x100, &io, sizeof io));
    core::Regs h = v->regs;
    h.rax = uint64_t(abi::Hypercall::physdev_op);
    h.rdi = abi::kPhysdevSetIopl;
    h.rsi = code + 0x100;
    core::hypercall(*v, h);
    EXPECT_EQ(int64_t(h.rax), 0);
    EXPECT_EQ(v->iopl, 1);
    run({0xFA});
    EXPECT_TRUE(emulated(1));
    EXPECT_EQ(v->info->evtchn_upcall_mask, 1);
    run({0xFB});
    EXPECT_EQ(v->info->evtchn_upcall_mask, 0);
    r.rax = 0x12345678;
    run({0xE4, 0x60});   // in $0x60, %al: no such port for it
    EXPECT_TRUE(emulated(2));
    EXPECT_EQ(r.rax, 0x123456FFu);
    r.rdx = 0x3F8;
    run({0x66, 0xED});   // in (%dx), %ax
    EXPECT_EQ(r.rax & 0xFFFF, 0xFFFFu);
    run({0xEE});   // out %al, (%dx): dropped
    EXPECT_TRUE(emulated(1));
    // IOPL 4 is not a thing.
    io.iopl = 4;
    ASSERT_TRUE(platform::copy_to_guest(code + 0x100, &io, sizeof io));
    h = v->regs;
    h.rax = uint64_t(abi::Hypercall::physdev_op);
    h.rdi = abi::kPhysdevSetIopl;
    h.rsi = code + 0x100;
    core::hypercall(*v, h);
    EXPECT_EQ(int64_t(h.rax), -22);
}

TEST_F(Emulate, ForcedCpuid) {
    std::vector<uint8_t> fep = {0x0F, 0x0B, 'x', 'e', 'n', 0x0F, 0xA2};
    r.rax = 0x40000000;
    run(fep, 6);
    EXPECT_TRUE(emulated(7));
    EXPECT_EQ(r.rbx, 0x566e6558u);   // "XenV"
    EXPECT_EQ(r.rcx, 0x65584d4du);
    EXPECT_EQ(r.rdx, 0x4d4d566eu);
    r.rax = 0x40000001;
    run(fep, 6);
    EXPECT_EQ(r.rax, (4u << 16) | 21);
    r.rax = 1;
    run(fep, 6);
    EXPECT_TRUE(r.rcx & (1u << 31)) << "hypervisor";
    EXPECT_FALSE(r.rcx & ((1u << 26) | (1u << 27) | (1u << 28))) << "no XSAVE, OSXSAVE, AVX";
    EXPECT_FALSE(r.rcx & ((1u << 5) | (1u << 21) | (1u << 17))) << "no VMX, x2APIC, PCID";
    EXPECT_FALSE(r.rdx & ((1u << 3) | (1u << 9) | (1u << 12) | (1u << 13))) << "no PSE, APIC, MTRR, PGE";
    EXPECT_TRUE(r.rdx & (1u << 25)) << "SSE";
    EXPECT_EQ((r.rbx >> 16) & 0xFF, 1u) << "one logical CPU";
    r.rax = 7;
    r.rcx = 0;
    run(fep, 6);
    EXPECT_FALSE(r.rbx & ((1u << 0) | (1u << 5) | (1u << 7) | (1u << 20))) << "no FSGSBASE, AVX2, SMEP, SMAP";
    EXPECT_EQ(r.rdx, 0u) << "no speculation controls";
    r.rax = 0xD;
    run(fep, 6);
    EXPECT_EQ(r.rax | r.rbx | r.rcx | r.rdx, 0u) << "no XSAVE leaf";
    r.rax = 0x80000001;
    run(fep, 6);
    EXPECT_TRUE(r.rdx & (1u << 29)) << "long mode";
    EXPECT_FALSE(r.rdx & (1u << 26)) << "no 1 GiB pages";
    // The prefix before anything but cpuid, or a plain ud2: delivered.
    run({0x0F, 0x0B, 'x', 'e', 'n', 0x0F, 0x30}, 6);
    EXPECT_TRUE(delivered(kUdHandler));
    run({0x0F, 0x0B, 0x90}, 6);
    EXPECT_TRUE(delivered(kUdHandler));
}

TEST_F(Emulate, DebugRegisters) {
    r.rax = 0x400100;
    run({0x0F, 0x23, 0xC0});   // mov %rax, %dr0
    EXPECT_TRUE(emulated(3));
    EXPECT_EQ(v->dr[0], 0x400100u);
    r.rax = 0xFFFF830000000000ull;   // a breakpoint on the hypervisor
    run({0x0F, 0x23, 0xC8});   // %dr1
    EXPECT_TRUE(delivered(kGpHandler));
    r.rax = 1u << 13;   // DR7.GD
    run({0x0F, 0x23, 0xF8});
    EXPECT_TRUE(delivered(kGpHandler));
    r.rax = 0x1;   // L0
    run({0x0F, 0x23, 0xF8});
    EXPECT_TRUE(emulated(3));
    run({0x0F, 0x21, 0xF9});   // mov %dr7, %rcx
    EXPECT_EQ(r.rcx, 0x401u);
}

TEST_F(Emulate, AnInstructionItCannotReadIsDelivered) {
    r.rip = l.v_end - 1;   // the last mapped byte: the rest is not there
    uint8_t b = 0x0F;
    ASSERT_TRUE(platform::copy_to_guest(r.rip, &b, 1));
    core::guest_exception(*v, r, 13, 0, 0);
    EXPECT_TRUE(delivered(kGpHandler));
}

}  // namespace
