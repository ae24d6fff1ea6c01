#pragma once
// The I/O-port capability test: io_root gives io_user an IoPorts capability
// for COM1 and io_intruder nothing; io_user drives the UART directly, then
// loses the capability to a revoke.

#include <rt/caps.hpp>
#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>
#include <rt/traps.hpp>

namespace io {

constexpr uint16_t kRoot = 0, kUser = 1, kIntruder = 2;
constexpr uint16_t kCom1 = 0x3F8;
constexpr uint32_t kRootPort = 1;   // root's port offered to io_user, and io_user's binding

inline uint8_t inb(uint16_t port) {
    uint8_t v;
    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }

// Runs one port read and reports whether it raised #GP (the port is denied).
inline volatile unsigned g_gp;
inline uint64_t g_resume;
inline bool on_gp(rt::TrapFrame& f) {
    g_gp = g_gp + 1;
    f.rip = g_resume;
    return true;
}
inline bool port_denied(uint16_t port) {
    rt::set_trap_handler(13, on_gp);
    unsigned before = g_gp;
    asm volatile("lea 1f(%%rip), %%rax\n mov %%rax, %[resume]\n inb %w[p], %%al\n 1:"
                 : [resume] "=m"(g_resume) : [p] "d"(port) : "rax", "memory");
    return g_gp != before;
}

}  // namespace io
