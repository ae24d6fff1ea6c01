// The VT-d unit (see vtd.hpp). Register and structure layouts are the VT-d
// specification's (legacy, not scalable, mode; 128-bit descriptors).
//
// Its structures live in the kernel image (frames the hypervisor keeps from
// boot on, never a guest's): the root table, the context table of bus 0 (the
// only bus Moat drives), the interrupt-remapping table and the invalidation
// queue. Other buses have no root entry, so their functions' DMA is blocked.
//
// Invalidation goes through the queue only (register-based invalidation may
// not be mixed with it): each operation queues its descriptors and a wait
// descriptor whose status write it polls, so it returns only once the unit
// has done all of them.
//
// Locking: one CPU; the hypervisor runs with interrupts off, so the fault
// interrupt never comes in between a queue update.

#include <arch/acpi.hpp>
#include <arch/apic.hpp>
#include <arch/cpu.hpp>
#include <arch/layout.h>
#include <arch/vtd.hpp>

#include <core/iommu.hpp>
#include <core/log.hpp>
#include <core/platform.hpp>

namespace arch::vtd {

namespace {

// Registers (offsets into the unit's page).
constexpr uint32_t kVer = 0x0, kCap = 0x8, kEcap = 0x10, kGcmd = 0x18, kGsts = 0x1C, kRtaddr = 0x20, kFsts = 0x34,
                   kFectl = 0x38, kFedata = 0x3C, kFeaddr = 0x40, kFeuaddr = 0x44, kIqh = 0x80, kIqt = 0x88,
                   kIqa = 0x90, kIrta = 0xB8;

// GCMD / GSTS bits. TE, QIE, IRE and CFI persist (GSTS reflects them);
// SRTP, SIRTP and WBF are one-shot commands.
constexpr uint32_t kTe = 1u << 31, kSrtp = 1u << 30, kWbf = 1u << 27, kQie = 1u << 26, kIre = 1u << 25,
                   kSirtp = 1u << 24, kCfi = 1u << 23;
constexpr uint32_t kPersistent = kTe | kQie | kIre | kCfi;

// FSTS: PFO (primary fault overflow), PPF (a fault record is pending: read
// only), AFO/APF (advanced faults), IQE/ICE/ITE (invalidation errors).
constexpr uint32_t kPfo = 1u << 0, kPpf = 1u << 1, kIqe = 1u << 4;
constexpr uint32_t kFstsClear = 0x7D;   // the write-1-to-clear bits: PFO, AFO, APF, IQE, ICE, ITE

// CAP / ECAP fields.
constexpr unsigned nd_bits(uint64_t cap) { return 4 + 2 * unsigned(cap & 7); }   // domain-id width
constexpr bool cap_rwbf(uint64_t cap) { return cap >> 4 & 1; }
constexpr bool cap_cm(uint64_t cap) { return cap >> 7 & 1; }
constexpr unsigned cap_sagaw(uint64_t cap) { return unsigned(cap >> 8) & 0x1F; }
constexpr unsigned cap_mgaw(uint64_t cap) { return (unsigned(cap >> 16) & 0x3F) + 1; }
constexpr unsigned cap_fro(uint64_t cap) { return unsigned(cap >> 24) & 0x3FF; }   // x 16 bytes
constexpr unsigned cap_nfr(uint64_t cap) { return (unsigned(cap >> 40) & 0xFF) + 1; }
constexpr bool ecap_coherent(uint64_t ecap) { return ecap & 1; }
constexpr bool ecap_qi(uint64_t ecap) { return ecap >> 1 & 1; }
constexpr bool ecap_ir(uint64_t ecap) { return ecap >> 3 & 1; }

// A root, context, interrupt-remapping entry or invalidation descriptor.
struct alignas(16) Entry {
    uint64_t lo, hi;
};
static_assert(sizeof(Entry) == 16);

// Root entry: lo bit 0 present, bits 63:12 the context table.
// Context entry: lo bit 0 present, bit 1 FPD (0: faults are recorded),
// bits 3:2 TT (00: second-level translation of untranslated requests),
// bits 63:12 the I/O table's top; hi bits 2:0 AW (1: 3 levels, 2: 4 levels),
// bits 23:8 the domain id.
constexpr uint64_t kPresent = 1;

constexpr unsigned kEntries = 256;   // one 4 KiB frame of each
alignas(4096) Entry g_root[kEntries];
alignas(4096) Entry g_context[kEntries];   // bus 0: index = devfn
alignas(4096) Entry g_irt[kEntries];       // index = IOAPIC input
alignas(4096) Entry g_queue[kEntries];
alignas(4) volatile uint32_t g_wait_status;
constexpr unsigned kIrtSizeField = 7;      // IRTA.S: 2^(S+1) = 256 entries
static_assert(1u << (kIrtSizeField + 1) == kEntries);

uint64_t g_base;                 // the unit's registers, physical
uint64_t g_cap, g_ecap;
unsigned g_levels;               // 0: off
unsigned g_did_bits;
bool g_ir;                       // interrupt remapping on
uint16_t g_ioapic_sid = acpi::kNoSource;   // whom IOAPIC IRTEs accept requests from
bool g_covered[kEntries];        // bus-0 functions the unit translates (its scope)
unsigned g_tail;                 // next free queue slot
unsigned g_pending;              // descriptors queued since the last wait
uint32_t g_wait_seq;             // the value the next wait writes

uint64_t phys(const volatile void* p) { return reinterpret_cast<uint64_t>(p) - KERNEL_VIRT; }

volatile uint32_t& reg32(uint32_t off) { return *reinterpret_cast<volatile uint32_t*>(DIRECTMAP_VIRT + g_base + off); }
volatile uint64_t& reg64(uint32_t off) { return *reinterpret_cast<volatile uint64_t*>(DIRECTMAP_VIRT + g_base + off); }

// Without ECAP.C the unit's walks do not snoop the caches: what it reads
// from memory must be written back first.
void sync(const void* p, uint64_t n) {
    if (ecap_coherent(g_ecap)) return;
    auto a = reinterpret_cast<uint64_t>(p) & ~63ull;
    for (uint64_t end = reinterpret_cast<uint64_t>(p) + n; a < end; a += 64)
        asm volatile("clflush (%0)" : : "r"(a) : "memory");
    asm volatile("mfence" ::: "memory");
}

// Waits up to a second (the unit answers in microseconds) for `done`.
template <class F>
void await(F done, const char* what) {
    uint64_t until = apic_now_ns() + 1'000'000'000;
    while (!done()) {
        if (apic_now_ns() > until)
            platform::panic("dmar: unit at %#lx did not %s (GSTS %#x, FSTS %#x)", g_base, what, reg32(kGsts),
                            reg32(kFsts));
        pause();
    }
}

// One GCMD command: the persistent bits as they are, plus `set`, minus
// `clear`; then waits for GSTS to show `expect` in `mask`.
void command(uint32_t set, uint32_t clear, uint32_t mask, uint32_t expect, const char* what) {
    reg32(kGcmd) = ((reg32(kGsts) & kPersistent) | set) & ~clear;
    await([&] { return (reg32(kGsts) & mask) == expect; }, what);
}

void flush_write_buffer() {
    if (cap_rwbf(g_cap)) command(kWbf, 0, kWbf, 0, "flush its write buffer");
}

// Invalidation descriptors (type in bits 3:0).
void queue(uint64_t lo, uint64_t hi) {
    // Every operation waits for what it queued before queueing more: a
    // handful at a time, never a full queue.
    if (g_pending + 2 > kEntries) platform::panic("dmar: invalidation queue overrun");
    g_queue[g_tail] = Entry{lo, hi};
    sync(&g_queue[g_tail], sizeof(Entry));
    g_tail = (g_tail + 1) % kEntries;
    ++g_pending;
}

void queue_context_device(uint16_t sid, uint16_t did) {
    queue(1 | 3u << 4 | uint64_t(did) << 16 | uint64_t(sid) << 32, 0);
}
void queue_context_global() { queue(1 | 1u << 4, 0); }
void queue_iotlb_domain(uint16_t did) { queue(2 | 2u << 4 | uint64_t(did) << 16, 0); }
void queue_iotlb_global() { queue(2 | 1u << 4, 0); }
void queue_iec_global() { queue(4, 0); }

// Queues a wait descriptor that writes the next sequence number to
// g_wait_status, hands the queue to the unit and polls for that write: by
// then every descriptor before it is done.
void drain() {
    uint32_t seq = ++g_wait_seq;
    queue(5 | 1u << 5 | uint64_t(seq) << 32, phys(&g_wait_status));
    asm volatile("" ::: "memory");
    reg64(kIqt) = uint64_t(g_tail) << 4;
    await(
        [&] {
            if (reg32(kFsts) & kIqe)
                platform::panic("dmar: invalidation queue error at head %lu", (reg64(kIqh) >> 4) & 0x7FFF);
            return g_wait_status == seq;
        },
        "complete an invalidation");
    g_pending = 0;
}

// The IOAPIC's source id from the unit's device scopes: the scope of type
// IOAPIC with our IOAPIC's id, else the only IOAPIC scope there is.
uint16_t ioapic_source(const acpi::Drhd& u, uint8_t ioapic_id) {
    uint16_t only = acpi::kNoSource;
    unsigned n = 0;
    for (unsigned i = 0; i < u.nscopes; ++i) {
        const acpi::DeviceScope& s = u.scopes[i];
        if (s.type != acpi::kScopeIoapic) continue;
        if (s.enum_id == ioapic_id) return s.source_id;
        only = s.source_id;
        ++n;
    }
    return n == 1 ? only : acpi::kNoSource;
}

void report_faults();

}  // namespace

unsigned levels() { return g_levels; }
bool interrupts_remapped() { return g_ir; }

bool init() {
    const acpi::Tables& t = acpi::tables();
    // The unit for segment 0 that takes every function; else (QEMU lists
    // the functions it translates) the first one for segment 0.
    const acpi::Drhd* unit = nullptr;
    for (unsigned i = 0; i < t.ndrhd && !unit; ++i)
        if (t.drhd[i].include_all && t.drhd[i].segment == 0) unit = &t.drhd[i];
    for (unsigned i = 0; i < t.ndrhd && !unit; ++i)
        if (t.drhd[i].segment == 0) unit = &t.drhd[i];
    if (!unit) {
        core::log("dmar: %s: driver domains are NOT DMA-confined, their devices reach all of memory",
                  t.has_dmar ? "no DMA-remapping unit covers PCI segment 0" : "no DMA-remapping unit (no ACPI DMAR)");
        return false;
    }
    if (t.drhd_seen > 1)
        core::log("dmar: %u units; only the one at %#lx is used: devices in another unit's scope are NOT confined",
                  t.drhd_seen, unit->base);
    if (t.rmrr)
        core::log("dmar: %u reserved memory region(s) (RMRR) ignored: a device that needs one cannot be driven",
                  t.rmrr);
    if (unit->base & 0xFFF || unit->base >= (4ull << 30) - 0x1000) {
        core::log("dmar: unit registers at %#lx are not in the direct map: driver domains are NOT DMA-confined",
                  unit->base);
        return false;
    }
    g_base = unit->base;
    g_cap = reg64(kCap);
    g_ecap = reg64(kEcap);
    uint32_t ver = reg32(kVer);
    unsigned sagaw = cap_sagaw(g_cap);
    unsigned levels = sagaw & 4 ? 4 : sagaw & 2 ? 3 : 0;
    const char* why = !ecap_qi(g_ecap)   ? "it has no invalidation queue"
                      : !ecap_ir(g_ecap) ? "it cannot remap interrupts"
                      : !levels          ? "it walks neither 3- nor 4-level tables"
                                         : nullptr;
    if (why) {
        core::log("dmar: unit at %#lx (version %u.%u, cap %#lx, ecap %#lx) is not used, %s: driver domains are NOT "
                  "DMA-confined",
                  g_base, ver >> 4 & 0xF, ver & 0xF, g_cap, g_ecap, why);
        g_base = 0;
        return false;
    }
    g_did_bits = nd_bits(g_cap);
    for (unsigned f = 0; f < kEntries; ++f) g_covered[f] = unit->include_all;
    for (unsigned i = 0; i < unit->nscopes; ++i) {
        const acpi::DeviceScope& s = unit->scopes[i];
        if (s.type == acpi::kScopeEndpoint && s.source_id < kEntries) g_covered[s.source_id] = true;
    }
    if (unit->scopes_seen > unit->nscopes)
        core::log("dmar: the unit lists %u device scopes, %u read: functions past them are NOT confined",
                  unit->scopes_seen, unit->nscopes);

    // Firmware may have left it on: off first, so the tables change under
    // nothing (persistent bits cleared one at a time, as GCMD wants).
    if (reg32(kGsts) & kTe) command(0, kTe, kTe, 0, "turn translation off");
    if (reg32(kGsts) & kIre) command(0, kIre, kIre, 0, "turn interrupt remapping off");
    if (reg32(kGsts) & kQie) command(0, kQie, kQie, 0, "turn its invalidation queue off");
    if (reg32(kGsts) & kCfi) command(0, kCfi, kCfi, 0, "block compatibility-format interrupts");
    reg32(kFectl) = 1u << 31;   // fault events masked while it is set up

    // Bus 0's root entry names its context table, whose entries are all not
    // present: every function's DMA is blocked.
    __builtin_memset(g_root, 0, sizeof g_root);
    __builtin_memset(g_context, 0, sizeof g_context);
    __builtin_memset(g_irt, 0, sizeof g_irt);
    __builtin_memset(g_queue, 0, sizeof g_queue);
    g_root[0].lo = phys(g_context) | kPresent;
    sync(g_root, sizeof g_root);
    sync(g_context, sizeof g_context);
    sync(g_irt, sizeof g_irt);
    reg64(kRtaddr) = phys(g_root);   // TTM 00: legacy root table
    command(kSrtp, 0, kSrtp, kSrtp, "take the root table");

    reg64(kIqt) = 0;
    reg64(kIqa) = phys(g_queue);   // QS 0: one page, 256 descriptors of 128 bits
    g_tail = g_pending = 0;
    command(kQie, 0, kQie, kQie, "turn its invalidation queue on");
    queue_context_global();
    queue_iotlb_global();
    drain();

    // Interrupt remapping: every IRTE not present until the IOAPIC's lines
    // get theirs (apic.cpp); EIME 0 (xAPIC destinations). CFI stays clear,
    // so compatibility-format requests (a device's forged MSI) are blocked.
    g_ioapic_sid = ioapic_source(*unit, ioapic_id());
    reg64(kIrta) = phys(g_irt) | kIrtSizeField;
    command(kSirtp, 0, kSirtp, kSirtp, "take the interrupt-remapping table");
    queue_iec_global();
    drain();
    command(kIre, 0, kIre, kIre, "turn interrupt remapping on");
    g_ir = true;

    // Fault events: a compatibility-format MSI to this CPU (the unit's own
    // interrupts are not remapped). Faults recorded before now are reported.
    reg32(kFedata) = kIommuFaultVector;
    reg32(kFeaddr) = 0xFEE00000u | uint32_t(local_apic_id()) << 12;
    reg32(kFeuaddr) = 0;
    report_faults();
    reg32(kFectl) = 0;

    command(kTe, 0, kTe, kTe, "turn translation on");
    g_levels = levels;
    core::log("dmar: DMA remapping on: unit at %#lx (version %u.%u), %u-level I/O tables (%u-bit), %u-bit domain ids, "
              "%u fault records; interrupt remapping on, compatibility format blocked, IOAPIC requests %s",
              g_base, ver >> 4 & 0xF, ver & 0xF, levels, levels == 4 ? 48 : 39, g_did_bits, cap_nfr(g_cap),
              g_ioapic_sid == acpi::kNoSource ? "NOT source-checked (no IOAPIC device scope)" : "source-checked");
    if (!ecap_coherent(g_ecap))
        core::log("dmar: the unit does not snoop its table walks (ECAP.C clear): I/O page-table writes must reach "
                  "memory before a flush");
    if (cap_mgaw(g_cap) < 39)
        core::log("dmar: the unit reaches only %u-bit addresses", cap_mgaw(g_cap));
    return true;
}

void set_context(uint32_t bdf, uint16_t did, uint64_t root_mfn) {
    if (!g_levels) return;
    if (bdf >= kEntries) {   // not bus 0: it has no context table, so stays blocked
        core::log("dmar: function %02x:%02x.%u is not on bus 0: its DMA stays blocked", bdf >> 8, bdf >> 3 & 0x1F,
                  bdf & 7);
        return;
    }
    if (root_mfn && (did == 0 || did >= (1u << g_did_bits))) {
        core::log("dmar: domain id %u does not fit the unit's %u bits: 00:%02x.%u stays blocked", did, g_did_bits,
                  bdf >> 3, bdf & 7);
        root_mfn = 0;
    }
    if (root_mfn && !g_covered[bdf])
        core::log("dmar: 00:%02x.%u is outside the unit's device scope: its DMA is NOT confined", bdf >> 3, bdf & 7);
    Entry& c = g_context[bdf];
    bool was = c.lo & kPresent;
    uint16_t old = uint16_t(c.hi >> 8);
    if (!was && !root_mfn) return;

    // A present entry is first made not present and dropped from the
    // unit's caches, so it never sees half of an old and half of a new one.
    flush_write_buffer();
    if (was) {
        c.lo = 0;
        sync(&c, sizeof c);
        queue_context_device(uint16_t(bdf), old);
        queue_iotlb_domain(old);
        drain();
    }
    if (!root_mfn) {
        c.hi = 0;
        sync(&c, sizeof c);
        return;
    }
    c.hi = uint64_t(g_levels == 4 ? 2 : 1) | uint64_t(did) << 8;
    asm volatile("" ::: "memory");
    c.lo = root_mfn << 12 | kPresent;   // TT 00, FPD 0
    sync(&c, sizeof c);
    // With caching mode the unit may have cached the entry while it was not
    // present (tagged domain 0).
    if (cap_cm(g_cap)) {
        queue_context_device(uint16_t(bdf), 0);
        queue_iotlb_domain(did);
        drain();
    }
}

void flush_domain(uint16_t did) {
    if (!g_levels) return;
    flush_write_buffer();
    queue_iotlb_domain(did);
    drain();
}

void sync_memory(const void* p, uint64_t n) { sync(p, n); }

void set_ioapic_irte(unsigned line, uint8_t vector, bool level, uint8_t apic_id) {
    if (!g_ir || line >= kEntries) return;
    // lo: present, physical destination, fixed delivery, trigger mode,
    // vector (bits 23:16), destination APIC id in bits 47:40 (xAPIC mode).
    // hi: source id (bits 15:0), SQ 00 (all 16 bits compared), SVT 01
    // (verify the requester's id) when the IOAPIC's is known.
    Entry e{kPresent | uint64_t(level) << 4 | uint64_t(vector) << 16 | uint64_t(apic_id) << 40, 0};
    if (g_ioapic_sid != acpi::kNoSource) e.hi = g_ioapic_sid | 1ull << 18;
    Entry& slot = g_irt[line];
    slot.lo = 0;   // not present while the halves change
    asm volatile("" ::: "memory");
    slot.hi = e.hi;
    asm volatile("" ::: "memory");
    slot.lo = e.lo;
    sync(&slot, sizeof slot);
    queue_iec_global();
    drain();
}

namespace {

// Every fault record with F set: cleared, then reported (so that a fault
// that recurs meanwhile is recorded again). DMA faults carry the page in
// bits 63:12 of lo; interrupt-remapping faults (reasons 0x20-0x2F) the
// interrupt index in bits 63:48; T (hi bit 62) set for a read.
void report_faults() {
    uint32_t fsts = reg32(kFsts);
    if (fsts & kPpf) {
        uint32_t first = cap_fro(g_cap) * 16;
        for (unsigned i = 0; i < cap_nfr(g_cap); ++i) {
            uint32_t off = first + 16 * i;
            uint64_t hi = reg64(off + 8);
            if (!(hi >> 63)) continue;
            uint64_t lo = reg64(off);
            reg32(off + 12) = 1u << 31;   // F: write 1 to clear
            // A DMA fault names the page; an interrupt-remapping fault
            // (reasons 0x20 and up) the interrupt's index, in bits 63:48.
            uint8_t reason = uint8_t(hi >> 32);
            core::iommu_fault(uint16_t(hi), reason >= 0x20 ? lo >> 48 : lo & ~0xFFFull, !(hi >> 62 & 1), reason);
        }
    }
    if (fsts & kPfo) core::log("dmar: fault records overflowed: some faults were not recorded");
    if (fsts & kFstsClear) reg32(kFsts) = fsts & kFstsClear;
}

}  // namespace

void fault_interrupt() {
    if (g_base) report_faults();
}

}  // namespace arch::vtd
