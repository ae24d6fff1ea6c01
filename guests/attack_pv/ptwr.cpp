// Writable page tables (kernel/core/src/ptwr.cpp): a guest kernel's direct
// write to one of its own L1 tables, through a read-only mapping of it, is
// emulated through the same checks as mmu_update.
//
// What must hold: only a write from guest kernel mode, into an L1 of the
// writer's that is validated and in use, inside one entry, of a value
// mmu_update would take, is emulated; everything else -- a write to its L2,
// L3 or L4, an entry naming another domain's frame (every frame of the
// machine that is not ours is tried, the victim's among them) or a frame
// past RAM, one of its own page tables writable, flags no L1 entry may carry
// (PAT, cache attributes, the grant bit, reserved bits), a PSE bit in an
// L2, a write straddling two entries (or a page boundary), a write from
// user mode -- is the page fault it caused, delivered to the guest, with the
// table unchanged. And an entry taken away by a direct write must not leave
// a writable translation to a frame that then becomes a page table.

#include "env.hpp"

namespace pv {

namespace {

constexpr unsigned kL1Win = 3, kL2Win = 5;   // g_win[2] stays an ordinary page before the L1's alias

// Stores of each size at `p`; true if they faulted (the fault is in g_caught).
bool store8(volatile void* p, uint64_t v) {
    arm();
    asm volatile(PV_PROBE_BEGIN "movq %[v], (%[p])" PV_PROBE_END : : [v] "r"(v), [p] "r"(p) : "r11", "memory");
    return g_caught.count != 0;
}
bool store4(volatile void* p, uint32_t v) {
    arm();
    asm volatile(PV_PROBE_BEGIN "movl %[v], (%[p])" PV_PROBE_END : : [v] "r"(v), [p] "r"(p) : "r11", "memory");
    return g_caught.count != 0;
}
bool store2(volatile void* p, uint16_t v) {
    arm();
    asm volatile(PV_PROBE_BEGIN "movw %[v], (%[p])" PV_PROBE_END : : [v] "r"(v), [p] "r"(p) : "r11", "memory");
    return g_caught.count != 0;
}
uint64_t xchg8(volatile uint64_t* p, uint64_t v) {
    asm volatile("xchgq %[v], (%[p])" : [v] "+r"(v) : [p] "r"(p) : "memory");
    return v;
}
bool cmpxchg8(volatile uint64_t* p, uint64_t expect, uint64_t v) {
    uint8_t z;
    asm volatile("lock cmpxchgq %[v], (%[p])\n\tsetz %[z]" : "+a"(expect), [z] "=r"(z) : [v] "r"(v), [p] "r"(p) : "memory", "cc");
    return z;
}
void lock_btr(volatile uint64_t* p, unsigned bit) {
    asm volatile("lock btrq %[b], (%[p])" : : [b] "r"(uint64_t(bit)), [p] "r"(p) : "memory", "cc");
}
void lock_or(volatile uint64_t* p, uint64_t v) { asm volatile("lock orq %[v], (%[p])" : : [v] "r"(v), [p] "r"(p) : "memory", "cc"); }

void invlpg(uint64_t va) { (void)mmuext1(abi::MmuextCmd::invlpg_local, va); }
uint64_t read_va(uint64_t va) { return *reinterpret_cast<volatile uint64_t*>(va); }
uint64_t tag_of(const Scratch&, unsigned i) { return 0x5343524154434800ull | i; }

Scratch g_s;

// The page fault a refused write must give: at `addr`, present + write.
bool refused_write(uint64_t addr) {
    return g_caught.count == 1 && g_caught.vector == 14 && (g_caught.error & 3) == 3 && g_caught.cr2 == addr;
}

void legit() {
    Scratch& s = g_s;
    volatile uint64_t* e = s.l1_alias;
    bool f1 = store8(&e[20], pte(s.data[1], true));
    invlpg(Scratch::va(20));
    bool m1 = read_va(Scratch::va(20)) == tag_of(s, 1);
    uint64_t old = xchg8(&e[20], pte(s.data[2], true));
    invlpg(Scratch::va(20));
    bool m2 = read_va(Scratch::va(20)) == tag_of(s, 2) && (old & rt::kPteAddr) == (s.data[1] << 12);
    bool c1 = cmpxchg8(&e[20], pte(s.data[2], true) | rt::kPteU, pte(s.data[3], true));
    bool c2 = !cmpxchg8(&e[20], 0, pte(s.data[4], true));
    invlpg(Scratch::va(20));
    bool m3 = read_va(Scratch::va(20)) == tag_of(s, 3);
    lock_btr(&e[20], 1);   // read-only now
    invlpg(Scratch::va(20));
    arm();
    uint64_t va20 = Scratch::va(20);
    asm volatile(PV_PROBE_BEGIN "movq $1, (%[p])" PV_PROBE_END : : [p] "r"(va20) : "r11", "memory");
    bool ro = g_caught.count == 1 && g_caught.vector == 14;
    lock_or(&e[20], rt::kPteRw);
    invlpg(Scratch::va(20));
    bool f4 = store4(&e[20], uint32_t(pte(s.data[5], true)));   // the low half: the frame below 4 GiB
    invlpg(Scratch::va(20));
    bool m4 = read_va(Scratch::va(20)) == tag_of(s, 5);
    bool f0 = store8(&e[20], 0);
    check(!f1 && m1 && m2 && c1 && c2 && m3 && ro && !f4 && m4 && !f0, "attack.pv.ptwr.legit_writes_emulated",
          "mov %d/%d, xchg %d, cmpxchg %d/%d/%d, btr made it read-only %d, 4-byte %d/%d, clear %d", !f1, m1, m2, c1, c2,
          m3, ro, !f4, m4, !f0);
}

void upper_levels() {
    Scratch& s = g_s;
    Tables t = own_tables();
    struct {
        const char* what;
        volatile uint64_t* at;
        uint64_t value;
    } cases[] = {
        {"our scratch L2", &s.l2_alias[5], (s.l1 << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteU},
        {"our scratch L2, PSE", &s.l2_alias[6], (s.data[0] << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPtePse},
        {"our L2", &t.ro[2][300], (s.l1 << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteU},
        {"our L2, PSE", &t.ro[2][301], rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPtePse},
        {"our L3", &t.ro[3][300], (s.l2 << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteU},
        {"our L4", &t.ro[4][200], (t.mfn[3] << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteU},
        {"our L4, a hypervisor slot", &t.ro[4][256], (t.mfn[3] << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteU},
        {"our L4, the last hypervisor slot", &t.ro[4][271], 0},
    };
    unsigned ok = 0, n = 0;
    for (auto& c : cases) {
        ++n;
        uint64_t before = *c.at;
        bool faulted = store8(c.at, c.value);
        bool good = faulted && refused_write(rt::ptr(c.at)) && *c.at == before;
        ok += good;
        if (!good)
            rt::printf("evidence: a direct write to %s: faulted %d (vector %lu, error %#lx), entry %#lx -> %#lx\n", c.what,
                       faulted, g_caught.vector, g_caught.error, before, *c.at);
    }
    check(ok == n, "attack.pv.ptwr.upper_levels_fault", "%u of %u writes to L2/L3/L4 faulted and changed nothing", ok, n);
}

void foreign_frames() {
    volatile uint64_t* e = &g_s.l1_alias[30];
    uint64_t tried = 0, accepted = 0, wrong = 0, first = 0;
    uint64_t n = each_foreign_frame([&](uint64_t m) {
        ++tried;
        bool faulted = store8(e, pte(m, tried & 1));
        if (!faulted || *e != 0) {
            if (!accepted++) first = m;
            if (accepted <= 4)
                rt::printf("evidence: a direct write of an entry naming frame %#lx (not ours, M2P says pfn %#lx) was "
                           "emulated: %#lx\n", m, rt::m2p()[m], *e);
            (void)store8(e, 0);
        } else if (!refused_write(rt::ptr(e))) {
            ++wrong;
        }
    });
    const uint64_t beyond[] = {max_ram_frame() + 1, max_ram_frame() + 4096, 0xFFFFFFFFull, (1ull << 40) - 1};
    for (uint64_t m : beyond) {
        ++tried;
        if (!store8(e, pte(m, false)) || *e != 0) {
            if (!accepted++) first = m;
            (void)store8(e, 0);
        }
    }
    rt::printf("direct writes of entries naming every frame that is not ours: %lu frames, %lu accepted\n", n, accepted);
    check(tried > 1000 && accepted == 0 && wrong == 0, "attack.pv.ptwr.foreign_frames_fault",
          "%lu of %lu accepted (first frame %#lx), %lu faults not the write's own", accepted, tried, first, wrong);
}

void own_tables_writable() {
    Scratch& s = g_s;
    Tables t = own_tables();
    const uint64_t frames[] = {s.l1, s.l2, t.mfn[1], t.mfn[2], t.mfn[3], t.mfn[4]};
    volatile uint64_t* e = &s.l1_alias[31];
    unsigned ok = 0, n = 0;
    for (uint64_t m : frames) {
        ++n;
        bool faulted = store8(e, pte(m, true));
        ok += faulted && refused_write(rt::ptr(e)) && *e == 0;
    }
    // The image's own L1 made to map itself writable (through its read-only
    // alias in the initial region).
    uint64_t image_l1 = 0;
    uint64_t slot = rt::l1e_maddr(rt::ptr(g_win[4]), &image_l1);
    auto* image_l1_ro = reinterpret_cast<volatile uint64_t*>(rt::va_of_pfn(rt::m2p()[image_l1]));
    unsigned idx = unsigned((slot & 4095) / 8);
    ++n;
    uint64_t before = image_l1_ro[idx];
    bool faulted = store8(&image_l1_ro[idx], pte(image_l1, true));
    ok += faulted && refused_write(rt::ptr(&image_l1_ro[idx])) && image_l1_ro[idx] == before;
    check(ok == n, "attack.pv.ptwr.own_tables_writable_fault", "%u of %u faulted and changed nothing", ok, n);

    // Read-only is fine (Xen allows it too).
    bool f = store8(e, pte(s.l2, false));
    invlpg(Scratch::va(31));
    uint64_t seen = f ? 0 : read_va(Scratch::va(31) + 8);   // the L2's entry 1 (0)
    bool f0 = store8(e, 0);
    check(!f && seen == 0 && !f0, "attack.pv.ptwr.own_tables_readonly_allowed", "faulted %d/%d", f, f0);
}

void bad_flags() {
    Scratch& s = g_s;
    volatile uint64_t* e = &s.l1_alias[32];
    const uint64_t flags[] = {rt::kPtePse /* PAT */, 0x10 /* PCD */, 0x8 /* PWT */, 1ull << 62 /* grant */,
                              1ull << 52, 1ull << 55, 1ull << 61};
    unsigned ok = 0, n = 0;
    for (uint64_t f : flags) {
        ++n;
        bool faulted = store8(e, pte(s.data[6], true) | f);
        ok += faulted && refused_write(rt::ptr(e)) && *e == 0;
    }
    check(ok == n, "attack.pv.ptwr.bad_flags_fault", "%u of %u faulted and changed nothing", ok, n);
}

// Writes that straddle two entries, or the boundary between an ordinary
// page and the L1's alias: refused as Xen does (its emulator checks the
// address it computes, not the one the fault reports).
void straddling() {
    Scratch& s = g_s;
    auto* bytes = reinterpret_cast<volatile uint8_t*>(s.l1_alias);
    (void)store8(&s.l1_alias[20], pte(s.data[1], true));
    (void)store8(&s.l1_alias[21], pte(s.data[2], true));
    uint64_t e20 = s.l1_alias[20], e21 = s.l1_alias[21];
    unsigned ok = 0, n = 0;
    ++n;
    ok += store8(bytes + 20 * 8 + 4, pte(s.data[3], true)) && s.l1_alias[20] == e20 && s.l1_alias[21] == e21;
    ++n;
    ok += store4(bytes + 20 * 8 + 6, 0x12345678) && s.l1_alias[20] == e20 && s.l1_alias[21] == e21;
    ++n;
    ok += store2(bytes + 20 * 8 + 7, 0x1234) && s.l1_alias[20] == e20 && s.l1_alias[21] == e21;
    check(ok == n, "attack.pv.ptwr.straddling_entries_fault", "%u of %u faulted and changed nothing", ok, n);

    // [an ordinary page of ours][the L1's alias]: 8 bytes from 4 before the boundary.
    static_assert(kL1Win >= 1);
    volatile uint8_t* boundary = reinterpret_cast<volatile uint8_t*>(g_win[kL1Win]);
    uint64_t e0 = s.l1_alias[0];
    volatile uint32_t* tail = reinterpret_cast<volatile uint32_t*>(boundary - 4);
    *tail = 0x7A7A7A7A;
    uint64_t value = pte(s.data[7], true);
    bool faulted = store8(boundary - 4, value);
    uint64_t e0_after = s.l1_alias[0];
    uint32_t tail_after = *tail;
    if (e0_after != e0) {
        rt::printf("evidence: an 8-byte write at 4 bytes before the L1's alias was emulated as a write of %#lx to entry 0 "
                   "(was %#lx, now %#lx); the ordinary page's last 4 bytes: %#x (the CPU would have written %#x there)\n",
                   value, e0, e0_after, tail_after, uint32_t(value));
        (void)store8(&s.l1_alias[0], e0);
    }
    check(faulted && g_caught.vector == 14 && e0_after == e0, "attack.pv.ptwr.straddling_page_boundary_faults",
          "faulted %d (cr2 %#lx), entry 0 %#lx -> %#lx, ordinary page's tail %#x", faulted, g_caught.cr2, e0, e0_after,
          tail_after);
    (void)store8(&s.l1_alias[20], 0);
    (void)store8(&s.l1_alias[21], 0);
}

// From guest user mode: never emulated.
volatile uint64_t g_user_result[4];
void user_writes() {
    Scratch& s = g_s;
    volatile uint64_t* e = &s.l1_alias[24];
    arm();
    uint64_t v = pte(s.data[4], true);
    asm volatile(PV_PROBE_BEGIN "movq %[v], (%[p])" PV_PROBE_END : : [v] "r"(v), [p] "r"(e) : "r11", "memory");
    g_user_result[0] = g_caught.count;
    g_user_result[1] = g_caught.vector;
    g_user_result[2] = g_caught.error;
    g_user_result[3] = g_caught.cr2;
}
void from_user_mode() {
    in_user_mode(user_writes);
    check(g_user_result[0] == 1 && g_user_result[1] == 14 && (g_user_result[2] & 7) == 7 &&
              g_user_result[3] == rt::ptr(&g_s.l1_alias[24]) && g_s.l1_alias[24] == 0,
          "attack.pv.ptwr.user_mode_write_faults", "faults %lu, vector %lu, error %#lx, cr2 %#lx, entry %#lx",
          g_user_result[0], g_user_result[1], g_user_result[2], g_user_result[3], g_s.l1_alias[24]);
}

// An entry taken away by a direct write, with its translation still in the
// TLB: once the frame it mapped becomes a page table, the old translation
// must not reach it.
void stale_tlb() {
    Scratch& s = g_s;
    uint64_t x = spare_frame();
    bool filled = fill_frame(x, nullptr, 0);
    volatile uint64_t* e = &s.l1_alias[40];
    bool f1 = store8(e, pte(x, true));
    invlpg(Scratch::va(40));
    uint64_t va = Scratch::va(40);
    *reinterpret_cast<volatile uint64_t*>(va) = 0;   // the writable translation is in the TLB
    uint64_t old = xchg8(e, 0);                       // no invlpg
    long pin = mmuext1(abi::MmuextCmd::pin_l1_table, x);
    uint64_t victim_like = 0;
    each_foreign_frame([&](uint64_t m) {
        if (!victim_like && m > 0x200) victim_like = m;
    });
    bool faulted = store8(reinterpret_cast<volatile void*>(va), pte(victim_like, true));
    uint64_t w0 = ~0ull;
    if (win_map(6, x, false) == 0) {
        w0 = win_words(6)[0];
        win_restore(6);
    }
    long unpin = mmuext1(abi::MmuextCmd::unpin_table, x);
    check(filled && !f1 && (old & rt::kPteAddr) == (x << 12) && pin == 0 && faulted && w0 == 0 && unpin == 0,
          "attack.pv.ptwr.stale_tlb_after_direct_write_refused",
          "pinned %ld after a direct unmap without a flush; the write through the old translation faulted %d; the pinned "
          "L1's entry 0 is %#lx",
          pin, faulted, w0);
}

}  // namespace

void scenario_ptwr() {
    if (!setup_modes()) return;
    bool built = build_scratch(g_s, kL1Win, kL2Win);
    check(built, "attack.pv.ptwr.scratch_tables", "cannot build the scratch hierarchy");
    if (!built) return;
    rt::printf("scratch L2 %#lx, L1 %#lx (read-only at %p)\n", g_s.l2, g_s.l1, static_cast<volatile void*>(g_s.l1_alias));
    legit();
    upper_levels();
    own_tables_writable();
    bad_flags();
    straddling();
    from_user_mode();
    stale_tlb();
    foreign_frames();
    teardown_scratch(g_s, kL1Win, kL2Win);
}

}  // namespace pv
