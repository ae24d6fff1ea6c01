#pragma once
// A PV guest's debug registers, with Xen's semantics
// (xen/arch/x86/pv/misc-hypercalls.c set_debugreg, x86emul_read_dr; the #DB
// handling of xen/arch/x86/traps.c): set_debugreg (8) and get_debugreg (9),
// and `mov %drN` of the guest kernel (core/emulate.hpp), read and write the
// vCPU's dr[]; while a vCPU whose DR7 enables a breakpoint runs, DR0-3 and
// DR7 are the CPU's (platform::load_debug_registers, on every context switch
// and on every change of the running vCPU's), otherwise the CPU's DR7 is 0.
//
// Invariants that keep a guest's breakpoints out of the hypervisor:
//  - dr[0..3] only ever hold guest addresses (canonical, outside the
//    hypervisor's slots 256..271). A breakpoint covers at most 8 bytes,
//    aligned, and both ends of the hypervisor's range are 4 GiB aligned, so
//    no enabled breakpoint reaches a hypervisor address: the hypervisor never
//    executes at one (no instruction breakpoint can fire in it) and touches
//    guest addresses only through copy_{from,to}_guest.
//  - DR7 never has GD (general detect: the guest's own `mov %dr` would trap
//    in the hypervisor's emulation), reserved bits (bits 32-63 refused, 11,
//    12, 14 and 15 cleared, 10 set, as Xen), or I/O breakpoints (R/W = 10b:
//    Xen emulates them for a guest with CR4.DE; Moat does not, and refuses).
//  - A data breakpoint on a guest buffer the hypervisor copies from or to
//    fires in the hypervisor: the #DB is tolerated there as Xen does (logged
//    through the domain's rate-limited log, the CPU's DR6 reset, the copy
//    resumed with RF set), never delivered to the guest nor made visible in
//    its DR6.
//  - dr[6] is the guest's virtual DR6: a #DB from guest code merges the
//    CPU's DR6 into it (sticky status bits, as Xen) and resets the CPU's; the
//    guest clears it itself (set_debugreg(6, 0)).

#include <cstdint>

#include <core/domain.hpp>

namespace core {

constexpr uint64_t kDr6Default = 0xFFFF0FF0;   // DR6 with no status bit set
constexpr uint64_t kDr7Default = 0x400;        // DR7 with nothing enabled
constexpr uint64_t kDr7Enables = 0xFF;         // L0-3 and G0-3

// Writes debug register `reg` of `v` (0-7; 4 and 5 alias 6 and 7 unless the
// guest set CR4.DE). 0, or Xen's codes: -EPERM (a breakpoint address that is
// not the guest's, DR7.GD, an I/O breakpoint), -EINVAL (bits 32-63 of DR6 or
// DR7), -ENODEV (no such register). When `v` is the running vCPU the CPU
// follows at once.
[[nodiscard]] long debugreg_set(Vcpu& v, uint64_t reg, uint64_t value);
// Reads it: 0 or -ENODEV.
[[nodiscard]] long debugreg_get(const Vcpu& v, uint64_t reg, uint64_t* value);

// Whether the vCPU's DR7 enables any breakpoint (its DR0-3 must then be loaded).
constexpr bool debugreg_active(const Vcpu& v) { return (v.dr[7] & kDr7Enables) != 0; }

// A #DB raised by the vCPU's own code, with the CPU's DR6 as it was: merged
// into the vCPU's DR6 (status bits are sticky; RTM, active low, clears), so
// that its handler reads it with get_debugreg(6) or `mov %dr6`.
void debugreg_guest_trap(Vcpu& v, uint64_t hw_dr6);

// The hypercalls: set_debugreg(reg, value), get_debugreg(reg) (the value,
// or -ENODEV).
int64_t hc_set_debugreg(Vcpu& v, Regs& r);
int64_t hc_get_debugreg(Vcpu& v, Regs& r);

}  // namespace core
