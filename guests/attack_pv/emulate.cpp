// Privileged instructions of a PV guest kernel, emulated
// (kernel/core/src/emulate.cpp, cpu_policy.cpp): they fault in ring 3 and the
// hypervisor does them against the vCPU's virtual state.
//
// What must hold: no MSR that matters to the hypervisor or the machine is
// written or read (syscall and sysenter entry points, EFER, the APIC base and
// the x2APIC, MTRRs, PAT beyond Xen's value, speculation controls, ...:
// #GP), and the hypervisor keeps working afterwards (a syscall still reaches
// it); FS/GS bases take any canonical address, and one in the hypervisor's
// range reads nothing from there; CR0 changes nothing but TS, CR3 takes only
// an L4 of ours, CR4 the guest's own bits; no breakpoint on the hypervisor;
// ports without a capability read as all ones and writes go nowhere (the
// debug-exit port, the reset control register, the keyboard controller, the
// PICs, the PIT, PCI configuration, COM1: the system goes on, nothing
// reaches the serial line); only with a virtual IOPL that allows it, and
// never from user mode, where none of this is emulated; and a guest that
// "disables interrupts" (cli, popf) and spins does not stop the scheduler:
// the victim keeps its ticks.

#include "env.hpp"

namespace pv {

namespace {

// wrmsr / rdmsr; true: it faulted (#GP: g_caught).
bool wrmsr(uint32_t msr, uint64_t v) {
    arm();
    asm volatile(PV_PROBE_BEGIN "wrmsr" PV_PROBE_END
                 :
                 : "c"(msr), "a"(uint32_t(v)), "d"(uint32_t(v >> 32))
                 : "r11", "memory");
    return g_caught.count != 0;
}
bool rdmsr(uint32_t msr, uint64_t* v) {
    uint32_t lo = 0xDEADBEEF, hi = 0xDEADBEEF;
    arm();
    asm volatile(PV_PROBE_BEGIN "rdmsr" PV_PROBE_END : "+a"(lo), "+d"(hi) : "c"(msr) : "r11", "memory");
    *v = (uint64_t(hi) << 32) | lo;
    return g_caught.count != 0;
}
bool gp() { return g_caught.count == 1 && g_caught.vector == 13; }

bool read_cr(unsigned n, uint64_t* v) {
    uint64_t x = 0;
    arm();
    switch (n) {
    case 0: asm volatile(PV_PROBE_BEGIN "movq %%cr0, %0" PV_PROBE_END : "+r"(x) : : "r11", "memory"); break;
    case 3: asm volatile(PV_PROBE_BEGIN "movq %%cr3, %0" PV_PROBE_END : "+r"(x) : : "r11", "memory"); break;
    case 4: asm volatile(PV_PROBE_BEGIN "movq %%cr4, %0" PV_PROBE_END : "+r"(x) : : "r11", "memory"); break;
    default: break;
    }
    *v = x;
    return g_caught.count != 0;
}
bool write_cr(unsigned n, uint64_t v) {
    arm();
    switch (n) {
    case 0: asm volatile(PV_PROBE_BEGIN "movq %0, %%cr0" PV_PROBE_END : : "r"(v) : "r11", "memory"); break;
    case 3: asm volatile(PV_PROBE_BEGIN "movq %0, %%cr3" PV_PROBE_END : : "r"(v) : "r11", "memory"); break;
    case 4: asm volatile(PV_PROBE_BEGIN "movq %0, %%cr4" PV_PROBE_END : : "r"(v) : "r11", "memory"); break;
    case 8: asm volatile(PV_PROBE_BEGIN "movq %0, %%cr8" PV_PROBE_END : : "r"(v) : "r11", "memory"); break;
    default: break;
    }
    return g_caught.count != 0;
}
bool write_dr(unsigned n, uint64_t v) {
    arm();
    switch (n) {
    case 0: asm volatile(PV_PROBE_BEGIN "movq %0, %%dr0" PV_PROBE_END : : "r"(v) : "r11", "memory"); break;
    case 3: asm volatile(PV_PROBE_BEGIN "movq %0, %%dr3" PV_PROBE_END : : "r"(v) : "r11", "memory"); break;
    case 6: asm volatile(PV_PROBE_BEGIN "movq %0, %%dr6" PV_PROBE_END : : "r"(v) : "r11", "memory"); break;
    case 7: asm volatile(PV_PROBE_BEGIN "movq %0, %%dr7" PV_PROBE_END : : "r"(v) : "r11", "memory"); break;
    default: break;
    }
    return g_caught.count != 0;
}

uint8_t inb(uint16_t port) {
    uint8_t v = 0x5A;
    arm();
    asm volatile(PV_PROBE_BEGIN "inb %%dx, %%al" PV_PROBE_END : "+a"(v) : "d"(port) : "r11", "memory");
    return v;
}
uint16_t inw(uint16_t port) {
    uint16_t v = 0x5A5A;
    arm();
    asm volatile(PV_PROBE_BEGIN "inw %%dx, %%ax" PV_PROBE_END : "+a"(v) : "d"(port) : "r11", "memory");
    return v;
}
uint32_t inl(uint16_t port) {
    uint32_t v = 0x5A5A5A5A;
    arm();
    asm volatile(PV_PROBE_BEGIN "inl %%dx, %%eax" PV_PROBE_END : "+a"(v) : "d"(port) : "r11", "memory");
    return v;
}
uint8_t inb_imm80() {
    uint8_t v = 0x5A;
    arm();
    asm volatile(PV_PROBE_BEGIN "inb $0x80, %%al" PV_PROBE_END : "+a"(v) : : "r11", "memory");
    return v;
}
bool outb(uint16_t port, uint8_t v) {
    arm();
    asm volatile(PV_PROBE_BEGIN "outb %%al, %%dx" PV_PROBE_END : : "a"(v), "d"(port) : "r11", "memory");
    return g_caught.count != 0;
}
bool outw(uint16_t port, uint16_t v) {
    arm();
    asm volatile(PV_PROBE_BEGIN "outw %%ax, %%dx" PV_PROBE_END : : "a"(v), "d"(port) : "r11", "memory");
    return g_caught.count != 0;
}
bool outl(uint16_t port, uint32_t v) {
    arm();
    asm volatile(PV_PROBE_BEGIN "outl %%eax, %%dx" PV_PROBE_END : : "a"(v), "d"(port) : "r11", "memory");
    return g_caught.count != 0;
}

long set_iopl(uint32_t iopl) {
    abi::PhysdevSetIopl io{iopl};
    return rt::hypercall(abi::Hypercall::physdev_op, abi::kPhysdevSetIopl, rt::ptr(&io));
}

// A hypercall still reaches the hypervisor (LSTAR, STAR, SFMASK intact).
bool hypervisor_answers() {
    long v = rt::hypercall(abi::Hypercall::xen_version, 0);
    long raw = rt::raw_hypercall(uint64_t(abi::Hypercall::xen_version), 0);
    return v > 0 && v == raw;
}

void msrs() {
    struct {
        uint32_t msr;
        uint64_t value;
        const char* what;
    } writes[] = {
        {0xC0000082, attack::kKernelVirt, "LSTAR"},        {0xC0000081, 0x0023001000000000ull, "STAR"},
        {0xC0000083, attack::kKernelVirt, "CSTAR"},        {0xC0000084, 0, "SFMASK"},
        {0x174, 0xe008, "SYSENTER_CS"},                    {0x175, attack::kDirectMapVirt, "SYSENTER_ESP"},
        {0x176, attack::kKernelVirt, "SYSENTER_EIP"},      {0x1B, 0xFEE00C00, "APIC_BASE (x2APIC on)"},
        {0x1B, 0x12345900, "APIC_BASE moved"},             {0x2FF, 0, "MTRR_DEF_TYPE off"},
        {0x200, 0x6, "MTRR_PHYSBASE0"},                    {0x201, 0xFFFFFF800, "MTRR_PHYSMASK0"},
        {0x250, 0x0606060606060606ull, "MTRR_FIX64K"},     {0x277, 0, "PAT all UC"},
        {0x277, 0x0606060606060606ull, "PAT all WB"},      {0xC0000080, 0x501, "EFER without NXE"},
        {0xC0000080, 0x100, "EFER without SCE/LMA"},       {0xC0000080, 0x1D01, "EFER with SVME"},
        {0x1A0, 0, "MISC_ENABLE"},                         {0x10, 0, "TSC"},
        {0x48, 0x7, "SPEC_CTRL"},                          {0x49, 1, "PRED_CMD"},
        {0x10B, 1, "FLUSH_CMD"},                           {0x1D9, 0x3, "DEBUGCTL"},
        {0xC0000103, 7, "TSC_AUX"},                        {0x6E0, 1, "TSC_DEADLINE"},
        {0x830, 0x000C4500, "x2APIC ICR (INIT to all)"},   {0x80B, 0, "x2APIC EOI"},
        {0x3A, 0x5, "FEATURE_CONTROL"},                    {0x400, ~0ull, "MC0_CTL"},
        {0xC0010114, 0x10, "VM_CR"},                       {0xC0010117, attack::kKernelVirt, "VM_HSAVE_PA"},
        {0x40000000, attack::kKernelVirt, "hypercall page MSR at a hypervisor address"},
        {0x40000000, 0x1001, "hypercall page MSR, bad flags"},
        {0xC0000100, 0x0000800000000000ull, "FS_BASE non-canonical"},
        {0xC0000101, 0x8000000000000000ull, "GS_BASE non-canonical"},
        {0xC0000102, 0xFFFF7FFFFFFFFFFFull, "KERNEL_GS_BASE non-canonical"},
    };
    unsigned refused = 0, n = 0;
    for (auto& w : writes) {
        ++n;
        bool f = wrmsr(w.msr, w.value);
        if (f && gp()) ++refused;
        else rt::printf("evidence: wrmsr %#x (%s) = %#lx was not refused\n", w.msr, w.what, w.value);
    }
    // The hypercall-page MSR at another domain's frame and one past RAM.
    uint64_t foreign = 0;
    each_foreign_frame([&](uint64_t m) {
        if (!foreign && m > 0x200) foreign = m;
    });
    for (uint64_t m : {foreign, max_ram_frame() + 1}) {
        ++n;
        refused += wrmsr(0x40000000, m << 12) && gp();
    }
    // What may be read back is as it was.
    uint64_t efer = 0, pat = 0, misc = 0;
    bool re = !rdmsr(0xC0000080, &efer), rp = !rdmsr(0x277, &pat), rm = !rdmsr(0x1A0, &misc);
    check(refused == n && re && (efer & 0x501) == 0x501 && rp && pat == 0x0000050100070406ull && rm && misc != 0 &&
              hypervisor_answers(),
          "attack.pv.emulate.wrmsr_refused",
          "%u of %u writes refused with #GP; EFER %#lx, PAT %#lx, MISC_ENABLE %#lx; the hypervisor answers %d", refused, n,
          efer, pat, misc, hypervisor_answers());

    const uint32_t reads[] = {0xC0000082, 0xC0000081, 0xC0000083, 0xC0000084, 0x174, 0x175, 0x176, 0x1B,
                              0x2FF,      0x200,      0x201,      0x48,       0x1D9, 0x830, 0x802, 0x3A,
                              0xC0010117, 0x40000000, 0x8B};
    unsigned rrefused = 0, nr = 0;
    for (uint32_t m : reads) {
        ++nr;
        uint64_t v;
        bool f = rdmsr(m, &v);
        if (f && gp()) ++rrefused;
        else rt::printf("evidence: rdmsr %#x read %#lx\n", m, v);
    }
    check(rrefused == nr, "attack.pv.emulate.rdmsr_refused", "%u of %u reads refused with #GP", rrefused, nr);
}

// FS and GS bases at the hypervisor: taken (they are canonical, as in Xen),
// and then an access through them is a fault of ours, not a read of the
// hypervisor; a hypercall with them in place works.
void segment_bases() {
    bool fs = !wrmsr(0xC0000100, attack::kDirectMapVirt);
    uint64_t got = 0x1111;
    arm();
    asm volatile(PV_PROBE_BEGIN "movq %%fs:0, %0" PV_PROBE_END : "+r"(got) : : "r11", "memory");
    bool fs_faulted = g_caught.count == 1 && (g_caught.vector == 14 || g_caught.vector == 13);
    bool gs = !wrmsr(0xC0000101, attack::kKernelVirt);
    bool shadow = !wrmsr(0xC0000102, attack::kM2pVirt);
    arm();
    asm volatile(PV_PROBE_BEGIN "movq %%gs:8, %0" PV_PROBE_END : "+r"(got) : : "r11", "memory");
    bool gs_faulted = g_caught.count == 1 && (g_caught.vector == 14 || g_caught.vector == 13);
    bool answers = hypervisor_answers();
    attack::sleep_ns(2 * kMs);   // and across a switch to others and back
    uint64_t fs_back = 0, gs_back = 0;
    (void)rdmsr(0xC0000100, &fs_back);
    (void)rdmsr(0xC0000101, &gs_back);
    (void)wrmsr(0xC0000100, 0);
    (void)wrmsr(0xC0000101, 0);
    (void)wrmsr(0xC0000102, 0);
    check(fs && fs_faulted && gs && shadow && gs_faulted && answers && got == 0x1111 && fs_back == attack::kDirectMapVirt &&
              gs_back == attack::kKernelVirt,
          "attack.pv.emulate.segment_bases_at_hypervisor_harmless",
          "FS %d (access faulted %d), GS %d/%d (access faulted %d), hypervisor answers %d, read %#lx, bases back %#lx %#lx",
          fs, fs_faulted, gs, shadow, gs_faulted, answers, got, fs_back, gs_back);
}

void control_registers() {
    uint64_t cr0 = 0, cr3 = 0, cr4 = 0;
    bool r0 = !read_cr(0, &cr0), r3 = !read_cr(3, &cr3), r4 = !read_cr(4, &cr4);
    struct {
        uint64_t value;
        const char* what;
    } cr0s[] = {
        {cr0 & ~(1ull << 31), "PG clear"}, {cr0 & ~1ull, "PE clear"}, {cr0 & ~(1ull << 16), "WP clear"},
        {cr0 | (1ull << 30), "CD set"},    {cr0 | (1ull << 29), "NW set"}, {0, "zero"},
    };
    unsigned refused = 0, n = 0;
    for (auto& c : cr0s) {
        ++n;
        bool f = write_cr(0, c.value);
        if (f && gp()) ++refused;
        else rt::printf("evidence: mov to CR0 (%s) accepted\n", c.what);
    }
    uint64_t cr0_after = 0;
    (void)read_cr(0, &cr0_after);
    bool ts = !write_cr(0, cr0 | 8) && !write_cr(0, cr0);   // TS is the guest's
    check(r0 && refused == n && cr0_after == cr0 && ts && (cr0 & 0x80010001) == 0x80010001,
          "attack.pv.emulate.cr0_refused", "%u of %u refused; CR0 %#lx -> %#lx; TS %d", refused, n, cr0, cr0_after, ts);

    // CR3: only an L4 of ours.
    Tables t = own_tables();
    uint64_t foreign = 0;
    each_foreign_frame([&](uint64_t m) {
        if (!foreign && m > 0x200) foreign = m;
    });
    const uint64_t cr3s[] = {foreign << 12, 0, 0x100000, t.mfn[1] << 12, t.mfn[2] << 12, t.mfn[3] << 12,
                             (max_ram_frame() + 1) << 12, ~0ull & ~0xFFFull,
                             (t.mfn[4] << 12) | (1ull << 52)};
    unsigned c3 = 0, n3 = 0;
    for (uint64_t v : cr3s) {
        ++n3;
        bool f = write_cr(3, v);
        if (f && gp()) ++c3;
        else rt::printf("evidence: mov to CR3 of %#lx accepted\n", v);
    }
    uint64_t cr3_after = 0;
    (void)read_cr(3, &cr3_after);
    bool same = !write_cr(3, cr3);   // our own L4: fine
    check(r3 && cr3 == (t.mfn[4] << 12) && c3 == n3 && cr3_after == cr3 && same, "attack.pv.emulate.cr3_refused",
          "%u of %u refused; CR3 %#lx -> %#lx, reloading ours %d", c3, n3, cr3, cr3_after, same);

    // CR4: Xen takes any value and keeps only the guest's bits (TSD, DE).
    bool w4 = !write_cr(4, cr4 & ~((1ull << 20) | (1ull << 21)));   // SMEP and SMAP off, as far as it can tell
    bool w4b = !write_cr(4, cr4 | (1ull << 13) | (1ull << 17) | (1ull << 7));   // VMXE, PCIDE, PGE
    uint64_t cr4_after = 0;
    (void)read_cr(4, &cr4_after);
    bool cr8 = write_cr(8, 15) && gp();
    check(r4 && w4 && w4b && !(cr4_after & ((1ull << 13) | (1ull << 17) | (1ull << 7))) && cr8 && hypervisor_answers(),
          "attack.pv.emulate.cr4_guest_bits_only", "CR4 %#lx -> %#lx, CR8 refused %d", cr4, cr4_after, cr8);
    (void)write_cr(4, cr4);
}

void debug_registers() {
    unsigned refused = 0, n = 0;
    const struct {
        unsigned dr;
        uint64_t v;
    } bad[] = {
        {0, attack::kKernelVirt}, {3, abi::kHypervisorVirtStart}, {0, 0x0000800000000000ull},
        {7, 1ull << 13},           // GD
        {7, 0x2 | (2ull << 16)},   // an I/O breakpoint
        {7, 1ull << 32},           // reserved
    };
    for (auto& b : bad) {
        ++n;
        refused += write_dr(b.dr, b.v) && gp();
    }
    check(refused == n, "attack.pv.emulate.debug_registers_refused", "%u of %u refused", refused, n);
}

void ports() {
    // No virtual IOPL: every port instruction is the #GP it caused.
    unsigned gps = 0, n = 0;
    ++n;
    (void)inb(0x64);
    gps += gp();
    ++n;
    gps += outb(0x80, 0) && gp();
    ++n;
    (void)inb_imm80();
    gps += gp();
    long bad1 = set_iopl(4), bad2 = set_iopl(0xFFFFFFFF);
    check(gps == n && bad1 == kEinval && bad2 == kEinval, "attack.pv.emulate.ports_without_iopl_fault",
          "%u of %u faulted; set_iopl(4) %ld, set_iopl(~0) %ld", gps, n, bad1, bad2);

    // Virtual IOPL 1 (the kernel's): emulated, all ones, writes dropped.
    long io = set_iopl(1);
    unsigned ones = 0, reads = 0;
    for (uint16_t p : {uint16_t(0x60), uint16_t(0x64), uint16_t(0x20), uint16_t(0x21), uint16_t(0x40),
                       uint16_t(0x61), uint16_t(0x70), uint16_t(0x71), uint16_t(0x3F8), uint16_t(0x3FD),
                       uint16_t(0xF4), uint16_t(0xCF9), uint16_t(0x604), uint16_t(0xB004)}) {
        ++reads;
        ones += inb(p) == 0xFF && g_caught.count == 0;
    }
    ++reads;
    ones += inb_imm80() == 0xFF && g_caught.count == 0;
    ++reads;
    ones += inw(0x1CE) == 0xFFFF && g_caught.count == 0;
    // PCI configuration: an address written, then data read: still all ones.
    bool w_cf8 = !outl(0xCF8, 0x80000000);
    ++reads;
    ones += inl(0xCFC) == 0xFFFFFFFF && g_caught.count == 0;
    ++reads;
    ones += inl(0xCF8) == 0xFFFFFFFF && g_caught.count == 0;

    // Writes that would end, reset or wedge the machine, or print on the serial line.
    unsigned dropped = 0, writes = 0;
    auto w8 = [&](uint16_t p, uint8_t v) {
        ++writes;
        dropped += !outb(p, v);
    };
    for (const char* s = "PORTLEAK: a guest reached COM1\r\n"; *s; ++s) w8(0x3F8, uint8_t(*s));
    w8(0x3FB, 0x80);   // COM1 divisor latch
    w8(0x3F8, 1);
    w8(0x3FB, 0x03);
    w8(0xF4, 0);       // isa-debug-exit: QEMU would stop
    w8(0xF4, 0x31);
    ++writes;
    dropped += !outl(0xF4, 0x11);
    w8(0xCF9, 0x06);   // reset control: a hard reset
    w8(0x64, 0xFE);    // keyboard controller: pulse the reset line
    w8(0x92, 0x01);    // fast A20 / reset
    w8(0x21, 0xFF);    // mask every line of the master PIC
    w8(0xA1, 0xFF);
    w8(0x20, 0x11);    // re-initialise the PIC
    w8(0x43, 0x30);    // the PIT's channel 0: one-shot
    w8(0x40, 0x00);
    w8(0x40, 0x00);
    w8(0x70, 0x8F);    // CMOS: NMI off, shutdown status
    w8(0x71, 0x0A);
    ++writes;
    dropped += !outw(0x604, 0x2000);   // ACPI power off (some machines)
    ++writes;
    dropped += !outw(0xB004, 0x2000);
    ++writes;
    dropped += !outl(0xCFC, 0xFFFFFFFF);   // a BAR of whatever 0xCF8 names
    attack::sleep_ns(20 * kMs);   // the machine is still there, and time goes on
    check(io == 0 && ones == reads && w_cf8 && dropped == writes && hypervisor_answers(),
          "attack.pv.emulate.ports_without_capability",
          "set_iopl(1) %ld; %u of %u reads all ones; %u of %u writes dropped (none faulted)", io, ones, reads, dropped,
          writes);
}

// User mode: none of it is emulated, whatever the virtual IOPL (1).
volatile uint64_t g_user[8];
void user_privileged() {
    unsigned gps = 0;
    uint64_t v;
    gps += wrmsr(0xC0000100, 0x1000) && gp();
    gps += rdmsr(0xC0000080, &v) && gp();
    gps += read_cr(3, &v) && gp();
    gps += write_cr(0, 0x80050033) && gp();
    arm();
    asm volatile(PV_PROBE_BEGIN "cli" PV_PROBE_END ::: "r11", "memory");
    gps += gp();
    (void)inb(0x64);
    gps += gp();
    gps += outb(0x80, 1) && gp();
    arm();
    asm volatile(PV_PROBE_BEGIN "clts" PV_PROBE_END ::: "r11", "memory");
    gps += gp();
    g_user[0] = gps;
}
void from_user_mode() {
    uint64_t fs_before = 0;
    (void)rdmsr(0xC0000100, &fs_before);
    in_user_mode(user_privileged);
    uint64_t fs_after = 0;
    (void)rdmsr(0xC0000100, &fs_after);
    check(g_user[0] == 8 && fs_after == fs_before && rt::vcpu_info().evtchn_upcall_mask == 0,
          "attack.pv.emulate.user_mode_not_emulated", "%lu of 8 faulted with #GP; FS base %#lx -> %#lx", g_user[0],
          fs_before, fs_after);
}

void misc_instructions() {
    // hlt is not emulated (a guest kernel blocks with sched_op); forced
    // emulation is cpuid only.
    arm();
    asm volatile(PV_PROBE_BEGIN "hlt" PV_PROBE_END ::: "r11", "memory");
    bool hlt = gp();
    uint32_t a = 0x40000000, b = 0, c = 0, d = 0;
    arm();
    asm volatile(PV_PROBE_BEGIN "ud2; .ascii \"xen\"; cpuid" PV_PROBE_END
                 : "+a"(a), "=b"(b), "+c"(c), "=d"(d)
                 :
                 : "r11", "memory");
    bool cpuid = g_caught.count == 0 && b == 0x566e6558 && c == 0x65584d4d && d == 0x4d4d566e;
    uint32_t a1 = 1, b1 = 0, c1 = 0, d1 = 0;
    asm volatile("ud2; .ascii \"xen\"; cpuid" : "+a"(a1), "=b"(b1), "+c"(c1), "=d"(d1) : : "memory");
    bool leaf1 = (c1 >> 31) & 1 && !((c1 >> 5) & 1);   // the hypervisor bit; no VMX
    arm();
    asm volatile(PV_PROBE_BEGIN "ud2; .ascii \"xen\"; wrmsr" PV_PROBE_END : : "c"(0xC0000082u), "a"(0u), "d"(0u)
                 : "r11", "memory");
    bool forced_wrmsr = g_caught.count == 1 && g_caught.vector == 6;
    check(hlt && cpuid && leaf1 && forced_wrmsr && hypervisor_answers(), "attack.pv.emulate.hlt_and_forced_emulation",
          "hlt #GP %d, forced cpuid %d (%#x %#x %#x), leaf 1 ecx %#x, forced wrmsr #UD %d", hlt, cpuid, b, c, d, c1,
          forced_wrmsr);
}

// "Interrupts off" and a spin of 400 ms: the victim's ticks go on.
void cli_spin() {
    long io = set_iopl(1);
    arm();
    asm volatile(PV_PROBE_BEGIN "cli" PV_PROBE_END ::: "r11", "memory");
    bool emulated = g_caught.count == 0 && rt::vcpu_info().evtchn_upcall_mask == 1;
    bool if_real = read_rflags() & 0x200;
    uint64_t until = rt::now_ns() + 400 * kMs, spins = 0;
    while (rt::now_ns() < until) ++spins;
    // popf with IF clear: ignored in ring 3 (no fault), and the same spin.
    asm volatile("pushfq\n\tandq $~0x200, (%%rsp)\n\tpopfq" ::: "memory", "cc");
    bool if_still = read_rflags() & 0x200;
    until = rt::now_ns() + 200 * kMs;
    while (rt::now_ns() < until) ++spins;
    arm();
    asm volatile(PV_PROBE_BEGIN "sti" PV_PROBE_END ::: "r11", "memory");
    bool sti = g_caught.count == 0 && rt::vcpu_info().evtchn_upcall_mask == 0;
    (void)set_iopl(0);
    check(io == 0 && emulated && if_real && if_still && sti, "attack.pv.emulate.cli_spin_contained",
          "cli emulated %d (IF really %d, after popf %d), sti %d; %lu spins in 600 ms", emulated, if_real, if_still, sti,
          spins);
}

// Hardware breakpoints (the guest's DR0-3 and DR7 are the CPU's while it
// runs, kernel/core/src/hc_debugreg.cpp): a data breakpoint on a buffer the
// hypervisor copies to or from fires in the hypervisor, which must take it
// in its stride; and one on the selector of a `mov %ss` that is followed by
// a `syscall`, `int3` or `int $0x80` (the CPU holds the #DB back until after
// that instruction: on real CPUs it arrives in ring 0, at the hypervisor's
// entry point, before its `swapgs` -- Xen's XSA-260) must not bring the
// hypervisor down: it takes that #DB on a stack of its own and delivers it
// to us once the entry is done. (QEMU raises it before the next
// instruction, in ring 3: a #DB of ours all the same.)
alignas(16) volatile uint64_t g_dbuf[4];
alignas(8) volatile uint16_t g_ss_sel[4] = {kFlatDs, 0, 0, 0};
constexpr uint64_t kDr7Rw8 = 1 | (3ull << 16) | (2ull << 18) | 0x400;   // L0, read/write, 8 bytes
constexpr uint64_t kDr7Rw2 = 1 | (3ull << 16) | (1ull << 18) | 0x400;   // L0, read/write, 2 bytes

void debug_breakpoints() {
    __builtin_memcpy(const_cast<uint64_t*>(g_dbuf), "dbuf ok\n", 8);
    bool set = !write_dr(0, rt::ptr(g_dbuf)) && !write_dr(7, kDr7Rw8);
    // Our own access: a #DB of ours, after the instruction.
    arm();
    uint64_t seen = 0;
    asm volatile(PV_PROBE_BEGIN "movq %1, %0" PV_PROBE_END : "+r"(seen) : "m"(g_dbuf[0]) : "r11", "memory");
    bool own = g_caught.count == 1 && g_caught.vector == 1;
    // The hypervisor's: it reads the buffer (console_io) and writes it
    // (xen_version); each call still does its work.
    long w = rt::hypercall(abi::Hypercall::console_io, uint64_t(abi::ConsoleIo::write), 8, rt::ptr(g_dbuf));
    long x = rt::hypercall(abi::Hypercall::xen_version, 3 /* extraversion */, rt::ptr(g_dbuf));
    bool answers = hypervisor_answers();
    (void)write_dr(7, 0x400);
    check(set && own && w == 0 && x == 0 && answers, "attack.pv.emulate.breakpoints_on_copied_buffers_contained",
          "set %d, own access #DB %d, console_io %ld, xen_version %ld, the hypervisor answers %d", set, own, w, x, answers);

    // mov %ss from a watched selector, then an entry to the hypervisor.
    bool set2 = !write_dr(0, rt::ptr(g_ss_sel)) && !write_dr(7, kDr7Rw2);
    unsigned debug = 0, n = 0;
    ++n;
    arm();
    asm volatile(PV_PROBE_BEGIN "movl $17, %%eax\n\txorl %%edi, %%edi\n\tmovw %0, %%ss\n\tsyscall" PV_PROBE_END
                 : : "m"(g_ss_sel[0]) : "rax", "rcx", "rdi", "r11", "memory");
    debug += g_caught.count >= 1;
    ++n;
    arm();
    asm volatile(PV_PROBE_BEGIN "movw %0, %%ss\n\tint3" PV_PROBE_END : : "m"(g_ss_sel[0]) : "r11", "memory");
    debug += g_caught.count >= 1;
    ++n;
    arm();
    asm volatile(PV_PROBE_BEGIN "movw %0, %%ss\n\tint $0x80" PV_PROBE_END : : "m"(g_ss_sel[0]) : "r11", "memory");
    debug += g_caught.count >= 1;
    (void)write_dr(7, 0x400);
    check(set2 && debug == n && hypervisor_answers(), "attack.pv.emulate.mov_ss_breakpoint_contained",
          "set %d, %u of %u came back to us as a fault of ours (last: vector %lu at %#lx)", set2, debug, n,
          g_caught.vector, g_caught.rip);
}

// An emulated instruction (or a hypercall) that ends at the last byte of
// the lower canonical half: the rip after it is not canonical. The
// hypervisor must not return there with an iretq the CPU refuses (a fault in
// the hypervisor on real CPUs): it delivers the #GP(0) our fetch there would
// raise, at rip 0x800000000000, itself. (Under QEMU, which does not check rip
// on iretq, the CPU's own fetch fault looked the same: that this is the
// hypervisor's doing shows only on hardware.)
constexpr uint64_t kCodePage = 0x00007FFFFFFFF000ull;
void canonical_end() {
    Tables t = own_tables();
    uint64_t l3 = spare_frame(), l2 = spare_frame(), l1 = spare_frame(), code = spare_frame();
    const uint64_t tf = rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteU;
    uint64_t e1[512] = {}, e2[512] = {}, e3[512] = {};
    e1[511] = pte(code, false);
    e2[511] = (l1 << 12) | tf;
    e3[511] = (l2 << 12) | tf;
    bool built = fill_frame(code, nullptr, 0, 0xCCCCCCCCCCCCCCCCull) && fill_frame(l1, e1, 512) &&
                 fill_frame(l2, e2, 512) && fill_frame(l3, e3, 512);
    uint64_t l4e = (t.mfn[4] << 12) | (255 * 8);
    long link = built ? rt::mmu_update_one(l4e, (l3 << 12) | tf) : -1;
    check(link == 0, "attack.pv.emulate.canonical_end_mapped", "linking L4 slot 255: %ld", link);
    if (link != 0) return;
    struct {
        const char* what;
        uint8_t bytes[16];   // at 0xFF0..0xFFF
        uint32_t eax;
    } variants[] = {
        {"rdmsr (EFER)", {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32}, 0},
        {"a hypercall (syscall)", {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0xb8, 0x11, 0x00, 0x00, 0x00, 0x0f, 0x05}, 0},
        {"forced cpuid", {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2}, 0},
    };
    unsigned contained = 0, n = 0;
    for (auto& v : variants) {
        ++n;
        uint64_t page[512];
        for (auto& w : page) w = 0xCCCCCCCCCCCCCCCCull;
        __builtin_memcpy(reinterpret_cast<uint8_t*>(page) + 0xFF0, v.bytes, 16);
        (void)fill_frame(code, page, 512);
        uint64_t entry = kCodePage + 0xFF0;
        arm();
        asm volatile(PV_PROBE_BEGIN
                     "movq %%rsp, %%r10\n\t"
                     "xorl %%edi, %%edi\n\t"
                     "jmp *%[e]" PV_PROBE_END "\n\t"
                     "movq %%r10, %%rsp"
                     :
                     : [e] "r"(entry), "a"(v.eax)
                     : "rbx", "rcx", "rdx", "rdi", "r10", "r11", "memory");
        bool gp0 = g_caught.count == 1 && g_caught.vector == 13 && g_caught.error == 0;
        contained += gp0 && g_caught.rip == 0x0000800000000000ull && hypervisor_answers();
        rt::printf("%s ending at the canonical boundary: fault %u (vector %lu, error %#lx) at rip %#lx\n", v.what,
                   g_caught.count, g_caught.vector, g_caught.error, g_caught.rip);
    }
    (void)rt::mmu_update_one(l4e, 0);
    check(contained == n, "attack.pv.emulate.canonical_end_contained",
          "%u of %u ended in a #GP(0) of ours at 0x800000000000", contained, n);
}

}  // namespace

void scenario_emulate() {
    if (!setup_modes()) return;
    msrs();
    segment_bases();
    control_registers();
    debug_registers();
    misc_instructions();
    ports();
    from_user_mode();   // with the virtual IOPL of 1 that ports() left
    cli_spin();
    debug_breakpoints();
    canonical_end();
}

}  // namespace pv
