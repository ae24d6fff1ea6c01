#pragma once
// How a 64-bit PV guest's 32-bit user processes enter its kernel, with Xen's
// semantics (xen/arch/x86/pv/callback.c for the registration,
// xen/arch/x86/x86_64/entry.S cstar_enter/switch_to_kernel and sysenter_entry
// for the entries). The guest registers the entry points with callback_op
// (hc_traps.cpp): syscall32 and sysenter, each a guest address or 0, each
// with CALLBACKF_mask_events honoured.
//
//  - `syscall` in compatibility mode (the CPU's CSTAR entry; AMD CPUs, and
//    QEMU's TCG): bounced to the syscall32 callback with the syscall frame
//    {rcx, r11, rip, cs, rflags, rsp, ss} (CS the flat 32-bit user one),
//    events masked if it was registered so, DF cleared; from guest kernel
//    mode as from user mode, as Xen does. With no syscall32 callback the
//    guest gets #UD at the `syscall` (Xen since 4.15), at its own #UD
//    handler; only a guest with neither is crashed. (Xen's 64-bit guests take
//    the mask flag of the 64-bit syscall callback here; Moat takes the
//    syscall32 callback's own.)
//  - `sysenter` from guest user mode: Moat never sets up the SYSENTER MSRs
//    (SYSENTER_CS is 0), so on Intel CPUs the instruction raises #GP(0),
//    which the emulator (core/emulate.hpp) turns into Xen's sysenter bounce:
//    rip 0, CS 3, rsp 0 in the frame (the CPU saved neither). Without a
//    callback, or from guest kernel mode, the #GP(0) is delivered as it is
//    (Xen delivers #GP(0) too, with rip 0). On AMD CPUs `sysenter` in long
//    mode is #UD, delivered as it is, as under Xen.
//  - nmi: registration is accepted and stored (trap-table slot 2), but Moat
//    forwards no NMI to a guest, so the callback is never entered.

#include <core/domain.hpp>

namespace core {

// A `syscall` from compatibility mode (arch: the CSTAR entry).
void guest_compat_syscall(Vcpu& v, Regs& r);

// A `sysenter` that faulted with #GP(0) (core/emulate.cpp). true: handled
// (bounced to the callback, or the domain crashed); false: deliver the #GP.
[[nodiscard]] bool guest_sysenter(Vcpu& v, Regs& r);

}  // namespace core
