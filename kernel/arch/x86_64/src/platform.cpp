// The machine side of core/platform.hpp.

#include <arch/acpi.hpp>
#include <arch/apic.hpp>
#include <arch/cpu.hpp>
#include <arch/layout.h>
#include <arch/panic.hpp>
#include <arch/percpu.hpp>
#include <arch/serial.hpp>
#include <arch/vtd.hpp>

#include <core/debugreg.hpp>
#include <core/descriptors.hpp>
#include <core/domain.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>

extern "C" uint64_t arch_copy_guest(void* dst, const void* src, size_t n);
extern "C" const uint64_t boot_pml4_pa;

namespace {

// Guest addresses are the lower half and the upper half above the
// hypervisor's slots; a range may lie in one of them, never across.
bool guest_range_ok(uint64_t va, size_t n) {
    constexpr uint64_t kLowerEnd = 0x0000800000000000ull;
    constexpr uint64_t kUpperStart = 0xFFFF880000000000ull;
    if (n == 0) return true;
    uint64_t last = va + n - 1;
    if (last < va) return false;
    return last < kLowerEnd || va >= kUpperStart;
}

uint64_t* idle_l4() { return reinterpret_cast<uint64_t*>(DIRECTMAP_VIRT + boot_pml4_pa); }

// The running vCPU's LDT as the CPU uses it (core/descriptors.hpp): a copy
// per CPU in hypervisor memory, named by the LDT descriptor in reserved
// entries 10-11 of that CPU's GDT (selector 0xe050, Xen's LDT_ENTRY; see
// cpu.cpp), whose limit is exactly the vCPU's entries, so a selector past
// them faults. Entries past the limit may hold an earlier vCPU's: the CPU
// never reads them.
constexpr unsigned kLdtGdtEntry = arch::kFirstReservedGdtEntry + 10;
constexpr uint16_t kLdtSelector = kLdtGdtEntry * 8;
static_assert(kLdtSelector == 0xe050);
alignas(4096) uint64_t g_ldt[arch::kMaxCpus][core::kLdtMaxEntries];
unsigned g_ldt_ents[arch::kMaxCpus];   // entries of the LDT loaded on that CPU, 0: none (LDTR null)

// The DR7 each CPU has now: 0 unless the vCPU on it enables a breakpoint.
uint64_t g_dr7[arch::kMaxCpus];

void write_dr(unsigned i, uint64_t v) {
    switch (i) {
    case 0: asm volatile("mov %0, %%dr0" : : "r"(v)); break;
    case 1: asm volatile("mov %0, %%dr1" : : "r"(v)); break;
    case 2: asm volatile("mov %0, %%dr2" : : "r"(v)); break;
    case 3: asm volatile("mov %0, %%dr3" : : "r"(v)); break;
    default: asm volatile("mov %0, %%dr7" : : "r"(v)); break;
    }
}

// PCI configuration space through the ECAM window (bus 0's MiB in the
// direct map) once ACPI's MCFG gave one, else ports 0xCF8/0xCFC.
uint64_t g_ecam;   // virtual address of bus 0's window; 0: none

volatile uint8_t* ecam(uint32_t bdf, uint16_t offset) {
    if (!g_ecam || bdf > 0xFF || offset > 0xFFF) return nullptr;
    return reinterpret_cast<volatile uint8_t*>(g_ecam + (uint64_t(bdf) << 12) + offset);
}

// The ICH9's LPC bridge (8086:2918) at 00:1f.0: QEMU's q35. Read once, at
// the first PCI interrupt routed (pci_enumerate, at boot).
bool is_ich9() {
    static int ich9 = -1;
    if (ich9 < 0) ich9 = platform::pci_read(0xF8, 0, 4) == 0x29188086u;
    return ich9;
}

}  // namespace

void arch::pci_use_ecam(uint64_t phys) { g_ecam = DIRECTMAP_VIRT + phys; }

