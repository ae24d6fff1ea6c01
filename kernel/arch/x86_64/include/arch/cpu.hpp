#pragma once
// Thin wrappers over x86-64 instructions the kernel needs. Nothing here holds
// state; every function is a single instruction or two.

#include <cstdint>

namespace arch {

inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
inline void outw(uint16_t port, uint16_t v) { asm volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
inline void outl(uint16_t port, uint32_t v) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
inline uint8_t inb(uint16_t port) { uint8_t v; asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
inline uint16_t inw(uint16_t port) { uint16_t v; asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
inline uint32_t inl(uint16_t port) { uint32_t v; asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

inline uint64_t rdmsr(uint32_t msr) {
    uint32_t lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t(hi) << 32) | lo;
}
inline void wrmsr(uint32_t msr, uint64_t v) {
    asm volatile("wrmsr" : : "c"(msr), "a"(uint32_t(v)), "d"(uint32_t(v >> 32)) : "memory");
}

struct CpuidResult { uint32_t eax, ebx, ecx, edx; };
inline CpuidResult cpuid(uint32_t leaf, uint32_t sub = 0) {
    CpuidResult r;
    asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(sub));
    return r;
}

inline uint64_t read_cr0() { uint64_t v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
inline uint64_t read_cr2() { uint64_t v; asm volatile("mov %%cr2, %0" : "=r"(v)); return v; }
inline uint64_t read_cr3() { uint64_t v; asm volatile("mov %%cr3, %0" : "=r"(v)); return v; }
inline uint64_t read_cr4() { uint64_t v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
inline void write_cr0(uint64_t v) { asm volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
inline void write_cr3(uint64_t v) { asm volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
inline void write_cr4(uint64_t v) { asm volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }
inline void invlpg(uint64_t va) { asm volatile("invlpg (%0)" : : "r"(va) : "memory"); }
inline uint64_t rdtsc() { uint32_t lo, hi; asm volatile("rdtsc" : "=a"(lo), "=d"(hi)); return (uint64_t(hi) << 32) | lo; }
inline void cli() { asm volatile("cli" ::: "memory"); }
inline void sti() { asm volatile("sti" ::: "memory"); }
inline void pause() { asm volatile("pause"); }
[[noreturn]] inline void halt_forever() { for (;;) asm volatile("cli; hlt"); }

namespace msr {
constexpr uint32_t kApicBase = 0x1B;
constexpr uint32_t kEfer = 0xC0000080;
constexpr uint32_t kStar = 0xC0000081;
constexpr uint32_t kLstar = 0xC0000082;
constexpr uint32_t kCstar = 0xC0000083;
constexpr uint32_t kSfmask = 0xC0000084;
constexpr uint32_t kFsBase = 0xC0000100;
constexpr uint32_t kGsBase = 0xC0000101;
constexpr uint32_t kKernelGsBase = 0xC0000102;
}  // namespace msr

namespace cr0 {
constexpr uint64_t kTs = 1u << 3;
constexpr uint64_t kWp = 1u << 16;
constexpr uint64_t kAm = 1u << 18;   // alignment checks (#AC) at CPL 3: never on here (entry.S)
}  // namespace cr0

namespace cr4 {
constexpr uint64_t kPae = 1u << 5;
constexpr uint64_t kPge = 1u << 7;
constexpr uint64_t kOsfxsr = 1u << 9;
constexpr uint64_t kOsxmmexcpt = 1u << 10;
constexpr uint64_t kSmep = 1u << 20;
constexpr uint64_t kSmap = 1u << 21;
}  // namespace cr4

namespace rflags {
constexpr uint64_t kCf = 1u << 0;
constexpr uint64_t kFixed = 1u << 1;
constexpr uint64_t kTf = 1u << 8;
constexpr uint64_t kIf = 1u << 9;
constexpr uint64_t kDf = 1u << 10;
constexpr uint64_t kIopl = 3u << 12;
constexpr uint64_t kNt = 1u << 14;
constexpr uint64_t kRf = 1u << 16;
constexpr uint64_t kVm = 1u << 17;
constexpr uint64_t kAc = 1u << 18;
}  // namespace rflags

}  // namespace arch
