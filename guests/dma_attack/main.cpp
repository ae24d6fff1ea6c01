// The hostile driver domain of issue 13 (tests/system/iommu.cmake): it holds
// one virtio-blk function, as blkback does, and uses it first as a driver
// should (its reads and writes land in its own pages), then aims the
// device's DMA at what it was not given:
//   victim     a page of the victim's (granted read-only, mapped once to
//              learn its machine frame and contents, unmapped again): a disk
//              read into it (the device writes it), and a disk write from it
//              (the device reads it: does the disk then hold the canary?)
//   hv         the hypervisor's image at 1 MiB, where multiboot loads it: a
//              read into it, and a write from it (does the disk then hold
//              the multiboot header?)
//   pt         its own top-level page table (a validated L4: a device
//              writing it would bypass every check of mmu_update)
//   net        the victim's page again, as the RX buffer of a virtio-net
//              function it also holds (QEMU's user network answers an ARP
//              request into it)
//   granted    a page the victim granted it read-write: while mapped, a read
//              into it works (and the victim sees the sector); once
//              unmapped, it must not
//   msi        not memory but interrupts: its disk's MSI-X turned on
//              (refused), then DMA into the interrupt window naming the
//              kernel's vectors and other devices' interrupt-remapping
//              entries (msi.hpp); only when named
// A check passes when the data never arrived: the target is unchanged (or
// the disk does not hold what the device would have read). How the device
// itself takes a refused DMA is QEMU's business and is only printed: QEMU 10
// completes the request through a bounce buffer whose write-back fails
// silently; older ones stop the device (DEVICE_NEEDS_RESET). After each
// attack the device is reset and set up again and a legitimate read must
// work. The disk read into the hypervisor cannot be checked from here: the
// test asserts the kernel's fault line for it.
// Without an IOMMU every attack succeeds, and every check above fails: the
// evidence that the test can fail (run by hand with `--iommu off`; choose
// the targets: on that machine "hv" and "pt" really overwrite 512 bytes of
// the hypervisor's image and of our L4).
//
// Command line: slot=N (the disk's function 00:N.0, default 6), netslot=N
// (the NIC's, default 7), fill=N (the byte the image was filled with,
// default 0xA5), targets=victim,hv,pt,net,granted,msi (which attacks, in
// that order; default all but msi), flood=N (then N more attacks on the
// hypervisor: the kernel stops a domain whose device keeps faulting), and
// msi.cpp's options.

#include "blkdev.hpp"
#include "common.hpp"
#include "msi.hpp"
#include "netdev.hpp"

using namespace dma;