namespace platform {

void log_write(const char* s, size_t n) { arch::serial::write(s, n); }
void log_sink_reclaim() { arch::serial::reclaim(); }

bool copy_from_guest(void* dst, uint64_t va, size_t n) {
    return guest_range_ok(va, n) && arch_copy_guest(dst, reinterpret_cast<const void*>(va), n) == 0;
}

bool copy_to_guest(uint64_t va, const void* src, size_t n) {
    return guest_range_ok(va, n) && arch_copy_guest(reinterpret_cast<void*>(va), src, n) == 0;
}

void* phys_to_virt(uint64_t pa) { return reinterpret_cast<void*>(DIRECTMAP_VIRT + pa); }

void flush_tlb_local() {
    arch::write_cr3(arch::read_cr3());
    core::tlb_flushed();
}
void invlpg_local(uint64_t va) { arch::invlpg(va); }

void copy_hypervisor_l4_slots(uint64_t* l4) {
    const uint64_t* idle = idle_l4();
    for (unsigned i = HYPERVISOR_L4_FIRST; i <= HYPERVISOR_L4_LAST; ++i) l4[i] = idle[i];
}

void load_page_table(uint64_t l4_mfn) {
    arch::write_cr3(l4_mfn << 12);
    core::tlb_flushed();
}

void leave_guest_address_space() {
    arch::write_cr3(boot_pml4_pa);
    core::tlb_flushed();
}

void set_fs_base(uint64_t v) { arch::wrmsr(arch::msr::kFsBase, v); }
uint64_t read_fs_base() { return arch::rdmsr(arch::msr::kFsBase); }
// In the hypervisor the guest's GS base waits in KERNEL_GS_BASE for swapgs.
void set_active_gs_base(uint64_t v) { arch::wrmsr(arch::msr::kKernelGsBase, v); }

void read_data_selectors(uint16_t out[4]) {
    asm volatile("mov %%ds, %0; mov %%es, %1; mov %%fs, %2; mov %%gs, %3"
                 : "=m"(out[0]), "=m"(out[1]), "=m"(out[2]), "=m"(out[3]));
}

void load_guest_gs_selector(uint16_t sel) {
    // Loading %gs rewrites GS_BASE, which holds this CPU's block: put it back.
    uint64_t ours = arch::rdmsr(arch::msr::kGsBase);
    asm volatile("mov %0, %%gs" : : "r"(static_cast<uint32_t>(sel)));
    arch::wrmsr(arch::msr::kGsBase, ours);
}

void set_fpu_trap(bool on) {
    uint64_t cr0 = arch::read_cr0();
    arch::write_cr0(on ? (cr0 | arch::cr0::kTs) : (cr0 & ~arch::cr0::kTs));
}

uint64_t now_ns() { return arch::apic_now_ns(); }
uint64_t tsc() { return arch::rdtsc(); }
uint64_t tsc_khz() { return arch::apic_tsc_khz(); }

core::Vcpu* current_vcpu() { return arch::this_cpu().current; }
void set_upcall_info(const void* info) { arch::this_cpu().upcall_info = info; }

void load_guest_gdt(const core::Vcpu& v) {
    arch::Cpu& c = arch::this_cpu();
    uint64_t* g = arch::gdt_of(c.id);
    unsigned n = v.gdt_ents;
    for (unsigned i = 0; i < n; ++i) g[i] = core::frame_va<uint64_t>(v.gdt_frames[i / 512])[i % 512];
    for (unsigned i = n; i < c.gdt_guest_ents; ++i) g[i] = 0;
    c.gdt_guest_ents = n;
}

void update_guest_gdt(unsigned index, uint64_t desc) {
    arch::Cpu& c = arch::this_cpu();
    if (index < c.gdt_guest_ents) arch::gdt_of(c.id)[index] = desc;
}
void request_reschedule() { arch::this_cpu().need_resched = true; }

void load_guest_ldt(const core::Vcpu& v) {
    unsigned id = arch::this_cpu().id;
    unsigned n = v.ldt_ents;
    if (n == 0 && g_ldt_ents[id] == 0) return;   // none before, none now
    g_ldt_ents[id] = n;
    if (n == 0) {
        asm volatile("lldt %w0" : : "r"(uint16_t(0)) : "memory");
        return;
    }
    uint64_t* l = g_ldt[id];
    for (unsigned i = 0; i < n; ++i) l[i] = core::frame_va<uint64_t>(v.ldt_frames[i / 512])[i % 512];
    // A 16-byte system descriptor: present, DPL 0, type 2 (LDT).
    uint64_t base = reinterpret_cast<uint64_t>(l), limit = uint64_t(n) * 8 - 1;
    uint64_t* g = arch::gdt_of(id) + kLdtGdtEntry;
    g[0] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x82ull << 40) | (((limit >> 16) & 0xF) << 48) |
           (((base >> 24) & 0xFF) << 56);
    g[1] = base >> 32;
    asm volatile("lldt %w0" : : "r"(kLdtSelector) : "memory");
}

