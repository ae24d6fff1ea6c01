#pragma once
// The saved state of a guest vCPU, laid out exactly as the entry code builds it
// at the top of the per-CPU stack (kernel/arch/x86_64/src/entry.S): the general
// registers, the entry vector and error code, then the hardware iret frame.

#include <cstddef>
#include <cstdint>

#include <abi/x86_64.hpp>

namespace core {

struct Regs {
    uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
    uint64_t rax, rcx, rdx, rsi, rdi;
    uint64_t vector;      // IDT vector, or kVectorSyscall / kVectorSyscall32
    uint64_t error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};
static_assert(sizeof(Regs) == 176);
static_assert(offsetof(Regs, r11) == 48);
static_assert(offsetof(Regs, rcx) == 88);
static_assert(offsetof(Regs, vector) == 120);
static_assert(offsetof(Regs, rip) == 136);
static_assert(offsetof(Regs, cs) == 144);
static_assert(offsetof(Regs, rflags) == 152);
static_assert(offsetof(Regs, rsp) == 160);
static_assert(offsetof(Regs, ss) == 168);

constexpr uint64_t kVectorSyscall = 0x100;
constexpr uint64_t kVectorSyscall32 = 0x101;

// x86 exception vectors the core cares about.
namespace vec {
constexpr uint8_t kDivide = 0, kDebug = 1, kNmi = 2, kBreakpoint = 3, kOverflow = 4, kBound = 5,
                  kInvalidOp = 6, kNoDevice = 7, kDoubleFault = 8, kInvalidTss = 10,
                  kNoSegment = 11, kStack = 12, kGeneralProtection = 13, kPageFault = 14,
                  kFpu = 16, kAlignment = 17, kMachineCheck = 18, kSimd = 19;
constexpr unsigned kFirstIrq = 32;
}  // namespace vec

// Selectors a guest may run with (Xen's flat ring-3 segments), and the
// RFLAGS bits it may control.
namespace sel {
constexpr uint64_t kGuestCs32 = 0xe023;
constexpr uint64_t kGuestDs = 0xe02b;
constexpr uint64_t kGuestCs64 = 0xe033;
}  // namespace sel

namespace flags {
constexpr uint64_t kFixed = 1u << 1;
constexpr uint64_t kTf = 1u << 8;
constexpr uint64_t kIf = 1u << 9;
constexpr uint64_t kIopl = 3u << 12;
constexpr uint64_t kNt = 1u << 14;
constexpr uint64_t kRf = 1u << 16;
constexpr uint64_t kVm = 1u << 17;
constexpr uint64_t kAc = 1u << 18;
// Arithmetic flags, TF, DF, AC, ID and friends; never IOPL, VM, VIF/VIP.
}  // namespace flags

// Forces a guest-supplied RFLAGS into something the CPU may run a guest with:
// IF always set (a guest masks events, never interrupts), IOPL 0, no VM86,
// no nested task, bit 1 set.
constexpr uint64_t sanitize_rflags(uint64_t f) {
    constexpr uint64_t kAllowed = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | flags::kTf | 0x400 | 0x800 |
                                  flags::kRf | flags::kAc | (1u << 21);
    return (f & kAllowed) | flags::kIf | flags::kFixed;
}

constexpr bool is_canonical(uint64_t va) {
    return static_cast<uint64_t>(static_cast<int64_t>(va << 16) >> 16) == va;
}

// A guest virtual address: canonical and outside the hypervisor's L4 slots
// (256..271, 0xffff8000'00000000 - 0xffff87ff'ffffffff, as in Xen).
constexpr bool is_guest_address(uint64_t va) {
    return is_canonical(va) && !(va >= abi::kHypervisorVirtStart && va < abi::kHypervisorVirtEnd);
}

}  // namespace core
