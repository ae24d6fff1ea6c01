#pragma once
// The domain's console. With a PV console ring (start_info console.domU: the
// builder gives every domain one, served by the console domain) output goes
// into the ring's out[] and input comes from its in[]; without one (mfn 0:
// the domains the kernel builds itself) output goes to the hypervisor with
// console_io and there is no input.
//
// Output is never dropped: while the ring is full the writer waits for the
// back-end (sched_op poll on the console port with a short timeout), so a
// domain whose console nobody serves stops in its next printf.

#include <cstddef>

namespace rt {

void printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Writes all `n` bytes to the console.
void console_out(const char* s, size_t n);

// Up to `n` bytes of console input, 0 if there is none (never waits). The
// console port fires when the back-end puts some.
size_t console_read(char* buf, size_t n);

// The console event channel (0: no ring; then console_read finds nothing).
unsigned console_port();

// Output through console_io even if start_info names a ring: for the
// console domain, which serves the rings and reads the kernel log. Call it
// before the first printf.
void console_use_hypervisor();

}  // namespace rt
