#pragma once
// COM1, polled. The kernel's log goes here until the console domain takes the
// UART over (a later step); QEMU connects it to the terminal or the test runner.

#include <cstddef>

namespace arch::serial {

void init();
void write(const char* s, size_t n);

}  // namespace arch::serial
