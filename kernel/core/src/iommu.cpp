// DMA confinement: the per-domain I/O page tables (core/iommu.hpp).

#include <core/domain.hpp>
#include <core/iommu.hpp>
#include <core/budget.hpp>
#include <core/log.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>

#include <abi/errno.hpp>
#include <base/format.hpp>

namespace core {

namespace iommu_detail {
unsigned g_ndom;
bool g_pending;
volatile uint32_t g_fault_head, g_fault_tail;
}  // namespace iommu_detail
using iommu_detail::g_fault_head;
using iommu_detail::g_fault_tail;
using iommu_detail::g_ndom;
using iommu_detail::g_pending;

// A frame `d` maps by grant: how many of its live mappings are read-only and
// how many read-write. mfn == kNoGrant: a free slot of the open hash.
struct IoMmuGrant {
    Mfn mfn;
    uint32_t ro, rw;
};

namespace {

constexpr uint64_t kRead = 1, kWrite = 2, kRw = kRead | kWrite;
constexpr uint64_t kAddrMask = 0x000FFFFFFFFFF000ull;
constexpr Mfn kNoGrant = ~0ull;
constexpr unsigned kMaxBdf = 256;            // bus 0: device << 3 | function
constexpr unsigned kMaxIommuDomains = 64;    // domains with an I/O page table at once
constexpr unsigned kFaultQueue = 32;

constexpr long err(abi::Errno e) { return abi::neg(e); }

// Which domain each function of bus 0 is attached to: its id + 1, 0 none.
uint16_t g_attached[kMaxBdf];
// The domains that have an I/O page table (unordered; g_ndom of them).
Domain* g_dom[kMaxIommuDomains];
uint64_t g_flushes;

struct Fault {
    uint16_t source;
    bool write;
    uint8_t reason;
    uint64_t addr;
};
// Written by iommu_fault (interrupt context), read by iommu_process_faults
// (interrupts off): head and tail only ever grow.
Fault g_faults[kFaultQueue];
uint64_t g_faults_seen, g_faults_lost;

// The unit's domain id for `d`: VT-d's id 0 may be reserved (CAP.CM), Moat's 0 is the builder.
uint16_t did_of(const Domain& d) { return static_cast<uint16_t>(d.id + 1); }

uint64_t* table_at(uint64_t pa) { return static_cast<uint64_t*>(platform::phys_to_virt(pa)); }
uint64_t pa_of(const void* p) { return reinterpret_cast<uintptr_t>(p) - g_direct_map; }

// Frames whose address the unit's tables can express.
bool addressable(Mfn m) {
    unsigned levels = platform::iommu_levels();
    return levels != 0 && m < (1ull << (9 * levels));
}

uint64_t* new_table(Domain& d) {
    void* p = domain_mem_alloc(d, 4096);   // a whole zeroed frame, the hypervisor's (kmem)
    if (!p) return nullptr;
    ++d.iommu->table_frames;
    return static_cast<uint64_t*>(p);
}

// The leaf entry for `m` in d's table, building the tables on the way when
// `create`; nullptr when it is not there (or memory ran out).
uint64_t* leaf(Domain& d, Mfn m, bool create) {
    if (!addressable(m)) return nullptr;
    uint64_t* t = table_at(d.iommu->root << 12);
    for (unsigned l = platform::iommu_levels(); l > 1; --l) {
        uint64_t& e = t[(m >> (9 * (l - 1))) & 511];
        if (!(e & kRw)) {
            if (!create) return nullptr;
            uint64_t* n = new_table(d);
            if (!n) return nullptr;
            // Zeroed (and in memory) before the unit can reach it through this entry.
            platform::iommu_table_written(n, 4096);
            __atomic_store_n(&e, pa_of(n) | kRw, __ATOMIC_RELEASE);
            platform::iommu_table_written(&e, sizeof e);
        }
        t = table_at(e & kAddrMask);
    }
    return &t[m & 511];
}

const uint64_t* leaf(const Domain& d, Mfn m) { return leaf(const_cast<Domain&>(d), m, false); }

// What d may reach of its own frame m: its frames typed writable, but for
// grant-status frames (the hypervisor writes those; the guest reads them).
unsigned own_perm(const Domain& d, Mfn m) {
    const FrameInfo& f = frame_table()[m];
    if (f.owner != d.id || f.type != PageType::writable) return 0;
    for (unsigned i = 0; i < d.nr_status_frames; ++i)
        if (d.status_frames[i] == m) return 0;
    return kRw;
}

uint64_t hash(Mfn m) { return (m * 0x9E3779B97F4A7C15ull) >> 32; }

IoMmuGrant* grant_find(const IoMmu& io, Mfn m) {
    if (!io.grants) return nullptr;
    uint32_t mask = io.grant_cap - 1;
    for (uint32_t i = hash(m) & mask;; i = (i + 1) & mask) {
        if (io.grants[i].mfn == m) return &io.grants[i];
        if (io.grants[i].mfn == kNoGrant) return nullptr;
    }
}

unsigned grant_perm(const IoMmu& io, Mfn m) {
    const IoMmuGrant* g = grant_find(io, m);
    return !g ? 0 : g->rw ? kRw : g->ro ? kRead : 0;
}

// Room for one more entry: the table kept at most half full.
bool grant_reserve(Domain& d) {
    IoMmu& io = *d.iommu;
    if (io.grants && (io.grant_used + 1) * 2 <= io.grant_cap) return true;
    uint32_t cap = io.grant_cap ? io.grant_cap * 2 : 64;
    auto* n = static_cast<IoMmuGrant*>(domain_mem_alloc(d, cap * sizeof(IoMmuGrant)));
    if (!n) return false;
    for (uint32_t i = 0; i < cap; ++i) n[i] = IoMmuGrant{kNoGrant, 0, 0};
    for (uint32_t i = 0; i < io.grant_cap; ++i) {
        if (io.grants[i].mfn == kNoGrant) continue;
        uint32_t k = hash(io.grants[i].mfn) & (cap - 1);
        while (n[k].mfn != kNoGrant) k = (k + 1) & (cap - 1);
        n[k] = io.grants[i];
    }
    domain_mem_free(d, io.grants, io.grant_cap * sizeof(IoMmuGrant));
    io.grants = n;
    io.grant_cap = cap;
    return true;
}

// Removes slot i, moving back the entries of its probe run (linear probing
// without tombstones).
void grant_erase(IoMmu& io, uint32_t i) {
    uint32_t mask = io.grant_cap - 1;
    for (uint32_t j = i;;) {
        io.grants[i].mfn = kNoGrant;
        for (;;) {
            j = (j + 1) & mask;
            if (io.grants[j].mfn == kNoGrant) {
                --io.grant_used;
                return;
            }
            uint32_t k = hash(io.grants[j].mfn) & mask;
            bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) break;
        }
        io.grants[i] = io.grants[j];
        i = j;
    }
}

// Makes d's entry for m allow exactly what it should now.
void sync(Domain& d, Mfn m) {
    IoMmu& io = *d.iommu;
    unsigned want = own_perm(d, m) | grant_perm(io, m);
    uint64_t* e = leaf(d, m, want != 0);
    if (!e) {
        if (want && addressable(m))
            log_for(d, "dmar: domain %u (%s): frame %#lx not mapped for its devices: out of memory for its I/O table",
                    d.id, d.name, m);
        return;
    }
    uint64_t old = *e, val = want ? (m << 12) | want : 0;
    if (old == val) return;
    __atomic_store_n(e, val, __ATOMIC_RELEASE);
    platform::iommu_table_written(e, sizeof *e);
    if (old & kRw & ~uint64_t(want)) {   // a right taken away: the IOTLB may still hold it
        io.flush_pending = true;
        g_pending = true;
    }
}

void sync_id(DomId id, Mfn m) {
    Domain* d = id < kMaxDomains ? domain_at(id) : nullptr;
    if (d && d->iommu) sync(*d, m);
}

void free_tables(Domain& d, uint64_t* t, unsigned level) {
    if (level > 1)
        for (unsigned i = 0; i < 512; ++i)
            if (t[i] & kRw) free_tables(d, table_at(t[i] & kAddrMask), level - 1);
    domain_mem_free(d, t, 4096);
}

void detach(uint32_t bdf) {
    Domain* d = g_attached[bdf] ? domain_at(g_attached[bdf] - 1u) : nullptr;
    g_attached[bdf] = 0;
    platform::iommu_set_context(bdf, 0, 0);
    if (!d || !d->iommu) return;
    IoMmu& io = *d->iommu;
    for (unsigned i = 0; i < io.nfuncs; ++i) {
        if (io.funcs[i] != bdf) continue;
        io.funcs[i] = io.funcs[--io.nfuncs];
        break;
    }
}

// A new I/O table for d: every frame it may reach now mapped.
long build(Domain& d) {
    if (g_ndom == kMaxIommuDomains) return err(abi::Errno::enospc);
    auto* io = static_cast<IoMmu*>(domain_mem_alloc(d, sizeof(IoMmu)));
    if (!io) return err(abi::Errno::enomem);
    *io = IoMmu{};
    d.iommu = io;
    uint64_t* root = new_table(d);
    if (!root) {
        domain_mem_free(d, io, sizeof(IoMmu));
        d.iommu = nullptr;
        return err(abi::Errno::enomem);
    }
    io->root = pa_of(root) >> 12;
    g_dom[g_ndom++] = &d;
    // Its grant mappings now; its own frames by populate().
    for (unsigned h = 0; h < d.maptrack_limit; ++h) {
        const Maptrack* m = maptrack_at(d, h);
        if (m && m->used) iommu_grant_mapped(d, m->frame, m->writable);
    }
    return 0;
}

// Its own frames into its new table: one pass over the frame table (once per
// driver domain), a budget at a time. false: out of budget.
bool populate(Domain& d, Budget& budget) {
    IoMmu& io = *d.iommu;
    const FrameTable& ft = frame_table();
    while (io.populate_next < ft.nframes()) {
        if ((io.populate_next & 3) == 0 && !budget.spend(cost::kFrameScan)) return false;
        Mfn m = io.populate_next++;
        if (ft[m].owner == d.id && own_perm(d, m)) {
            sync(d, m);
            budget.charge(2 * cost::kEntry);   // a walk of its table (and now and then a new one)
        }
    }
    return true;
}

}  // namespace

