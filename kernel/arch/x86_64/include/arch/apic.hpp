#pragma once
// The local APIC: its timer drives preemption; the legacy PICs are masked.

#include <cstdint>

namespace arch {

constexpr unsigned kTimerVector = 0xF0;
constexpr unsigned kSpuriousVector = 0xFF;
constexpr unsigned kIrqVectorBase = 0x40;   // IOAPIC line n -> vector 0x40 + n
constexpr unsigned kIrqLines = 24;
constexpr unsigned kIommuFaultVector = 0xE0;   // the DMA-remapping unit's fault event (vtd.hpp)
constexpr uint64_t kTickNs = 1'000'000;   // timer tick: 1 ms (scheduler slices are longer)

// Masks the 8259 PICs, enables the LAPIC, calibrates its timer against the PIT
// and starts the periodic tick.
void apic_init();

// An interrupt arrived on `vector` (>= 32).
void apic_interrupt(unsigned vector);
// Whether an interrupt on `vector` is in service at this CPU's LAPIC (its ISR
// bit): for a vector below 32, an interrupt message a device forged, never
// an exception. apic_drop_forged acknowledges it and counts it.
bool apic_in_service(unsigned vector);
void apic_drop_forged(unsigned vector);

// Nanoseconds since the timer was calibrated (from the TSC).
uint64_t apic_now_ns();
uint64_t apic_tsc_khz();
// Masks or unmasks IOAPIC input `line`.
void ioapic_set_masked(unsigned line, bool masked);
// A line a PCI function interrupts on: level triggered.
void ioapic_set_level(unsigned line);

// This CPU's local APIC id, and the IOAPIC's id (its register 0).
uint8_t local_apic_id();
uint8_t ioapic_id();
// Interrupt remapping is on (vtd.hpp): every input gets an IRTE of the same
// index and the IOAPIC's entries switch to the remappable format.
void ioapic_use_remapping();

}  // namespace arch
