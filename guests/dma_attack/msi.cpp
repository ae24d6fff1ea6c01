// The interrupt forgery (msi.hpp).
//
// First the capabilities: turning MSI-X on (and MSI, if the function has
// it) is refused with EPERM and the enable bits stay clear. The MSI-X table
// is written anyway (entry 0: a message to the victim's vector; queue 0 on
// it): MSI-X being off, a completion still raises our line.
//
// Then the forgeries by DMA. Each is one disk read of kForgeSector through
// a chain of two buffers: its first 508 bytes into our page, its last 4
// into the interrupt window. QEMU writes a buffer that is not RAM through a
// bounce buffer, in 4-byte requests at consecutive addresses; each is an
// interrupt request. A whole sector aimed at the window would be 128 of
// them, half in the compatibility format (address bit 4 clear in 4 of
// every 8 words) and half naming entries that follow from the address
// (handle bits 19:5 and 2, SHV bit 3): not one forgery but a spray (burst=1
// sends one, for the count of faults it makes). Four bytes make exactly one
// request, so each forgery is one fault at most (the kernel stops a domain
// at 64), and its fault line names its entry. The sector's last word,
// written to the disk first, is the message's data.
//
// The forgeries, and how each is judged:
//   compat, vector 0x40 + our line    the compatibility format, blocked by a
//                                     unit with GSTS.CFIS clear; seen here
//   compat, vector 0x40 + victim's    the same at the victim device's line
//           line, and the timer's     and at the timer: not visible from
//                                     here (printed only)
//   remappable, entry = our line      its entry accepts the IOAPIC only: a
//                                     source-id fault (0x26); seen here
//   remappable, entry = victim's line the same; if the unit let it through
//                                     it would go to the victim's owner
//   remappable, entry 64              not present: a fault (0x22); seen here
// Each remappable message is built (see remappable()) so that, read as a
// compatibility-format one, it is our line's vector to every CPU: a unit
// that passed it through unremapped, or none at all, delivers it to us, and
// its check fails. Without an IOMMU (the PC machine) all of them are
// delivered: the evidence that the test can fail. (The remapped entry of
// the victim's line would go to the victim's owner, which we cannot see:
// for that one only the kernel's fault line can tell.) Finally blkback,
// whose line they aimed at, must still serve our disk (vbd=1).
//
// Two gaps of QEMU's VT-d model (10.x at least, hw/i386/intel_iommu.c):
//   - it does not implement GSTS.CFIS: it passes compatibility-format
//     requests through with interrupt remapping on (vtd_interrupt_remap_msi,
//     "This is compatible mode."), where hardware blocks them (VT-d 5.1.4);
//   - it knows a request's source only when the request says it
//     (vtd_mem_ir_write takes attrs.requester_id unless the attributes are
//     unspecified), which a device's MSI does (msi_send_message) but its DMA
//     does not (virtio maps its buffers with MEMTXATTRS_UNSPECIFIED): a
//     DMA's interrupt request reaches the entry of any line unverified, and
//     a fault it causes is recorded with source id 0xffff, which the kernel
//     cannot charge to anyone. On hardware the requester id is the
//     function's, whatever the request.
// `compat=observe` and `sid=observe` print the outcome of those forgeries
// (the compatibility format; the remappable ones naming present entries)
// instead of checking them; the default, strict, checks them as the VT-d
// specification has hardware do.
//
// Command line: victim_line=N (the IOAPIC input of the device whose
// interrupt is forged, default 21: q35 routes 00:05.0's INTA# there, see
// kernel/arch/x86_64/src/platform.cpp), compat=strict|observe,
// sid=strict|observe, vbd=1 (blkback serves us a disk: read before the
// forgeries and after), burst=1, compat_vector=N.

#include "msi.hpp"

#include "blkdev.hpp"
#include "common.hpp"

#include <rt/blkfront.hpp>
#include <rt/pci.hpp>
#include <rt/virtio.hpp>

