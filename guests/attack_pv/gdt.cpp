// Guest GDTs (kernel/core/src/descriptors.cpp): set_gdt, update_descriptor
// and the descriptor-page type.
//
// What must hold (Xen's rules for 64-bit PV guests, check_descriptor): a
// code or data descriptor is made DPL 3, so nothing a guest installs runs or
// is used in ring 0-2; a call gate is made DPL 0 (using it faults) and may
// only lead to a guest code selector; every other system descriptor (TSS,
// LDT, interrupt and trap gates) is refused; a GDT ends below the
// hypervisor's reserved entries (7168 and up); a frame holding descriptors
// is never writable by any path while it is one (a writable mapping blocks
// set_gdt, and a descriptor page cannot be mapped writable, written by
// mmu_update, cleared, copied into, granted into, made a vcpu_info, a
// hypercall page or a page table) -- not even through a stale writable TLB
// entry; no frame of another domain (or of the hypervisor, or past RAM)
// becomes one, nor is written by update_descriptor.
//
// Besides, the data segment selectors a guest loads from its own GDT must
// stay its own: guests/attack_pv's witness (role=witness), running while we
// hold ours loaded, must always see its own (null) selectors, and ours must
// be there again each time we run. One whose descriptor went while we were
// off the CPU comes back null, with the failsafe callback entered (the frame
// holding the selectors we had) if we registered one, as Xen's load_segments.

#include "env.hpp"