namespace {

alignas(4096) uint8_t g_buf[4096];
alignas(4096) uint8_t g_out[4096];
// Where granted pages are mapped.
alignas(4096) uint8_t g_map[4096];
// What a target held before the attack.
alignas(4096) uint8_t g_before[4096];

constexpr uint64_t kHypervisorImage = 0x100000;   // build/kernel.ld: KERNEL_PHYS
constexpr uint64_t kHypervisorTarget = kHypervisorImage + 4 * 4096;
constexpr uint32_t kL4Offset = 0xE00;   // entries 448-511, guest-kernel slots we do not use

bool wants(const char* target) {
    const char* list;
    size_t len;
    if (!rt::cmdline_value("targets", &list, &len)) return __builtin_strcmp(target, "msi") != 0;
    size_t n = 0;
    while (target[n]) ++n;
    for (size_t i = 0; i + n <= len; ++i) {
        bool at_start = i == 0 || list[i - 1] == ',';
        bool at_end = i + n == len || list[i + n] == ',';
        bool same = true;
        for (size_t k = 0; k < n && same; ++k) same = list[i + k] == target[k];
        if (same && at_start && at_end) return true;
    }
    return false;
}

bool same_bytes(const volatile uint8_t* a, const uint8_t* b, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (a[i] != b[i]) return false;
    return true;
}

bool holds_pattern(const volatile uint8_t* p) {
    for (uint32_t i = 0; i < kSector; ++i)
        if (p[i] != pattern_byte(i)) return false;
    return true;
}

// A legitimate read of the pattern sector into our own page: the device
// (set up again) still does what a driver asks.
bool legit_read() {
    for (auto& b : g_buf) b = 0;
    return blk_read_to(kPatternSector, rt::maddr_of(g_buf), kSector) == Outcome::done && holds_pattern(g_buf);
}

// After an attack: reset, set up again, read.
void recover(const char* after) {
    bool reopened = blk_reinit();
    bool read = reopened && legit_read();
    char name[64];
    base::snformat(name, sizeof name, "dma.works_after_%s", after);
    check(read, name, "%s", reopened ? "the legitimate read after the reset failed" : "the device did not open again");
}

// Maps the victim's grant `ref` at g_map; its machine frame, or 0.
uint64_t map_granted(const RingEnd& ring, uint32_t ref, bool readonly, uint32_t* handle) {
    abi::GnttabMapGrantRef op{};
    op.host_addr = rt::ptr(g_map);
    op.flags = abi::kGntmapHostMap | (readonly ? abi::kGntmapReadonly : 0);
    op.ref = ref;
    op.dom = uint16_t(ring.peer);
    if (gnttab(abi::GnttabOp::map_grant_ref, &op) != 0 || op.status != 0) {
        rt::printf("map of grant %u from domain %ld failed: status %d\n", ref, ring.peer, int(op.status));
        return 0;
    }
    *handle = op.handle;
    return (l1e_of(rt::ptr(g_map)) & rt::kPteAddr) >> 12;
}

bool unmap_granted(uint32_t handle) {
    abi::GnttabUnmapGrantRef op{};
    op.host_addr = rt::ptr(g_map);
    op.handle = handle;
    bool ok = gnttab(abi::GnttabOp::unmap_grant_ref, &op) == 0 && op.status == 0;
    (void)restore(g_map);
    return ok;
}

// Reads a sector into `maddr`; says what happened.
Outcome attack(const char* what, uint64_t maddr) {
    rt::printf("aiming a read of sector 0 at %s, machine address %#lx\n", what, maddr);
    Outcome o = blk_read_to(0, maddr, kSector);
    rt::printf("%s: %s\n", what, outcome_name(o));
    return o;
}

// Writes a sector from `maddr` (the device reads there) and reads the sector
// back into our page: whether the disk now holds `secret` (its first
// `len` bytes), i.e. the device could read the target.
bool exfiltrated(const char* what, uint64_t maddr, uint64_t sector, const uint8_t* secret, uint32_t len) {
    for (uint32_t i = 0; i < kSector; ++i) g_out[i] = uint8_t(~secret[i % len]);
    bool sentinel = blk_write_from(sector, rt::maddr_of(g_out), kSector) == Outcome::done;
    rt::printf("aiming a write of sector %lu at %s, machine address %#lx\n", sector, what, maddr);
    Outcome o = blk_write_from(sector, maddr, kSector);
    rt::printf("%s: %s\n", what, outcome_name(o));
    if (!blk_reinit()) return false;
    for (auto& b : g_buf) b = 0;
    Outcome r = blk_read_to(sector, rt::maddr_of(g_buf), kSector);
    bool leaked = r == Outcome::done && same_bytes(g_buf, secret, len);
    rt::printf("sector %lu now begins %02x %02x %02x %02x (sentinel written: %d): %s\n", sector, g_buf[0], g_buf[1],
               g_buf[2], g_buf[3], sentinel, leaked ? "the device READ the target" : "the target's bytes are not there");
    return leaked;
}

void attack_victim_frame(const RingEnd& ring, uint32_t ref) {
    uint32_t h = 0;
    uint64_t mfn = map_granted(ring, ref, true, &h);
    for (size_t i = 0; i < 4096; ++i) g_before[i] = g_map[i];
    bool unmapped = mfn && unmap_granted(h);
    check(mfn && unmapped, "dma.learned_victim_frame", "mfn %#lx", mfn);
    if (!mfn || !unmapped) return;
    // Read first: the write below would change what there is to find.
    bool leaked = exfiltrated("the victim's canary page", mfn << 12, 17, g_before, kSector);
    Outcome o = attack("the victim's canary page", mfn << 12);
    // Look again (mapped read-only once more, after the attacks).
    uint64_t again = map_granted(ring, ref, true, &h);
    bool intact = again == mfn && same_bytes(g_map, g_before, 4096);
    if (again) (void)unmap_granted(h);
    check(intact, "dma.blocked_victim_frame", "the device %s; canary CHANGED", outcome_name(o));
    check(!leaked, "dma.blocked_victim_frame_read", "the victim's canary is on our disk");
    recover("victim_frame");
}

void attack_hypervisor() {
    // Written: the kernel's fault line says whether it was refused.
    (void)attack("the hypervisor's image", kHypervisorTarget);
    recover("hypervisor");
    // Read: the image begins with the multiboot header.
    static constexpr uint8_t kMultibootMagic[4] = {0x02, 0xB0, 0xAD, 0x1B};
    bool leaked = exfiltrated("the hypervisor's multiboot header", kHypervisorImage, 16, kMultibootMagic, 4);
    check(!leaked, "dma.blocked_hypervisor_read", "the hypervisor's multiboot header is on our disk");
    recover("hypervisor_read");
}

void attack_page_table() {
    uint64_t tables[5];
    own_tables(tables);
    const auto* l4 = reinterpret_cast<const volatile uint8_t*>(rt::va_of_pfn(rt::m2p()[tables[4]]));
    for (size_t i = 0; i < 4096; ++i) g_before[i] = l4[i];
    Outcome o = attack("our own L4 page table", (tables[4] << 12) + kL4Offset);
    bool intact = same_bytes(l4, g_before, 4096);
    check(intact, "dma.blocked_page_table", "the device %s; L4 CHANGED", outcome_name(o));
    recover("page_table");
}

void attack_net_rx(const RingEnd& ring, uint32_t ref) {
    const uint32_t bdf = uint32_t(rt::cmdline_number("netslot", 7) & 31) << 3;
    bool opened = net_open(bdf);
    Outcome o = opened ? net_arp_into(net_own_buffer_maddr()) : Outcome::io_error;
    check(o == Outcome::done && net_own_buffer_holds_reply(), "dma.net_own_rx", "%s, open %d", outcome_name(o),
          opened);
    if (!opened) return;
    uint32_t h = 0;
    uint64_t mfn = map_granted(ring, ref, true, &h);
    for (size_t i = 0; i < 4096; ++i) g_before[i] = g_map[i];
    if (!mfn || !unmap_granted(h)) return;
    rt::printf("receiving the gateway's ARP reply into the victim's canary page, machine address %#lx\n", mfn << 12);
    o = net_arp_into(mfn << 12);
    rt::printf("the victim's canary page as an RX buffer: %s\n", outcome_name(o));
    uint64_t again = map_granted(ring, ref, true, &h);
    bool intact = again == mfn && same_bytes(g_map, g_before, 4096);
    if (again) (void)unmap_granted(h);
    check(intact, "dma.net_blocked_victim_frame", "the device %s; canary CHANGED", outcome_name(o));
    bool reopened = net_reinit();
    o = reopened ? net_arp_into(net_own_buffer_maddr()) : Outcome::io_error;
    check(o == Outcome::done && net_own_buffer_holds_reply(), "dma.net_works_after_victim_frame", "%s",
          outcome_name(o));
}

void attack_granted(const RingEnd& ring, uint32_t ref) {
    char path[160];
    uint32_t h = 0;
    uint64_t mfn = map_granted(ring, ref, false, &h);
    // Mapped: a read into the victim's page is a legitimate one.
    Outcome o = mfn ? blk_read_to(kPatternSector, mfn << 12, kSector) : Outcome::io_error;
    bool arrived = o == Outcome::done && holds_pattern(g_map);
    check(arrived, "dma.granted_frame_while_mapped", "mfn %#lx: %s, pattern %s", mfn, outcome_name(o),
          arrived ? "there" : "missing");
    if (!mfn) return;
    if (o != Outcome::done) recover("granted_frame_while_mapped");
    (void)rt::xs_write(node(path, sizeof path, ring.mine, "stage"), "1");
    // The victim checks the sector and fills the page with a canary again.
    bool refilled = wait_number(node(path, sizeof path, ring.theirs, "state"), 5, rt::now_ns() + 60 * kSecond);
    check(refilled, "dma.victim_refilled_granted_frame");
    for (size_t i = 0; i < 4096; ++i) g_before[i] = g_map[i];
    bool unmapped = unmap_granted(h);
    check(unmapped, "dma.unmapped_granted_frame");
    if (!unmapped) return;
    o = attack("the victim's granted page after unmapping it", mfn << 12);
    uint64_t again = map_granted(ring, ref, true, &h);
    bool intact = again == mfn && same_bytes(g_map, g_before, 4096);
    if (again) (void)unmap_granted(h);
    check(intact, "dma.blocked_granted_after_unmap", "the device %s; page CHANGED", outcome_name(o));
    recover("granted_after_unmap");
}

}  // namespace