void update_guest_ldt(unsigned index, uint64_t desc) {
    unsigned id = arch::this_cpu().id;
    if (index < g_ldt_ents[id]) g_ldt[id][index] = desc;
}

void load_debug_registers(const core::Vcpu& v) {
    unsigned id = arch::this_cpu().id;
    uint64_t dr7 = core::debugreg_active(v) ? v.dr[7] : 0;
    if (dr7) {
        for (unsigned i = 0; i < 4; ++i) {
            // set_debugreg let only guest addresses in; never arm another.
            if (!core::is_guest_address(v.dr[i])) dr7 &= ~(3ull << (2 * i));
            write_dr(i, v.dr[i]);
        }
    } else if (g_dr7[id] == 0) {
        return;   // nothing armed before, nothing now
    }
    write_dr(7, dr7);
    g_dr7[id] = dr7;
}

uint32_t pci_read(uint32_t bdf, uint16_t offset, uint8_t size) {
    if (volatile uint8_t* p = ecam(bdf, offset)) {
        if (size == 1) return *p;
        if (size == 2) return *reinterpret_cast<volatile uint16_t*>(p);
        return *reinterpret_cast<volatile uint32_t*>(p);
    }
    if (bdf > 0xFF || offset > 0xFF) return 0xFFFFFFFF;
    arch::outl(0xCF8, 0x80000000u | (bdf << 8) | (offset & 0xFC));
    uint16_t port = uint16_t(0xCFC + (offset & 3));
    if (size == 1) return arch::inb(port);
    if (size == 2) return arch::inw(port);
    return arch::inl(0xCFC);
}

void pci_write(uint32_t bdf, uint16_t offset, uint8_t size, uint32_t value) {
    if (volatile uint8_t* p = ecam(bdf, offset)) {
        if (size == 1) *p = uint8_t(value);
        else if (size == 2) *reinterpret_cast<volatile uint16_t*>(p) = uint16_t(value);
        else *reinterpret_cast<volatile uint32_t*>(p) = value;
        return;
    }
    if (bdf > 0xFF || offset > 0xFF) return;
    arch::outl(0xCF8, 0x80000000u | (bdf << 8) | (offset & 0xFC));
    uint16_t port = uint16_t(0xCFC + (offset & 3));
    if (size == 1) arch::outb(port, uint8_t(value));
    else if (size == 2) arch::outw(port, uint16_t(value));
    else arch::outl(0xCFC, value);
}

// QEMU's q35 routes a bus-0 function's INTx pin through the ICH9's PIRQ
// links to IOAPIC inputs 16-23 (PIRQ A-H), by slot, as its LPC bridge's
// registers are at reset (QEMU's hw/isa/lpc_ich9.c): slots 0-24 rotate over
// PIRQ E-H; slots 25-31 follow D25IR-D31IR, 0x3210 (INTA-D to PIRQ A-D)
// but for slot 30's, which is 0 (all to PIRQ A). The firmware's line is
// the 8259 route of the same link, shared by many functions. QEMU's PC
// (PIIX) wires its links to the lines the firmware wrote.
unsigned pci_irq_input(uint32_t bdf, uint8_t pin, uint8_t firmware_line) {
    if (!is_ich9() || pin < 1 || pin > 4) return firmware_line;
    unsigned slot = (bdf >> 3) & 0x1F;
    unsigned pirq = slot < 25 ? (slot + pin - 1) % 4 + 4 : slot == 30 ? 0 : pin - 1u;
    return 16 + pirq;
}

unsigned iommu_levels() { return arch::vtd::levels(); }
void iommu_set_context(uint32_t bdf, uint16_t did, uint64_t root) { arch::vtd::set_context(bdf, did, root); }
void iommu_flush_domain(uint16_t did) { arch::vtd::flush_domain(did); }
void iommu_table_written(const void* p, size_t n) { arch::vtd::sync_memory(p, n); }

void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    auto r = arch::cpuid(leaf, subleaf);
    out[0] = r.eax;
    out[1] = r.ebx;
    out[2] = r.ecx;
    out[3] = r.edx;
}

uint64_t host_cr4() { return arch::read_cr4(); }

void irq_set_level_triggered(unsigned line) { arch::ioapic_set_level(line); }

void irq_set_masked(unsigned line, bool masked) { arch::ioapic_set_masked(line, masked); }

void system_exit(ExitKind kind) { arch::qemu_exit(kind == ExitKind::clean ? arch::kExitClean : arch::kExitPanic); }

}  // namespace platform