namespace pv {

namespace {

constexpr unsigned kFrames = 14;
uint64_t g_frames[kFrames + 1];

unsigned ar_dpl(uint64_t ar) { return (ar >> 13) & 3; }
unsigned desc_dpl_of(uint64_t d) { return (d >> 45) & 3; }

// Far-returns into `sel` and back to the flat selector; the CS seen there,
// or 0 if getting there faulted.
uint16_t run_on(uint16_t sel) {
    uint64_t seen = 0;
    asm volatile(PV_PROBE_BEGIN
                 "movq %%rsp, %%r10\n\t"
                 "leaq 2f(%%rip), %%rax\n\t"
                 "pushq %[sel]\n\t"
                 "pushq %%rax\n\t"
                 "lretq\n"
                 "2:\n\t"
                 "movq %%cs, %[seen]\n\t"
                 "leaq 3f(%%rip), %%rax\n\t"
                 "pushq $0xe033\n\t"
                 "pushq %%rax\n\t"
                 "lretq\n"
                 "3:" PV_PROBE_END "\n\t"
                 "movq %%r10, %%rsp"
                 : [seen] "+&r"(seen)
                 : [sel] "r"(uint64_t(sel))
                 : "rax", "r10", "r11", "memory");
    return uint16_t(seen);
}

// lcall through `sel` (a call gate): whether the call went through.
bool call_through(uint16_t sel) {
    struct [[gnu::packed]] {
        uint64_t offset;
        uint16_t sel;
    } fp{0, sel};
    uint64_t before = g_gate_called;
    asm volatile(PV_PROBE_BEGIN
                 "movq %%rsp, %%r10\n\t"
                 ".byte 0x48, 0xff, 0x18" PV_PROBE_END "\n\t"   // lcall *(%rax), m16:64
                 "movq %%r10, %%rsp"
                 :
                 : "a"(&fp)
                 : "r10", "r11", "memory");
    return g_gate_called != before;
}

// Loads all four data selectors (0: null).
void load_data_selectors(uint16_t s) {
    asm volatile("mov %0, %%ds\n\tmov %0, %%es\n\tmov %0, %%fs\n\tmov %0, %%gs" : : "r"(uint32_t(s)) : "memory");
}

uint64_t word_of(uint64_t mfn, unsigned i) {
    if (win_map(6, mfn, false) != 0) return ~0ull;
    uint64_t w = win_words(6)[i];
    win_restore(6);
    return w;
}

void legit(uint64_t F) {
    uint64_t d[4] = {0, code64(3), data(3), code32(3)};
    bool filled = fill_frame(F, d, 4);
    uint64_t fl[1] = {F};
    long r = set_gdt(fl, 512);
    bool ok1, ok2;
    uint64_t ar1 = lar(0x0b, &ok1), ar2 = lar(0x13, &ok2);
    uint16_t cs = r == 0 ? run_on(0x0b) : 0;
    check(filled && r == 0 && ok1 && ok2 && ar_dpl(ar1) == 3 && ar_dpl(ar2) == 3 && cs == 0x0b,
          "attack.pv.gdt.legit_gdt_used", "set_gdt %ld, lar %d/%d (ar %#lx %#lx), ran on cs %#x", r, ok1, ok2, ar1,
          ar2, cs);
}

// Code and data descriptors of DPL < 3: accepted, made DPL 3; code runs in ring 3 only.
void dpl_fixups(uint64_t F) {
    struct {
        const char* name;
        unsigned index;
        uint64_t desc;
        bool code;
    } cases[] = {
        {"attack.pv.gdt.dpl0_long_code_runs_in_ring3", 4, code64(0), true},
        {"attack.pv.gdt.dpl1_long_code_runs_in_ring3", 5, code64(1), true},
        {"attack.pv.gdt.dpl2_compat_code_made_dpl3", 6, code32(2), false},
        {"attack.pv.gdt.dpl0_data_made_dpl3", 7, data(0), false},
    };
    for (auto& c : cases) {
        long r = update_descriptor((F << 12) | (c.index * 8), c.desc);
        uint64_t stored = word_of(F, c.index);
        bool ok;
        uint16_t sel = uint16_t(c.index * 8);
        uint64_t ar = lar(uint16_t(sel | 3), &ok);
        bool pass = r == 0 && desc_dpl_of(stored) == 3 && ok && ar_dpl(ar) == 3;
        uint16_t ring0 = 0, ring3 = 0;
        if (c.code) {
            arm();
            ring0 = run_on(sel);   // RPL 0: the CPU must refuse (RPL < CPL)
            bool faulted = g_caught.count == 1 && g_caught.vector == 13;
            ring3 = run_on(uint16_t(sel | 3));
            pass &= ring0 == 0 && faulted && ring3 == (sel | 3);
        }
        check(pass, c.name, "update_descriptor %ld, stored DPL %u (%#lx), lar %d dpl %u, ran with RPL 0 on %#x, RPL 3 on %#x",
              r, desc_dpl_of(stored), stored, ok, ar_dpl(ar), ring0, ring3);
    }
}

void call_gates(uint64_t F) {
    uint64_t target = rt::ptr(&pv_gate_target);
    // To a guest code selector: accepted, made DPL 0, unusable.
    long r = update_descriptor((F << 12) | (8 * 8), call_gate(0x0b, target, 3));
    long r2 = update_descriptor((F << 12) | (9 * 8), target >> 32);
    uint64_t stored = word_of(F, 8);
    arm();
    bool called = call_through(0x43);
    bool gp = g_caught.count == 1 && g_caught.vector == 13;
    check(r == 0 && r2 == 0 && desc_dpl_of(stored) == 0 && !called && gp, "attack.pv.gdt.call_gate_made_unusable",
          "update_descriptor %ld/%ld, stored DPL %u (%#lx), call went through %d, fault vector %lu (error %#lx)", r, r2,
          desc_dpl_of(stored), stored, called, g_caught.vector, g_caught.error);

    // To the hypervisor's selectors, with reserved bits, through set_gdt too.
    const uint64_t bad[] = {
        call_gate(kHypCs, target, 3), call_gate(kHypCs, target, 0), call_gate(kHypDs, target, 3),
        call_gate(kHypTss, target, 3), call_gate(0xe018, target, 3), call_gate(0xfff8, target, 3),
        call_gate(0x0b, target, 3) | (1ull << 32),   // the IST/reserved byte
        call_gate(0x0b, target, 3) | (0x1Full << 32),
    };
    unsigned refused = 0, n = 0;
    for (uint64_t d : bad) {
        ++n;
        long u = update_descriptor((F << 12) | (10 * 8), d);
        uint64_t page[12] = {0, code64(3), data(3), code32(3)};
        page[10] = d;
        uint64_t G = g_frames[1];
        bool filled = fill_frame(G, page, 12);
        uint64_t fl[1] = {G};
        long s = filled ? set_gdt(fl, 512) : -1;
        refused += u == kEinval && s == kEinval;
        if (s == 0) {   // put ours back
            uint64_t f0[1] = {F};
            (void)set_gdt(f0, 512);
        }
    }
    bool ok;
    (void)lar(0x53, &ok);
    check(refused == n && word_of(F, 10) == 0 && !ok, "attack.pv.gdt.call_gate_to_hypervisor_refused",
          "%u of %u refused; entry 10 now %#lx", refused, n, word_of(F, 10));
}

void system_descriptors(uint64_t F) {
    const unsigned types[] = {1, 2, 3, 4, 5, 6, 7, 9, 0xB, 0xE, 0xF};
    unsigned refused = 0, n = 0;
    for (unsigned t : types)
        for (unsigned dpl : {0u, 3u}) {
            ++n;
            uint64_t d = system_desc(t, dpl) | (uint64_t(rt::ptr(g_frames)) & 0xFFFFFF) << 16;
            long u = update_descriptor((F << 12) | (11 * 8), d);
            uint64_t page[12] = {0, code64(3)};
            page[11] = d;
            uint64_t G = g_frames[1];
            bool filled = fill_frame(G, page, 12);
            uint64_t fl[1] = {G};
            long s = filled ? set_gdt(fl, 512) : -1;
            if (s == 0) {
                uint64_t f0[1] = {F};
                (void)set_gdt(f0, 512);
            }
            refused += u == kEinval && s == kEinval;
        }
    bool ok;
    (void)lar(0x5b, &ok);
    check(refused == n && word_of(F, 11) == 0 && !ok, "attack.pv.gdt.system_descriptors_refused",
          "%u of %u refused (TSS, LDT, gates of every kind); entry 11 now %#lx", refused, n, word_of(F, 11));
}

// A GDT never reaches the hypervisor's entries (7168 and up).
void reserved_entries(uint64_t F) {
    for (unsigned i = 0; i <= kFrames; ++i)
        if (!g_frames[i]) g_frames[i] = spare_frame();
    uint64_t first[4] = {0, code64(3), data(3), code32(3)};
    bool filled = fill_frame(g_frames[0], first, 4);
    for (unsigned i = 1; i <= kFrames; ++i) filled &= fill_frame(g_frames[i], nullptr, 0);
    const uint64_t counts[] = {7169, 7184, 7185, 8192, 1ull << 16, 1ull << 32, ~0ull};
    unsigned refused = 0, n = 0;
    for (uint64_t c : counts) {
        ++n;
        refused += set_gdt(g_frames, c) == kEinval;
    }
    bool visible;
    (void)lar(0x0b, &visible);   // our one-frame GDT is still in place
    check(filled && refused == n && visible, "attack.pv.gdt.reserved_entries_refused", "%u of %u refused", refused, n);

    // All 14 frames: every entry below the hypervisor's is ours, nothing above.
    long r = set_gdt(g_frames, 7168);
    long u = update_descriptor((g_frames[kFrames - 1] << 12) | (511 * 8), code64(0));
    bool last_ok, flat_cs_ok, flat_ds_ok, hyp_cs_seen, hyp_tss_seen;
    uint64_t last_ar = lar(uint16_t((7167 << 3) | 3), &last_ok);
    uint64_t cs_ar = lar(kFlatCs64, &flat_cs_ok);
    uint64_t ds_ar = lar(kFlatDs, &flat_ds_ok);
    (void)lar(kHypCs | 3, &hyp_cs_seen);
    (void)lar(kHypTss | 3, &hyp_tss_seen);
    // Exceptions and events still come and go through the hypervisor's own
    // entries (an iretq to the flat selectors, the TSS's stack).
    arm();
    asm volatile(PV_PROBE_BEGIN "ud2" PV_PROBE_END ::: "r11", "memory");
    bool ud = g_caught.count == 1 && g_caught.vector == 6;
    attack::sleep_ns(3 * kMs);
    uint16_t cs = run_on(uint16_t((7167 << 3) | 3));
    check(r == 0 && u == 0 && last_ok && ar_dpl(last_ar) == 3 && flat_cs_ok && flat_ds_ok && ar_dpl(cs_ar) == 3 &&
              ar_dpl(ds_ar) == 3 && !hyp_cs_seen && !hyp_tss_seen && ud && cs == ((7167 << 3) | 3),
          "attack.pv.gdt.full_gdt_below_hypervisor_entries",
          "set_gdt(14 frames, 7168) %ld, entry 7167 %ld (lar %d dpl %u), flat cs/ds %d/%d, hypervisor cs/tss visible "
          "%d/%d, #UD %d, ran on %#x",
          r, u, last_ok, ar_dpl(last_ar), flat_cs_ok, flat_ds_ok, hyp_cs_seen, hyp_tss_seen, ud, cs);
    uint64_t f0[1] = {F};
    (void)set_gdt(f0, 512);
}

// A frame mapped writable cannot become a descriptor page, nor the other way round.
void writable_mappings(uint64_t F, uint64_t G) {
    uint64_t d[3] = {0, code64(3), data(3)};
    (void)fill_frame(G, d, 3);
    long m = win_map(0, G, true);
    uint64_t both[2] = {F, G};
    long before = set_gdt(both, 1024);
    win_restore(0);
    long after_unmap = set_gdt(both, 1024);
    check(m == 0 && before == kEinval && after_unmap == 0, "attack.pv.gdt.writable_mapping_blocks_set_gdt",
          "mapped %ld, set_gdt while mapped writable %ld, after unmapping %ld", m, before, after_unmap);

    long w = win_map(0, G, true);
    uint64_t slot = rt::l1e_maddr(rt::ptr(g_win[0]));
    long mu = rt::mmu_update_one(slot, pte(G, true));
    long ro = win_map(0, G, false);
    uint64_t seen = ro == 0 ? win_words(0)[1] : 0;
    win_restore(0);
    check(w == kEinval && mu == kEinval && ro == 0 && seen == code64(3),
          "attack.pv.gdt.descriptor_page_not_mappable_writable",
          "update_va_mapping writable %ld, mmu_update writable %ld, read-only %ld (reads %#lx)", w, mu, ro, seen);
}

// Every other way of writing into a frame, aimed at a descriptor page (G,
// in the GDT): all refused, G and the CPU's copy of it unchanged.
void other_writers(uint64_t G, uint64_t H) {
    uint64_t tss[512];
    for (auto& x : tss) x = system_desc(9, 3);
    (void)fill_frame(H, tss, 512);
    unsigned refused = 0, n = 0;
    auto expect = [&](bool ok, const char* what, long rc) {
        ++n;
        if (ok) ++refused;
        else rt::printf("evidence: %s into a descriptor page accepted (%ld)\n", what, rc);
    };
    long r = rt::mmu_update_one((G << 12) | (5 * 8), system_desc(9, 3));
    expect(r < 0, "mmu_update (a plain write)", r);
    r = mmuext1(abi::MmuextCmd::clear_page, G);
    expect(r < 0, "MMUEXT_CLEAR_PAGE", r);
    r = mmuext1(abi::MmuextCmd::copy_page, G, H);
    expect(r < 0, "MMUEXT_COPY_PAGE", r);
    abi::GnttabCopy gc{};
    gc.source.u.gmfn = H;
    gc.source.domid = abi::kDomidSelf;
    gc.dest.u.gmfn = G;
    gc.dest.domid = abi::kDomidSelf;
    gc.len = 4096;
    r = attack::gnttab(abi::GnttabOp::copy, &gc);
    expect(gc.status != 0, "grant copy", gc.status);
    abi::VcpuRegisterVcpuInfo vi{G, 64, 0};
    r = rt::hypercall(abi::Hypercall::vcpu_op, uint64_t(abi::VcpuOp::register_vcpu_info), 0, rt::ptr(&vi));
    expect(r < 0, "register_vcpu_info", r);
    arm();
    uint64_t msr_val = G << 12;
    asm volatile(PV_PROBE_BEGIN "wrmsr" PV_PROBE_END
                 :
                 : "c"(0x40000000u), "a"(uint32_t(msr_val)), "d"(uint32_t(msr_val >> 32))
                 : "r11", "memory");
    expect(g_caught.count == 1 && g_caught.vector == 13, "the hypercall-page MSR", long(g_caught.count));
    uint64_t frames[1] = {G};
    r = attack::memory_op(abi::MemoryOp::decrease_reservation, frames, 1);
    expect(r == 0, "decrease_reservation", r);
    r = mmuext1(abi::MmuextCmd::pin_l1_table, G);
    expect(r < 0, "pin as an L1", r);
    r = mmuext1(abi::MmuextCmd::pin_l4_table, G);
    expect(r < 0, "pin as an L4", r);
    uint64_t d[3] = {0, code64(3), data(3)};
    bool intact = frame_holds(G, d, 3);
    bool ok;
    uint64_t ar = lar(uint16_t((512 + 5) * 8 + 3), &ok);
    check(refused == n && intact && !ok, "attack.pv.gdt.other_writers_refused",
          "%u of %u refused, page intact %d, entry 517 visible %d (ar %#lx)", refused, n, intact, ok, ar);
}

// A writable translation left in the TLB (the guest unmapped it without a
// flush) must not reach the frame once it is a descriptor page.
void stale_tlb(uint64_t F, uint64_t G, uint64_t H) {
    uint64_t d[3] = {0, code64(3), data(3)};
    (void)fill_frame(H, d, 3);
    long m = win_map(1, H, true);
    volatile uint64_t* w = win_words(1);
    w[2] = data(3);                                                        // the translation is in the TLB now
    long u = rt::update_va_mapping(rt::ptr(g_win[1]), 0, abi::kUvmfNone);   // no flush
    uint64_t three[3] = {F, G, H};
    long r = set_gdt(three, 1536);
    arm();
    uint64_t evil = system_desc(9, 3);
    asm volatile(PV_PROBE_BEGIN "movq %[v], 160(%[p])" PV_PROBE_END : : [v] "r"(evil), [p] "r"(w) : "r11", "memory");
    bool faulted = g_caught.count == 1 && g_caught.vector == 14;
    (void)attack::restore(g_win[1]);
    uint64_t written = word_of(H, 20);
    attack::sleep_ns(2 * kMs);   // another domain runs: our GDT is copied in again
    bool ok;
    uint64_t ar = lar(uint16_t((1024 + 20) * 8 + 3), &ok);
    check(m == 0 && u == 0 && r == 0 && faulted && written == 0 && !ok, "attack.pv.gdt.stale_writable_tlb_refused",
          "unmapped %ld without a flush, set_gdt %ld, the write through the old translation faulted %d, entry now %#lx, "
          "the CPU sees it %d (ar %#lx)",
          u, r, faulted, written, ok, ar);
}

// update_descriptor and set_gdt on frames that are not ours, past RAM, and
// our own page tables: all refused, nothing written.
void foreign_and_tables(uint64_t F) {
    // A not-present descriptor (any bits but P): check_descriptor lets it
    // through, so only the frame checks stand between it and the frame.
    constexpr uint64_t kValue = 0x00007A5A5A5A5A5Aull;
    uint64_t tried = 0, accepted = 0, gdt_accepted = 0, first = 0;
    unsigned k = 0;
    uint64_t n = each_foreign_frame([&](uint64_t m) {
        ++tried;
        long r = update_descriptor((m << 12) | (uint64_t(k++ % 512) * 8), kValue);
        uint64_t fl[1] = {m};
        long s = set_gdt(fl, 1);
        if (r == 0) {
            if (!accepted++) first = m;
            if (accepted <= 4)
                rt::printf("evidence: update_descriptor wrote into frame %#lx, not ours (M2P says pfn %#lx)\n", m,
                           rt::m2p()[m]);
        }
        if (s == 0) {
            if (gdt_accepted < 4) rt::printf("evidence: set_gdt took frame %#lx, not ours\n", m);
            if (!gdt_accepted++ && !first) first = m;
            uint64_t f0[1] = {F};
            (void)set_gdt(f0, 512);
        }
    });
    rt::printf("update_descriptor and set_gdt at every frame that is not ours: %lu frames, %lu/%lu accepted\n", n,
               accepted, gdt_accepted);
    check(tried > 1000 && accepted == 0 && gdt_accepted == 0, "attack.pv.gdt.foreign_frames_refused",
          "%lu update_descriptor and %lu set_gdt accepted of %lu (first frame %#lx)", accepted, gdt_accepted, tried,
          first);

    const uint64_t beyond[] = {max_ram_frame() + 1, max_ram_frame() + 4096, 0xFFFFFFFFull, (1ull << 40) - 1,
                               (1ull << 52) - 1, 0xFFFF800000000ull};
    unsigned refused = 0, nb = 0;
    for (uint64_t m : beyond) {
        ++nb;
        uint64_t fl[1] = {m};
        refused += update_descriptor((m << 12) & ~0xFFFull, kValue) == kEinval && set_gdt(fl, 1) == kEinval;
    }
    check(refused == nb, "attack.pv.gdt.beyond_ram_refused", "%u of %u refused", refused, nb);

    // Our page tables: a descriptor that reads as a present PTE naming
    // another domain's frame must never land in one.
    Tables t = own_tables();
    uint64_t victim_like = 0;
    each_foreign_frame([&](uint64_t m) {
        if (!victim_like && m > 0x200) victim_like = m;
    });
    uint64_t as_pte = ((victim_like << 12) & 0x00007FFFFFFFF000ull) | 0x67;   // bit 47 clear: "not present"
    unsigned tables_refused = 0;
    for (unsigned l = 1; l <= 4; ++l) {
        uint64_t before = t.ro[l][300];
        long r = update_descriptor((t.mfn[l] << 12) | (300 * 8), as_pte);
        uint64_t fl[1] = {t.mfn[l]};
        long s = set_gdt(fl, 512);
        tables_refused += r == kEinval && s == kEinval && t.ro[l][300] == before;
    }
    long mis = update_descriptor((F << 12) | 4, 0);
    check(tables_refused == 4 && mis == kEinval, "attack.pv.gdt.page_tables_not_descriptor_pages",
          "%u of 4 levels refused, misaligned %ld", tables_refused, mis);
}

// Our data selectors, loaded from our GDT, while the witness runs.
void segments() {
    load_data_selectors(0x13);
    uint16_t mine[4];
    read_data_selectors(mine);
    // Long enough for the witness (and everyone) to run many times.
    uint64_t until = rt::now_ns() + 300 * kMs;
    unsigned yields = 0;
    while (rt::now_ns() < until) {
        rt::sched_op(abi::SchedOp::yield);
        ++yields;
    }
    uint16_t after[4];
    read_data_selectors(after);
    load_data_selectors(0);
    check(mine[0] == 0x13 && mine[1] == 0x13 && mine[2] == 0x13 && mine[3] == 0x13, "attack.pv.gdt.segments_loaded",
          "ds %#x es %#x fs %#x gs %#x", mine[0], mine[1], mine[2], mine[3]);
    rt::printf("held data selectors 0x13 for 300 ms (%u yields); after: ds %#x es %#x fs %#x gs %#x\n", yields,
               after[0], after[1], after[2], after[3]);
    check(after[0] == 0x13 && after[1] == 0x13 && after[2] == 0x13 && after[3] == 0x13,
          "attack.pv.gdt.segments_survive_switches", "after %u yields: ds %#x es %#x fs %#x gs %#x", yields, after[0],
          after[1], after[2], after[3]);
}

// Selectors that no longer load when we are put back on the CPU: entry 2
// (0x13, loaded) made not present while we hold it, then the CPU given away.
// With our failsafe callback: entered once, its frame holding the selectors
// we had (Linux's xen_failsafe_callback tells a failed segment reload from a
// bad iret by their differing from the current ones), and ours null. Without
// one: null, and we go on where we were.
void stale_selectors(uint64_t F) {
    constexpr uint64_t kYields = 2000;   // other domains run many times meanwhile
    const uint64_t entry2 = (F << 12) | (2 * 8);
    auto all = [](const uint16_t s[4], uint16_t v) { return s[0] == v && s[1] == v && s[2] == v && s[3] == v; };

    uint64_t hits = g_failsafe_hits;
    load_data_selectors(0x13);
    long u = update_descriptor(entry2, data(3) & ~kDescP);   // ours stay loaded: the CPU keeps the descriptor
    pv_yield_holding(kYields);
    uint16_t now[4];
    read_data_selectors(now);
    uint64_t entered = g_failsafe_hits - hits;
    const uint64_t* f = g_failsafe_frame;
    bool framed = f[2] == 0x13 && f[3] == 0x13 && f[4] == 0x13 && f[5] == 0x13;
    check(u == 0 && entered == 1 && framed && all(now, 0), "attack.pv.gdt.stale_selectors_failsafe",
          "update_descriptor %ld, failsafe entered %lu time(s), frame ds %#lx es %#lx fs %#lx gs %#lx, now ds %#x es "
          "%#x fs %#x gs %#x", u, entered, f[2], f[3], f[4], f[5], now[0], now[1], now[2], now[3]);

    long c = rt::hypercall(abi::Hypercall::set_callbacks, rt::event_entry_address(), 0, rt::ptr(&pv_syscall_entry));
    hits = g_failsafe_hits;
    // Loaded from a present entry 2 again, then made not present again.
    long p = update_descriptor(entry2, data(3));
    load_data_selectors(0x13);
    long p2 = update_descriptor(entry2, data(3) & ~kDescP);
    pv_yield_holding(kYields);
    read_data_selectors(now);
    entered = g_failsafe_hits - hits;
    long c2 = rt::hypercall(abi::Hypercall::set_callbacks, rt::event_entry_address(), rt::ptr(&pv_failsafe_entry),
                            rt::ptr(&pv_syscall_entry));
    long u2 = update_descriptor(entry2, data(3));
    check(c == 0 && c2 == 0 && p == 0 && p2 == 0 && u2 == 0 && entered == 0 && all(now, 0),
          "attack.pv.gdt.stale_selectors_nulled",
          "set_callbacks %ld/%ld, update_descriptor %ld/%ld/%ld, failsafe entered %lu time(s), now ds %#x es %#x fs "
          "%#x gs %#x", c, c2, p, p2, u2, entered, now[0], now[1], now[2], now[3]);
    load_data_selectors(0);
}

}  // namespace

void scenario_gdt() {
    if (!setup_modes()) return;
    for (unsigned i = 0; i <= kFrames; ++i) g_frames[i] = spare_frame();
    const uint64_t F = spare_frame(), G = spare_frame(), H = spare_frame();
    rt::printf("descriptor pages of ours: %#lx %#lx %#lx\n", F, G, H);
    legit(F);
    segments();   // early: the witness is running now
    stale_selectors(F);
    dpl_fixups(F);
    call_gates(F);
    system_descriptors(F);
    reserved_entries(F);
    writable_mappings(F, G);   // leaves the GDT as [F, G]
    other_writers(G, H);
    stale_tlb(F, G, H);        // leaves it as [F, G, H]
    foreign_and_tables(F);
    uint64_t three[3] = {F, G, H};
    (void)set_gdt(three, 1536);
    // The GDT stays: taking us apart must give its frames back.
    bool ok;
    (void)lar(0x0b, &ok);
    check(ok, "attack.pv.gdt.left_installed", "our GDT is gone");
}

// The witness: its data selectors are null (it never loads any) whatever
// another domain loads into its own.
void role_witness() {
    uint64_t ms = rt::cmdline_number("ms", 2500);
    uint64_t until = rt::now_ns() + ms * kMs;
    uint64_t looks = 0, foreign = 0;
    uint16_t first[4] = {};
    while (rt::now_ns() < until) {
        uint16_t s[4];
        read_data_selectors(s);
        ++looks;
        if (s[0] | s[1] | s[2] | s[3]) {
            if (!foreign++)
                for (unsigned i = 0; i < 4; ++i) first[i] = s[i];
            load_data_selectors(0);   // ours again, and look again
        }
        rt::sched_op(abi::SchedOp::yield);
    }
    check(looks > 100 && foreign == 0, "attack.pv.witness.segments_are_its_own",
          "%lu of %lu looks found another domain's selectors (first: ds %#x es %#x fs %#x gs %#x)", foreign, looks,
          first[0], first[1], first[2], first[3]);
}

}  // namespace pv
