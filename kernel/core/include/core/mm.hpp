#pragma once
// Memory validation: the references and types that keep every guest page
// table safe (see frame_table.hpp for the invariants, docs/memory-model.md for
// which attack each check stops).
//
// A guest never writes a page table directly. Every change goes through
// mmu_update, update_va_mapping or mmuext_op, which check the new entry and
// move references from the old target to the new one. A frame becomes a page
// table of level N only after each of its entries validated as a level-N
// entry, and stops being one (devalidation) when its last type reference goes.
//
// Both directions are preemptible: each hypercall has a work budget; when it
// runs out, validation leaves the frame `partial` and the hypercall continues
// itself (the next invocation resumes where this one stopped), and an
// unfinished devalidation is queued on the vCPU and finished, still within
// budgets, at the start of its next memory hypercall.
//
// Locking: a domain's page tables change only from its own vCPU (one per
// domain today), with interrupts off on that CPU.

#include <cstdint>

#include <core/budget.hpp>
#include <core/domain.hpp>
#include <core/frame_table.hpp>

namespace core {

// Results: 0 success, a negative Xen errno, or kRestart (budget exhausted:
// nothing was changed that the retry would repeat; continue the hypercall).
constexpr long kRestart = 1;

struct MmCtx {
    Domain& d;          // whose page tables change (and whose frames they link)
    Vcpu& v;            // whose list of unfinished devalidations is used
    Budget& budget;     // the invocation's (core/budget.hpp)
    // Whose frames new L1 entries may map: `d`, or a domain `d` builds
    // (mmu_update's foreign domain, authorised by a Domain capability with
    // `build`). Tables are always validated against their own owner.
    Domain* pg_owner = nullptr;
};

// General references: the frame must be owned by ctx.d.
[[nodiscard]] bool get_page(MmCtx& c, Mfn m);
void put_page(Mfn m);

// Type references. get_page_type validates a page-table frame the first time
// it takes the type; put_page_type devalidates it when the last one goes.
[[nodiscard]] long get_page_type(MmCtx& c, Mfn m, PageType t);
void put_page_type(MmCtx& c, Mfn m);

[[nodiscard]] long get_page_and_type(MmCtx& c, Mfn m, PageType t);
void put_page_and_type(MmCtx& c, Mfn m);

// Changes entry `index` of the page table `table` (a validated level-`level`
// table in use) to `val`: checks `val`, takes its references, writes the entry
// atomically, drops the old entry's references. `preserve_ad` keeps the
// accessed/dirty bits the CPU may have set in the old entry.
[[nodiscard]] long mod_entry(MmCtx& c, Mfn table, unsigned index, uint64_t val, bool preserve_ad);

// Releases the references a present entry of a level-`level` table holds
// (what mod_entry does for the old value).
void put_entry_refs(MmCtx& c, uint64_t e, unsigned level);

// Finishes devalidations left over from earlier hypercalls. 0 or kRestart.
[[nodiscard]] long finish_cleanup_slow(MmCtx& c);
[[nodiscard]] inline long finish_cleanup(MmCtx& c) { return c.v.ncleanup ? finish_cleanup_slow(c) : 0; }

// Pins (one type and one general reference held for the guest) and unpins.
[[nodiscard]] long pin_table(MmCtx& c, Mfn m, PageType t);
[[nodiscard]] long unpin_table(MmCtx& c, Mfn m);

// Makes `m` (an L4, validated on the way) the vCPU's kernel or user page table.
[[nodiscard]] long new_baseptr(MmCtx& c, Mfn m, bool user);

// The one walk of a guest's page tables by virtual address (every hypercall
// that takes a guest virtual address to change a mapping uses it): the L1
// table and the index in it of the entry that maps `va` in the tables rooted
// at `l4`. It follows only present entries into page tables `d` owns that are
// validated and in use at the level expected; never a superpage, never the
// hypervisor's L4 slots, never a frame of another domain or beyond RAM.
// false if `va` is not a guest address or any level is not such a table.
[[nodiscard]] bool guest_l1_slot(const Domain& d, Mfn l4, uint64_t va, Mfn* l1, unsigned* index);

// ---- taking a domain apart (core/domain.hpp: domain_teardown) ----------------
// Each step does what `budget` allows and moves `cursor` (a frame number) on;
// true when it has been through every frame.

// Removes every L1 entry of another domain that maps one of d's frames (the
// foreign mappings made to build it) and drops their references.
[[nodiscard]] bool release_foreign_mappings(Domain& d, uint64_t& cursor, Budget& budget);

// Drops every reference d's own page tables, pins and base pointers hold,
// table by table (no devalidation cascades: every table of d is visited), so
// that afterwards only references from outside d remain on its frames.
// References to other domains' frames (foreign mappings d made) are
// released as usual. Its vCPUs' base pointers and cleanup lists go first.
[[nodiscard]] bool relinquish_tables(Domain& d, uint64_t& cursor, Budget& budget);

// TLB bookkeeping. Every full flush of the local TLB goes through here (or
// calls tlb_flushed() after flushing) so type changes know whether a stale
// translation can still exist.
void tlb_flush_all();
void tlb_flushed();

constexpr PageType level_type(unsigned level) {
    return level == 1 ? PageType::l1 : level == 2 ? PageType::l2 : level == 3 ? PageType::l3 : PageType::l4;
}
constexpr unsigned type_level(PageType t) {
    return t == PageType::l1 ? 1 : t == PageType::l2 ? 2 : t == PageType::l3 ? 3 : t == PageType::l4 ? 4 : 0;
}

// L4 slots that belong to the hypervisor (256..271): guests can neither see
// their own values there nor change them.
constexpr bool is_hypervisor_l4_slot(unsigned i) { return i >= 256 && i <= 271; }

}  // namespace core