namespace dma {

namespace {

// The kernel's vectors (kernel/arch/x86_64/include/arch/apic.hpp): IOAPIC
// input n raises 0x40 + n; the LAPIC timer 0xF0.
constexpr uint32_t kIrqVectorBase = 0x40;
constexpr uint32_t kTimerVector = 0xF0;

// An MSI's address: 0xFEE in bits 31:20. Compatibility format: the
// destination APIC id in bits 19:12 (the one CPU, id 0). Remappable format:
// bit 4 set, a handle in bits 19:5 (its bits 14:0) and bit 2 (bit 15), and
// with bit 3 (SHV) set the data's low 16 bits (the subhandle) are added to
// it: the entry is handle + subhandle (16 bits).
constexpr uint32_t kMsiAddress = 0xFEE00000;

// The sector whose last word is each forgery's data (main.cpp uses 0, 8,
// 16 and 17).
constexpr uint64_t kForgeSector = 32;
constexpr uint32_t kWord = 4;

// A remappable message naming entry `index` whose bits, read as a
// compatibility-format message (no unit, or one that passed it through),
// say `vector` to every CPU: the handle's bits 14:7 fall on the destination
// field (0xFF, broadcast; our CPU's id 0 would need them 0, and QEMU takes
// a write below 0xFEE01000 for one to its local APIC's registers), and the
// data, the subhandle, is 0x8000 | vector (bit 15: level triggered), so the
// handle is index + 0x8000 - vector. Possible when 1 <= vector - index <=
// 128; false otherwise. (The sum wraps at 16 bits, as QEMU's unit and the
// kernel's fault lines show: entries 23, 21, 64. A unit that did not wrap
// would look past the end of the table: refused too, reason 0x21.)
bool remappable(uint32_t index, uint32_t vector, uint32_t* address, uint32_t* data) {
    if (vector <= index || vector - index > 128) return false;
    uint32_t handle = (index + 0x8000 - vector) & 0xFFFF;
    *address = kMsiAddress | (handle & 0x7FFF) << 5 | 1u << 4 | 1u << 3 | (handle >> 15 & 1) << 2;
    *data = 0x8000 | vector;
    return true;
}

constexpr uint8_t kCapVendor = 0x09, kCapMsi = 0x05, kCapMsix = 0x11;
constexpr uint8_t kVirtioCommonCfg = 1;
constexpr uint32_t kMsixEnable = 1u << 15, kMsixFunctionMask = 1u << 14;
constexpr uint32_t kMsiEnable = 1u << 0;
// The common configuration's queue_select and queue_msix_vector (virtio 1.x 4.1.4.3).
constexpr uint32_t kQueueSelect = 0x16, kQueueMsixVector = 0x1A;
constexpr uint16_t kNoVector = 0xFFFF;

// What the attack needs of the function, found by find_caps.
struct Caps {
    uint16_t msix = 0;                     // the MSI-X capability's offset in config space
    uint16_t msi = 0;                      // the MSI capability's, 0 if none
    uint32_t entries = 0;                  // the MSI-X table's size
    volatile uint32_t* entry0 = nullptr;   // address low, address high, data, vector control
    volatile uint8_t* common = nullptr;    // the virtio common configuration
};

alignas(4096) uint8_t g_table_page[4096];
alignas(4096) uint8_t g_common_page[4096];
alignas(4096) uint8_t g_buf[4096];
alignas(4096) uint8_t g_sector[4096];
// A disk blkback serves us (vbd=1): whether blkback, whose line the
// forgeries aim at, still answers after them.
rt::Blkfront g_vbd;

// A read of the first sector of the disk blkback serves us: every byte
// `fill`.
bool vbd_read(uint8_t fill) {
    for (auto& b : g_buf) b = 0;
    int st = g_vbd.read(0, 1, g_buf);
    unsigned good = 0;
    for (uint32_t i = 0; i < kSector; ++i) good += g_buf[i] == fill;
    rt::printf("msi: blkback's read: status %d, %u of %u bytes %#x\n", st, good, kSector, fill);
    return st == 0 && good == kSector;
}

// Maps the device page holding physical address `pa` at `window` (uncached,
// as rt/virtio maps its regions); where `pa` is then, or nullptr.
volatile uint8_t* map_device(uint8_t* window, uint64_t pa) {
    long rc = rt::update_va_mapping(rt::ptr(window), (pa & ~0xFFFull) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD |
                                                         0x18 /* PCD|PWT */);
    return rc == 0 ? window + (pa & 0xFFF) : nullptr;
}

// The MSI and MSI-X capabilities, the MSI-X table and the virtio common
// configuration, mapped. False (with the reason printed) if the function
// has no MSI-X.
bool find_caps(uint32_t bdf, Caps* m) {
    abi::MoatPciInfo info{};
    uint32_t cap = 0;
    if (rt::pci_info(bdf, &info) != 0 || rt::pci_config_read(bdf, 0x34, 1, &cap) != 0) {
        rt::printf("msi: the function's config space is not ours\n");
        return false;
    }
    uint64_t table_pa = 0, common_pa = 0;
    for (unsigned guard = 0; cap >= 0x40 && cap < 0x100 && guard < 48; ++guard) {
        uint32_t head = 0, word = 0, off = 0;
        if (rt::pci_config_read(bdf, uint16_t(cap & ~3u), 4, &head) != 0) return false;
        uint8_t id = uint8_t(head);
        if (id == kCapMsi && !m->msi) m->msi = uint16_t(cap);
        if (id == kCapMsix && rt::pci_config_read(bdf, uint16_t(cap + 4), 4, &word) == 0 && (word & 7) < 6) {
            m->msix = uint16_t(cap);
            m->entries = (head >> 16 & 0x7FF) + 1;
            const abi::MoatPciBar& bar = info.bars[word & 7];
            table_pa = bar.is_io || !bar.size ? 0 : bar.base + (word & ~7u);
        }
        if (id == kCapVendor && uint8_t(head >> 24) == kVirtioCommonCfg && !common_pa &&
            rt::pci_config_read(bdf, uint16_t(cap + 4), 1, &word) == 0 &&
            rt::pci_config_read(bdf, uint16_t(cap + 8), 4, &off) == 0 && word < 6 && !info.bars[word].is_io)
            common_pa = info.bars[word].base + off;
        cap = uint8_t(head >> 8);
    }
    if (!m->msix || !table_pa || !common_pa) {
        rt::printf("msi: no MSI-X capability (%#x), table (%#lx) or common configuration (%#lx)\n", m->msix, table_pa,
                   common_pa);
        return false;
    }
    m->entry0 = reinterpret_cast<volatile uint32_t*>(map_device(g_table_page, table_pa));
    m->common = map_device(g_common_page, common_pa);
    rt::printf("msi: MSI-X capability at %#x, %u entries, table at %#lx (mapped: %s); MSI capability %s%#x\n", m->msix,
               m->entries, table_pa, m->entry0 && m->common ? "yes" : "REFUSED", m->msi ? "at " : "none, ", m->msi);
    return m->entry0 && m->common;
}

// Tries to set `bit` of the 16-bit control word at `offset` (and clear
// `clear`). True if the kernel refused the write with EPERM and the bit
// reads back clear.
bool enable_refused(uint32_t bdf, const char* what, uint16_t offset, uint32_t bit, uint32_t clear) {
    uint32_t ctl = 0, back = 0;
    long rc = rt::pci_config_read(bdf, offset, 2, &ctl);
    if (rc == 0) rc = rt::pci_config_write(bdf, offset, 2, (ctl | bit) & ~clear);
    bool read = rt::pci_config_read(bdf, offset, 2, &back) == 0;
    rt::printf("msi: %s on (control %#x at %#x): %ld (%s), reads back %#x\n", what, ctl, offset, rc,
               rc == abi::neg(abi::Errno::eperm) ? "EPERM" : rc == 0 ? "WRITTEN" : "?", back);
    return rc == abi::neg(abi::Errno::eperm) && read && !(back & bit);
}

// Queue 0's MSI-X vector (the device answers kNoVector if it refused it).
uint16_t set_queue_vector(const Caps& m, uint16_t vector) {
    *reinterpret_cast<volatile uint16_t*>(m.common + kQueueSelect) = 0;
    *reinterpret_cast<volatile uint16_t*>(m.common + kQueueMsixVector) = vector;
    return *reinterpret_cast<volatile uint16_t*>(m.common + kQueueMsixVector);
}

bool holds_pattern(const uint8_t* p, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i)
        if (p[i] != pattern_byte(i)) return false;
    return true;
}

// A legitimate read of the pattern sector into our page, then up to a
// second of guest time for `port`. Whether it fired; `*ok`: the read worked.
bool read_and_watch(uint32_t port, bool* ok) {
    (void)rt::take_port(port);
    for (auto& b : g_buf) b = 0;
    Outcome o = blk_read_to(kPatternSector, rt::maddr_of(g_buf), kSector);
    bool pattern = holds_pattern(g_buf, kSector);
    *ok = o == Outcome::done && pattern;
    if (!*ok) rt::printf("msi: the legitimate read: %s, pattern %s\n", outcome_name(o), pattern ? "there" : "missing");
    return wait_port_until(port, rt::now_ns() + kSecond);
}

// The device writes the word `data` to `address` (one interrupt request:
// the last word of kForgeSector, read there; the rest of the sector lands
// in our page). Then up to a second for `port`: whether it fired. `*ok`:
// our part of the read arrived (the device still does what a driver asks).
bool forge(uint32_t port, const char* what, uint32_t address, uint32_t data, bool* ok) {
    for (uint32_t i = 0; i < kSector - kWord; ++i) g_sector[i] = pattern_byte(i);
    for (uint32_t i = 0; i < kWord; ++i) g_sector[kSector - kWord + i] = uint8_t(data >> (8 * i));
    Outcome w = blk_write_from(kForgeSector, rt::maddr_of(g_sector), kSector);
    (void)rt::take_port(port);
    for (auto& b : g_buf) b = 0;
    Outcome o = w == Outcome::done ? blk_read_split(kForgeSector, rt::maddr_of(g_buf), address, kWord) : w;
    *ok = o == Outcome::done && holds_pattern(g_buf, kSector - kWord);
    bool fired = wait_port_until(port, rt::now_ns() + kSecond);
    rt::printf("msi: %s: the device writes %#x to %#x (%s): %s\n", what, data, address, outcome_name(o),
               fired ? "DELIVERED (our line's port fired)" : "not seen here");
    if (fired) blk_device().ack_irq();
    if (!*ok) {
        // Whatever it made of it, the device is set up again (and quiet).
        rt::printf("msi: our part of the read %s\n", o == Outcome::done ? "is missing" : "did not complete");
        if (blk_reinit()) blk_quiet(true);
    }
    return fired;
}

// A whole sector into the window at `address` (512-byte aligned), every
// word `data`: 128 requests at consecutive addresses, in each 32 bytes four
// in the compatibility format (address bits 4:2 = 0-3) and four remappable
// ones (4-7: SHV clear for two, set for two), the handle counting up every
// 32 bytes. Not checked: printed, for counting the faults one sector makes.
void burst(uint32_t port, uint32_t address, uint32_t data) {
    for (uint32_t i = 0; i < kSector; i += kWord)
        for (uint32_t k = 0; k < kWord; ++k) g_sector[i + k] = uint8_t(data >> (8 * k));
    Outcome w = blk_write_from(kForgeSector, rt::maddr_of(g_sector), kSector);
    (void)rt::take_port(port);
    Outcome o = w == Outcome::done ? blk_read_to(kForgeSector, address, kSector) : w;
    bool fired = wait_port_until(port, rt::now_ns() + kSecond);
    rt::printf("msi: burst: the device writes a sector of %#x to %#x (%u requests; %s): our line's port %s\n", data,
               address, kSector / kWord, outcome_name(o), fired ? "fired" : "quiet");
    if (fired) blk_device().ack_irq();
    if (o != Outcome::done && blk_reinit()) blk_quiet(true);
}

// Whether the option `key` is strict (the default) rather than "observe".
bool strict(const char* key) {
    const char* v;
    size_t len;
    return !rt::cmdline_value(key, &v, &len) || !(len == 7 && __builtin_memcmp(v, "observe", 7) == 0);
}

}  // namespace

