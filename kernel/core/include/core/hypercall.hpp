#pragma once
// Hypercall decode and dispatch. A guest in kernel mode makes a hypercall with
// `syscall`: number in rax, arguments in rdi, rsi, rdx, r10, r8, result in rax.

#include <cstdint>

#include <core/domain.hpp>

namespace core {

// A hypercall from the guest: fills the vCPU's work budget for this
// invocation (core/budget.hpp), then dispatches.
void hypercall(Vcpu& v, Regs& r);
// Dispatches within the budget there is (multicall's entries share their
// multicall's).
void hypercall_dispatch(Vcpu& v, Regs& r);

// What a call of hypercall `nr` costs up front, in budget units (multicall
// spends it per entry; the rest a handler charges itself).
uint32_t hypercall_base_cost(uint64_t nr);

// The longest time one invocation took (from entry to its return or
// continuation, in TSC ticks: guest instructions under -icount), so tests can
// check that no guest-triggered path runs long without a preemption point.
// The syscall entry times each hypercall and records it when it beats this
// (a compare on the common path, the call only for a new longest one).
extern uint64_t g_longest_hypercall_ticks;
void hypercall_record(uint64_t ticks, uint64_t nr, DomId dom);
uint64_t longest_hypercall_ns();
// A log line saying it, with which hypercall of which domain.
void hypercall_report();

// Arranges for the hypercall to be issued again with the frame's (updated)
// arguments when the guest next runs, so long operations give way to
// interrupts and other vCPUs. Returns the value to leave in rax: the
// hypercall number. The guest sees nothing but a longer call.
int64_t hypercall_continue(Regs& r);

// Individual hypercalls (hc_*.cpp). Each returns the value for rax.
int64_t hc_console_io(Vcpu& v, Regs& r);
int64_t hc_sched_op(Vcpu& v, Regs& r);
int64_t hc_xen_version(Vcpu& v, Regs& r);
int64_t hc_vm_assist(Vcpu& v, Regs& r);
int64_t hc_vcpu_op(Vcpu& v, Regs& r);
int64_t hc_set_trap_table(Vcpu& v, Regs& r);
int64_t hc_set_callbacks(Vcpu& v, Regs& r);
int64_t hc_callback_op(Vcpu& v, Regs& r);
int64_t hc_iret(Vcpu& v, Regs& r);
int64_t hc_stack_switch(Vcpu& v, Regs& r);
int64_t hc_set_segment_base(Vcpu& v, Regs& r);
int64_t hc_fpu_taskswitch(Vcpu& v, Regs& r);
int64_t hc_update_va_mapping(Vcpu& v, Regs& r);
int64_t hc_mmu_update(Vcpu& v, Regs& r);
int64_t hc_mmuext_op(Vcpu& v, Regs& r);
int64_t hc_memory_op(Vcpu& v, Regs& r);
int64_t hc_multicall(Vcpu& v, Regs& r);
int64_t hc_set_timer_op(Vcpu& v, Regs& r);
int64_t hc_event_channel_op(Vcpu& v, Regs& r);
int64_t hc_physdev_op(Vcpu& v, Regs& r);
int64_t hc_grant_table_op(Vcpu& v, Regs& r);
int64_t hc_domctl(Vcpu& v, Regs& r);
int64_t hc_cap_op(Vcpu& v, Regs& r);

}  // namespace core