bool iommu_enabled() { return platform::iommu_levels() != 0; }

long iommu_attach(Domain& d, uint32_t bdf, Budget& budget) {
    if (!iommu_enabled()) return 0;
    if (bdf >= kMaxBdf) return err(abi::Errno::einval);
    if (g_attached[bdf] == did_of(d) && d.iommu) return 0;
    if (!d.iommu) {
        if (long r = build(d); r != 0) return r;
    }
    if (!populate(d, budget)) return kRestart;
    IoMmu& io = *d.iommu;
    if (io.nfuncs == kIommuMaxFunctions) return err(abi::Errno::enospc);
    if (g_attached[bdf]) detach(bdf);   // another domain's until now: blocked first, then ours
    io.funcs[io.nfuncs++] = bdf;
    g_attached[bdf] = did_of(d);
    platform::iommu_set_context(bdf, did_of(d), io.root);
    log("dmar: %02x:%02x.%u attached to domain %u (%s): its DMA reaches its own frames and its grants only", bdf >> 8,
        (bdf >> 3) & 31, bdf & 7, d.id, d.name);
    return 0;
}

void iommu_release(Domain& d) {
    if (!d.iommu) return;
    IoMmu& io = *d.iommu;
    while (io.nfuncs) detach(io.funcs[io.nfuncs - 1]);   // no DMA through its tables from here on
    free_tables(d, table_at(io.root << 12), platform::iommu_levels());
    if (io.grants) domain_mem_free(d, io.grants, io.grant_cap * sizeof(IoMmuGrant));
    for (unsigned i = 0; i < g_ndom; ++i) {
        if (g_dom[i] != &d) continue;
        g_dom[i] = g_dom[--g_ndom];
        break;
    }
    domain_mem_free(d, &io, sizeof(IoMmu));
    d.iommu = nullptr;
}

