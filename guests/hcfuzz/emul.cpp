// The privileged instructions a PV guest kernel executes, which fault in
// ring 3 and the hypervisor emulates (kernel/core/src/emulate.cpp): one per
// "call" for a few percent of the calls (docs/hcfuzz.md). Each runs with a
// resume point, so a fault it causes (the hypervisor declining to emulate
// it) comes back here; what must fault is judged:
//
//  - wrmsr/rdmsr: any MSR but the few a PV guest has (FS/GS bases, EFER,
//    PAT and MISC_ENABLE at their fixed values, TSC, the hypercall page)
//    must #GP; non-canonical bases must #GP; the hypercall-page MSR only
//    ever names a frame that is not ours or one of our page tables (#GP);
//  - mov to CR0 changing anything but TS, to CR3 with anything but our L4
//    (other domains' frames, our other tables, frames past RAM), to CR8:
//    #GP; CR4 takes anything;
//  - debug registers: breakpoints on hypervisor or non-canonical addresses,
//    general detect, bits 32-63 of DR7: #GP (no value enables a breakpoint);
//  - port I/O (any port, every size): with a virtual IOPL (physdev_op
//    set_iopl) a read gives all ones and a write goes nowhere -- the
//    debug-exit port, resets and power-off among them;
//  - cli/sti (the event mask, with IOPL), clts, wbinvd, hlt (#GP);
//  - the forced-emulation prefix before cpuid (any leaf) and before
//    anything else (#UD).

#include "hcfuzz.hpp"

#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/traps.hpp>

extern "C" {
// Where a fault of the instruction being tried resumes (0: none is expected).
volatile uint64_t g_hcf_resume;
}

