// The machine side of core/platform.hpp.

#include <arch/apic.hpp>
#include <arch/cpu.hpp>
#include <arch/layout.h>
#include <arch/panic.hpp>
#include <arch/percpu.hpp>
#include <arch/serial.hpp>

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

}  // namespace

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
// In the hypervisor the guest's GS base waits in KERNEL_GS_BASE for swapgs.
void set_active_gs_base(uint64_t v) { arch::wrmsr(arch::msr::kKernelGsBase, v); }

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
void request_reschedule() { arch::this_cpu().need_resched = true; }

uint32_t pci_read(uint32_t bdf, uint16_t offset, uint8_t size) {
    arch::outl(0xCF8, 0x80000000u | (bdf << 8) | (offset & 0xFC));
    uint16_t port = uint16_t(0xCFC + (offset & 3));
    if (size == 1) return arch::inb(port);
    if (size == 2) return arch::inw(port);
    return arch::inl(0xCFC);
}

void pci_write(uint32_t bdf, uint16_t offset, uint8_t size, uint32_t value) {
    arch::outl(0xCF8, 0x80000000u | (bdf << 8) | (offset & 0xFC));
    uint16_t port = uint16_t(0xCFC + (offset & 3));
    if (size == 1) arch::outb(port, uint8_t(value));
    else if (size == 2) arch::outw(port, uint16_t(value));
    else arch::outl(0xCFC, value);
}

void irq_set_level_triggered(unsigned line) { arch::ioapic_set_level(line); }

void irq_set_masked(unsigned line, bool masked) { arch::ioapic_set_masked(line, masked); }

void system_exit(ExitKind kind) { arch::qemu_exit(kind == ExitKind::clean ? arch::kExitClean : arch::kExitPanic); }

}  // namespace platform
