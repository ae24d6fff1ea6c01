// Argument pools and one generator per hypercall (docs/hcfuzz.md). A
// generator fills in a Call and registers, with post(), what its result
// must satisfy: values that must be refused whatever state the fuzzer is in
// (another domain's frame, a frame beyond RAM, a hypervisor address, a
// writable mapping of a running page table, a domain it holds no capability
// for, ...) get a check; values whose fate depends on state (a scratch frame
// that may or may not be a page table just now) get none.

#include "hcfuzz.hpp"

#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/traps.hpp>

namespace hcf {

namespace {

Rng& R = g_rng;

bool canonical(uint64_t a) {
    uint64_t top = a >> 47;
    return top == 0 || top == 0x1FFFF;
}
bool hyp_range(uint64_t a) { return a >= abi::kHypervisorVirtStart && a < abi::kHypervisorVirtEnd; }
// A code address the hypervisor must refuse as a handler or callback.
bool bad_code_addr(uint64_t a) { return a && (!canonical(a) || hyp_range(a)); }

uint64_t region_end() { return rt::initial_region_end(); }

// ---------------------------------------------------------------------------
// Domain ids.
bool has_event_cap(uint64_t d) {
    d &= 0xFFFF;
    return d != 0xFFFF && (d == g_ids.peer || d == g_ids.victim || d == g_ids.console || d == g_ids.store);
}

uint64_t pick_dom_raw() {
    switch (R.below(12)) {
    case 0: return abi::kDomidSelf;
    case 1: return g_ids.self;
    case 2: return g_ids.peer;
    case 3: return g_ids.victim;
    case 4: return g_ids.console;
    case 5: return g_ids.store;
    case 6: return 0;   // the builder
    case 7: return R.below(21);
    case 8: return R.range(0x7FF1, 0x7FFF);
    case 9: return 0xFFFF;
    case 10: return R.below(0x10000);
    default: return R.below(128);
    }
}

// ---------------------------------------------------------------------------
// Page-table entry values.

// Flags that make an entry invalid at `level` whatever frame it names.
uint64_t bad_flag(unsigned level) {
    const uint64_t l1[] = {kPtePse /* PAT */, kPtePcd, kPtePwt, kPteGrant, 1ull << 52, 1ull << 55, 1ull << 61};
    const uint64_t up[] = {kPtePse, kPteG, kPtePcd, kPtePwt, kPteGrant, 1ull << 53, 1ull << 60};
    return level == 1 ? R.pick(l1) : R.pick(up);
}

uint64_t rand_flags() {
    uint64_t f = kPteP | kPteA;
    if (R.pct(60)) f |= kPteRw;
    if (R.pct(50)) f |= kPteD;
    if (R.pct(50)) f |= kPteU;
    if (R.pct(15)) f |= kPteNx;
    if (R.pct(15)) f |= R.below(8) << 9;   // the available bits
    return f;
}

uint64_t pte(uint64_t mfn, uint64_t flags) { return ((mfn << 12) & kPteAddr) | flags; }

// A value for an entry of a clean frame (any level): it never names a
// running page table or a tainted frame (present), so nothing reachable from
// the scratch slot can reach them. *bad_l1: invalid as an L1 entry whatever
// the state (for update_va_mapping, which always writes an L1).
uint64_t pte_clean(bool* bad_l1) {
    *bad_l1 = false;
    unsigned r = unsigned(R.below(100));
    if (r < 12) return 0;
    if (r < 20) return R.next() & ~kPteP & ~kPteGrant;
    if (r < 55) return pte(frame_clean(), rand_flags());
    if (r < 75) return pte(frame_live_rw(), rand_flags());
    if (r < 88) {
        *bad_l1 = true;
        return pte(frame_clean(), rand_flags() | bad_flag(1));
    }
    *bad_l1 = true;
    return pte(frame_bad(), rand_flags());
}

// A value that must be refused in a running page table of `level` (and in
// any L1, for level 1).
uint64_t pte_bad(unsigned level) {
    switch (R.below(level == 1 ? 4 : 5)) {
    case 0: return pte(frame_bad(), rand_flags());
    case 1: return pte(frame_clean(), rand_flags() | bad_flag(level));
    case 2: {
        if (level == 1) {   // a running page table, writable
            return pte(frame_live_pt(), rand_flags() | kPteRw);
        }
        // A running table of another level than the one this entry needs.
        for (int t = 0; t < 8; ++t) {
            unsigned l;
            uint64_t m = frame_live_pt(&l);
            if (l != level - 1) return pte(m, rand_flags());
        }
        return pte(frame_bad(), rand_flags());
    }
    case 3: return pte(level == 1 ? frame_bad() : frame_live_rw(), rand_flags());
    default: return pte(g_fr.ro_frame, rand_flags());   // 0xFF: no level validates it
    }
}

unsigned pick_index() {
    const unsigned idx[] = {0, 1, 2, 255, 256, 261, 271, 272, 510, 511};
    return R.pct(40) ? R.pick(idx) : unsigned(R.below(512));
}

// ---------------------------------------------------------------------------
// Counts and batches.

// Where a batch of n T lives and how many the call claims.
template <typename T>
struct Batch {
    T* p = nullptr;            // the built entries (n of them)
    uint64_t n = 0;
    uint64_t ptr = 0;          // what the call is given
    uint64_t count = 0;        // what the call claims
    bool hostile = false;      // ptr cannot be read
    bool over = false;         // count runs past what was built (zeros, then a guard)
    uint64_t judged() const { return hostile ? 0 : (count < n ? count : n); }
};

template <typename T>
Batch<T> make_batch(uint64_t n, bool allow_over = true) {
    Batch<T> b;
    b.n = n;
    unsigned mode = unsigned(R.below(100));
    if (mode >= 80 && mode < 92 && allow_over) {
        // Over-read: the array at the end of args, zeros and a guard behind it.
        void* t = alloc_tail(sizeof(T) * n + 8 * R.below(4) * (R.pct(50) ? 1 : 64));
        if (t) {
            b.p = static_cast<T*>(t);
            b.over = true;
            const uint64_t huge[] = {n + 1, n + 3, n + 64, 0x7FFFFFFF, 0xFFFFFFFF, 1ull << 20, ~0ull, 1ull << 63,
                                     0x80000000ull | (n + 1)};
            b.count = R.pick(huge);
            b.ptr = va(b.p);
            return b;
        }
    }
    b.p = alloc<T>(n);
    b.ptr = va(b.p);
    if (mode < 72) {
        b.count = n;
    } else if (mode < 80) {
        b.count = R.below(n + 1);
    } else if (mode < 92) {
        b.count = n;   // over-read was wanted but the tail is taken
    } else {
        // Unreadable, or read-only and all 0xFF: no batch of these hypercalls
        // does anything with that (and the results cannot be written back).
        b.hostile = true;
        b.ptr = R.pct(30) ? va(g_area.ro) + 8 * R.below(64) : ptr_hostile_in();
        const uint64_t c[] = {1, n, 0, 64, ~0ull};
        b.count = R.pick(c);
    }
    return b;
}

uint64_t batch_size() {
    unsigned r = unsigned(R.below(100));
    if (g_b.in_mc) return r < 50 ? 1 : r < 95 ? R.range(2, 8) : R.range(9, 32);
    if (r < 40) return 1;
    if (r < 80) return R.range(2, 8);
    if (r < 97) return R.range(9, 70);
    return R.range(71, 300);
}

// Multicall result sentinel: an entry still holding it never ran.
constexpr uint64_t kResultSentinel = 0x7EADBEEF7EADBEEFull;
constexpr int16_t kStatusSentinel = 0x5A5A;

// ---------------------------------------------------------------------------
// Generators. `c.nr` is set by the caller.

void gen_random_args(Call& c) {
    for (auto& x : c.a) x = rand_u64();
}

// set_trap_table(table)
void gen_set_trap_table(Call& c) {
    g_b.dirty |= kDirtyTraps;
    unsigned r = unsigned(R.below(100));
    if (r < 10) {
        c.a[0] = 0;   // clears every handler
        return;
    }
    if (r < 25) {
        c.a[0] = ptr_hostile_in();
        if (c.a[0]) post(kMustFail, "set_trap_table.bad_pointer_accepted");
        return;
    }
    uint64_t n = R.pct(90) ? R.range(1, 8) : R.range(60, 130);
    bool terminated = R.pct(85);
    abi::TrapInfo* t = nullptr;
    if (!terminated) t = static_cast<abi::TrapInfo*>(alloc_tail(sizeof(abi::TrapInfo) * n));
    if (!t) {
        terminated = true;
        t = alloc<abi::TrapInfo>(n + 1);
    }
    bool bad = false;
    for (uint64_t i = 0; i < n; ++i) {
        t[i].vector = uint8_t(R.below(256));
        t[i].flags = uint8_t(R.pct(80) ? R.below(8) : R.below(256));
        t[i].cs = R.pct(80) ? abi::kFlatKernelCs : uint16_t(R.below(0x10000));
        t[i].address = va_code();
        if (t[i].address == 0) break;   // the table ends here
        bad |= bad_code_addr(t[i].address);
    }
    c.a[0] = va(t);
    if (bad) post(kMustFail, "set_trap_table.bad_handler_accepted");
}

// One mmu_update request; *bad: must be refused whatever the state.
void gen_mmu_req(abi::MmuUpdate& q, bool* bad) {
    *bad = false;
    unsigned r = unsigned(R.below(100));
    uint64_t cmd = R.pct(80) ? abi::kMmuNormalPtUpdate : abi::kMmuPtUpdatePreserveAd;
    bool b1;
    if (r < 38) {   // anything clean into a scratch frame
        uint64_t m = frame_write_target();
        q.ptr = (m << 12) | (uint64_t(pick_index()) * 8) | cmd;
        q.val = pte_clean(&b1);
    } else if (r < 42) {   // the scratch slot of our running L4
        q.ptr = (g_fr.l4 << 12) | (kScratchSlot * 8) | cmd;
        q.val = pte_clean(&b1);
    } else if (r < 62) {   // a running page table: only values that must be refused
        unsigned level;
        uint64_t m = frame_live_pt(&level);
        unsigned idx = pick_index();
        if (level == 4 && idx == kScratchSlot) idx = 0;
        q.ptr = (m << 12) | (uint64_t(idx) * 8) | cmd;
        if (level == 4 && idx >= 256 && idx <= 271) q.val = pte_clean(&b1);   // hypervisor slots: nothing goes
        else q.val = pte_bad(level);
        *bad = true;
    } else if (r < 72) {   // a frame that is not ours
        q.ptr = (frame_bad() << 12) | (uint64_t(pick_index()) * 8) | cmd;
        q.val = R.pct(50) ? pte_clean(&b1) : R.next();
        *bad = true;
    } else if (r < 76) {   // misaligned
        q.ptr = (frame_write_target() << 12) | (uint64_t(pick_index()) * 8) | 4 | cmd;
        q.val = pte_clean(&b1);
        *bad = true;
    } else if (r < 86) {   // the machine-to-phys table
        if (R.pct(70)) {
            uint64_t m = frame_write_target();
            q.ptr = (m << 12) | (R.below(512) * 8) | abi::kMmuMachphysUpdate;
            q.val = R.pct(50) ? R.below(rt::start_info().nr_pages * 2) : R.next();
        } else {
            q.ptr = (frame_bad() << 12) | abi::kMmuMachphysUpdate;
            q.val = R.below(4096);
            *bad = true;
        }
    } else if (r < 91) {   // no such command
        q.ptr = (R.pct(50) ? (frame_write_target() << 12) : R.next()) | 3;
        q.val = R.next();
        *bad = true;
    } else {   // anything, at a frame that is not ours
        q.ptr = R.next();
        uint64_t m = (q.ptr & ~3ull) >> 12;
        if (is_own(m)) q.ptr = (frame_bad() << 12) | (q.ptr & 0xFFF);
        q.val = R.next();
        *bad = true;
    }
}

// The foreigndom argument of mmu_update/mmuext_op. *others: a domain we hold
// no Domain capability for (so the whole call must be refused).
uint64_t pick_foreigndom(bool* others) {
    *others = false;
    if (R.pct(88)) {
        uint64_t d = R.pct(80) ? abi::kDomidSelf : g_ids.self;
        if (R.pct(5)) d |= R.next() & 0xFFFF0000ull;
        return d;
    }
    uint64_t d = pick_dom_raw();
    *others = !is_self_id(d);
    return d;
}

// mmu_update(reqs, count, done, foreigndom)
void gen_mmu_update(Call& c) {
    uint64_t n = batch_size();
    if (!g_b.in_mc && R.one_in(400)) n = R.range(1000, 5000);   // a long one: continuations
    auto b = make_batch<abi::MmuUpdate>(n);
    uint64_t first_bad = ~0ull;
    for (uint64_t i = 0; i < n; ++i) {
        bool bad;
        gen_mmu_req(b.p[i], &bad);
        if (bad && first_bad == ~0ull) first_bad = i;
    }
    uint64_t* done = nullptr;
    bool done_hostile = false;
    unsigned dr = unsigned(R.below(100));
    if (dr < 75) {
        done = alloc<uint64_t>();
        *done = 0;
        c.a[2] = va(done);
    } else if (dr < 88) {
        c.a[2] = 0;
    } else {
        c.a[2] = ptr_hostile_out();
        done_hostile = c.a[2] != 0;
    }
    bool others;
    c.a[0] = b.ptr;
    c.a[1] = b.count;
    c.a[3] = pick_foreigndom(&others);
    if (others) post(kMustFail, "mmu_update.foreign_domain_accepted");
    if (b.hostile && (b.count & 0x7FFFFFFF)) post(kMustFail, "mmu_update.bad_pointer_accepted");
    (void)done_hostile;
    // Only the requests built and claimed are judged (a count with bit 31
    // set is taken as a continuation of that many).
    uint64_t claimed = b.count & ~(1ull << 31);
    if (!b.hostile && first_bad < n && first_bad < claimed)
        post(kDoneAtMost, "mmu_update.bad_request_accepted", done ? va(done) : 0, first_bad, claimed, va(&b.p[first_bad]));
}

// One mmuext_op; *bad: must be refused.
void gen_mmuext(abi::MmuextOp& op, bool* bad) {
    using C = abi::MmuextCmd;
    *bad = false;
    op.arg1.mfn = 0;
    op.arg2.src_mfn = 0;
    unsigned r = unsigned(R.below(100));
    auto own_table_candidate = [&]() -> uint64_t {
        unsigned k = unsigned(R.below(100));
        if (k < 45) return frame_clean();
        if (k < 57) return g_fr.tainted[R.below(kTainted)];
        if (k < 65 && g_fr.n_grant > 1) return g_fr.grant[1 + R.below(g_fr.n_grant - 1)];
        return frame_clean();
    };
    if (r < 28) {   // pin
        unsigned level = unsigned(R.range(1, 4));
        op.cmd = uint32_t(level - 1);
        unsigned k = unsigned(R.below(100));
        if (k < 60) {
            op.arg1.mfn = own_table_candidate();
        } else if (k < 75) {
            unsigned l;
            op.arg1.mfn = frame_live_pt(&l);
            *bad = l != level;
        } else if (k < 82) {
            op.arg1.mfn = R.pct(70) ? frame_live_rw() : g_fr.ro_frame;
            *bad = true;
        } else {
            op.arg1.mfn = R.pct(90) ? frame_bad() : R.next();
            *bad = !is_own(op.arg1.mfn);
        }
    } else if (r < 38) {   // unpin
        op.cmd = uint32_t(C::unpin_table);
        unsigned k = unsigned(R.below(100));
        if (k < 70) op.arg1.mfn = own_table_candidate();
        else if (k < 85) op.arg1.mfn = frame_live_pt();
        else {
            op.arg1.mfn = frame_bad();
            *bad = true;
        }
    } else if (r < 42) {   // new_baseptr: our own L4 again, or something refused
        op.cmd = uint32_t(C::new_baseptr);
        unsigned k = unsigned(R.below(100));
        if (k < 40) {
            op.arg1.mfn = g_fr.l4;
        } else if (k < 60) {
            unsigned l;
            uint64_t m = frame_live_pt(&l);
            op.arg1.mfn = l == 4 ? frame_bad() : m;
            *bad = true;
        } else if (k < 75) {
            op.arg1.mfn = R.pct(70) ? frame_live_rw() : g_fr.ro_frame;
            *bad = true;
        } else {
            op.arg1.mfn = frame_bad();
            *bad = true;
        }
    } else if (r < 47) {   // new_user_baseptr: we never run in user mode
        op.cmd = uint32_t(C::new_user_baseptr);
        unsigned k = unsigned(R.below(100));
        if (k < 15) op.arg1.mfn = 0;
        else if (k < 30) op.arg1.mfn = g_fr.l4;
        else if (k < 70) op.arg1.mfn = own_table_candidate();
        else if (k < 85) {
            unsigned l;
            uint64_t m = frame_live_pt(&l);
            op.arg1.mfn = l == 4 ? frame_live_rw() : m;
            *bad = true;
        } else {
            op.arg1.mfn = frame_bad();
            *bad = true;
        }
    } else if (r < 62) {   // flushes
        const C cmds[] = {C::tlb_flush_local, C::invlpg_local, C::tlb_flush_multi, C::invlpg_multi, C::tlb_flush_all,
                          C::invlpg_all};
        C cmd = R.pick(cmds);
        op.cmd = uint32_t(cmd);
        unsigned k = unsigned(R.below(100));
        op.arg1.linear_addr = k < 30 ? va_scratch() : k < 50 ? va_live() : k < 65 ? va_hyp() : k < 80 ? va_unmapped()
                                                                                            : va_noncanonical();
        if ((cmd == C::invlpg_local || cmd == C::invlpg_all) && !canonical(op.arg1.linear_addr)) *bad = true;
        if (cmd == C::tlb_flush_multi || cmd == C::invlpg_multi) {
            if (R.pct(75)) {
                uint64_t* mask = alloc<uint64_t>();
                *mask = R.pct(70) ? 1 : R.next();
                op.arg2.vcpumask = va(mask);
            } else {
                op.arg2.vcpumask = ptr_hostile_in();
                *bad = true;
            }
        }
    } else if (r < 66) {   // set_ldt
        op.cmd = uint32_t(C::set_ldt);
        op.arg1.linear_addr = R.pct(50) ? va_scratch() : rand_u64();
        const uint32_t ents[] = {0, 1, 8, 8192, 8193, 0xFFFFFFFF};
        op.arg2.nr_ents = R.pick(ents);
    } else if (r < 75) {   // clear_page
        op.cmd = uint32_t(C::clear_page);
        unsigned k = unsigned(R.below(100));
        if (k < 65) op.arg1.mfn = frame_write_target();
        else if (k < 80) {
            op.arg1.mfn = frame_live_pt();
            *bad = true;
        } else {
            op.arg1.mfn = frame_bad();
            *bad = true;
        }
    } else if (r < 86) {   // copy_page
        op.cmd = uint32_t(C::copy_page);
        unsigned k = unsigned(R.below(100));
        bool dst_tainted = false;
        if (k < 50) op.arg1.mfn = frame_clean();
        else if (k < 65) {
            op.arg1.mfn = g_fr.tainted[R.below(kTainted)];
            dst_tainted = true;
        } else if (k < 80) {
            op.arg1.mfn = frame_live_pt();
            *bad = true;
        } else {
            op.arg1.mfn = frame_bad();
            *bad = true;
        }
        // Into a clean frame only what is clean (a copy of a running table,
        // later linked, would reach it).
        unsigned s = unsigned(R.below(100));
        if (s < 60) op.arg2.src_mfn = frame_clean();
        else if (s < 70) op.arg2.src_mfn = g_fr.ro_frame;
        else if (s < 85 && (dst_tainted || *bad)) op.arg2.src_mfn = frame_own_any();
        else {
            op.arg2.src_mfn = frame_bad();
            *bad = true;
        }
    } else if (r < 89) {
        op.cmd = uint32_t(R.pct(50) ? C::flush_cache : C::flush_cache_global);
        *bad = g_caps.only_grant_event;   // needs device access
    } else if (r < 92) {
        op.cmd = uint32_t(R.pct(50) ? C::mark_super : C::unmark_super);
        op.arg1.mfn = R.pct(50) ? frame_clean() : frame_bad();
    } else {   // no such command
        const uint32_t unknown[] = {14, 21, 22, 31, 64, 255, 0x80000000u, 0xFFFFFFFFu};
        op.cmd = R.pct(70) ? R.pick(unknown) : uint32_t(R.range(21, 0xFFFFFFFF));
        op.arg1.mfn = R.pct(50) ? frame_bad() : rand_u64();
        op.arg2.src_mfn = rand_u64();
        *bad = true;
    }
}

// mmuext_op(ops, count, done, foreigndom)
void gen_mmuext_op(Call& c) {
    uint64_t n = batch_size();
    bool heavy = !g_b.in_mc && R.one_in(2000);
    if (heavy) n = R.range(500, 4095);
    auto b = make_batch<abi::MmuextOp>(n);
    uint64_t first_bad = ~0ull;
    if (heavy && R.pct(50)) {
        // Many page copies: clean into tainted (a long non-preemptible run if
        // the budget does not count them).
        uint64_t dst = g_fr.tainted[R.below(kTainted)], src = frame_clean();
        for (uint64_t i = 0; i < n; ++i) {
            b.p[i].cmd = uint32_t(abi::MmuextCmd::copy_page);
            b.p[i].arg1.mfn = dst;
            b.p[i].arg2.src_mfn = src;
        }
    } else {
        for (uint64_t i = 0; i < n; ++i) {
            bool bad;
            gen_mmuext(b.p[i], &bad);
            if (bad && first_bad == ~0ull) first_bad = i;
        }
    }
    uint64_t* done = nullptr;
    unsigned dr = unsigned(R.below(100));
    if (dr < 75) {
        done = alloc<uint64_t>();
        c.a[2] = va(done);
    } else if (dr < 88) {
        c.a[2] = 0;
    } else {
        c.a[2] = ptr_hostile_out();
    }
    bool others;
    c.a[0] = b.ptr;
    c.a[1] = b.count;
    c.a[3] = pick_foreigndom(&others);
    if (others) post(kMustFail, "mmuext_op.foreign_domain_accepted");
    if (b.hostile && (b.count & 0x7FFFFFFF)) post(kMustFail, "mmuext_op.bad_pointer_accepted");
    uint64_t claimed = b.count & ~(1ull << 31);
    if (!b.hostile && first_bad < n && first_bad < claimed)
        post(kDoneAtMost, "mmuext_op.bad_op_accepted", done ? va(done) : 0, first_bad, claimed, va(&b.p[first_bad]));
}

// update_va_mapping(va, pte, flags) and update_va_mapping_otherdomain(va, pte, flags, dom)
void gen_update_va_mapping(Call& c) {
    bool bad = false, b1 = false;
    unsigned r = unsigned(R.below(100));
    if (r < 45) {
        c.a[0] = va_scratch();
        c.a[1] = pte_clean(&b1);
        bad = b1;
    } else if (r < 70) {   // our own mappings: only what must be refused
        c.a[0] = va_live() & ~0xFFFull;
        if (R.pct(20)) c.a[0] |= R.below(4096);
        c.a[1] = pte_bad(1);
        bad = true;
    } else if (r < 90) {
        unsigned k = unsigned(R.below(3));
        c.a[0] = k == 0 ? va_hyp() : k == 1 ? va_noncanonical() : va_unmapped();
        c.a[1] = pte_clean(&b1);
        bad = true;
    } else {
        c.a[0] = va_scratch();
        c.a[1] = 0;
    }
    uint64_t flush = R.below(4);
    unsigned f = unsigned(R.below(100));
    if (f < 55) {
        c.a[2] = flush;
    } else if (f < 75) {
        c.a[2] = abi::kUvmfAll | flush;
    } else if (f < 90) {
        uint64_t* mask = alloc<uint64_t>();
        *mask = R.pct(70) ? 1 : R.next();
        c.a[2] = va(mask) | flush;
    } else {
        uint64_t p = ptr_hostile_in() & ~3ull;
        c.a[2] = p | flush;
        if (p != abi::kUvmfLocal && p != abi::kUvmfAll) bad = true;   // an unreadable vCPU mask
    }
    if (c.nr == uint64_t(abi::Hypercall::update_va_mapping_otherdomain)) {
        c.a[3] = pick_dom_raw();
        if (!is_self_id(c.a[3])) bad = true;
    }
    if (bad) post(kMustFail, c.nr == 14 ? "update_va_mapping.bad_mapping_accepted"
                                        : "update_va_mapping_otherdomain.accepted");
}

// The start index of a continued reservation op: the hypervisor reads or
// writes extent_start + 8 * start, which must stay within what was built (a
// hostile pointer: within a few words of it) or be far beyond anything
// mapped (non-canonical).
uint64_t safe_start(uint64_t built) {
    unsigned r = unsigned(R.below(100));
    if (r < 85) return 0;
    if (r < 93) return R.below((built < 3 ? 3 : built) + 1);
    return R.pick((const uint64_t[]){1ull << 45, 1ull << 50, 1ull << 57, 0x03FFFFFFFFFFFFFFull});
}

// A gain slice of Area::gain, or 0 if every slice is taken.
uint64_t* gain_slice() {
    if (g_b.gain_slices >= kGainSlices) return nullptr;
    auto* s = reinterpret_cast<uint64_t*>(g_area.gain) + g_b.gain_slices++ * kGainSliceEntries;
    for (unsigned i = 0; i < kGainSliceEntries; ++i) s[i] = ~0ull;
    return s;
}

// memory_op(cmd, arg)
void gen_memory_op(Call& c) {
    using M = abi::MemoryOp;
    unsigned r = unsigned(R.below(100));
    uint64_t start = 0;
    if (r < 22) {   // increase_reservation / populate_physmap
        M op = R.pct(50) ? M::increase_reservation : M::populate_physmap;
        auto* res = alloc<abi::XenMemoryReservation>();
        const uint64_t ns[] = {1, 1, 2, 3, 4, 8, 0, 1000, ~0ull};
        res->nr_extents = R.pick(ns);
        res->extent_order = R.pct(90) ? 0 : uint32_t(R.pick((const uint64_t[]){1, 9, 18, 31, 0xFFFFFFFF}));
        res->mem_flags = R.pct(90) ? 0 : uint32_t(R.next());
        bool others = false;
        if (R.pct(88)) res->domid = R.pct(80) ? abi::kDomidSelf : g_ids.self;
        else {
            res->domid = uint16_t(pick_dom_raw());
            others = !is_self_id(res->domid);
        }
        // Frames we gain are written into a gain slice, and only by the last
        // entry of a multicall: an earlier one could make a frame a later
        // entry takes for another domain's ours.
        uint64_t* slice = R.pct(75) && (!g_b.in_mc || g_b.mc_last) ? gain_slice() : nullptr;
        if (slice) {
            start = R.pct(85) ? 0 : R.below(5);
            res->extent_start = va(slice);
        } else {
            res->extent_start = ptr_hostile_out();
            start = safe_start(0);
        }
        bool hostile_arg = false;
        c.a[1] = ptr_in(res, &hostile_arg, 8);
        c.a[0] = uint64_t(op) | (start << abi::kMemopExtentShift);
        if (others) post(kMustFail, "memory_op.reservation_of_another_domain_accepted");
        if (hostile_arg) post(kMustFail, "memory_op.bad_pointer_accepted");
        else if (slice && !others) post(kGain, "memory_op.gain", va(slice), start);
        else if (!others) post(kRcAtMost, "memory_op.gain_to_bad_pointer_kept", 0, start);
    } else if (r < 40) {   // decrease_reservation: spares, then maybe something that must stay
        auto* res = alloc<abi::XenMemoryReservation>();
        uint64_t k = g_fr.n_spare ? R.below(g_fr.n_spare < 5 ? g_fr.n_spare + 1 : 5) : 0;
        bool with_bad = R.pct(50);
        uint64_t n = k + (with_bad ? 1 : 0);
        auto b = make_batch<uint64_t>(n ? n : 1);
        // Distinct spares.
        uint64_t first = g_fr.n_spare ? R.below(g_fr.n_spare) : 0;
        for (uint64_t i = 0; i < k; ++i) b.p[i] = g_fr.spare[(first + i) % g_fr.n_spare];
        uint64_t first_bad = ~0ull;
        if (with_bad) {
            first_bad = k;
            unsigned w = unsigned(R.below(6));
            uint64_t m = w == 0 ? frame_bad() : w == 1 ? frame_live_pt() : w == 2 ? frame_live_rw()
                       : w == 3 && g_fr.n_grant ? g_fr.grant[R.below(g_fr.n_grant)]
                       : w == 4 ? g_fr.shared_info : frame_bad();
            b.p[k] = m;
        }
        res->extent_start = b.ptr;
        res->nr_extents = b.count;
        res->extent_order = R.pct(95) ? 0 : uint32_t(R.range(1, 20));
        bool others = false;
        if (R.pct(90)) res->domid = R.pct(80) ? abi::kDomidSelf : g_ids.self;
        else {
            res->domid = uint16_t(pick_dom_raw());
            others = !is_self_id(res->domid);
        }
        start = b.hostile ? safe_start(0) : safe_start(n);
        bool hostile_arg = false;
        c.a[1] = ptr_in(res, &hostile_arg, 8);
        c.a[0] = uint64_t(M::decrease_reservation) | (start << abi::kMemopExtentShift);
        if (others) post(kMustFail, "memory_op.decrease_of_another_domain_accepted");
        if (hostile_arg) post(kMustFail, "memory_op.bad_pointer_accepted");
        if (!others && !hostile_arg && res->extent_order == 0) {
            if (!b.hostile) post(kGiveBack, "memory_op.give_back", b.ptr, start);
            if (b.hostile) post(kRcAtMost, "memory_op.decrease_unreadable_accepted", 0, start);
            else if (first_bad != ~0ull && start <= first_bad && first_bad < b.count)
                post(kRcAtMost, "memory_op.decrease_of_frame_in_use_accepted", 0, first_bad);
        }
    } else if (r < 45) {
        c.a[0] = uint64_t(M::maximum_ram_page) | (R.pct(20) ? R.next() << 6 : 0);
        c.a[1] = rand_u64();
    } else if (r < 55) {   // current / maximum reservation
        auto* d = alloc<uint16_t>();
        *d = uint16_t(R.pct(60) ? (R.pct(50) ? abi::kDomidSelf : g_ids.self) : pick_dom_raw());
        bool hostile;
        c.a[0] = uint64_t(R.pct(50) ? M::current_reservation : M::maximum_reservation);
        c.a[1] = ptr_in(d, &hostile, 15);
        if (hostile) post(kMustFail, "memory_op.bad_pointer_accepted");
        else if (!is_self_id(*d)) post(kMustFail, "memory_op.reservation_of_another_domain_read");
    } else if (r < 65) {   // machphys_mfn_list
        auto* ml = alloc<abi::XenMachphysMfnList>();
        const uint32_t maxes[] = {0, 1, 2, 16, 512, 0xFFFFFFFF};
        ml->max_extents = R.pick(maxes);
        bool hostile_out;
        ml->extent_start = ptr_out(&hostile_out);
        bool hostile;
        c.a[0] = uint64_t(M::machphys_mfn_list);
        c.a[1] = ptr_in(ml, &hostile, 15);
        if (hostile || (hostile_out && ml->max_extents > 0)) post(kMustFail, "memory_op.machphys_mfn_list_bad_pointer");
    } else if (r < 72) {   // machphys_mapping
        bool hostile;
        c.a[0] = uint64_t(M::machphys_mapping);
        c.a[1] = ptr_out(&hostile);
        if (hostile) post(kMustFail, "memory_op.machphys_mapping_bad_pointer");
    } else if (r < 92) {   // the others, known to Xen
        const M others[] = {M::add_to_physmap, M::memory_map, M::machine_memory_map, M::exchange, M::set_memory_map,
                            M::maximum_gpfn, M::remove_from_physmap, M::set_pod_target, M::get_pod_target,
                            M::get_sharing_freed_pages, M::get_sharing_shared_pages, M::paging_op, M::access_op,
                            M::sharing_op, M::add_to_physmap_batch, M::claim_pages, M::machphys_compat_mfn_list,
                            M::get_vnumainfo, M::reserved_device_memory_map, M::acquire_resource};
        M op = R.pick(others);
        auto* raw = alloc<uint64_t>(12);
        bool h;
        for (unsigned i = 0; i < 12; ++i) raw[i] = R.pct(40) ? ptr_out(&h) : R.pct(50) ? frame_bad() : rand_u64();
        if (op == M::exchange) {
            // in: frames that are not ours (an exchange of them must fail);
            // out: nowhere we could lose frames to.
            auto* in = alloc<uint64_t>(2);
            in[0] = frame_bad();
            in[1] = frame_bad();
            auto* ex = reinterpret_cast<abi::XenMemoryExchange*>(raw);
            ex->in = abi::XenMemoryReservation{va(in), 2, 0, 0, abi::kDomidSelf};
            ex->out = abi::XenMemoryReservation{ptr_hostile_out(), 2, 0, 0, abi::kDomidSelf};
            ex->nr_exchanged = 0;
        }
        if (op == M::add_to_physmap || op == M::remove_from_physmap) raw[0] = pick_dom_raw();
        bool hostile;
        c.a[0] = uint64_t(op) | (R.pct(10) ? R.next() << 6 : 0);
        c.a[1] = ptr_in(raw, &hostile, 15);
    } else {   // unknown
        c.a[0] = R.pct(50) ? R.range(29, 63) : R.next();
        c.a[1] = rand_u64();
        if ((c.a[0] & abi::kMemopCmdMask) >= 32) post(kMustFail, "memory_op.unknown_subop_accepted");
    }
}

// event_channel_op(cmd, arg). `compat`: the structure goes into the old
// hypercall's layout by the caller (no checks then: another hypercall).
uint64_t pick_port() {
    unsigned r = unsigned(R.below(100));
    if (r < 35 && g_ports.n) return g_ports.port[R.below(g_ports.n)];
    if (r < 45) return g_ids.timer_port;
    if (r < 50) return R.pct(50) ? g_ids.console_port : g_ids.store_port;
    if (r < 75) return R.below(64);
    const uint64_t b[] = {0, 1023, 1024, 4095, 4096, 0x7FFFFFFF, 0xFFFFFFFF};
    return R.pick(b);
}

void gen_evtchn(Call& c, uint32_t* cmd_out, void** struct_out, unsigned* size_out) {
    using E = abi::EvtchnOp;
    unsigned r = unsigned(R.below(100));
    bool hostile = false;
    void* s = nullptr;
    unsigned size = 0;
    E cmd;
    if (r < 15) {
        cmd = E::alloc_unbound;
        auto* a = alloc<abi::EvtchnAllocUnbound>();
        a->dom = uint16_t(R.pct(85) ? (R.pct(70) ? abi::kDomidSelf : g_ids.self) : pick_dom_raw());
        a->remote_dom = uint16_t(pick_dom_raw());
        s = a;
        size = sizeof *a;
        c.a[1] = ptr_in(a, &hostile, 8);
        if (!is_self_id(a->dom)) post(kMustFail, "event_channel_op.alloc_unbound_for_another_domain");
        else if (!hostile) post(kTrackPort, "", va(&a->port), uint64_t(PortKind::unbound));
    } else if (r < 27) {
        cmd = E::bind_interdomain;
        auto* b = alloc<abi::EvtchnBindInterdomain>();
        b->remote_dom = uint16_t(pick_dom_raw());
        b->remote_port = uint32_t(pick_port());
        s = b;
        size = sizeof *b;
        c.a[1] = ptr_in(b, &hostile, 8);
        bool must = (!is_self_id(b->remote_dom) && !has_event_cap(b->remote_dom)) || b->remote_port >= 4096 ||
                    b->remote_port == 0 || (b->remote_dom == g_ids.victim && g_ids.victim != 0xFFFF);
        if (must) post(kMustFail, "event_channel_op.bind_interdomain_accepted");
        else if (!hostile) post(kTrackPort, "", va(&b->local_port), uint64_t(PortKind::interdomain));
    } else if (r < 35) {
        cmd = E::bind_virq;
        auto* b = alloc<abi::EvtchnBindVirq>();
        b->virq = uint32_t(R.pct(85) ? R.below(abi::kNrVirqs + 1) : R.next());
        b->vcpu = uint32_t(R.pct(85) ? 0 : R.pct(50) ? 1 : R.next());
        s = b;
        size = sizeof *b;
        c.a[1] = ptr_in(b, &hostile, 8);
        if (b->virq >= abi::kNrVirqs || b->vcpu != 0) post(kMustFail, "event_channel_op.bind_virq_accepted");
        else if (!hostile) post(kTrackPort, "", va(&b->port), uint64_t(PortKind::virq));
    } else if (r < 38) {
        cmd = E::bind_pirq;
        auto* b = alloc<abi::EvtchnBindPirq>();
        b->pirq = uint32_t(R.pct(70) ? R.below(32) : R.next());
        b->flags = uint32_t(R.below(4));
        s = b;
        size = sizeof *b;
        c.a[1] = ptr_in(b, &hostile, 8);
        post(kMustFail, "event_channel_op.bind_pirq_without_capability");
    } else if (r < 52) {
        cmd = E::close;
        auto* b = alloc<abi::EvtchnClose>();
        uint64_t p = g_ports.n > 48 && R.pct(90) ? g_ports.port[R.below(g_ports.n)] : pick_port();
        for (int t = 0; t < 4 && port_protected(p); ++t) p = pick_port();
        if (port_protected(p)) p = 0;
        b->port = uint32_t(p);
        s = b;
        size = sizeof *b;
        c.a[1] = ptr_in(b, &hostile, 8);
        if (b->port == 0 || b->port >= 4096) post(kMustFail, "event_channel_op.close_of_no_port");
        else if (!hostile) post(kUntrackPort, "", 0, b->port);
    } else if (r < 68) {
        cmd = E::send;
        auto* b = alloc<abi::EvtchnSend>();
        b->port = uint32_t(pick_port());
        s = b;
        size = sizeof *b;
        c.a[1] = ptr_in(b, &hostile, 8);
        if (b->port == 0 || b->port >= 4096) post(kMustFail, "event_channel_op.send_on_no_port");
        else if (!hostile && (b->port == g_ids.timer_port || (!g_b.in_mc && port_kind(b->port) == PortKind::virq)))
            post(kVirqSend, "event_channel_op.send_on_virq_port_accepted", 0, b->port);
    } else if (r < 78) {
        cmd = E::unmask;
        auto* b = alloc<abi::EvtchnUnmask>();
        b->port = uint32_t(pick_port());
        s = b;
        size = sizeof *b;
        c.a[1] = ptr_in(b, &hostile, 8);
        if (b->port >= 4096) post(kMustFail, "event_channel_op.unmask_of_no_port");
    } else if (r < 88) {
        cmd = E::status;
        auto* b = alloc<abi::EvtchnStatus>();
        b->dom = uint16_t(R.pct(75) ? (R.pct(50) ? abi::kDomidSelf : g_ids.self) : pick_dom_raw());
        b->port = uint32_t(pick_port());
        s = b;
        size = sizeof *b;
        c.a[1] = ptr_in(b, &hostile, 8);
        if (!is_self_id(b->dom)) post(kMustFail, "event_channel_op.status_of_another_domain");
        else if (b->port >= 4096) post(kMustFail, "event_channel_op.status_of_no_port");
    } else if (r < 91) {
        // An IPI port: only for a vCPU that exists (ours is 0).
        cmd = E::bind_ipi;
        auto* b = alloc<abi::EvtchnBindIpi>();
        b->vcpu = uint32_t(R.pct(60) ? 0 : R.pick((const uint64_t[]){1, 2, 31, 0x80000000, 0xFFFFFFFF}));
        s = b;
        size = sizeof *b;
        c.a[1] = ptr_in(b, &hostile, 8);
        if (b->vcpu != 0) post(kMustFail, "event_channel_op.bind_ipi_other_vcpu_accepted");
        else if (!hostile) post(kTrackPort, "", va(&b->port), uint64_t(PortKind::ipi));
    } else if (r < 93) {
        // Moving a port: only to a vCPU that exists, never an IPI or the
        // per-vCPU timer VIRQ, never a port that is not one.
        cmd = E::bind_vcpu;
        auto* b = alloc<abi::EvtchnBindVcpu>();
        b->port = uint32_t(pick_port());
        b->vcpu = uint32_t(R.pct(60) ? 0 : R.pick((const uint64_t[]){1, 7, 0x80000000, 0xFFFFFFFF}));
        s = b;
        size = sizeof *b;
        c.a[1] = ptr_in(b, &hostile, 8);
        if (b->vcpu != 0 || b->port == 0 || b->port >= 4096 || b->port == g_ids.timer_port ||
            (!g_b.in_mc && port_kind(b->port) == PortKind::ipi))
            post(kMustFail, "event_channel_op.bind_vcpu_accepted");
    } else if (r < 96) {
        // The ones Moat does not implement (yet): arguments that cannot hurt
        // us should they start working.
        const E rest[] = {E::reset, E::init_control, E::expand_array, E::set_priority, E::reset_cont};
        cmd = R.pick(rest);
        auto* raw = alloc<uint64_t>(4);
        for (unsigned i = 0; i < 4; ++i) raw[i] = R.next();
        if (cmd == E::reset || cmd == E::reset_cont) {
            uint64_t d;
            do d = pick_dom_raw();
            while (is_self_id(d));   // never our own ports
            *reinterpret_cast<uint16_t*>(raw) = uint16_t(d);
            post(kMustFail, "event_channel_op.reset_of_another_domain");
        }
        if (cmd == E::init_control || cmd == E::expand_array) raw[0] = frame_bad();   // never a frame of ours
        s = raw;
        size = 32;
        c.a[1] = ptr_in(raw, &hostile, 8);
    } else {
        cmd = E(R.pct(50) ? R.range(15, 64) : R.next() | 15);
        auto* raw = alloc<uint64_t>(4);
        for (unsigned i = 0; i < 4; ++i) raw[i] = R.next();
        s = raw;
        size = 32;
        c.a[1] = ptr_in(raw, &hostile, 8);
        post(kMustFail, "event_channel_op.unknown_subop_accepted");
    }
    c.a[0] = uint64_t(cmd) | (R.pct(3) ? R.next() << 32 : 0);
    if (hostile) post(kMustFail, "event_channel_op.bad_pointer_accepted");
    if (cmd_out) *cmd_out = uint32_t(cmd);
    if (struct_out) *struct_out = s;
    if (size_out) *size_out = size;
}

// grant_table_op(cmd, ops, count)
bool grant_valid_possible(uint16_t dom, uint32_t ref) {
    return g_ids.peer != 0xFFFF && dom == g_ids.peer && ref >= kPeerRefFirst && ref < kPeerRefFirst + kPeerRefs;
}
uint32_t pick_ref(uint16_t dom) {
    if (dom == g_ids.peer && R.pct(60)) return uint32_t(kPeerRefFirst + R.below(kPeerRefs));
    const uint32_t b[] = {0, 1, 2, 7, 16, 511, 512, 2047, 2048, 0xFFFFFFFF};
    return R.pct(60) ? R.pick(b) : uint32_t(R.below(R.pct(50) ? 64 : 0x100000000ull));
}
uint16_t pick_grant_dom() {
    unsigned r = unsigned(R.below(100));
    if (r < 50 && g_ids.peer != 0xFFFF) return g_ids.peer;
    if (r < 65 && g_ids.victim != 0xFFFF) return g_ids.victim;
    return uint16_t(pick_dom_raw());
}

void gen_map(abi::GnttabMapGrantRef& op) {
    op.dom = pick_grant_dom();
    op.ref = pick_ref(op.dom);
    uint32_t f = abi::kGntmapHostMap;
    if (R.pct(8)) f = 0;
    if (R.pct(40)) f |= abi::kGntmapReadonly;
    bool pte_form = R.pct(30);
    if (pte_form) f |= abi::kGntmapContainsPte;
    if (R.pct(5)) f |= abi::kGntmapDeviceMap;
    if (R.pct(10)) f |= abi::kGntmapApplicationMap;
    if (R.pct(10)) f |= uint32_t(R.below(0x10000)) << abi::kGntmapGuestAvailShift;
    if (R.pct(3)) f = uint32_t(R.next());
    op.flags = f;
    pte_form = f & abi::kGntmapContainsPte;
    bool write = !(f & abi::kGntmapReadonly);
    // A host mapping (a PTE at host_addr), a device mapping (only references
    // and dev_bus_addr, as Xen PV without an IOMMU), or both; neither is
    // nothing to map.
    bool host = f & abi::kGntmapHostMap, device = f & abi::kGntmapDeviceMap;
    bool possible = grant_valid_possible(op.dom, op.ref) && (host || device) && !(write && op.ref >= kPeerRefFirst + 4);
    bool bad_addr = false;
    unsigned k = unsigned(R.below(100));
    if (pte_form) {
        if (k < 60) {
            op.host_addr = (frame_write_target() << 12) | (uint64_t(pick_index()) * 8);
        } else if (k < 75) {
            op.host_addr = (frame_bad() << 12) | (uint64_t(pick_index()) * 8);
            bad_addr = true;
        } else if (k < 90) {
            unsigned l;
            uint64_t m = frame_live_pt(&l);
            // A running L1 would take the grant: only when the grant itself is
            // refused; otherwise a frame that is no L1 at all.
            if (l == 1 && possible) {
                m = frame_live_rw();
                l = 0;
            }
            op.host_addr = (m << 12) | (uint64_t(pick_index()) * 8);
            bad_addr = l != 1;
        } else {
            op.host_addr = (frame_live_rw() << 12) | (uint64_t(pick_index()) * 8);
            bad_addr = true;
        }
    } else {
        if (k < 55) op.host_addr = va_scratch();
        else if (k < 70) {
            op.host_addr = va_hyp();
            bad_addr = true;
        } else if (k < 78) {
            op.host_addr = va_noncanonical();
            bad_addr = true;
        } else if (k < 86) {
            op.host_addr = va_unmapped();
            bad_addr = true;
        } else if (!possible) {
            op.host_addr = va_live();   // refused for the grant anyway
        } else {
            op.host_addr = va_scratch();
        }
    }
    if (!host) bad_addr = false;   // a device mapping alone looks at no address
    op.status = kStatusSentinel;
    op.handle = 0xA5A5A5A5;
    op.dev_bus_addr = R.pct(90) ? 0 : R.next();
    const char* why = !possible ? "grant_table_op.map_of_unusable_grant_accepted"
                    : pte_form ? "grant_table_op.map_into_frame_that_is_no_l1_of_ours_accepted"
                    : hyp_range(op.host_addr) ? "grant_table_op.map_at_hypervisor_address_accepted"
                    : !canonical(op.host_addr) ? "grant_table_op.map_at_noncanonical_address_accepted"
                                               : "grant_table_op.map_at_unmapped_address_accepted";
    if (!possible || bad_addr) post(kStatusFail, why, va(&op.status), 0, 0, va(&op));
    else post(kTrackMap, "", va(&op));
}

void gen_unmap(abi::GnttabUnmapGrantRef& op) {
    if (g_maps.n && R.pct(65)) {
        unsigned i = unsigned(R.below(g_maps.n));
        op.handle = g_maps.handle[i];
        unsigned k = unsigned(R.below(100));
        op.host_addr = k < 70 ? g_maps.host_addr[i] : k < 80 ? 0 : R.pct(50) ? va_scratch() : va_hyp();
        // The device part is named by its dev_bus_addr (a wrong one is refused).
        op.dev_bus_addr = g_maps.dev[i] && R.pct(80) ? g_maps.dev[i] : R.pct(90) ? 0 : R.next();
        op.status = kStatusSentinel;
        post(kUntrackMap, "", va(&op));
        return;
    } else {
        const uint32_t h[] = {0, 1, 2, 255, 256, 65535, 0x100000, 0xFFFFFFFF};
        op.handle = R.pct(60) ? R.pick(h) : uint32_t(R.below(300));
        unsigned k = unsigned(R.below(4));
        op.host_addr = k == 0 ? 0 : k == 1 ? va_scratch() : k == 2 ? va_hyp() : R.next();
    }
    op.dev_bus_addr = R.pct(90) ? 0 : R.next();
    op.status = kStatusSentinel;
    if (op.handle >= 0x100000) post(kStatusFail, "grant_table_op.unmap_of_no_handle_accepted", va(&op.status));
    post(kUntrackMap, "", va(&op));
}

// One side of a copy. `clean_dst`: the other side writes a clean frame, so
// this source must be clean too.
void gen_copy_side(abi::GnttabCopyPtr& p, bool by_ref, bool dest, bool* bad, bool* peer_data, bool* clean_dst) {
    p.offset = uint16_t(R.pct(70) ? R.pick((const uint64_t[]){0, 8, 64, 2048, 4000, 4088, 4095}) : R.below(0x10000));
    if (by_ref) {
        p.domid = pick_grant_dom();
        p.u.ref = pick_ref(p.domid);
        bool possible = grant_valid_possible(p.domid, p.u.ref) && !(dest && p.u.ref >= kPeerRefFirst + 4);
        if (!possible) *bad = true;
        if (!dest && possible) *peer_data = true;
        return;
    }
    p.domid = uint16_t(R.pct(90) ? (R.pct(70) ? abi::kDomidSelf : g_ids.self) : pick_dom_raw());
    if (!is_self_id(p.domid)) *bad = true;
    unsigned k = unsigned(R.below(100));
    if (dest) {
        if (k < 55) {
            p.u.gmfn = frame_clean();
            *clean_dst = true;
        } else if (k < 75) {
            p.u.gmfn = g_fr.tainted[R.below(kTainted)];
        } else if (k < 85) {
            p.u.gmfn = frame_live_pt();
            *bad = true;
        } else {
            p.u.gmfn = frame_bad();
            *bad = true;
        }
    } else {
        if (k < 60) p.u.gmfn = frame_clean();
        else if (k < 70) p.u.gmfn = g_fr.ro_frame;
        else if (k < 85) p.u.gmfn = frame_own_any();   // only kept if the destination is not clean
        else {
            p.u.gmfn = frame_bad();
            *bad = true;
        }
    }
}

void gen_copy(abi::GnttabCopy& op) {
    op.flags = uint16_t(R.pct(95) ? R.below(4) : R.below(0x10000));
    bool bad = false, peer_data = false, clean_dst = false, dummy = false;
    gen_copy_side(op.dest, op.flags & abi::kGntcopyDestGref, true, &bad, &dummy, &clean_dst);
    gen_copy_side(op.source, op.flags & abi::kGntcopySourceGref, false, &bad, &peer_data, &dummy);
    // Nothing from the peer or from our running frames into a clean frame.
    if (clean_dst && !bad && !(op.flags & abi::kGntcopySourceGref)) {
        uint64_t s = op.source.u.gmfn;
        if (is_own(s) && !(bits_of(s) & kClean) && s != g_fr.ro_frame) op.source.u.gmfn = frame_clean();
    }
    if (clean_dst && peer_data) op.dest.u.gmfn = g_fr.tainted[R.below(kTainted)];
    const uint16_t lens[] = {0, 1, 8, 64, 2048, 4096, 4097, 65535};
    op.len = R.pct(70) ? R.pick(lens) : uint16_t(R.below(4097));
    if (uint32_t(op.source.offset) + op.len > 4096 || uint32_t(op.dest.offset) + op.len > 4096) bad = true;
    op.status = kStatusSentinel;
    if (bad) post(kStatusFail, "grant_table_op.copy_accepted", va(&op.status), 0, 0, va(&op));
    else post(kCountCopy, "", va(&op.status));
}

// A batch of n grant operations of type T, each made by gen(op); only the
// first b.judged() are claimed (posted checks of the rest are dropped: the
// hypervisor may stop before them), and an unreadable array must fail.
template <typename T, typename Gen>
void gen_grant_batch(Call& c, uint64_t n, Gen gen) {
    auto b = make_batch<T>(n);
    for (uint64_t i = 0; i < n; ++i) {
        unsigned before = g_b.n_posts;
        gen(b.p[i]);
        if (i >= b.judged()) g_b.n_posts = before;   // not claimed: nobody judges it
    }
    c.a[1] = b.ptr;
    c.a[2] = b.count;
    if (b.hostile && b.count) post(kMustFail, "grant_table_op.bad_pointer_accepted");
}

void gen_grant_table_op(Call& c) {
    using G = abi::GnttabOp;
    unsigned r = unsigned(R.below(100));
    uint64_t n = batch_size();
    if (n > 100 && R.pct(70)) n = R.range(1, 8);
    G cmd;
    if (r < 30) {
        cmd = G::map_grant_ref;
        // Keep the maptrack from filling up with what we never unmap.
        if (g_maps.n >= 48) cmd = G::unmap_grant_ref;
    } else if (r < 48) {
        cmd = G::unmap_grant_ref;
    } else if (r < 55) {
        cmd = G::setup_table;
    } else if (r < 80) {
        cmd = G::copy;
    } else if (r < 86) {
        cmd = G::query_size;
    } else if (r < 95) {
        const G rest[] = {G::dump_table, G::transfer, G::unmap_and_replace, G::set_version, G::get_status_frames,
                          G::get_version, G::swap_grant_ref, G::cache_flush};
        cmd = R.pick(rest);
    } else {
        cmd = G(R.pct(50) ? R.range(13, 64) : uint32_t(R.next()) | 16);
    }
    c.a[0] = uint64_t(cmd) | (R.pct(3) ? R.next() << 32 : 0);
    switch (cmd) {
    case G::map_grant_ref: gen_grant_batch<abi::GnttabMapGrantRef>(c, n, gen_map); break;
    case G::unmap_grant_ref: gen_grant_batch<abi::GnttabUnmapGrantRef>(c, n, gen_unmap); break;
    case G::setup_table: {
        if (n > 4) n = 4;
        auto b = make_batch<abi::GnttabSetupTable>(n);
        for (uint64_t i = 0; i < n; ++i) {
            auto& op = b.p[i];
            op.dom = uint16_t(R.pct(80) ? (R.pct(60) ? abi::kDomidSelf : g_ids.self) : pick_dom_raw());
            const uint32_t nf[] = {0, 1, 2, 3, 4, 5, 64, 0xFFFFFFFF};
            op.nr_frames = R.pick(nf);
            bool hostile;
            op.frame_list = ptr_out(&hostile);
            op.status = kStatusSentinel;
            bool bad = !is_self_id(op.dom) || op.nr_frames > g_fr.n_grant || (hostile && op.nr_frames > 0);
            if (bad && i < b.judged()) post(kStatusFail, "grant_table_op.setup_table_accepted", va(&op.status));
        }
        c.a[1] = b.ptr;
        c.a[2] = b.count;
        if (b.hostile && b.count) post(kMustFail, "grant_table_op.bad_pointer_accepted");
        break;
    }
    case G::copy: gen_grant_batch<abi::GnttabCopy>(c, n, gen_copy); break;
    case G::query_size: {
        auto b = make_batch<abi::GnttabQuerySize>(n);
        for (uint64_t i = 0; i < n; ++i) {
            auto& op = b.p[i];
            op.dom = uint16_t(R.pct(70) ? abi::kDomidSelf : pick_dom_raw());
            op.status = kStatusSentinel;
            if (!is_self_id(op.dom) && i < b.judged())
                post(kStatusFail, "grant_table_op.query_size_of_another_domain", va(&op.status));
        }
        c.a[1] = b.ptr;
        c.a[2] = b.count;
        if (b.hostile && b.count) post(kMustFail, "grant_table_op.bad_pointer_accepted");
        break;
    }
    default: {
        // Unimplemented or unknown: arguments that cannot hurt us should they
        // start working (a transfer of a frame that is not ours, version 1).
        auto* raw = alloc<uint64_t>(8 * (n < 8 ? n : 8));
        for (unsigned i = 0; i < 8 * (n < 8 ? n : 8); ++i) raw[i] = R.pct(30) ? frame_bad() : rand_u64();
        if (cmd == G::transfer) {
            auto* t = reinterpret_cast<abi::GnttabTransfer*>(raw);
            t->mfn = frame_bad();
        }
        if (cmd == G::set_version) *reinterpret_cast<uint32_t*>(raw) = R.pct(50) ? 1 : uint32_t(R.pick((const uint64_t[]){0, 3, 0xFFFFFFFF}));
        if (cmd == G::unmap_and_replace) {
            raw[0] = va_scratch();
            raw[1] = va_scratch();
        }
        bool hostile;
        c.a[1] = ptr_in(raw, &hostile, 15);
        c.a[2] = R.pct(80) ? R.range(1, n < 8 ? n : 8) : rand_count(1);
        if (uint32_t(cmd) >= 13) post(kMustFail, "grant_table_op.unknown_subop_accepted");
    }
    }
}

// sched_op(cmd, arg)
void gen_sched_op(Call& c) {
    using S = abi::SchedOp;
    unsigned r = unsigned(R.below(100));
    bool hostile = false;
    if (r < 25) {
        c.a[0] = uint64_t(S::yield);
        c.a[1] = rand_u64();
    } else if (r < 30 && !g_b.in_mc) {
        c.a[0] = uint64_t(S::block);   // the loop arms a timer first
    } else if (r < 62) {
        c.a[0] = uint64_t(S::poll);
        auto* p = alloc<abi::SchedPoll>();
        unsigned n = unsigned(R.below(17));
        auto* ports = alloc<uint32_t>(n ? n : 1);
        for (unsigned i = 0; i < n; ++i) ports[i] = uint32_t(pick_port());
        bool bad = false;
        unsigned k = unsigned(R.below(100));
        p->ports = va(ports);
        p->nr_ports = n;
        if (k < 8) {
            p->ports = ptr_hostile_in();
            bad = n > 0;
        } else if (k < 14) {
            const uint32_t huge[] = {0x80000000u, 0xFFFFFFFFu, 100000};
            p->nr_ports = R.pick(huge);
            bad = true;
        }
        // A port is looked at only if none before it is pending already.
        if (n && p->nr_ports == n && !bad) bad = ports[0] >= 4096;
        // Always a bounded wait: a deadline within 200 us, or one past.
        uint64_t now = rt::now_ns();
        p->timeout = R.pct(70) ? now + R.below(200'000) : R.pct(50) ? now - R.below(1'000'000) : 1;
        c.a[1] = ptr_in(p, &hostile, 8);
        if (bad) post(kMustFail, "sched_op.poll_accepted");
    } else if (r < 72) {
        c.a[0] = uint64_t(S::remote_shutdown);
        auto* s = alloc<abi::SchedRemoteShutdown>();
        uint64_t d;
        do d = pick_dom_raw();
        while (is_self_id(d));
        s->domain_id = uint16_t(d);
        s->reason = uint32_t(R.pct(80) ? R.below(6) : R.next());
        c.a[1] = ptr_in(s, &hostile, 8);
        post(kMustFail, "sched_op.remote_shutdown_accepted");
    } else if (r < 78) {
        c.a[0] = uint64_t(S::shutdown_code);   // a code that would not change how we end
        auto* s = alloc<abi::SchedShutdown>();
        s->reason = R.pct(50) ? 0 : uint32_t(R.range(6, 0xFFFFFFFF));
        c.a[1] = ptr_in(s, &hostile, 8);
    } else if (r < 84) {
        c.a[0] = uint64_t(S::watchdog);   // never one that could fire
        auto* w = alloc<abi::SchedWatchdog>();
        w->id = uint32_t(R.pct(50) ? 0 : R.next());
        w->timeout = 0;
        c.a[1] = ptr_in(w, &hostile, 8);
    } else if (r < 88) {
        c.a[0] = uint64_t(S::pin_override);
        auto* p = alloc<abi::SchedPinOverride>();
        p->pcpu = int32_t(R.pct(50) ? -1 : int32_t(R.next()));
        c.a[1] = ptr_in(p, &hostile, 8);
    } else {
        c.a[0] = R.pct(50) ? R.range(8, 64) : R.range(8, 0xFFFFFFFF);   // never 0..7
        if (R.pct(10)) c.a[0] |= R.next() << 32;
        c.a[1] = rand_u64();
        post(kMustFail, "sched_op.unknown_subop_accepted");
        return;
    }
    if (hostile) post(kMustFail, "sched_op.bad_pointer_accepted");
}

// xen_version(cmd, arg)
void gen_xen_version(Call& c) {
    uint64_t cmd = R.pct(90) ? R.below(16) : R.next();
    c.a[0] = cmd;
    bool hostile = false;
    uint32_t k = uint32_t(cmd);
    if (k == uint32_t(abi::XenVersion::get_features)) {
        auto* fi = alloc<abi::XenFeatureInfo>();
        fi->submap_idx = uint32_t(R.pct(70) ? R.below(4) : R.next());
        c.a[1] = ptr_in(fi, &hostile, 20);
    } else if (k == uint32_t(abi::XenVersion::build_id)) {
        auto* b = alloc<uint32_t>(64);
        b[0] = uint32_t(R.pct(50) ? 200 : R.next());
        c.a[1] = ptr_in(b, &hostile, 20);
    } else {
        c.a[1] = R.pct(85) ? ptr_out(&hostile) : rand_u64();
    }
    if (hostile && (k == 1 || k == 3 || k == 6)) post(kMustFail, "xen_version.write_through_bad_pointer");
    if (k >= 15) post(kMustFail, "xen_version.unknown_subop_accepted");
}

// console_io(cmd, count, buffer)
void gen_console_io(Call& c) {
    unsigned r = unsigned(R.below(100));
    if (r < 70) {
        c.a[0] = uint64_t(abi::ConsoleIo::write) | (R.pct(3) ? R.next() << 32 : 0);
        bool hostile = R.pct(25);
        uint64_t count;
        if (R.one_in(500)) count = R.pick((const uint64_t[]){4096, 4097, 1ull << 31, ~0ull});
        else count = R.pct(90) ? R.range(0, 60) : R.pick((const uint64_t[]){80, 200, 1000});
        c.a[1] = count;
        c.a[2] = hostile ? ptr_hostile_in() : va(g_area.text) + R.below(64);
        if (hostile && count) post(kMustFail, "console_io.write_from_bad_pointer");
    } else if (r < 90) {
        c.a[0] = uint64_t(abi::ConsoleIo::read);
        c.a[1] = R.pct(70) ? R.range(0, 4096) : R.next();
        bool h;
        c.a[2] = ptr_out(&h);
        if (g_caps.only_grant_event) post(kMustFail, "console_io.read_without_debug_console");
    } else {
        c.a[0] = R.pct(50) ? R.range(2, 64) : (R.next() | 2);
        if ((c.a[0] & 0xFFFFFFFF) < 2) c.a[0] = 2;
        c.a[1] = R.below(100);
        c.a[2] = va(g_area.text);
        post(kMustFail, "console_io.unknown_subop_accepted");
    }
}

// set_callbacks(event, failsafe, syscall) and callback_op(cmd, arg)
void gen_set_callbacks(Call& c) {
    g_b.dirty |= kDirtyCallbacks;
    bool bad = false;
    for (int i = 0; i < 3; ++i) {
        c.a[i] = R.pct(20) ? 0 : va_code();
        bad |= bad_code_addr(c.a[i]);
    }
    if (bad) post(kMustFail, "set_callbacks.bad_address_accepted");
}

void gen_callback_op(Call& c) {
    g_b.dirty |= kDirtyCallbacks;
    bool hostile = false;
    unsigned r = unsigned(R.below(100));
    if (r < 60) {
        c.a[0] = uint64_t(abi::CallbackOp::register_);
        auto* cb = alloc<abi::CallbackRegister>();
        cb->type = uint16_t(R.pct(85) ? R.below(8) : R.next());
        cb->flags = uint16_t(R.pct(80) ? R.below(2) : R.next());
        cb->address = R.pct(10) ? 0 : va_code();
        c.a[1] = ptr_in(cb, &hostile, 8);
        if (bad_code_addr(cb->address)) post(kMustFail, "callback_op.bad_address_accepted");
        if (cb->type >= 8) post(kMustFail, "callback_op.unknown_type_accepted");
    } else if (r < 90) {
        c.a[0] = uint64_t(abi::CallbackOp::unregister);
        auto* cb = alloc<abi::CallbackUnregister>();
        cb->type = uint16_t(R.pct(85) ? R.below(8) : R.next());
        c.a[1] = ptr_in(cb, &hostile, 8);
        if (cb->type >= 8) post(kMustFail, "callback_op.unknown_type_accepted");
    } else {
        c.a[0] = R.pct(50) ? R.range(2, 64) : (R.next() | 2);
        if ((c.a[0] & 0xFFFFFFFF) < 2) c.a[0] = 2;
        c.a[1] = rand_u64();
        post(kMustFail, "callback_op.unknown_subop_accepted");
    }
    if (hostile) post(kMustFail, "callback_op.bad_pointer_accepted");
}

// vcpu_op(cmd, vcpuid, arg): one vCPU; nothing that could stop or move it.
void gen_vcpu_op(Call& c) {
    using V = abi::VcpuOp;
    uint64_t cmd = R.pct(90) ? R.below(16) : R.next();
    uint64_t vcpu = R.pct(60) ? 0 : R.pick((const uint64_t[]){1, 2, 31, 0xFFFFFFFF, 0x100000000ull});
    uint32_t k = uint32_t(cmd);
    bool hostile = false;
    if (uint32_t(vcpu) == 0 && (k == uint32_t(V::initialise) || k == uint32_t(V::down) || k == uint32_t(V::send_nmi)))
        vcpu = 1;   // our only vCPU keeps running as it is
    if (uint32_t(vcpu) != 0) post(kMustFail, "vcpu_op.no_such_vcpu_accepted");
    switch (V(k)) {
    case V::initialise: c.a[2] = R.pct(50) ? ptr_hostile_in() : va(g_area.ro); break;
    case V::register_vcpu_info: {
        // Never a combination that works (our vcpu_info stays in shared
        // info): a frame that is not ours, one of our page tables, or an
        // ordinary frame of ours at an offset that crosses the page end or is
        // misaligned, or with the reserved word set.
        auto* r = alloc<abi::VcpuRegisterVcpuInfo>();
        unsigned k = unsigned(R.below(4));
        r->mfn = k == 0 ? frame_bad() : k == 1 ? frame_live_pt() : frame_live_rw();
        r->offset = uint32_t(R.below(4096));
        if (k >= 2) {
            const uint32_t bad[] = {4096 - 64 + 8, 4096 - 8, 4096, 0xFFFFFFFF, 4, 63, 4033};
            if (k == 2) r->offset = R.pick(bad);
            else r->rsvd = uint32_t(R.range(1, 0xFFFFFFFF));
        }
        c.a[2] = ptr_in(r, &hostile, 10);
        post(kMustFail, "vcpu_op.register_vcpu_info_accepted");
        break;
    }
    case V::register_runstate_memory_area:
    case V::register_vcpu_time_memory_area: {
        auto* r = alloc<abi::VcpuRegisterArea>();
        bool h;
        // Junk (whatever it writes there, whenever), or where it must never
        // write (the read-only page, our page tables, the M2P, the
        // hypervisor, guards): the after-call check of the read-only page and
        // the invariants (our running tables) would see it.
        r->addr = R.pct(60) ? ptr_out(&h) : ptr_hostile_out();
        c.a[2] = ptr_in(r, &hostile, 10);
        break;
    }
    case V::register_runstate_phys_area:
    case V::register_vcpu_time_phys_area: {
        auto* r = alloc<abi::VcpuRegisterArea>();
        r->addr = (R.pct(50) ? frame_bad() : g_fr.tainted[R.below(kTainted)]) << 12;
        c.a[2] = ptr_in(r, &hostile, 10);
        break;
    }
    case V::set_periodic_timer: {
        auto* t = alloc<abi::VcpuSetPeriodicTimer>();
        t->period_ns = R.pct(50) ? R.range(1'000'000, 100'000'000) : R.next();
        c.a[2] = ptr_in(t, &hostile, 10);
        break;
    }
    case V::set_singleshot_timer: {
        auto* t = alloc<abi::VcpuSetSingleshotTimer>();
        t->timeout_abs_ns = rt::now_ns() + R.below(1'000'000);
        t->flags = uint32_t(R.below(4));
        c.a[2] = ptr_in(t, &hostile, 10);
        break;
    }
    default: {
        bool h;
        c.a[2] = ptr_out(&h);
    }
    }
    c.a[0] = cmd;
    c.a[1] = vcpu;
    if (hostile) post(kMustFail, "vcpu_op.bad_pointer_accepted");
}

// set_segment_base(which, base)
void gen_set_segment_base(Call& c) {
    g_b.dirty |= kDirtySeg;
    uint64_t which = R.pct(90) ? R.below(5) : R.next();
    unsigned k = unsigned(R.below(100));
    uint64_t base = k < 30 ? 0 : k < 50 ? va_live() : k < 60 ? va_scratch() : k < 70 ? va_hyp()
                  : k < 85 ? va_noncanonical() : R.next();
    if (uint32_t(which) == 3 && R.pct(70)) base = R.pct(50) ? 0 : R.below(0x10000);
    c.a[0] = which;
    c.a[1] = base;
    if (uint32_t(which) >= 4) post(kMustFail, "set_segment_base.unknown_which_accepted");
    else if (uint32_t(which) < 3 && !canonical(base)) post(kMustFail, "set_segment_base.noncanonical_accepted");
}

// physdev_op(cmd, arg)
void gen_physdev_op(Call& c) {
    unsigned r = unsigned(R.below(100));
    bool hostile = false;
    if (r < 50) {
        const uint32_t moat[] = {abi::kPhysdevPciInfo, abi::kPhysdevPciConfigRead, abi::kPhysdevPciConfigWrite};
        uint32_t cmd = R.pick(moat);
        c.a[0] = cmd;
        if (cmd == abi::kPhysdevPciInfo) {
            auto* in = alloc<abi::MoatPciInfo>();
            in->bdf = uint32_t(R.pct(70) ? R.below(256) : R.next());
            c.a[1] = ptr_in(in, &hostile, 10);
        } else {
            auto* pc = alloc<abi::MoatPciConfig>();
            pc->bdf = uint32_t(R.pct(70) ? R.below(256) : R.next());
            pc->offset = uint16_t(R.below(300));
            pc->size = uint8_t(R.pick((const uint64_t[]){1, 2, 4, 3, 8}));
            pc->value = uint32_t(R.next());
            c.a[1] = ptr_in(pc, &hostile, 10);
        }
        if (g_caps.only_grant_event) post(kMustFail, "physdev_op.pci_without_capability");
    } else if (r < 62) {
        // Our virtual IOPL (what the emulated port I/O and cli/sti of
        // emul.cpp go by): 0..3, nothing else.
        c.a[0] = abi::kPhysdevSetIopl;
        auto* io = alloc<abi::PhysdevSetIopl>();
        io->iopl = uint32_t(R.pick((const uint64_t[]){0, 1, 2, 3, 0, 1, 4, 7, 0x80000000, 0xFFFFFFFF}));
        c.a[1] = ptr_in(io, &hostile, 10);
        if (io->iopl > 3) post(kMustFail, "physdev_op.set_iopl_out_of_range_accepted");
        else if (!hostile) post(kSetIopl, "", 0, io->iopl);
    } else {
        c.a[0] = R.pct(80) ? R.below(32) : R.next();
        if (uint32_t(c.a[0]) == abi::kPhysdevSetIopl) c.a[0] = 0;   // (above, where it is tracked)
        auto* raw = alloc<uint64_t>(8);
        bool h;
        for (unsigned i = 0; i < 8; ++i) raw[i] = R.pct(30) ? ptr_out(&h) : rand_u64();
        c.a[1] = ptr_in(raw, &hostile, 10);
    }
}

// domctl(MoatDomctl*): we hold no Domain, Untyped or Module capability.
void gen_domctl(Call& c) {
    auto* d = alloc<abi::MoatDomctl>();
    d->version = R.pct(85) ? abi::kMoatDomctlVersion : uint32_t(R.next());
    d->cmd = uint32_t(R.pct(90) ? R.below(12) : R.next());
    d->domain = uint16_t(pick_dom_raw());
    for (auto& b : d->u.raw) b = uint8_t(R.next());
    bool h;
    switch (abi::DomctlCmd(d->cmd)) {
    case abi::DomctlCmd::create:
        d->u.create.max_pages = R.pct(50) ? R.range(1, 4096) : R.next();
        d->u.create.vcpus = 1;
        d->u.create.cspace_slots = uint32_t(R.range(1, 64));
        d->u.create.name[23] = 0;
        break;
    case abi::DomctlCmd::setvcpucontext: d->u.context = R.pct(50) ? va(g_area.ro) : ptr_hostile_in(); break;
    case abi::DomctlCmd::module_info:
    case abi::DomctlCmd::module_read:
        d->u.module.index = uint32_t(R.below(8));
        d->u.module.offset = R.below(4096);
        d->u.module.len = R.below(8192);
        d->u.module.buf = ptr_out(&h);
        break;
    case abi::DomctlCmd::set_grant:
        d->u.grant.ref = uint32_t(R.below(2048));
        d->u.grant.flags = uint16_t(R.below(8));
        d->u.grant.domid = g_ids.self;
        d->u.grant.frame = frame_bad();
        break;
    default: break;
    }
    bool hostile;
    c.a[0] = ptr_in(d, &hostile, 10);
    if (g_caps.only_grant_event) post(kMustFail, "domctl.accepted_without_capability");
}

// cap_op(cmd, CapOpArgs*) on our own CSpace.
uint32_t pick_slot(bool scratch_only) {
    uint32_t n = g_caps.size;
    unsigned r = unsigned(R.below(100));
    if (r < 70 && n) {
        for (int t = 0; t < 8; ++t) {
            uint32_t s = uint32_t(R.below(n));
            if (!scratch_only || s >= 64 || !g_caps.original[s]) return s;
        }
        return n;   // beyond the CSpace
    }
    if (r < 85) return n + uint32_t(R.below(4));
    return uint32_t(R.next());
}

void gen_cap_op(Call& c) {
    using O = abi::CapOp;
    auto* a = alloc<abi::CapOpArgs>();
    unsigned r = unsigned(R.below(100));
    O op = r < 25 ? O::copy : r < 35 ? O::mint : r < 45 ? O::move : r < 55 ? O::remove : r < 65 ? O::revoke
         : r < 85 ? O::inspect : r < 93 ? O::size : O(R.pct(50) ? R.range(7, 64) : uint32_t(R.next()) | 8);
    bool others = R.pct(10);
    a->domain = others ? uint16_t(pick_dom_raw()) : uint16_t(R.pct(70) ? abi::kDomidSelf : g_ids.self);
    others = !is_self_id(a->domain);
    a->src_slot = pick_slot(op == O::move || op == O::remove);
    a->dst_slot = pick_slot(false);
    a->rights = uint32_t(R.pct(50) ? R.next() : R.pct(50) ? ~0u : R.below(256));
    a->badge = R.pct(30) ? 0 : R.next();
    bool hostile;
    c.a[0] = uint64_t(op) | (R.pct(3) ? R.next() << 32 : 0);
    c.a[1] = ptr_in(a, &hostile, 8);
    if (hostile) post(kMustFail, "cap_op.bad_pointer_accepted");
    if (uint32_t(op) > 6) {
        post(kMustFail, "cap_op.unknown_op_accepted");
        return;
    }
    if (others) {
        post(kMustFail, "cap_op.on_another_cspace_without_capability");
        return;
    }
    bool uses_src = op != O::size;
    if (uses_src && a->src_slot >= g_caps.size) post(kMustFail, "cap_op.slot_beyond_cspace_accepted");
    if ((op == O::copy || op == O::mint) && a->dst_slot >= g_caps.size) post(kMustFail, "cap_op.slot_beyond_cspace_accepted");
    if ((op == O::copy || op == O::mint) && !g_b.in_mc && !hostile && a->src_slot < g_caps.size) {
        if (op == O::mint && a->badge == 0) post(kMustFail, "cap_op.mint_without_badge_accepted");
        post(kCapDerive, "cap_op.derived_more_than_held", va(a), a->src_slot, a->dst_slot);
    }
}

// multicall(entries, count)
void gen_multicall(Call& c) {
    if (g_b.in_mc) {   // nested: refused whatever it holds
        c.a[0] = R.pct(70) ? va(alloc<abi::MulticallEntry>(2)) : rand_u64();
        c.a[1] = R.below(4);
        post(kMustFail, "multicall.nested_multicall_accepted");
        return;
    }
    unsigned r = unsigned(R.below(100));
    uint64_t n = r < 50 ? R.range(1, 4) : r < 85 ? R.range(5, 16) : r < 98 ? R.range(17, 64) : R.range(65, 130);
    bool heavy = R.one_in(3000);
    if (heavy) {
        // 64 entries of one long mmuext_op batch each (copy_page): the CPU
        // must be given up between them.
        n = 64;
        uint64_t ops = R.range(1000, 4095);
        auto* arr = alloc<abi::MmuextOp>(ops);
        uint64_t dst = g_fr.tainted[R.below(kTainted)], src = frame_clean();
        for (uint64_t i = 0; i < ops; ++i) {
            arr[i].cmd = uint32_t(abi::MmuextCmd::copy_page);
            arr[i].arg1.mfn = dst;
            arr[i].arg2.src_mfn = src;
        }
        auto* e = alloc<abi::MulticallEntry>(n);
        for (uint64_t i = 0; i < n; ++i) {
            e[i].op = uint64_t(abi::Hypercall::mmuext_op);
            e[i].result = kResultSentinel;
            e[i].args[0] = va(arr);
            e[i].args[1] = ops;
            e[i].args[2] = 0;
            e[i].args[3] = abi::kDomidSelf;
        }
        c.a[0] = va(e);
        c.a[1] = n;
        g_b.mc_entries += n;
        return;
    }
    // Entries first (maybe at the tail, over-read), then each entry's arguments.
    bool over = R.pct(10);
    abi::MulticallEntry* e = nullptr;
    if (over) e = static_cast<abi::MulticallEntry*>(alloc_tail(sizeof(abi::MulticallEntry) * (n + 1)));
    if (!e) {
        over = false;
        e = alloc<abi::MulticallEntry>(n + 1);
    }
    g_b.in_mc = true;
    for (uint64_t i = 0; i < n; ++i) {
        // Room for this entry's arguments and checks, or the batch ends here.
        if (args_left() < 24 * 1024 || g_b.n_posts + 96 > kMaxPosts) {
            n = i;
            break;
        }
        g_b.mc_last = i + 1 == n;
        Call sub{};
        g_b.rc_addr = va(&e[i].result);
        unsigned nr = pick_hypercall(true);
        sub.nr = nr;
        if (nr == uint64_t(abi::Hypercall::iret)) {
            gen_random_args(sub);
            post(kMustFail, "multicall.iret_accepted");
        } else {
            generate(nr, sub);
        }
        e[i].op = sub.nr;
        e[i].result = kResultSentinel;
        for (int k = 0; k < 5; ++k) e[i].args[k] = sub.a[k];
        e[i].args[5] = R.next();
    }
    g_b.in_mc = false;
    g_b.mc_last = false;
    g_b.rc_addr = 0;
    uint64_t count = n;
    if (g_b.mc_fpu) {
        // TS must be clear again before any code of ours runs: the last entry.
        e[n].op = uint64_t(abi::Hypercall::fpu_taskswitch);
        e[n].result = kResultSentinel;
        for (auto& x : e[n].args) x = 0;
        count = n + 1;
        over = false;
    } else if (over) {
        count = R.pick((const uint64_t[]){n + 1, n + 5, 1ull << 16, ~0ull, 0xFFFFFFFF});
    } else if (R.pct(5)) {
        count = R.below(n + 1);
    }
    bool hostile = !g_b.mc_fpu && R.pct(5);
    c.a[0] = hostile ? ptr_hostile_in() : va(e);
    c.a[1] = hostile ? R.pick((const uint64_t[]){1, 2, 64, ~0ull}) : count;
    if (hostile) {
        // Nothing ran: drop the entries' checks, keep the call's own.
        g_b.n_posts = 0;
        post(kMustFail, "multicall.bad_pointer_accepted");
    }
    g_b.dirty |= kDirtyAll;
    g_b.mc_entries += count < n ? count : n;
}

// set_gdt(frames, entries): a frame that is not ours, one of our running
// page tables or a frame mapped writable can never become a descriptor page;
// nor can a GDT reach the hypervisor's entries (7168 and up). Spare frames
// may (then they stay descriptor pages until the next set_gdt): not judged.
void gen_set_gdt(Call& c) {
    uint64_t entries = R.pick((const uint64_t[]){0, 1, 16, 512, 513, 1024, 7167, 7168, 7169, 8192, 1ull << 32, ~0ull});
    uint64_t n = entries <= 7168 ? (entries + 511) / 512 : 14;
    auto* frames = alloc<uint64_t>(14);
    bool must = entries > 7168;
    for (unsigned i = 0; i < 14; ++i) {
        unsigned r = unsigned(R.below(100));
        bool judged = i < n;
        if (r < 35) {
            frames[i] = frame_bad();
            must |= judged;
        } else if (r < 50) {
            frames[i] = frame_live_pt();
            must |= judged;
        } else if (r < 65) {
            frames[i] = frame_live_rw();
            must |= judged;
        } else {
            // A spare (clean) frame: whatever it holds is checked as
            // descriptors; never the read-only page, whose 0xFF words would.
            frames[i] = g_fr.n_spare ? g_fr.spare[R.below(g_fr.n_spare)] : frame_bad();
            must |= judged && !g_fr.n_spare;
        }
    }
    bool h = false;
    c.a[0] = ptr_in(frames, &h, 10);
    c.a[1] = entries;
    if (must || (h && n > 0)) post(kMustFail, "set_gdt.accepted");
}

// update_descriptor(machine address, descriptor): a TSS, an LDT, an
// interrupt or trap gate, a call gate to the hypervisor's selectors or with
// reserved bits are refused wherever they go; so is anything aimed at a
// frame that is not ours, at one of our running page tables, or at a
// misaligned address. What may be written into a frame of ours is a
// descriptor with bit 0 clear (never a present page-table entry: our clean
// frames stay clean).
void gen_update_descriptor(Call& c) {
    constexpr uint64_t kP = 1ull << 47, kS = 1ull << 44;
    auto sys = [](unsigned type, unsigned dpl) { return 0x0000000000000067ull | kP | uint64_t(dpl) << 45 | uint64_t(type) << 40; };
    auto gate = [](uint16_t sel, unsigned dpl) { return (uint64_t(sel) << 16) | kP | uint64_t(dpl) << 45 | 0xCull << 40; };
    bool bad_desc = false;
    uint64_t d;
    unsigned r = unsigned(R.below(100));
    if (r < 25) {
        const unsigned types[] = {1, 2, 3, 4, 5, 6, 7, 9, 0xB, 0xE, 0xF};
        d = sys(R.pick(types), unsigned(R.below(4)));
        bad_desc = true;
    } else if (r < 35) {
        const uint16_t hyp[] = {0xe008, 0xe010, 0xe018, 0xe040, 0xe048, 0xfff8};
        d = gate(R.pick(hyp), unsigned(R.below(4)));
        bad_desc = true;
    } else if (r < 40) {
        d = gate(0x0b, 3) | (uint64_t(R.range(1, 255)) << 32);   // reserved bits of a 64-bit call gate
        bad_desc = true;
    } else if (r < 70) {
        d = (R.next() | kS) & ~1ull;   // code or data: made DPL 3
    } else {
        d = R.next() & ~kP & ~1ull;    // not present: kept as it is
    }
    unsigned t = unsigned(R.below(100));
    uint64_t ma;
    bool bad_frame = false;
    if (t < 35) {
        ma = (frame_bad() << 12) | (R.below(512) * 8);
        bad_frame = true;
    } else if (t < 50) {
        ma = (frame_live_pt() << 12) | (R.below(512) * 8);
        bad_frame = true;
    } else if (t < 55) {
        ma = (frame_write_target() << 12) | R.range(1, 4095);
        bad_frame = (ma & 7) != 0;
    } else {
        ma = (frame_write_target() << 12) | (R.below(512) * 8);
    }
    c.a[0] = ma;
    c.a[1] = d;
    if (bad_desc || bad_frame) post(kMustFail, bad_desc ? "update_descriptor.bad_descriptor_accepted"
                                                        : "update_descriptor.bad_frame_accepted");
}

void gen_nmi_op(Call& c) {
    g_b.dirty |= kDirtyNmi;
    c.a[0] = R.pct(80) ? R.below(2) : R.next();
    auto* cb = alloc<uint64_t>(2);
    cb[0] = va_code();
    cb[1] = 0;
    bool h;
    c.a[1] = ptr_in(cb, &h, 10);
}

void gen_set_debugreg(Call& c) {
    uint64_t reg = R.pct(85) ? R.below(8) : R.next();
    uint64_t v = rand_u64();
    // Never a breakpoint that could fire (DR7, and DR4/DR5, its aliases).
    if (!(reg < 4 || reg == 6)) v &= ~0xFFull;
    c.a[0] = reg;
    c.a[1] = v;
}

}  // namespace

// ---------------------------------------------------------------------------
// Pools.

uint64_t frame_beyond() {
    const uint64_t v[] = {g_fr.max_ram + 1, g_fr.max_ram + 2 + R.below(1u << 16), 0xFFFFFFFFull, (1ull << 40) - 1,
                          1ull << 36, 0xFEE00, 0xFEC00, 0xFFFFF};
    for (int t = 0; t < 8; ++t) {
        uint64_t m = R.pick(v);
        if (m > g_fr.max_ram && m < (1ull << 40)) return m;
    }
    return (1ull << 40) - 1;
}

uint64_t frame_foreign() {
    for (int t = 0; t < 16; ++t) {
        uint64_t m = R.below(g_fr.max_ram + 1);
        if (!is_own(m) && m < kMaxFrames) return m;
    }
    return frame_beyond();
}

uint64_t frame_bad() {
    unsigned r = unsigned(R.below(100));
    if (r < 70) return frame_foreign();
    if (r < 80 && g_fr.m2p_frame && !is_own(g_fr.m2p_frame)) return g_fr.m2p_frame;
    if (r < 84 && !is_own(0x100)) return 0x100;   // the hypervisor's image
    return frame_beyond();
}

uint64_t frame_clean() {
    unsigned r = unsigned(R.below(100));
    if (r < 45) return g_fr.scratch_pt[R.below(kScratchTables)];
    if (r < 80 || !g_fr.n_spare) return g_fr.scratch_data[R.below(kScratchData)];
    return g_fr.spare[R.below(g_fr.n_spare)];
}

uint64_t frame_write_target() {
    return R.pct(85) ? frame_clean() : g_fr.tainted[R.below(kTainted)];
}

uint64_t frame_live_pt(unsigned* level) {
    unsigned i = unsigned(R.below(g_fr.n_live_pt));
    if (level) *level = g_fr.live_level[i];
    return g_fr.live_pt[i];
}

uint64_t frame_live_rw() { return g_fr.live_rw[R.below(g_fr.n_live_rw)]; }

uint64_t frame_own_any() {
    unsigned r = unsigned(R.below(100));
    if (r < 30) return frame_clean();
    if (r < 45) return frame_live_pt();
    if (r < 70) return frame_live_rw();
    return rt::mfn_of_pfn(R.below(rt::start_info().nr_pages));
}

uint64_t va_scratch() {
    uint64_t l3 = R.pct(85) ? R.below(2) : R.below(512);
    uint64_t l2 = R.pct(85) ? R.below(2) : R.below(512);
    uint64_t l1 = R.pct(50) ? R.below(16) : R.below(512);
    uint64_t off = R.pct(85) ? 0 : R.below(4096);
    return kScratchBase + (l3 << 30) + (l2 << 21) + (l1 << 12) + off;
}

uint64_t va_live() { return rt::kVirtBase + R.below(region_end() - rt::kVirtBase); }

uint64_t va_hyp() {
    switch (R.below(6)) {
    case 0: return abi::kRoMptVirtStart + R.below(1ull << 30);
    case 1: return 0xFFFF830000000000ull + (R.below(g_fr.max_ram + 1) << 12) + (R.pct(80) ? 0 : R.below(4096));
    case 2: return 0xFFFF82D080000000ull + R.below(16u << 20);
    case 3: return abi::kHypervisorVirtEnd - 4096;
    case 4: return abi::kHypervisorVirtStart;
    default: return abi::kHypervisorVirtStart + R.below(abi::kHypervisorVirtEnd - abi::kHypervisorVirtStart);
    }
}

uint64_t va_noncanonical() {
    const uint64_t v[] = {0x0000800000000000ull, 0x0000800000001000ull, 0x8000000000000000ull, 0xFFFF7FFFFFFFF000ull,
                          0x7FFFFFFFFFFFF000ull, 0x00FF000000000000ull};
    if (R.pct(60)) return R.pick(v);
    for (;;) {
        uint64_t a = R.next();
        if (!canonical(a)) return a;
    }
}

uint64_t va_unmapped() {
    // L4 slots 2..255 hold nothing (only the image's slot 0 and the scratch
    // slot are ever linked).
    uint64_t slot = R.range(2, 255);
    return (slot << 39) + (R.pct(70) ? 0 : R.below(1ull << 39) & ~0xFFFull);
}

uint64_t va_code() {
    unsigned r = unsigned(R.below(100));
    if (r < 20) return rt::trap_entry_address(unsigned(R.below(32)));
    if (r < 35) return va_live();
    if (r < 50) return va_scratch();
    if (r < 65) return va_hyp();
    if (r < 75) return va_noncanonical();
    if (r < 85) return va_unmapped();
    return R.next() & 0x00007FFFFFFFFFFFull;
}

uint64_t ptr_hostile_in() {
    switch (R.below(7)) {
    case 0: return 0;
    case 1: return R.range(1, 0xFFF);
    case 2: return va_hyp();
    case 3: return va_noncanonical();
    case 4: return va_unmapped();
    // Unmapped for at least 64 bytes on: a few entries further (a
    // continued batch, an extent index) must still fault.
    case 5: return va(g_area.guard1) + R.below(4096 - 64);
    default: return va(g_area.guard4) + R.below(4096 - 64);
    }
}

uint64_t ptr_hostile_out() {
    const abi::StartInfo& si = rt::start_info();
    switch (R.below(9)) {
    case 0: return 0;
    case 1: return va(g_area.ro) + R.below(4096 - 64);
    case 2: return si.pt_base + R.below(si.nr_pt_frames * 4096 - 64);   // our page tables, read-only
    case 3: return va_hyp();
    case 4: return va_noncanonical();
    case 5: return va_unmapped();
    case 6: return va(g_area.guard2) + R.below(4096 - 64);
    case 7: return va(g_area.guard3) + R.below(4096 - 64);
    default: return abi::kRoMptVirtStart + 8 * R.below(4096);
    }
}

uint64_t ptr_out(bool* hostile) {
    if (R.pct(75)) {
        *hostile = false;
        uint64_t off = R.pct(80) ? R.below(sizeof g_area.junk - 2048) & ~7ull : R.below(sizeof g_area.junk);
        return va(g_area.junk) + off;
    }
    *hostile = true;
    return ptr_hostile_out();
}

uint64_t ptr_in(void* built, bool* hostile, unsigned hostile_pct) {
    if (R.pct(hostile_pct)) {
        *hostile = true;
        return ptr_hostile_in();
    }
    *hostile = false;
    return va(built);
}

uint64_t rand_count(uint64_t built) {
    const uint64_t v[] = {0, 1, built, built + 1, 64, 65, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, ~0ull};
    return R.pick(v);
}

uint64_t rand_u64() {
    bool h;
    switch (R.below(12)) {
    case 0: return 0;
    case 1: return R.below(16);
    case 2: return R.below(65536);
    case 3: return R.pick((const uint64_t[]){0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000ull, 1ull << 63, ~0ull,
                                             ~0ull - 1});
    case 4: return ptr_out(&h);
    case 5: return ptr_hostile_in();
    case 6: return va_hyp();
    case 7: return va_noncanonical();
    case 8: return frame_bad();
    case 9: return pick_dom_raw();
    default: return R.next();
    }
}

// ---------------------------------------------------------------------------

unsigned pick_hypercall(bool in_mc) {
    // Weights per number; 64 stands for "out of range". What Moat
    // implements gets most of the calls, every other number some.
    static const uint8_t w[65] = {
        8,  40, 2, 3, 5, 3, 2, 2, 2, 2,     // 0-9: set_trap_table, mmu_update, ...
        2,  2,  24, 24, 30, 4, 2, 6, 5, 2,  // 10-19: memory_op, multicall, update_va_mapping, ...
        30, 2,  2,  0, 4, 5, 36, 2, 2, 8,   // 20-29: grant_table_op, ..., mmuext_op, ..., sched_op
        5,  2,  24, 5, 2, 2, 6, 2, 2, 2,    // 30-39: callback_op, ..., event_channel_op, physdev_op, ..., domctl
        2,  2,  2,  8, 1, 1, 1, 1, 1, 1,    // 40-49: ..., cap_op, unassigned, arch
        1,  1,  1,  1, 1, 1, 1, 1, 1, 1,    // 50-59
        1,  1,  1,  1, 4};
    static unsigned total;
    if (!total)
        for (unsigned i = 0; i < 65; ++i) total += w[i];
    if (g_only < 65 && !in_mc) return g_only;
    unsigned x = unsigned(R.below(total + (in_mc ? 2 : 0)));
    if (in_mc && x >= total) return unsigned(abi::Hypercall::iret);
    for (unsigned i = 0; i < 65; ++i) {
        if (x < w[i]) return i;
        x -= w[i];
    }
    return 64;
}

void generate(unsigned nr, Call& c) {
    using H = abi::Hypercall;
    for (auto& x : c.a) x = 0;
    c.nr = nr;
    switch (H(nr)) {
    case H::set_trap_table: gen_set_trap_table(c); return;
    case H::mmu_update: gen_mmu_update(c); return;
    case H::set_gdt: gen_set_gdt(c); return;
    case H::stack_switch:
        g_b.dirty |= kDirtyStack;
        c.a[0] = R.pct(70) ? abi::kFlatKernelSs : R.next();
        c.a[1] = R.pct(50) ? va_live() : rand_u64();
        return;
    case H::set_callbacks: gen_set_callbacks(c); return;
    case H::fpu_taskswitch:
        g_b.dirty |= kDirtyFpu;
        c.a[0] = R.pct(30) ? 0 : R.pct(70) ? 1 : R.next();
        if (g_b.in_mc && c.a[0]) g_b.mc_fpu = true;
        return;
    case H::sched_op_compat:
        c.a[0] = R.pct(50) ? 0 : R.next();
        if (uint32_t(c.a[0]) == 1 || uint32_t(c.a[0]) == 2) c.a[0] = 0;   // never block or shut down
        c.a[1] = rand_u64();
        return;
    case H::platform_op:
    case H::sysctl:
    case H::kexec_op: {
        auto* raw = alloc<uint64_t>(16);
        for (unsigned i = 0; i < 16; ++i) raw[i] = rand_u64();
        bool h;
        c.a[0] = nr == 37 ? R.below(8) : ptr_in(raw, &h, 10);
        c.a[1] = nr == 37 ? ptr_in(raw, &h, 10) : rand_u64();
        post(kMustFail, nr == 7 ? "platform_op.accepted" : nr == 35 ? "sysctl.accepted" : "kexec_op.accepted");
        return;
    }
    case H::set_debugreg: gen_set_debugreg(c); return;
    case H::update_descriptor: gen_update_descriptor(c); return;
    case H::memory_op: gen_memory_op(c); return;
    case H::multicall: gen_multicall(c); return;
    case H::update_va_mapping:
    case H::update_va_mapping_otherdomain: gen_update_va_mapping(c); return;
    case H::set_timer_op: {
        uint64_t now = rt::now_ns();
        const uint64_t v[] = {0, now + R.below(100'000), now - R.below(1'000'000), ~0ull, 1ull << 63, 1, R.next()};
        c.a[0] = R.pick(v);
        return;
    }
    case H::event_channel_op_compat: {
        // The same operations in the old layout; judged only by the new one.
        Call inner{};
        unsigned before = g_b.n_posts;
        uint32_t cmd;
        void* s;
        unsigned size;
        gen_evtchn(inner, &cmd, &s, &size);
        g_b.n_posts = before;
        auto* compat = alloc<abi::EvtchnOpCompat>();
        compat->cmd = cmd;
        __builtin_memcpy(&compat->u, s, size < sizeof compat->u ? size : sizeof compat->u);
        bool h;
        c.a[0] = ptr_in(compat, &h, 10);
        return;
    }
    case H::xen_version: gen_xen_version(c); return;
    case H::console_io: gen_console_io(c); return;
    case H::grant_table_op: gen_grant_table_op(c); return;
    case H::vm_assist:
        c.a[0] = R.pct(80) ? R.below(2) : R.next();
        c.a[1] = R.pct(80) ? R.pick((const uint64_t[]){0, 1, 2, 3, 4, 5, 32, 33}) : R.next();
        return;
    case H::vcpu_op: gen_vcpu_op(c); return;
    case H::set_segment_base: gen_set_segment_base(c); return;
    case H::mmuext_op: gen_mmuext_op(c); return;
    case H::nmi_op: gen_nmi_op(c); return;
    case H::sched_op: gen_sched_op(c); return;
    case H::callback_op: gen_callback_op(c); return;
    case H::event_channel_op: gen_evtchn(c, nullptr, nullptr, nullptr); return;
    case H::physdev_op: gen_physdev_op(c); return;
    case H::domctl: gen_domctl(c); return;
    case H::cap_op: gen_cap_op(c); return;
    default: break;
    }
    gen_random_args(c);
    if (nr == 11 || (nr >= 44 && nr <= 47)) {
        post(kMustFail, "unassigned_hypercall_accepted");
    } else if (nr >= 64) {
        const uint64_t v[] = {64, 65, 100, 127, 128, 255, 256, 0x80000000ull, 0x10000000dull, 0x100000001ull, ~0ull};
        c.nr = R.pct(80) ? R.pick(v) : (R.next() | 64);
        if (c.nr < 64) c.nr = 64;
        post(kMustEnosys, "out_of_range_hypercall_not_enosys");
    }
}

}  // namespace hcf