void rt::main() {
    rt::events_init();
    const uint32_t bdf = uint32_t(rt::cmdline_number("slot", 6) & 31) << 3;
    const uint8_t fill = uint8_t(rt::cmdline_number("fill", 0xA5));

    // The device, as a driver uses it: a read into our page, our write read back.
    bool opened = blk_open(bdf);
    check(opened && blk_capacity() > kPatternSector, "dma.device_opened", "capacity %lu", blk_capacity());
    if (!opened) return done();
    Outcome o = blk_read_to(0, rt::maddr_of(g_buf), kSector);
    unsigned good = 0;
    for (uint32_t i = 0; i < kSector; ++i) good += g_buf[i] == fill;
    check(o == Outcome::done && good == kSector, "dma.own_read", "%s, %u of %u bytes %#x", outcome_name(o), good,
          kSector, fill);
    for (uint32_t i = 0; i < kSector; ++i) g_out[i] = pattern_byte(i);
    o = blk_write_from(kPatternSector, rt::maddr_of(g_out), kSector);
    check(o == Outcome::done && legit_read(), "dma.own_write_read_back", "write: %s", outcome_name(o));

    // The victim, the other end of our RING connection (the attacks on
    // memory need it; the MSI forgery only XenStore, for blkback's disk).
    RingEnd ring;
    char path[160];
    bool found = false;
    long canary = -1, shared = -1;
    const bool xs = bool(rt::xs_init());
    if (wants("victim") || wants("net") || wants("granted")) {
        found = xs && find_frontends(&ring, 1) == 1 &&
                wait_number(node(path, sizeof path, ring.theirs, "state"), 3, rt::now_ns() + 60 * kSecond);
        canary = found ? read_number(node(path, sizeof path, ring.theirs, "canary-ref")) : -1;
        shared = found ? read_number(node(path, sizeof path, ring.theirs, "shared-ref")) : -1;
        check(found && canary > 0 && shared > 0, "dma.found_victim", "refs %ld %ld", canary, shared);
    }

    if (found && canary > 0 && wants("victim")) attack_victim_frame(ring, uint32_t(canary));
    if (wants("hv")) attack_hypervisor();
    if (wants("pt")) attack_page_table();
    if (found && canary > 0 && wants("net")) attack_net_rx(ring, uint32_t(canary));
    if (found && shared > 0 && wants("granted")) attack_granted(ring, uint32_t(shared));
    if (wants("msi")) attack_msi(bdf);
    if (found) (void)rt::xs_write(node(path, sizeof path, ring.mine, "stage"), "2");

    // A device that keeps faulting: the kernel stops us past its limit.
    const uint64_t flood = rt::cmdline_number("flood", 0);
    if (flood) {
        rt::printf("flood: %lu attacks on the hypervisor\n", flood);
        uint64_t k = 0;
        for (; k < flood; ++k) {
            (void)blk_read_to(0, kHypervisorTarget, kSector);
            if (!blk_reinit()) break;
            if ((k + 1) % 16 == 0) rt::printf("flood: %lu attacks\n", k + 1);
        }
        check(false, "dma.stopped_by_fault_limit", "still running after %lu of %lu attacks", k, flood);
    }
    done();
}
