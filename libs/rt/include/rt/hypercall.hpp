#pragma once
// Hypercalls from a domain: a `call` into the hypercall page the hypervisor
// filled in (entry N at hypercall_page + 32 * N). Arguments go in rdi, rsi,
// rdx, r10, r8; the result comes back in rax. Argument registers are treated
// as clobbered, as Xen allows.

#include <cstdint>

#include <abi/hypercall.hpp>

extern "C" char hypercall_page[4096];

namespace rt {

inline long hypercall(abi::Hypercall nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0,
                      uint64_t a5 = 0) {
    long ret;
    register uint64_t r10 asm("r10") = a4;
    register uint64_t r8 asm("r8") = a5;
    void* entry = hypercall_page + static_cast<unsigned>(nr) * 32;
    asm volatile("call *%[entry]"
                 : "=a"(ret), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
                 : [entry] "r"(entry)
                 : "memory", "rcx", "r11", "r9");
    return ret;
}

// A hypercall by number through a raw `syscall`, bypassing the page: for
// numbers the page has no entry for, and for measuring the bare path.
inline long raw_hypercall(uint64_t nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0) {
    long ret;
    asm volatile("syscall" : "=a"(ret), "+D"(a1), "+S"(a2), "+d"(a3) : "a"(nr) : "memory", "rcx", "r11", "r8", "r9", "r10");
    return ret;
}

template <typename T>
inline uint64_t ptr(T* p) { return reinterpret_cast<uint64_t>(p); }

inline long console_write(const char* s, uint64_t n) {
    return hypercall(abi::Hypercall::console_io, uint64_t(abi::ConsoleIo::write), n, ptr(s));
}

inline long sched_op(abi::SchedOp op, void* arg = nullptr) {
    return hypercall(abi::Hypercall::sched_op, uint64_t(op), ptr(arg));
}

[[noreturn]] void shutdown(abi::ShutdownReason reason);

}  // namespace rt