namespace hcf {

uint64_t g_emulated, g_emulated_faults;
uint32_t g_iopl;

namespace {

Rng& R = g_rng;

struct Fault {
    unsigned count;
    uint64_t vector, error;
};
volatile Fault g_fault;

bool on_fault(rt::TrapFrame& f) {
    uint64_t to = g_hcf_resume;
    if (!to) return false;   // not ours: the runtime reports it and we crash
    g_fault.count = g_fault.count + 1;
    g_fault.vector = f.vector;
    g_fault.error = f.error_code;
    g_hcf_resume = 0;
    f.rip = to;
    return true;
}

#define HCF_BEGIN "leaq 1f(%%rip), %%r11\n\tmovq %%r11, g_hcf_resume(%%rip)\n\t"
#define HCF_END "\n1:\n\tmovq $0, g_hcf_resume(%%rip)"

void arm() {
    g_fault.count = 0;
    g_fault.vector = ~0ull;
}
bool gp() { return g_fault.count == 1 && g_fault.vector == 13; }

bool canonical(uint64_t a) { return (a >> 47) == 0 || (a >> 47) == 0x1FFFF; }

constexpr uint32_t kEfer = 0xC0000080, kFsBase = 0xC0000100, kGsBase = 0xC0000101, kShadowGs = 0xC0000102,
                   kPat = 0x277, kMisc = 0x1A0, kTsc = 0x10, kHypercallPage = 0x40000000;
constexpr uint64_t kXenPat = 0x0000050100070406ull;

// MSRs no PV guest may touch (a write and a read must #GP).
const uint32_t kForbidden[] = {0xC0000081, 0xC0000082, 0xC0000083, 0xC0000084, 0x174,  0x175,  0x176,
                               0x1B,       0x2FF,      0x200,      0x201,      0x250,  0x258,  0x48,
                               0x49,       0x10B,      0x1D9,      0xC0000103, 0x6E0,  0x802,  0x80B,
                               0x830,      0x838,      0x3A,       0x400,      0x8B,   0xC0010114,
                               0xC0010117, 0x40000001, 0x4B564D00, 0xFFFFFFFF};

uint64_t msr_value() {
    switch (R.below(6)) {
    case 0: return 0;
    case 1: return va_hyp();
    case 2: return va_noncanonical();
    case 3: return rt::kVirtBase + R.below(1u << 20);
    case 4: return R.pick((const uint64_t[]){0xD01, 0x501, 0x1D01, kXenPat, 0x0606060606060606ull, 0xFEE00900});
    default: return R.next();
    }
}

void do_wrmsr(uint32_t msr, uint64_t v) {
    arm();
    asm volatile(HCF_BEGIN "wrmsr" HCF_END : : "c"(msr), "a"(uint32_t(v)), "d"(uint32_t(v >> 32)) : "r11", "memory");
}
uint64_t do_rdmsr(uint32_t msr) {
    uint32_t lo = 0, hi = 0;
    arm();
    asm volatile(HCF_BEGIN "rdmsr" HCF_END : "+a"(lo), "+d"(hi) : "c"(msr) : "r11", "memory");
    return uint64_t(hi) << 32 | lo;
}

void msr() {
    bool write = R.pct(60);
    unsigned r = unsigned(R.below(100));
    uint32_t m;
    bool forbidden = false;
    if (r < 45) {
        m = R.pick(kForbidden);
        forbidden = true;
    } else if (r < 75) {
        m = R.pick((const uint32_t[]){kEfer, kFsBase, kGsBase, kShadowGs, kPat, kMisc, kTsc});
    } else if (r < 85) {
        m = kHypercallPage;
    } else {
        m = uint32_t(R.next());
        forbidden = m != kEfer && m != kFsBase && m != kGsBase && m != kShadowGs && m != kPat && m != kMisc &&
                    m != kTsc && m != kHypercallPage;
    }
    if (!write) {
        (void)do_rdmsr(m);
        if ((forbidden || m == kHypercallPage) && !gp())
            fail("emulate.rdmsr_accepted", "rdmsr %#x did not #GP", m);
        return;
    }
    uint64_t v = msr_value();
    bool must = forbidden;
    if (m == kFsBase || m == kGsBase || m == kShadowGs) {
        must = !canonical(v);
        g_b.dirty |= kDirtySeg;   // put back by repair()
    } else if (m == kEfer) {
        uint64_t now = do_rdmsr(kEfer);
        if (v == now) v ^= 1;   // SCE: any change must fail
        must = true;
    } else if (m == kPat) {
        must = v != kXenPat;
    } else if (m == kMisc) {
        uint64_t now = do_rdmsr(kMisc);
        must = v != now;
    } else if (m == kTsc) {
        must = false;   // tried, not judged
    } else if (m == kHypercallPage) {
        // Never a frame of ours that could take it: not ours, or a page table.
        uint64_t f = R.pct(60) ? frame_bad() : frame_live_pt();
        v = (f << 12) | (R.pct(80) ? 0 : R.range(1, 0xFFF));
        must = true;
    }
    do_wrmsr(m, v);
    if (must && !gp()) fail("emulate.wrmsr_accepted", "wrmsr %#x = %#lx did not #GP", m, v);
}

void control_register() {
    uint64_t v = 0;
    switch (R.below(8)) {
    case 0: {   // reads
        unsigned n = unsigned(R.below(3));
        arm();
        if (n == 0) asm volatile(HCF_BEGIN "movq %%cr0, %0" HCF_END : "+r"(v) : : "r11", "memory");
        else if (n == 1) asm volatile(HCF_BEGIN "movq %%cr3, %0" HCF_END : "+r"(v) : : "r11", "memory");
        else asm volatile(HCF_BEGIN "movq %%cr4, %0" HCF_END : "+r"(v) : : "r11", "memory");
        if (g_fault.count) fail("emulate.mov_from_cr_faulted", "cr%u read faulted (vector %lu)", n == 0 ? 0 : n == 1 ? 3 : 4,
                                g_fault.vector);
        if (n == 1 && !g_fault.count && (v >> 12) != g_fr.l4)
            fail("emulate.cr3_not_ours", "CR3 reads %#lx, our L4 is %#lx", v, g_fr.l4);
        return;
    }
    case 1:
    case 2: {   // CR0: anything but TS must fail
        uint64_t cr0 = 0;
        arm();
        asm volatile(HCF_BEGIN "movq %%cr0, %0" HCF_END : "+r"(cr0) : : "r11", "memory");
        uint64_t flip = R.pick((const uint64_t[]){1ull << 31, 1, 1ull << 16, 1ull << 30, 1ull << 29, 1ull << 18, 1ull << 5,
                                                  1ull << 2, 1ull << 1, 1ull << 63});
        v = cr0 ^ flip;
        arm();
        asm volatile(HCF_BEGIN "movq %0, %%cr0" HCF_END : : "r"(v) : "r11", "memory");
        if (!gp()) fail("emulate.cr0_change_accepted", "CR0 %#lx -> %#lx did not #GP", cr0, v);
        return;
    }
    case 3:
    case 4: {   // CR3: never anything but our own L4
        unsigned k = unsigned(R.below(4));
        uint64_t m = k == 0 ? frame_bad() : k == 1 ? frame_beyond() : frame_live_pt();
        bool ours = m == g_fr.l4;
        v = (m << 12) | (R.pct(90) ? 0 : (R.next() & 0xFFF));
        arm();
        asm volatile(HCF_BEGIN "movq %0, %%cr3" HCF_END : : "r"(v) : "r11", "memory");
        if (!ours && !gp()) fail("emulate.cr3_accepted", "mov to CR3 of %#lx did not #GP", v);
        return;
    }
    case 5:
    case 6: {   // CR4: the guest's bits only; anything is taken
        v = R.pct(50) ? R.next() : R.pick((const uint64_t[]){0, 1u << 7, 1u << 13, 1u << 17, 1u << 20, 1u << 21, 0x6F0});
        arm();
        asm volatile(HCF_BEGIN "movq %0, %%cr4" HCF_END : : "r"(v) : "r11", "memory");
        return;
    }
    default: {   // CR8 (REX.R): none
        arm();
        asm volatile(HCF_BEGIN "movq %0, %%cr8" HCF_END : : "r"(v) : "r11", "memory");
        if (!gp()) fail("emulate.cr8_accepted", "mov to CR8 did not #GP");
        return;
    }
    }
}

void debug_register() {
    unsigned dr = unsigned(R.below(5));
    uint64_t v;
    bool must;
    if (dr < 4) {
        v = R.pct(50) ? R.pick((const uint64_t[]){va_hyp(), va_noncanonical()}) : va_live();
        must = !canonical(v) || (v >= abi::kHypervisorVirtStart && v < abi::kHypervisorVirtEnd);
    } else {
        // DR7 with nothing enabled (bits 0-7 clear): general detect and bits
        // 32-63 must be refused; I/O breakpoints and the bits Xen clears
        // (11, 12, 14, 15) are tried, not judged.
        const uint64_t bad[] = {1ull << 13, 1ull << 32, 0xFFFFFFFF00000000ull, (1ull << 13) | (0x2ull << 16)};
        const uint64_t odd[] = {0x2ull << 16, 0x2ull << 20, 0x2ull << 24, 0x2ull << 28, 0xD800};
        unsigned k = unsigned(R.below(10));
        must = k < 4;
        v = must ? R.pick(bad) : k < 6 ? R.pick(odd) : (R.next() & 0xFFFF0000ull & ~0x22220000ull);
        dr = 7;
    }
    arm();
    switch (dr) {
    case 0: asm volatile(HCF_BEGIN "movq %0, %%dr0" HCF_END : : "r"(v) : "r11", "memory"); break;
    case 1: asm volatile(HCF_BEGIN "movq %0, %%dr1" HCF_END : : "r"(v) : "r11", "memory"); break;
    case 2: asm volatile(HCF_BEGIN "movq %0, %%dr2" HCF_END : : "r"(v) : "r11", "memory"); break;
    case 3: asm volatile(HCF_BEGIN "movq %0, %%dr3" HCF_END : : "r"(v) : "r11", "memory"); break;
    default: asm volatile(HCF_BEGIN "movq %0, %%dr7" HCF_END : : "r"(v) : "r11", "memory"); break;
    }
    if (must && !gp()) fail("emulate.debug_register_accepted", "dr%u = %#lx did not #GP", dr, v);
}

uint16_t pick_io_port() {
    const uint16_t special[] = {0x20,  0x21,  0x40,  0x43,  0x60,  0x61,  0x64,  0x70,  0x71,  0x80,
                                0x92,  0xA0,  0xA1,  0xCF8, 0xCF9, 0xCFC, 0xCFE, 0x3F8, 0x3F9, 0x3FB,
                                0x3FD, 0xF4,  0xF5,  0x604, 0x600, 0xB004, 0x1CE, 0x510, 0x511, 0xFFFF};
    return R.pct(60) ? R.pick(special) : uint16_t(R.below(0x10000));
}

void port_io() {
    uint16_t port = pick_io_port();
    unsigned size = unsigned(R.pick((const uint64_t[]){1, 2, 4}));
    bool out = R.pct(50);
    uint32_t v = uint32_t(R.next());
    // Written values that would stop the machine if they got through
    // (debug exit, resets, power off) come up on purpose.
    if (out && R.pct(30)) v = uint32_t(R.pick((const uint64_t[]){0, 0x06, 0xFE, 0x2000, 0x01, 0x31}));
    arm();
    uint32_t got = 0x5A5A5A5A;
    if (out) {
        if (size == 1) asm volatile(HCF_BEGIN "outb %%al, %%dx" HCF_END : : "a"(v), "d"(port) : "r11", "memory");
        else if (size == 2) asm volatile(HCF_BEGIN "outw %%ax, %%dx" HCF_END : : "a"(v), "d"(port) : "r11", "memory");
        else asm volatile(HCF_BEGIN "outl %%eax, %%dx" HCF_END : : "a"(v), "d"(port) : "r11", "memory");
    } else {
        if (size == 1) asm volatile(HCF_BEGIN "inb %%dx, %%al" HCF_END : "+a"(got) : "d"(port) : "r11", "memory");
        else if (size == 2) asm volatile(HCF_BEGIN "inw %%dx, %%ax" HCF_END : "+a"(got) : "d"(port) : "r11", "memory");
        else asm volatile(HCF_BEGIN "inl %%dx, %%eax" HCF_END : "+a"(got) : "d"(port) : "r11", "memory");
    }
    // We hold no IoPorts capability: with a virtual IOPL of 1 or more (our
    // kernel's CPL is 1, or 0 with VMASST_TYPE_architectural_iopl, which
    // vm_assist may have turned on: so with IOPL 0 either may happen) no
    // fault, all ones (the width read) and writes dropped.
    if (g_iopl >= 1 && g_fault.count)
        fail("emulate.port_io_with_iopl_faulted", "%s%u port %#x faulted (vector %lu)", out ? "out" : "in", size, port,
             g_fault.vector);
    if (!out && !g_fault.count) {
        uint32_t ones = size == 1 ? 0x5A5A5AFF : size == 2 ? 0x5A5AFFFF : 0xFFFFFFFF;
        if (got != ones) fail("emulate.port_read_not_all_ones", "in%u port %#x read %#x", size, port, got);
    }
}

void misc() {
    switch (R.below(6)) {
    case 0:
        arm();
        asm volatile(HCF_BEGIN "cli" HCF_END ::: "r11", "memory");
        if (g_iopl >= 1 && g_fault.count) fail("emulate.cli_with_iopl_faulted", "cli faulted");
        break;
    case 1:
        arm();
        asm volatile(HCF_BEGIN "sti" HCF_END ::: "r11", "memory");
        if (g_iopl >= 1 && g_fault.count) fail("emulate.sti_with_iopl_faulted", "sti faulted");
        break;   // (repair() masks events again)
    case 2:
        arm();
        asm volatile(HCF_BEGIN "hlt" HCF_END ::: "r11", "memory");
        if (!gp()) fail("emulate.hlt_accepted", "hlt did not #GP");
        break;
    case 3:
        arm();
        asm volatile(HCF_BEGIN "wbinvd" HCF_END ::: "r11", "memory");
        break;
    case 4: {
        uint32_t a = uint32_t(R.pct(50) ? R.below(0x20) : R.pct(50) ? 0x40000000 + R.below(8) : 0x80000000 + R.below(10));
        uint32_t c = uint32_t(R.below(4)), b = 0, d = 0;
        arm();
        asm volatile(HCF_BEGIN "ud2; .ascii \"xen\"; cpuid" HCF_END : "+a"(a), "=b"(b), "+c"(c), "=d"(d) : : "r11", "memory");
        if (g_fault.count) fail("emulate.forced_cpuid_faulted", "leaf %#x: vector %lu", a, g_fault.vector);
        break;
    }
    default:
        arm();
        asm volatile(HCF_BEGIN "ud2; .ascii \"xen\"; rdtsc" HCF_END ::: "rax", "rdx", "r11", "memory");
        if (!(g_fault.count == 1 && g_fault.vector == 6))
            fail("emulate.forced_non_cpuid_accepted", "forced rdtsc: fault %lu (vector %lu)", uint64_t(g_fault.count),
                 g_fault.vector);
        break;
    }
}

}  // namespace

void install_emulation_traps() {
    const unsigned vectors[] = {6, 13};
    for (unsigned v : vectors) (void)rt::set_trap_handler(v, on_fault);
}

void emulated_instruction() {
    ++g_emulated;
    switch (R.below(10)) {
    case 0: case 1: case 2: msr(); break;
    case 3: case 4: control_register(); break;
    case 5: debug_register(); break;
    case 6: case 7: port_io(); break;
    default: misc(); break;
    }
    g_emulated_faults += g_fault.count;
}

}  // namespace hcf