void iommu_detail::frame_changed(Mfn m, DomId owner_before, bool flush_now) {
    sync_id(owner_before, m);
    DomId now = frame_table()[m].owner;
    if (now != owner_before) sync_id(now, m);
    if (flush_now) iommu_flush_pending();
}

void iommu_detail::grant_mapped(Domain& d, Mfn m, bool writable) {
    if (!d.iommu) return;
    IoMmuGrant* g = grant_find(*d.iommu, m);
    if (!g) {
        if (!grant_reserve(d)) {
            log_for(d, "dmar: domain %u (%s): grant of frame %#lx not mapped for its devices: out of memory", d.id,
                    d.name, m);
            return;
        }
        IoMmu& io = *d.iommu;
        uint32_t mask = io.grant_cap - 1, i = hash(m) & mask;
        while (io.grants[i].mfn != kNoGrant) i = (i + 1) & mask;
        io.grants[i] = IoMmuGrant{m, 0, 0};
        ++io.grant_used;
        g = &io.grants[i];
    }
    ++(writable ? g->rw : g->ro);
    sync(d, m);
}

void iommu_detail::grant_unmapped(Domain& d, Mfn m, bool writable) {
    if (!d.iommu) return;
    IoMmu& io = *d.iommu;
    IoMmuGrant* g = grant_find(io, m);
    if (!g) return;   // its map found no memory for it
    uint32_t& n = writable ? g->rw : g->ro;
    if (n) --n;
    if (g->rw == 0 && g->ro == 0) grant_erase(io, static_cast<uint32_t>(g - io.grants));
    sync(d, m);
}

