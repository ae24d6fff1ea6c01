#pragma once
// The kernel's panic report: what went wrong, the registers, a symbolized
// backtrace, then QEMU is told to exit with the panic code.

#include <cstdint>

#include <core/regs.hpp>

namespace arch {

[[noreturn]] void panic_with_frame(const core::Regs& r, uint64_t cr2, const char* what);

// The name of the function containing `addr`, and the offset into it.
const char* symbolize(uint64_t addr, uint64_t* offset);

// isa-debug-exit (port 0xf4): QEMU exits with (code << 1) | 1.
constexpr uint8_t kExitClean = 0x10;   // QEMU status 33
constexpr uint8_t kExitPanic = 0x11;   // QEMU status 35
[[noreturn]] void qemu_exit(uint8_t code);

}  // namespace arch
