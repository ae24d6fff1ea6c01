#pragma once
// What the portable core needs from the machine. The kernel implements these in
// kernel/arch/x86_64; hosted unit tests link a fake (tests/unit/core/fake_platform.cpp).
// Chosen at link time, so the core has no #ifdef and no virtual calls.

#include <cstddef>
#include <cstdint>

namespace core {
struct Vcpu;
}

namespace platform {

// The kernel log's sink (the UART).
void log_write(const char* s, size_t n);
// A domain drove the sink until now (core/log.hpp): make it writable again
// (a UART left with its divisor latch open would swallow everything).
void log_sink_reclaim();

// Guest virtual memory of the address space that is loaded now. False if the
// range reaches into the hypervisor's part, is not canonical, or faults.
[[nodiscard]] bool copy_from_guest(void* dst, uint64_t guest_va, size_t n);
[[nodiscard]] bool copy_to_guest(uint64_t guest_va, const void* src, size_t n);

// Machine memory through the direct map.
void* phys_to_virt(uint64_t pa);

// TLB maintenance on this CPU.
void flush_tlb_local();
void invlpg_local(uint64_t va);

// The hypervisor's own top-level table entries every guest L4 must carry
// (the hypervisor slots), copied into a new guest L4.
void copy_hypervisor_l4_slots(uint64_t* l4);

// Address spaces. load_page_table switches to a guest L4 (by frame number);
// leave_guest_address_space switches to the hypervisor's own tables, so that
// a dying domain's tables can be freed while it is current.
void load_page_table(uint64_t l4_mfn);
void leave_guest_address_space();

// Guest segment bases of the running vCPU.
void set_fs_base(uint64_t v);
uint64_t read_fs_base();               // the running vCPU's, as the CPU has it now
void set_active_gs_base(uint64_t v);   // the GS base the guest runs with now
// The data selectors the running vCPU has now: ds, es, fs, gs.
void read_data_selectors(uint16_t out[4]);
// Loads the guest's %gs selector (flat or null only), keeping the hypervisor's GS.
void load_guest_gs_selector(uint16_t sel);

// The running vCPU's GDT (core/descriptors.hpp): its descriptors copied into
// this CPU's GDT below the hypervisor's entries (and the rest of the guest
// part cleared), or one of them changed.
void load_guest_gdt(const core::Vcpu& v);
void update_guest_gdt(unsigned index, uint64_t desc);

// The running vCPU's LDT (core/descriptors.hpp): its descriptors copied into
// this CPU's LDT, whose limit is exactly its entries, and loaded (lldt); no
// LDT at all when it has none. update_guest_ldt: one of them changed.
void load_guest_ldt(const core::Vcpu& v);
void update_guest_ldt(unsigned index, uint64_t desc);

// The running vCPU's breakpoints (core/debugreg.hpp): DR0-3 and DR7 from the
// vCPU when its DR7 enables any, else this CPU's DR7 cleared. Called on every
// context switch and whenever the running vCPU's change.
void load_debug_registers(const core::Vcpu& v);

// CR0.TS for the running vCPU (its virtual TS flag, see fpu_taskswitch).
void set_fpu_trap(bool on);

// Monotonic time since boot, and the TSC it is derived from (guests compute
// system time from the TSC with the scale in their vcpu_time_info).
uint64_t now_ns();
uint64_t tsc();
uint64_t tsc_khz();

// Ask for the scheduler to run before this CPU returns to a guest.
void request_reschedule();

// The calling CPU's "current vCPU".
core::Vcpu* current_vcpu();
// The running vCPU's vcpu_info moved (VCPUOP_register_vcpu_info): the exit
// path's cached pointer follows.
void set_upcall_info(const void* info);

// PCI configuration space of bus 0 (bdf: device << 3 | function): `size`
// (1, 2, 4) bytes at `offset`, aligned. All ones where nothing answers.
uint32_t pci_read(uint32_t bdf, uint16_t offset, uint8_t size);
void pci_write(uint32_t bdf, uint16_t offset, uint8_t size, uint32_t value);

// The input of the interrupt controller that PCI function `bdf` (bus 0)
// raises on its interrupt pin `pin` (1-4, INTA-INTD), given the line the
// firmware wrote in its config space: that line on QEMU's PC (PIIX), the
// PIRQ input (16-23) on q35 (ICH9), whose firmware line is the 8259's.
unsigned pci_irq_input(uint32_t bdf, uint8_t pin, uint8_t firmware_line);

// The DMA-remapping unit (Intel VT-d, found through ACPI's DMAR table),
// when the machine has one. Without it no device is confined: every PCI
// function's DMA reaches all of memory (the kernel and the builder say so).
//
// iommu_levels: 0 when there is none (or it could not be turned on), else
// the levels of the second-level I/O page tables it walks (3: 39-bit, 4:
// 48-bit addresses). Entries are VT-d's: bit 0 read, bit 1 write, bits
// 12-51 the next table's or the page's machine address.
unsigned iommu_levels();
// Points PCI function `bdf`'s context entry at the I/O page table whose top
// table is machine frame `root`, tagged with domain id `did` (not 0); root
// 0 makes it not present again (the function's DMA is blocked). Returns when
// the unit has dropped every cached context and translation of the function.
void iommu_set_context(uint32_t bdf, uint16_t did, uint64_t root);
// Drops every IOTLB entry tagged `did`; returns when the unit has done so,
// so that no DMA started afterwards uses a translation removed before.
void iommu_flush_domain(uint16_t did);
// The core wrote `n` bytes of an I/O page table at `p`: on a unit whose walks
// do not snoop the caches (VT-d ECAP.C clear) they are written back to memory
// before the unit may read them.
void iommu_table_written(const void* p, size_t n);

// Masks or unmasks an interrupt line (an IOAPIC input).
void irq_set_masked(unsigned line, bool masked);
// A line PCI functions share: level triggered.
void irq_set_level_triggered(unsigned line);

// The host CPU's CPUID leaf/subleaf (eax, ebx, ecx, edx), for the policy
// guests see (core/cpuid.cpp).
void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
// The host's CR4 (which guest-visible bits are set: PAE, MCE, OSFXSR, ...).
uint64_t host_cr4();

// Boot module `index` (an image or the manifest the boot loader loaded):
// false if there is none. `cmdline` is its module string.
struct BootModule {
    const uint8_t* data;
    size_t size;
    const char* cmdline;
};
bool boot_module(unsigned index, BootModule* out);

[[noreturn]] void panic(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

enum class ExitKind { clean, panic };
[[noreturn]] void system_exit(ExitKind kind);

}  // namespace platform
