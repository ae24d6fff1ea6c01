#include <arch/apic.hpp>
#include <arch/cpu.hpp>
#include <arch/layout.h>
#include <arch/percpu.hpp>
#include <arch/vtd.hpp>

#include <core/irq.hpp>
#include <core/log.hpp>
#include <core/sched.hpp>

namespace arch {

namespace {

constexpr uint64_t kApicPhys = 0xFEE00000;
constexpr uint32_t kRegEoi = 0xB0, kRegSvr = 0xF0, kRegLvtTimer = 0x320, kRegInitCount = 0x380,
                   kRegCurCount = 0x390, kRegDivide = 0x3E0;

uint64_t g_tsc_per_ms;
uint64_t g_tsc_start;
uint64_t g_ticks;

volatile uint32_t& reg(uint32_t off) {
    return *reinterpret_cast<volatile uint32_t*>(DIRECTMAP_VIRT + kApicPhys + off);
}

// The IOAPIC (QEMU's PC and q35: one, at its usual address, inputs 0-23):
// line n raises vector kIrqVectorBase + n on this CPU. ISA lines (0-15) are
// edge triggered, active high; PCI lines (16-23) level triggered, active low.
//
// With interrupt remapping on (vtd.hpp) each entry is in the remappable
// format: bit 48 set, the IRTE index (= the line) in bits 63:49 (index bit 15,
// in bit 11, is 0), and the IRTE says where the interrupt goes. The vector
// stays in bits 7:0 too, equal to the IRTE's: the IOAPIC matches a level
// line's EOI by it.
constexpr uint64_t kIoapicPhys = 0xFEC00000;

volatile uint32_t* ioapic() { return reinterpret_cast<volatile uint32_t*>(DIRECTMAP_VIRT + kIoapicPhys); }

void ioapic_write(uint32_t index, uint32_t value) {
    ioapic()[0] = index;
    ioapic()[4] = value;
}

uint32_t ioapic_read(uint32_t index) {
    ioapic()[0] = index;
    return ioapic()[4];
}

uint32_t g_ioapic_low[kIrqLines];   // each line's redirection entry, low half
bool g_ioapic_remapped;             // entries in the remappable format

bool is_level(uint32_t low) { return low & (1u << 15); }

// Writes line `line`'s entry from g_ioapic_low; when remapped, its IRTE is
// written (and the unit's cached copy dropped) before the entry that uses it.
void ioapic_write_line(unsigned line) {
    uint32_t low = g_ioapic_low[line];
    if (g_ioapic_remapped) {
        vtd::set_ioapic_irte(line, uint8_t(low), is_level(low), local_apic_id());
        ioapic_write(0x10 + 2 * line + 1, (1u << 16) | (line << 17));
    } else {
        ioapic_write(0x10 + 2 * line + 1, uint32_t(local_apic_id()) << 24);
    }
    ioapic_write(0x10 + 2 * line, low);
}

void ioapic_init() {
    for (unsigned line = 0; line < kIrqLines; ++line) {
        uint32_t low = (1u << 16) | (kIrqVectorBase + line);   // masked
        if (line >= 16) low |= (1u << 15) | (1u << 13);         // level, active low
        g_ioapic_low[line] = low;
        ioapic_write_line(line);
    }
}

void mask_pics() {
    // Remap first (so a stray interrupt cannot look like an exception), then mask.
    outb(0x20, 0x11); outb(0xA0, 0x11);
    outb(0x21, 0x20); outb(0xA1, 0x28);
    outb(0x21, 0x04); outb(0xA1, 0x02);
    outb(0x21, 0x01); outb(0xA1, 0x01);
    outb(0x21, 0xFF); outb(0xA1, 0xFF);
}

// Counts LAPIC timer ticks and TSC cycles over 10 ms of PIT channel 2.
void calibrate(uint32_t* apic_per_10ms, uint64_t* tsc_per_10ms) {
    constexpr uint16_t kPitCount = 11932;   // 1.193182 MHz * 10 ms
    outb(0x61, (inb(0x61) & ~0x02) | 0x01);   // gate on, speaker off
    outb(0x43, 0xB0);                          // channel 2, lo/hi, mode 0
    outb(0x42, kPitCount & 0xFF);
    outb(0x42, kPitCount >> 8);
    reg(kRegDivide) = 0x3;                     // divide by 16
    reg(kRegInitCount) = 0xFFFFFFFF;
    uint64_t t0 = rdtsc();
    while (!(inb(0x61) & 0x20)) pause();
    uint64_t t1 = rdtsc();
    *apic_per_10ms = 0xFFFFFFFF - reg(kRegCurCount);
    *tsc_per_10ms = t1 - t0;
    reg(kRegInitCount) = 0;
}

}  // namespace

void apic_init() {
    mask_pics();
    wrmsr(msr::kApicBase, rdmsr(msr::kApicBase) | (1u << 11));   // global enable
    reg(kRegSvr) = 0x100 | kSpuriousVector;
    ioapic_init();

    uint32_t apic_10ms;
    uint64_t tsc_10ms;
    calibrate(&apic_10ms, &tsc_10ms);
    if (apic_10ms == 0) apic_10ms = 1;
    g_tsc_per_ms = tsc_10ms / 10 ? tsc_10ms / 10 : 1;
    g_tsc_start = rdtsc();

    reg(kRegDivide) = 0x3;
    reg(kRegLvtTimer) = (1u << 17) | kTimerVector;   // periodic
    reg(kRegInitCount) = static_cast<uint32_t>(uint64_t(apic_10ms) * kTickNs / 10'000'000);
    core::log("lapic timer: %u ticks per 10 ms, TSC %lu kHz, tick every %lu ms", apic_10ms, g_tsc_per_ms,
              kTickNs / 1'000'000);
}

void apic_interrupt(unsigned vector) {
    if (vector == kSpuriousVector) return;   // no EOI for spurious interrupts
    if (vector == kTimerVector) {
        ++g_ticks;
        if (core::sched_tick()) this_cpu().need_resched = true;
    } else if (vector >= kIrqVectorBase && vector < kIrqVectorBase + kIrqLines) {
        core::irq_fire(vector - kIrqVectorBase);   // masks the line, marks the port
        this_cpu().need_resched = true;
    } else if (vector == kIommuFaultVector) {
        vtd::fault_interrupt();
    }
    reg(kRegEoi) = 0;
}

uint64_t apic_tsc_khz() { return g_tsc_per_ms; }

bool apic_in_service(unsigned vector) { return vector < 256 && (reg(0x100 + 0x10 * (vector / 32)) >> (vector % 32)) & 1; }

void apic_drop_forged(unsigned vector) {
    static uint64_t count;
    // The first few, then every 1024th: a device that keeps at it cannot
    // flood the log.
    if (++count <= 4 || count % 1024 == 0)
        core::log("interrupt on exception vector %u: a message a device forged, not an exception: dropped (%lu so far)",
                  vector, count);
    reg(kRegEoi) = 0;
}

void ioapic_set_level(unsigned line) {
    if (line >= kIrqLines) return;
    uint32_t& low = g_ioapic_low[line];
    // Level triggered; active high on the ISA lines (QEMU's PC routes its PCI
    // links there, level high), active low on the PCI lines 16-23 (q35's PIRQs).
    low |= 1u << 15;
    low = line < 16 ? low & ~(1u << 13) : low | (1u << 13);
    ioapic_write_line(line);
}

void ioapic_set_masked(unsigned line, bool masked) {
    if (line >= kIrqLines) return;
    uint32_t& low = g_ioapic_low[line];
    low = masked ? low | (1u << 16) : low & ~(1u << 16);
    ioapic_write(0x10 + 2 * line, low);
}

uint8_t local_apic_id() { return uint8_t(reg(0x20) >> 24); }
uint8_t ioapic_id() { return uint8_t(ioapic_read(0) >> 24 & 0xF); }

void ioapic_use_remapping() {
    if (!vtd::interrupts_remapped()) return;
    g_ioapic_remapped = true;
    for (unsigned line = 0; line < kIrqLines; ++line) ioapic_write_line(line);
}

uint64_t apic_now_ns() { return (rdtsc() - g_tsc_start) * 1'000'000 / g_tsc_per_ms; }

}  // namespace arch