void iommu_detail::flush_pending() {
    g_pending = false;
    for (unsigned i = 0; i < g_ndom; ++i) {
        IoMmu& io = *g_dom[i]->iommu;
        if (!io.flush_pending) continue;
        platform::iommu_flush_domain(did_of(*g_dom[i]));
        io.flush_pending = false;
        ++g_flushes;
    }
}

void iommu_fault(uint16_t source, uint64_t addr, bool write, uint8_t reason) {
    ++g_faults_seen;
    uint32_t head = g_fault_head;
    if (head - g_fault_tail == kFaultQueue) {
        ++g_faults_lost;
        return;
    }
    g_faults[head % kFaultQueue] = Fault{source, write, reason, addr};
    g_fault_head = head + 1;
    platform::request_reschedule();
}

void iommu_detail::process_faults() {
    while (g_fault_tail != g_fault_head) {
        Fault f = g_faults[g_fault_tail % kFaultQueue];
        g_fault_tail = g_fault_tail + 1;
        unsigned bus = f.source >> 8, dev = (f.source >> 3) & 31, fn = f.source & 7;
        Domain* d = bus == 0 && g_attached[f.source & 0xFF] ? domain_at(g_attached[f.source & 0xFF] - 1u) : nullptr;
        // What was refused: a DMA (its page) or an interrupt request (the
        // remapping entry it named).
        char what[48];
        if (f.reason >= 0x20) base::snformat(what, sizeof what, "interrupt request, entry %lu", f.addr);
        else base::snformat(what, sizeof what, "%s %#lx", f.write ? "write to" : "read from", f.addr);
        if (!d) {
            // Charged to nobody (a function no domain drives, or a request
            // without a source id): the first few and then every 1024th, so
            // that no device can flood the log this way.
            static uint64_t unowned;
            if (++unowned <= 8 || unowned % 1024 == 0)
                log("dmar: device %02x:%02x.%u (no domain's) %s blocked (fault reason %#x; %lu such)", bus, dev, fn,
                    what, f.reason, unowned);
            continue;
        }
        uint32_t n = d->iommu ? ++d->iommu->faults : 0;
        log_for(*d, "dmar: domain %u (%s) device %02x:%02x.%u %s blocked (fault reason %#x, fault %u)", d->id, d->name,
                bus, dev, fn, what, f.reason, n);
        if (n >= kIommuFaultLimit && d->state == DomainState::running) {
            // Its devices stop first (every function detached), then the domain.
            iommu_release(*d);
            domain_crash(*d, "its devices caused %u DMA faults (the limit): stopped", n);
        }
    }
    if (g_faults_lost) {
        log("dmar: %lu faults not recorded (queue full)", g_faults_lost);
        g_faults_lost = 0;
    }
}

