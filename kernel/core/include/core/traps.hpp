#pragma once
// Delivering exceptions and events to a guest kernel the way Xen does on
// x86-64: a frame {rcx, r11, [error code,] rip, cs, rflags, rsp, ss} (lowest
// address first) pushed on the guest kernel stack, 16-byte aligned, then the
// guest continues at its handler. The saved upcall mask rides in bits 32-39 of
// the saved CS, and the saved RFLAGS.IF is the inverse of that mask. A frame
// from guest kernel mode carries CS with RPL 0, one from user mode RPL 3.

#include <cstdint>

#include <core/domain.hpp>

namespace core {

// An exception the guest raised (vector 0..31). Bounces it to the guest's
// handler, or crashes the domain when it has none. `cr2` is used for #PF.
void guest_exception(Vcpu& v, Regs& r, unsigned vector, uint64_t error_code, uint64_t cr2);

// A syscall made in guest user mode: goes to the guest kernel's syscall callback.
void guest_user_syscall(Vcpu& v, Regs& r);

// If an event upcall is pending and not masked, enters the event callback.
void deliver_events(Vcpu& v, Regs& r);

// Switches between guest kernel and guest user mode: page table and GS base.
void toggle_guest_mode(Vcpu& v);

// Loads the vCPU's address space and segment state for its current mode.
void load_guest_mode(Vcpu& v);

// A frame the CPU cannot return to (a bad iret): Xen's failsafe bounce,
// {rcx, r11, ds, es, fs, gs, rip, cs, rflags, rsp, ss} with the data
// selectors the vCPU has now, to its failsafe callback. False if the domain
// was crashed.
[[nodiscard]] bool bounce_failsafe(Vcpu& v, Regs& r);

// Data selectors the vCPU had when it left the CPU that the CPU refused
// when it came back (its GDT or LDT changed meanwhile): they are null now.
// As Xen's load_segments: its failsafe callback, with the selectors it had
// (`wanted`: ds, es, fs, gs) in the frame, so the guest kernel sees them
// differ from its current ones and reloads; without a failsafe callback the
// null selectors stay (noted in its log).
void segments_refused(Vcpu& v, Regs& r, const uint16_t wanted[4]);

// The exit path found a rip that is not canonical in the frame it returns
// to (an emulated instruction, or a hypercall's `syscall`, that ends at the
// top of the lower half): the CPU would refuse the iretq in the hypervisor.
// The guest gets the #GP(0) its own fetch there raises, at that rip.
void guest_noncanonical_rip(Vcpu& v, Regs& r);

// The CPU refused the exit iretq (its fault came back through the exception
// table): as a bad frame given to the iret hypercall, the failsafe callback
// (Xen's exit fixup), or a crash of the domain without one.
void guest_frame_refused(Vcpu& v, Regs& r);

// ---- #DB the hypervisor delivers itself ----
//
// A data breakpoint on the operand of `mov`/`pop %ss` is held back by the
// CPU until after the next instruction; if that one enters the hypervisor
// (`syscall`, `int3`, `int $n`) the #DB is raised at its entry point, in
// ring 0 (Xen's XSA-260). It is the guest's: `held_dr6` (the CPU's DR6 then,
// 0 for none) is delivered as a #DB once that entry is done, where the guest
// goes on (the handler its exception went to, its syscall callback, after
// its hypercall), as a native kernel sees it at the first instruction of its
// handler.
void deliver_held_debug_trap(Vcpu& v, Regs& r, uint64_t held_dr6);

// After hypercall `nr` made by the `syscall` before `entry_rip` with
// `entry_rflags` (the guest's, r11 at entry): the single-step trap of the
// `syscall` when TF was set (the CPU masks TF on entry and reports none): a
// #DB with DR6.BS at the instruction after it -- unless the hypercall was
// iret (the guest is elsewhere, with its own rflags) or is continued (rip
// back on the `syscall`: the trap comes when it completes). `held_dr6` as
// deliver_held_debug_trap: both go in one #DB, as the CPU merges them.
void hypercall_debug_trap(Vcpu& v, Regs& r, uint64_t nr, uint64_t entry_rip, uint64_t entry_rflags,
                          uint64_t held_dr6);

// Builds the bounce frame and points `r` at `handler`. False if the domain was
// crashed because the frame could not be written.
[[nodiscard]] bool bounce(Vcpu& v, Regs& r, uint64_t handler, bool has_error, uint64_t error_code,
                          bool mask_events);

}  // namespace core
