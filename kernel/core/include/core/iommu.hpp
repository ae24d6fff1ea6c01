#pragma once
// DMA confinement (issue 13): one I/O page table per domain that drives a
// PCI function, walked by the machine's DMA-remapping unit (platform.hpp:
// iommu_*) for exactly the functions the domain enabled as bus masters
// through physdev_op (which needs its PciDevice capability).
//
// What a domain's I/O page table maps, at I/O address = machine address
// (the addresses a PV driver already gives its device, as Xen does for PV
// domains with devices):
//  - its own frames whose type is `writable`, read and write. A frame that
//    becomes a page table or a descriptor page leaves it (and the IOTLB)
//    before it is validated; a frame that leaves the domain leaves it before
//    the hypercall that freed it returns (and so before anyone can get it);
//  - frames others granted it and it maps (gnttab map), read-only or
//    read-write as mapped, for as long as a mapping lives; unmapped, and the
//    IOTLB flushed, before the unmap hypercall returns.
// Nothing else: not the hypervisor, not page tables, not frames of others
// it was not granted. A function no domain enabled has no context entry:
// its DMA is blocked.
//
// Invariant (checked by iommu_check in the host tests): for every domain d
// with an I/O table and every frame m, the entry for m in d's table allows
// exactly perm(d, m) = (m is d's and typed writable ? RW : none) | the
// union of d's live grant mappings of m; where the entry allows less than
// the IOTLB may still hold, d.iommu->flush_pending is set until
// iommu_flush_pending() runs (at the end of every hypercall, and at once
// before a frame is validated as a page table).
//
// Locking: one CPU today; every update runs inside a hypercall or domain
// teardown with interrupts off and no other CPU in the kernel. The fault
// queue is the one thing an interrupt handler touches (iommu_fault adds,
// iommu_process_faults takes, with interrupts off).

#include <cstdint>

#include <core/frame_table.hpp>

namespace core {

struct Budget;
struct Domain;
struct IoMmuGrant;

// Faults a domain's devices may cause: at this many it is stopped (its
// devices detached, the domain crashed, so that its builder restarts it by
// its policy).
constexpr unsigned kIommuFaultLimit = 64;
// PCI functions one domain may drive.
constexpr unsigned kIommuMaxFunctions = 4;

struct IoMmu {
    uint64_t root = 0;               // machine frame of the top table
    unsigned nfuncs = 0;
    uint32_t funcs[kIommuMaxFunctions] = {};   // bdfs attached to it
    bool flush_pending = false;      // some entry lost rights since the last flush
    uint32_t faults = 0;             // DMA / interrupt faults its devices caused
    uint32_t table_frames = 0;       // frames of its I/O page table
    // Its frames [0, populate_next) have been looked at since the table was
    // made; the rest are still to be (a preempted attach). Frames that change
    // meanwhile follow at once wherever they are.
    uint64_t populate_next = 0;
    // Grant mappings it holds, per frame (open hash, kmem): read-only and
    // read-write counts.
    IoMmuGrant* grants = nullptr;
    uint32_t grant_cap = 0, grant_used = 0;
};

// What the hooks below look at before doing anything (iommu.cpp owns them):
// they run on every hypercall, exit and type change, and nearly always find
// nothing to do.
namespace iommu_detail {
extern unsigned g_ndom;                      // domains with an I/O page table
extern bool g_pending;                       // some domain's flush_pending is set
extern volatile uint32_t g_fault_head, g_fault_tail;   // the fault queue
void frame_changed(Mfn m, DomId owner_before, bool flush_now);
void grant_mapped(Domain& d, Mfn m, bool writable);
void grant_unmapped(Domain& d, Mfn m, bool writable);
void flush_pending();
void process_faults();
}  // namespace iommu_detail

// Whether the machine confines DMA at all (platform::iommu_levels() != 0).
bool iommu_enabled();

// Domain `d` enabled bus mastering on function `bdf` (it holds the function's
// PciDevice capability): its I/O page table is built if it has none (every
// frame it owns typed writable: one pass over the frame table, `budget` at a
// time) and the function attached to it; a function attached to another
// domain moves. Returns 0, kRestart (core/mm.hpp: out of budget, call again;
// the function is not attached yet, so its DMA stays blocked) or an error
// (enomem, enospc).
[[nodiscard]] long iommu_attach(Domain& d, uint32_t bdf, Budget& budget);
// Detaches every function of `d` and frees its I/O page table (taking it apart).
void iommu_release(Domain& d);

// Frame `m` changed owner or type (memory.cpp, mm_refs.cpp): its entry in the
// I/O table of the domain `owner_before` had (if any) and of its owner now
// follow. With `flush_now` (a frame leaving its domain, or about to be
// validated as a page table or descriptor page) every pending IOTLB flush is
// done before it returns.
inline void iommu_frame_changed(Mfn m, DomId owner_before, bool flush_now) {
    if (iommu_detail::g_ndom) iommu_detail::frame_changed(m, owner_before, flush_now);
}
// Grant mappings of `d`'s (gnttab map/unmap): counted, and the entry follows.
inline void iommu_grant_mapped(Domain& d, Mfn m, bool writable) {
    if (iommu_detail::g_ndom) iommu_detail::grant_mapped(d, m, writable);
}
inline void iommu_grant_unmapped(Domain& d, Mfn m, bool writable) {
    if (iommu_detail::g_ndom) iommu_detail::grant_unmapped(d, m, writable);
}

// Flushes the IOTLB of every domain whose table lost rights since the last
// flush (the end of every hypercall: before the guest runs again).
inline void iommu_flush_pending() {
    if (iommu_detail::g_pending) iommu_detail::flush_pending();
}

// A fault the unit recorded (called by the platform, from its interrupt or
// its poll: only queued here): `source` is the requester (bus << 8 | devfn),
// `addr` the I/O address (or the interrupt index, reasons 0x20 and up),
// `reason` VT-d's fault reason.
void iommu_fault(uint16_t source, uint64_t addr, bool write, uint8_t reason);
// The queued faults, each logged and counted against the domain its function
// is attached to (stopped at kIommuFaultLimit). Called on the way out to a
// guest, where crashing a domain is safe.
inline void iommu_process_faults() {
    if (iommu_detail::g_fault_head != iommu_detail::g_fault_tail) iommu_detail::process_faults();
}
// Faults seen since boot (queued or not) and IOTLB flushes done: for tests
// and the bench.
uint64_t iommu_faults_seen();
uint64_t iommu_flushes();

// What the table of `d` allows for `m`: 0 none, 1 read, 3 read and write
// (for tests and the invariant checker).
unsigned iommu_entry(const Domain& d, Mfn m);
// Checks the invariant above for every domain and frame; the first violation
// is described in `why` (host tests).
bool iommu_check(const char** why);

#if MOAT_HOSTED
// Tests: forget every table, attachment and queued fault (the fake machine's
// memory was reset under them).
void iommu_reset_for_tests();
#endif

}  // namespace core
