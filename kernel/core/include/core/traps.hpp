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

// Builds the bounce frame and points `r` at `handler`. False if the domain was
// crashed because the frame could not be written.
[[nodiscard]] bool bounce(Vcpu& v, Regs& r, uint64_t handler, bool has_error, uint64_t error_code,
                          bool mask_events);

}  // namespace core
