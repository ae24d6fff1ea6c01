// Bringing up a CPU: descriptor tables, per-CPU block, syscall MSRs, CR0/CR4.

#include <arch/cpu.hpp>
#include <arch/percpu.hpp>

#include <core/log.hpp>

extern "C" {
void syscall_entry();
void syscall32_entry();
void nmi_entry();
void debug_entry();
void double_fault_entry();
void machine_check_entry();
extern const uint8_t idt_stubs[];   // 256 entry stubs, 16 bytes apart
bool arch_smap_enabled;
}

namespace arch {

namespace {

struct [[gnu::packed]] DescriptorPtr {
    uint16_t limit;
    uint64_t base;
};

struct IdtGate {
    uint16_t offset_lo, selector;
    uint8_t ist, type_attr;
    uint16_t offset_mid;
    uint32_t offset_hi, reserved;
};
static_assert(sizeof(IdtGate) == 16);

Cpu g_cpus[kMaxCpus];
alignas(4096) uint64_t g_gdt[kMaxCpus][kGdtEntries];
alignas(16) uint8_t g_stacks[kMaxCpus][kStackSize];
constexpr unsigned kIstNmi = 1, kIstDoubleFault = 2, kIstMachineCheck = 3, kIstDebug = 4;
constexpr unsigned kIstStacks = 4;
alignas(16) uint8_t g_ist_stacks[kMaxCpus][kIstStacks][kIstStackSize];
IdtGate g_idt[256];


void set_gate(unsigned vector, uint64_t handler, unsigned dpl, unsigned ist) {
    IdtGate& g = g_idt[vector];
    g.offset_lo = uint16_t(handler);
    g.selector = SEL_HYP_CS;
    g.ist = uint8_t(ist);
    g.type_attr = uint8_t(0x8E | (dpl << 5));   // present, 64-bit interrupt gate
    g.offset_mid = uint16_t(handler >> 16);
    g.offset_hi = uint32_t(handler >> 32);
    g.reserved = 0;
}

uint64_t stub(unsigned v) { return reinterpret_cast<uint64_t>(idt_stubs) + 16 * v; }

void build_idt() {
    for (unsigned v = 0; v < 256; ++v) set_gate(v, stub(v), 0, 0);
    // A guest may use int3 and into directly, as on hardware; every other
    // `int $n` from ring 3 raises #GP and is delivered (or not) according to
    // the guest's own trap table.
    set_gate(3, stub(3), 3, 0);
    set_gate(4, stub(4), 3, 0);
    set_gate(2, reinterpret_cast<uint64_t>(nmi_entry), 0, kIstNmi);
    // #DB on a stack of its own (Xen's XSA-260): a guest's `mov %ss` can
    // make it arrive on the first instruction of syscall_entry, in ring 0
    // but still on the guest's stack and with the guest's GS base.
    set_gate(1, reinterpret_cast<uint64_t>(debug_entry), 0, kIstDebug);
    set_gate(8, reinterpret_cast<uint64_t>(double_fault_entry), 0, kIstDoubleFault);
    set_gate(18, reinterpret_cast<uint64_t>(machine_check_entry), 0, kIstMachineCheck);
}

void build_gdt(unsigned id) {
    uint64_t* gdt = g_gdt[id];
    uint64_t* r = gdt + kFirstReservedGdtEntry;   // selector 0xe000
    r[1] = 0x00AF9A000000FFFF;   // 0xe008 hypervisor code, 64-bit
    r[2] = 0x00CF92000000FFFF;   // 0xe010 hypervisor data
    r[4] = 0x00CFFA000000FFFF;   // 0xe023 guest code, 32-bit compatibility
    r[5] = 0x00CFF2000000FFFF;   // 0xe02b guest data
    r[6] = 0x00AFFA000000FFFF;   // 0xe033 guest code, 64-bit
    uint64_t tss = reinterpret_cast<uint64_t>(&g_cpus[id].tss_block);
    uint64_t limit = sizeof(TssBlock) - 1;
    r[8] = (limit & 0xFFFF) | ((tss & 0xFFFFFF) << 16) | (0x89ull << 40) | (((limit >> 16) & 0xF) << 48) |
           (((tss >> 24) & 0xFF) << 56);                 // 0xe040 TSS
    r[9] = tss >> 32;
    // r[10], r[11]: 0xe050, the LDT of the vCPU on this CPU, written when it
    // is loaded (platform.cpp: load_guest_ldt).
}

}  // namespace

uint64_t* gdt_of(unsigned id) { return g_gdt[id]; }

void cpu_init(unsigned id) {
    Cpu& c = g_cpus[id];
    c.self = &c;
    c.id = id;
    c.need_resched = true;   // nothing is in the frame yet
    c.stack_top = reinterpret_cast<uint64_t>(g_stacks[id] + kStackSize);
    c.tss_block.tss.rsp[0] = c.stack_top;
    // Guests run with IOPL 0: the bitmap decides, and it starts denying all.
    c.tss_block.tss.iomap_base = sizeof(Tss);
    for (auto& b : c.tss_block.iomap) b = 0xFF;
    c.tss_block.iomap_end = 0xFF;
    c.io_domain = nullptr;
    const unsigned ists[kIstStacks] = {kIstNmi, kIstDoubleFault, kIstMachineCheck, kIstDebug};
    for (unsigned i = 0; i < kIstStacks; ++i) {
        // The top quadword of an IST stack names its CPU (see entry.S).
        uint8_t* top = g_ist_stacks[id][i] + kIstStackSize;
        reinterpret_cast<Cpu**>(top)[-1] = &c;
        c.tss_block.tss.ist[ists[i] - 1] = reinterpret_cast<uint64_t>(top) - 16;
    }

    build_gdt(id);
    if (id == 0) build_idt();

    DescriptorPtr gdtr{uint16_t(sizeof g_gdt[id] - 1), reinterpret_cast<uint64_t>(g_gdt[id])};
    DescriptorPtr idtr{uint16_t(sizeof g_idt - 1), reinterpret_cast<uint64_t>(g_idt)};
    asm volatile(
        "lgdt %0\n"
        "lidt %1\n"
        "pushq $0xe008\n"
        "leaq 1f(%%rip), %%rax\n"
        "pushq %%rax\n"
        "lretq\n"
        "1: movl $0xe010, %%eax\n"
        "mov %%ax, %%ss\n"
        "xorl %%eax, %%eax\n"
        "mov %%ax, %%ds\n"
        "mov %%ax, %%es\n"
        "mov %%ax, %%fs\n"
        "mov %%ax, %%gs\n"
        "movw $0xe040, %%ax\n"
        "ltr %%ax\n"
        :
        : "m"(gdtr), "m"(idtr)
        : "rax", "memory");

    wrmsr(msr::kGsBase, reinterpret_cast<uint64_t>(&c));
    wrmsr(msr::kKernelGsBase, 0);

    // syscall: CS/SS from STAR[47:32] (0xe008/0xe010); sysret: STAR[63:48]
    // + 16/+8 = 0xe033/0xe02b. Mask IF, TF, DF, AC, NT on entry.
    wrmsr(msr::kStar, (uint64_t(SEL_GUEST_CS32) << 48) | (uint64_t(SEL_HYP_CS) << 32));
    wrmsr(msr::kLstar, reinterpret_cast<uint64_t>(syscall_entry));
    wrmsr(msr::kCstar, reinterpret_cast<uint64_t>(syscall32_entry));
    wrmsr(msr::kSfmask, rflags::kIf | rflags::kTf | rflags::kDf | rflags::kAc | rflags::kNt);
    wrmsr(msr::kEfer, rdmsr(msr::kEfer) | 1);   // SCE
    // No SYSENTER entry: with SYSENTER_CS 0 a guest's `sysenter` raises #GP(0)
    // (on AMD #UD), which the core handles (core/callbacks.hpp), whatever the
    // firmware left in these MSRs.
    constexpr uint32_t kSysenterCs = 0x174;
    wrmsr(kSysenterCs, 0);

    write_cr0((read_cr0() | cr0::kWp) & ~(cr0::kTs | cr0::kAm));
    uint64_t cr4v = read_cr4() | cr4::kPae | cr4::kOsfxsr | cr4::kOsxmmexcpt;
    auto leaf7 = cpuid(7, 0);
    if (leaf7.ebx & (1u << 7)) cr4v |= cr4::kSmep;
    if (leaf7.ebx & (1u << 20)) {
        cr4v |= cr4::kSmap;
        arch_smap_enabled = true;
    }
    write_cr4(cr4v);
    core::log("cpu%u: up (SMEP %s, SMAP %s)", id, (cr4v & cr4::kSmep) ? "on" : "off",
              (cr4v & cr4::kSmap) ? "on" : "off");
}

}  // namespace arch