void attack_msi(uint32_t bdf) {
    rt::virtio::Device& dev = blk_device();
    abi::MoatPciInfo info{};
    const bool have_line = rt::pci_info(bdf, &info) == 0 && info.irq_line != 0xFF;
    const uint32_t own = info.irq_line;
    const uint32_t victim = uint32_t(rt::cmdline_number("victim_line", 21));
    const uint32_t own_vector = kIrqVectorBase + own;
    const long port = have_line ? dev.irq_port() : -1;
    Caps m;
    bool found = port > 0 && find_caps(bdf, &m);
    check(found, "dma.msi_found", "line %d, port %ld", have_line ? int(own) : -1, port);
    if (!found) return;
    const uint32_t p = uint32_t(port);
    const bool vbd = rt::cmdline_number("vbd", 0) != 0;
    const uint8_t fill = uint8_t(rt::cmdline_number("fill", 0xA5));
    if (vbd) {
        bool up = g_vbd.connect(0, rt::now_ns() + 120 * kSecond);
        check(up && vbd_read(fill), "dma.msi_blkback_before", "%s", up ? "the read failed" : g_vbd.error());
    }

    // MSI-X on (function mask off), and MSI if the function has it: the
    // kernel keeps both.
    bool refused = enable_refused(bdf, "MSI-X", uint16_t(m.msix + 2), kMsixEnable, kMsixFunctionMask);
    if (m.msi) refused &= enable_refused(bdf, "MSI", uint16_t(m.msi + 2), kMsiEnable, 0);
    check(refused, "dma.msi_enable_refused", "a write of the enable bit was not refused with EPERM, or it is set");

    // The table is in our BAR: entry 0 a message to the victim's vector,
    // queue 0 on it. MSI-X off, the device ignores both: a completion
    // raises our line (its ISR never read so far: read it now, so the line
    // is low, and let the line fire again).
    m.entry0[3] = 1;
    m.entry0[0] = kMsiAddress;
    m.entry0[1] = 0;
    m.entry0[2] = kIrqVectorBase + victim;
    m.entry0[3] = 0;
    uint16_t vector = set_queue_vector(m, 0);
    (void)dev.read_isr();
    (void)rt::take_port(p);
    dev.ack_irq();
    bool ok = false;
    bool fired = read_and_watch(p, &ok);
    uint8_t isr = dev.read_isr();
    dev.ack_irq();
    check(ok && fired && (isr & 1), "dma.msi_line_seen",
          "read %d, line %u fired %d, ISR %#x (MSI-X table written, queue vector %#x)", ok, own, fired, isr, vector);
    m.entry0[3] = 1;
    (void)set_queue_vector(m, kNoVector);

    // Quiet: a completion does not raise the line now, so an event on our
    // port is a request we forged. First without one: nothing fires.
    blk_quiet(true);
    fired = read_and_watch(p, &ok);
    check(ok && !fired, "dma.msi_quiet", "read %d, line fired %d", ok, fired);

    char what[96];
    base::snformat(what, sizeof what, "compatibility format, vector %#x (our own line, %u)", own_vector, own);
    bool compat = forge(p, what, kMsiAddress, own_vector, &ok);
    if (strict("compat"))
        check(!compat && ok, "dma.msi_compat_blocked", "vector %#x %s, read %d", own_vector,
              compat ? "reached the CPU" : "blocked", ok);
    else
        rt::printf("msi: compat=observe: the compatibility-format message was %s (not checked: QEMU's VT-d model "
                   "ignores GSTS.CFIS)\n",
                   compat ? "DELIVERED" : "blocked");
    base::snformat(what, sizeof what, "compatibility format, vector %#x (the victim's line, %u)",
                   kIrqVectorBase + victim, victim);
    (void)forge(p, what, kMsiAddress, kIrqVectorBase + victim, &ok);
    (void)forge(p, "compatibility format, the timer's vector", kMsiAddress, kTimerVector, &ok);
    // compat_vector=N: one more, at a vector of the caller's choice (an
    // exception's, 16-31, is how a device would reach a handler that
    // expects the CPU's error code). Printed only; not run by the tests.
    if (uint32_t v = uint32_t(rt::cmdline_number("compat_vector", 0)); v >= 16 && v < 256) {
        base::snformat(what, sizeof what, "compatibility format, vector %#x (compat_vector)", v);
        (void)forge(p, what, kMsiAddress, v, &ok);
    }

    // The entries of lines: refused for want of the IOAPIC's source id
    // (unless sid=observe, below). The absent one: refused whoever asks.
    const bool strict_sid = strict("sid");
    struct {
        uint32_t index;
        const char* whose;
        const char* check;
        bool source_checked;
    } const entries[] = {{own, "our own line", "dma.msi_remap_own_entry_blocked", true},
                         {victim, "the victim's line", "dma.msi_remap_victim_entry_blocked", true},
                         {64, "not present", "dma.msi_remap_absent_entry_blocked", false}};
    for (const auto& e : entries) {
        uint32_t address = 0, data = 0;
        bool built = remappable(e.index, own_vector, &address, &data);
        base::snformat(what, sizeof what, "remappable format, entry %u (%s)", e.index, e.whose);
        fired = built && forge(p, what, address, data, &ok);
        if (e.source_checked && !strict_sid)
            rt::printf("msi: sid=observe: the remappable request naming entry %u (%s) was %s (not checked: QEMU's "
                       "VT-d model does not verify the source of a DMA's interrupt request)\n",
                       e.index, e.whose, !built ? "not built" : fired ? "DELIVERED" : "not seen here");
        else
            check(built && !fired && ok, e.check, "%s, read %d",
                  !built ? "no such message (vector - entry not in 1..128)" : fired ? "delivered" : "blocked", ok);
    }

    // burst=1: a whole sector, for the count of faults it makes. At
    // 0xFEEFF000 the handles are 0x7F80-0x7F8F (and 0xFF80-0xFF8F with
    // bit 2), plus the subhandle 0x8000 | our vector where SHV is set: every
    // remappable request names an entry past the table's 256 (reason 0x21);
    // the compatibility-format ones say our vector to every CPU.
    if (rt::cmdline_number("burst", 0)) burst(p, kMsiAddress | 0xFF000, 0x8000 | own_vector);

    // blkback, whose line some of them named, still serves.
    if (vbd) {
        check(g_vbd.connected() && vbd_read(fill), "dma.msi_blkback_after");
        (void)g_vbd.close(rt::now_ns() + 60 * kSecond);
    }

    // Loud again: a legitimate read raises the line as before.
    blk_quiet(false);
    (void)dev.read_isr();
    dev.ack_irq();
    fired = read_and_watch(p, &ok);
    isr = dev.read_isr();
    dev.ack_irq();
    check(ok && fired && (isr & 1), "dma.msi_works_after", "read %d, line fired %d, ISR %#x", ok, fired, isr);
}

}  // namespace dma