uint64_t iommu_faults_seen() { return g_faults_seen; }
uint64_t iommu_flushes() { return g_flushes; }

unsigned iommu_entry(const Domain& d, Mfn m) {
    if (!d.iommu) return 0;
    const uint64_t* e = leaf(d, m);
    if (!e || !(*e & kRw)) return 0;
    if ((*e & kAddrMask) != (m << 12)) return 0xFF;   // never: an entry maps its own address
    return unsigned(*e & kRw);
}

bool iommu_check(const char** why) {
    const FrameTable& ft = frame_table();
    for (unsigned i = 0; i < g_ndom; ++i) {
        const Domain& d = *g_dom[i];
        if (!d.iommu) {
            *why = "a registered domain has no I/O table";
            return false;
        }
        // The grant part, from the maptrack (not from the counts under test).
        auto granted = [&](Mfn m) {
            unsigned p = 0;
            for (unsigned h = 0; h < d.maptrack_limit; ++h) {
                const Maptrack* t = maptrack_at(d, h);
                if (t && t->used && t->frame == m) p |= t->writable ? kRw : kRead;
            }
            return p;
        };
        for (unsigned h = 0; h < d.maptrack_limit; ++h) {
            const Maptrack* t = maptrack_at(d, h);
            if (!t || !t->used || !addressable(t->frame)) continue;
            if (iommu_entry(d, t->frame) != (own_perm(d, t->frame) | granted(t->frame))) {
                *why = "a granted frame's entry does not allow what its mappings do";
                return false;
            }
        }
        for (Mfn m = 0; m < ft.nframes(); ++m) {
            unsigned e = iommu_entry(d, m);
            if (e == own_perm(d, m) || !addressable(m)) continue;
            if (m >= d.iommu->populate_next && e == 0) continue;   // not looked at yet
            if (e != (own_perm(d, m) | granted(m))) {
                *why = e > own_perm(d, m) ? "an entry allows more than the domain's frames and grants"
                                          : "an entry allows less than the domain's frames";
                return false;
            }
        }
        for (unsigned k = 0; k < d.iommu->nfuncs; ++k) {
            if (g_attached[d.iommu->funcs[k]] != did_of(d)) {
                *why = "a function listed by a domain is attached elsewhere";
                return false;
            }
        }
    }
    for (unsigned bdf = 0; bdf < kMaxBdf; ++bdf) {
        if (!g_attached[bdf]) continue;
        const Domain* d = domain_at(g_attached[bdf] - 1u);
        if (!d || !d->iommu) {
            *why = "a function is attached to a domain without an I/O table";
            return false;
        }
    }
    return true;
}

#if MOAT_HOSTED
void iommu_reset_for_tests() {
    for (auto& a : g_attached) a = 0;
    g_ndom = 0;
    g_pending = false;
    g_flushes = 0;
    g_fault_head = 0;
    g_fault_tail = 0;
    g_faults_seen = g_faults_lost = 0;
}
#endif

}  // namespace core
