#pragma once
// COM1, polled. The kernel's log goes here until the console domain takes the
// UART over (core/log.hpp), and again when the kernel takes it back (the
// console domain died, the system ends, a panic). QEMU connects it to the
// terminal or the test runner.

#include <cstddef>

namespace arch::serial {

void init();
void write(const char* s, size_t n);

// After a domain drove the UART: line settings the kernel writes with (8N1,
// divisor latch closed, no interrupts), leaving the rate and the FIFO alone
// so that what the domain queued still goes out.
void reclaim();

}  // namespace arch::serial
