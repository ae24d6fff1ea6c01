#pragma once
// Exceptions and events inside a domain. The runtime registers an entry for
// every exception vector with set_trap_table and an event callback with
// set_callbacks; each turns Xen's bounce frame into a TrapFrame and calls the
// handler registered here. A handler may change the frame (rip, registers)
// before the runtime returns through the iret hypercall.

#include <cstdint>

namespace rt {

struct TrapFrame {
    uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
    uint64_t rax, rcx, rdx, rsi, rdi;
    uint64_t vector;        // 0..255, or kEventVector
    uint64_t error_code;    // 0 for vectors without one
    uint64_t rip, cs, rflags, rsp, ss;
};

constexpr uint64_t kEventVector = 0x100;

// Returns true if it handled the exception; false crashes the domain.
using TrapHandler = bool (*)(TrapFrame&);
using EventHandler = void (*)(TrapFrame&);

// Registers the handler for a vector. `dpl` is who may raise it with `int n`
// (0: only by the CPU, 3: anyone), `mask_events` masks event delivery while
// the handler runs. Returns the set_trap_table result.
long set_trap_handler(unsigned vector, TrapHandler h, unsigned dpl = 0, bool mask_events = false);
void set_event_handler(EventHandler h);

// The address of the runtime's entry stub for a vector (what set_trap_table
// was given), for tests that register entries themselves.
uint64_t trap_entry_address(unsigned vector);
uint64_t event_entry_address();

}  // namespace rt
