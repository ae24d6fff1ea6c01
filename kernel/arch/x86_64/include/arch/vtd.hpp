#pragma once
// The Intel VT-d DMA-remapping unit (one, the DMAR's INCLUDE_PCI_ALL unit),
// driven through its registers and its invalidation queue. The machine side
// of platform::iommu_* (core/platform.hpp); the I/O page tables themselves
// are the core's (core/iommu.hpp).
//
// Once init() has turned it on:
//  - DMA remapping is on; every bus-0 function has a context entry that is not
//    present until the core attaches the function to a domain's I/O table, so
//    a device's DMA is blocked until then;
//  - interrupt remapping is on, compatibility-format interrupts not allowed:
//    the IOAPIC's inputs are delivered through IRTEs (index = input) that
//    accept only requests from the IOAPIC's source id;
//  - faults it records are handed to core::iommu_fault (fault_interrupt).

#include <cstdint>

namespace arch::vtd {

// Turns the unit on, as above; false (and a loud log line) when the machine
// has none or it cannot be used, in which case nothing is confined.
[[nodiscard]] bool init();

// 0 when off, else the levels of the second-level tables it walks (3, 4).
unsigned levels();
// Interrupt remapping is on: the IOAPIC must use remappable-format entries.
bool interrupts_remapped();

// platform::iommu_set_context / iommu_flush_domain.
void set_context(uint32_t bdf, uint16_t did, uint64_t root_mfn);
void flush_domain(uint16_t did);
// platform::iommu_table_written: without ECAP.C, `n` bytes at `p` written
// back to memory (clflush) for the unit's walks; nothing on a coherent unit.
void sync_memory(const void* p, uint64_t n);

// IOAPIC input `line` raises `vector` on the CPU with APIC id `apic_id`,
// level or edge triggered: its IRTE (index `line`) says so, and the unit's
// interrupt-entry cache has dropped the old one when this returns.
void set_ioapic_irte(unsigned line, uint8_t vector, bool level, uint8_t apic_id);

// The fault event's interrupt (apic.hpp: kIommuFaultVector): every fault
// recorded is reported to the core and cleared.
void fault_interrupt();

}  // namespace arch::vtd
