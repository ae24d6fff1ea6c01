#include <arch/cpu.hpp>
#include <arch/layout.h>
#include <arch/panic.hpp>
#include <arch/serial.hpp>

#include <base/format.hpp>
#include <core/hypercall.hpp>
#include <core/log.hpp>
#include <core/platform.hpp>

extern "C" const uint64_t ksyms_table[];   // see build/mksyms.sh
extern "C" char __text_start[], __text_end[];

namespace arch {

namespace {

void out(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void out(const char* fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    size_t n = base::vsnformat(line, sizeof line, fmt, ap);
    va_end(ap);
    serial::write(line, n < sizeof line ? n : sizeof line - 1);
}

bool in_text(uint64_t a) {
    return a >= reinterpret_cast<uint64_t>(__text_start) && a < reinterpret_cast<uint64_t>(__text_end);
}

void backtrace(uint64_t rip, uint64_t rbp) {
    out("backtrace:\n");
    for (unsigned depth = 0; depth < 32; ++depth) {
        uint64_t off = 0;
        const char* name = symbolize(rip, &off);
        out("  #%u %#018lx %s+%#lx\n", depth, rip, name, off);
        // Frame pointers: [rbp] = caller's rbp, [rbp+8] = return address.
        // Stop at anything that does not look like a kernel stack frame.
        if (rbp < KERNEL_VIRT || (rbp & 7)) break;
        uint64_t next_rbp = reinterpret_cast<uint64_t*>(rbp)[0];
        uint64_t ret = reinterpret_cast<uint64_t*>(rbp)[1];
        if (!in_text(ret) || next_rbp <= rbp) break;
        rip = ret;
        rbp = next_rbp;
    }
}

}  // namespace

const char* symbolize(uint64_t addr, uint64_t* offset) {
    uint64_t n = ksyms_table[0];
    const uint64_t* pairs = ksyms_table + 1;
    // Last symbol at or below addr (the table is sorted by address).
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (pairs[mid * 2] <= addr) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0 || !in_text(addr)) {
        *offset = 0;
        return "?";
    }
    *offset = addr - pairs[(lo - 1) * 2];
    return reinterpret_cast<const char*>(ksyms_table) + pairs[(lo - 1) * 2 + 1];
}

void qemu_exit(uint8_t code) {
    if (code == kExitClean) core::hypercall_report();
    // The system ends: what the console domain had not read yet goes out first.
    core::log_reclaim_uart();
    outl(0xF4, code);
    // Not under QEMU (or no isa-debug-exit device): stop here.
    halt_forever();
}

void panic_with_frame(const core::Regs& r, uint64_t cr2, const char* what) {
    cli();
    // The report goes straight to the UART, after what the console domain
    // (if one drives it) had not read of the log yet.
    core::log_reclaim_uart();
    out("\nmoat: PANIC: %s\n", what);
    out("vector %lu  error code %#lx  cr2 %#018lx\n", r.vector, r.error_code, cr2);
    out("rip %#018lx  cs %#lx  rflags %#lx  rsp %#018lx  ss %#lx\n", r.rip, r.cs, r.rflags, r.rsp, r.ss);
    out("rax %#018lx  rbx %#018lx  rcx %#018lx  rdx %#018lx\n", r.rax, r.rbx, r.rcx, r.rdx);
    out("rsi %#018lx  rdi %#018lx  rbp %#018lx  r8  %#018lx\n", r.rsi, r.rdi, r.rbp, r.r8);
    out("r9  %#018lx  r10 %#018lx  r11 %#018lx  r12 %#018lx\n", r.r9, r.r10, r.r11, r.r12);
    out("r13 %#018lx  r14 %#018lx  r15 %#018lx\n", r.r13, r.r14, r.r15);
    out("cr0 %#lx  cr3 %#lx  cr4 %#lx\n", read_cr0(), read_cr3(), read_cr4());
    backtrace(r.rip, r.rbp);
    qemu_exit(kExitPanic);
}

}  // namespace arch

namespace platform {

void panic(const char* fmt, ...) {
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    base::vsnformat(what, sizeof what, fmt, ap);
    va_end(ap);
    core::Regs r{};
    r.rip = reinterpret_cast<uint64_t>(__builtin_return_address(0));
    r.rbp = *static_cast<uint64_t*>(__builtin_frame_address(0));   // the caller's frame
    r.rsp = reinterpret_cast<uint64_t>(__builtin_frame_address(0));
    arch::panic_with_frame(r, 0, what);
}

}  // namespace platform
