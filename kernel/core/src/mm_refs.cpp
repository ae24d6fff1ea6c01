// References, types, validation and devalidation of page-table frames.
// See core/mm.hpp and docs/memory-model.md.

#include <core/caps.hpp>
#include <core/descriptors.hpp>
#include <core/iommu.hpp>
#include <core/log.hpp>
#include <core/memory.hpp>
#include <core/gnttab.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/pte.hpp>

#include <abi/errno.hpp>

namespace core {

namespace {

constexpr long err(abi::Errno e) { return abi::neg(e); }

// What a guest may set in an entry at each level. Cache attributes (PWT, PCD,
// PAT) are refused for RAM (only device memory may be mapped uncached, see
// get_entry_ref_slow); superpages (PSE
// at L2/L3) and global upper-level entries are refused outright; bits 52-62
// are reserved. User is forced on: PV guest kernels run in ring 3.
constexpr uint64_t kCommon = pte::kPresent | pte::kWritable | pte::kUser | pte::kAccessed | pte::kAvail |
                             pte::kNx | pte::kAddrMask;
constexpr uint64_t kL1Allowed = kCommon | pte::kDirty | pte::kGlobal;
constexpr uint64_t kUpperAllowed = kCommon | pte::kDirty;

// The TLB clock: bumped after every full local flush. A frame whose last type
// reference went at clock T may still sit in a TLB if the clock is still T.
uint32_t g_tlb_clock = 1;

uint64_t* table_of(Mfn m) { return frame_va(m); }

long devalidate(MmCtx& c, Mfn m);

// Defers the rest of a devalidation to the vCPU's next memory hypercall. If
// its list is full (a guest piling up half-done work), finishes it now
// instead: bounded by the domain's own page tables, and never a crash.
void defer_devalidation(MmCtx& c, Mfn m) {
    FrameInfo& f = frame_table()[m];
    if (f.flags & kFrameCleanup) return;
    if (c.v.ncleanup < Vcpu::kMaxCleanup) {
        f.flags |= kFrameCleanup;
        c.v.cleanup[c.v.ncleanup++] = m;
        return;
    }
    Budget unlimited = Budget::unlimited();
    MmCtx now{c.d, c.v, unlimited};
    (void)devalidate(now, m);
    f.flags &= static_cast<uint8_t>(~kFramePartial);
}

long get_entry_ref_slow(MmCtx& c, uint64_t e, unsigned level);
void put_entry_ref(MmCtx& c, uint64_t e, unsigned level);

// The common cases inline (an L1 entry to a frame of ours that is read-only
// or already writable); everything else in get_entry_ref_slow. Same checks.
[[gnu::always_inline]] inline long get_entry_ref(MmCtx& c, uint64_t e, unsigned level) {
    if (level == 1 && !(e & ~kL1Allowed)) {
        Mfn child = pte::mfn(e);
        FrameTable& ft = frame_table();
        if (ft.valid(child)) {
            FrameInfo& f = ft[child];
            if (f.owner == c.d.id && f.count != ~0u) {
                if (!(e & pte::kWritable)) {
                    ++f.count;
                    return 0;
                }
                if (f.type == PageType::writable && f.type_count - 1u < ~0u - 1u && !(f.flags & kFrameCleanup)) {
                    ++f.count;
                    ++f.type_count;
                    return 0;
                }
            }
        }
    }
    return get_entry_ref_slow(c, e, level);
}

// Takes references for entries [valid_upto, 512) of a partial table.
long validate(MmCtx& c, Mfn m, unsigned level) {
    FrameInfo& f = frame_table()[m];
    uint64_t* t = table_of(m);
    if (!c.budget.spend()) return kRestart;
    unsigned i = f.valid_upto;
    long r = 0;
    for (; i < 512; ++i) {
        // Read once: nobody can write the table (it has a page-table type).
        uint64_t e = __atomic_load_n(&t[i], __ATOMIC_RELAXED);
        if (!(e & pte::kPresent) || (level == 4 && is_hypervisor_l4_slot(i))) continue;
        if (c.budget.left == 0) {
            r = kRestart;
            break;
        }
        --c.budget.left;
        // Guest kernels run in ring 3: every mapping they make is a user
        // mapping (Xen adjusts entries the same way). A refused entry keeps
        // the guest's own word.
        uint64_t adjusted = e | pte::kUser;
        if (adjusted != e) __atomic_store_n(&t[i], adjusted, __ATOMIC_RELAXED);
        r = get_entry_ref(c, adjusted, level);
        if (r != 0) {   // restart or error: entries [0, i) hold references
            if (adjusted != e) __atomic_store_n(&t[i], e, __ATOMIC_RELAXED);
            break;
        }
    }
    f.valid_upto = static_cast<uint16_t>(i);
    // The hypervisor's own slots go into an L4 only once every guest entry
    // validated (as Xen does): a refused table keeps the guest's words.
    if (r == 0 && level == 4) {
        platform::copy_hypervisor_l4_slots(t);
        f.flags |= kFrameHvSlots;
    }
    return r;
}

// Drops references of entries [0, valid_upto), last first.
long devalidate(MmCtx& c, Mfn m) {
    FrameInfo& f = frame_table()[m];
    unsigned level = type_level(f.type);
    uint64_t* t = table_of(m);
    while (f.valid_upto > 0) {
        unsigned i = f.valid_upto - 1u;
        uint64_t e = __atomic_load_n(&t[i], __ATOMIC_RELAXED);
        if ((e & pte::kPresent) && !(level == 4 && is_hypervisor_l4_slot(i))) {
            if (!c.budget.spend()) return kRestart;
            put_entry_ref(c, e, level);
        }
        f.valid_upto = static_cast<uint16_t>(i);
    }
    // Our own entries do not stay behind in what may become an ordinary page
    // (and a table that never validated never had them).
    if (f.flags & kFrameHvSlots) {
        for (unsigned i = 256; i <= 271; ++i) t[i] = 0;
        f.flags &= static_cast<uint8_t>(~kFrameHvSlots);
    }
    return 0;
}

// A partial table with no type references left: finish taking it apart.
void start_devalidation(MmCtx& c, Mfn m) {
    FrameInfo& f = frame_table()[m];
    f.flags = static_cast<uint8_t>((f.flags & ~(kFrameValidated | kFramePinned)) | kFramePartial);
    if (devalidate(c, m) == kRestart) {
        defer_devalidation(c, m);
        return;
    }
    f.flags &= static_cast<uint8_t>(~kFramePartial);
}

long get_entry_ref_slow(MmCtx& c, uint64_t e, unsigned level) {
    uint64_t allowed = level == 1 ? kL1Allowed : kUpperAllowed;
    Mfn child = pte::mfn(e);
    FrameTable& ft = frame_table();
    if (!ft.valid(child)) {
        // Not RAM: device memory the domain holds an Mmio capability for
        // (a BAR of its PCI function) may be mapped, uncached if it asks
        // (PCD, PWT: device registers), and holds no references.
        if (level == 1 && !(e & ~(allowed | pte::kPcd | pte::kPwt)) &&
            caps::covers(c.d, cap::Type::mmio, child << 12, 4096, cap::right::use))
            return 0;
        return err(abi::Errno::einval);
    }
    if (e & ~allowed) return err(abi::Errno::einval);
    FrameInfo& f = ft[child];
    if (f.owner != c.d.id || f.count == ~0u) return err(abi::Errno::einval);
    ++f.count;
    long r = level == 1 ? ((e & pte::kWritable) ? get_page_type(c, child, PageType::writable) : 0)
                        : get_page_type(c, child, level_type(level - 1));
    if (r != 0) put_page(child);
    return r;
}

void put_entry_ref(MmCtx& c, uint64_t e, unsigned level) {
    // A grant mapping's references belong to its maptrack entry, which
    // unmap_grant_ref (or the end of either domain) releases.
    if (e & kGrantPte) return;
    Mfn child = pte::mfn(e);
    if (!frame_table().valid(child)) return;   // device memory: no references taken
    FrameInfo& f = frame_table()[child];
    if (level == 1 && (e & pte::kWritable) && f.type_count > 1) {   // still writable elsewhere
        --f.type_count;
        --f.count;
        return;
    }
    if (level > 1 || (e & pte::kWritable)) put_page_type(c, child);
    put_page(child);
}

}  // namespace

void tlb_flushed() { ++g_tlb_clock; }

void tlb_flush_all() { platform::flush_tlb_local(); }   // the platform calls tlb_flushed()

bool get_page(MmCtx& c, Mfn m) {
    FrameTable& ft = frame_table();
    if (!ft.valid(m)) return false;
    FrameInfo& f = ft[m];
    if (f.owner != c.d.id || f.count == ~0u) return false;
    ++f.count;
    return true;
}

void put_page(Mfn m) {
    FrameInfo& f = frame_table()[m];
    // A held frame (its domain is gone, core/memory.hpp) goes with its last reference.
    if (--f.count == 0 && f.owner == kOwnerHeld) release_held_frame(m);
}

long get_page_type(MmCtx& c, Mfn m, PageType t) {
    FrameInfo& f = frame_table()[m];
    if (f.flags & kFrameCleanup) return kRestart;   // finish the old devalidation first
    if (f.type_count == 0 && !(f.flags & kFramePartial)) {
        if (f.type != t) {
            // A frame changing type must not be reachable through a stale
            // translation: a writable one (if it becomes a page table) or a
            // cached walk through it (if it stops being one).
            if (f.tlb_stamp == g_tlb_clock) tlb_flush_all();
            PageType was = f.type;
            f.type = t;
            f.flags &= static_cast<uint8_t>(~kFrameValidated);
            f.valid_upto = 0;
            // Its owner's devices follow (core/iommu.hpp): a frame that stops
            // being writable leaves their reach, and their IOTLB, before it
            // is validated as anything else.
            if (was == PageType::writable || t == PageType::writable)
                iommu_frame_changed(m, f.owner, t != PageType::writable);
        }
        if (is_page_table(t) && !(f.flags & kFrameValidated)) f.flags |= kFramePartial;
    } else if (f.type != t) {
        return err(abi::Errno::einval);
    }
    if (t == PageType::seg_desc && !(f.flags & kFrameValidated)) {
        // A page of descriptors (core/descriptors.hpp): every one checked
        // (and fixed up) once, before the first type reference.
        c.budget.charge(32);
        if (!validate_descriptor_page(m)) return err(abi::Errno::einval);
        f.flags |= kFrameValidated;
    }
    if (f.flags & kFramePartial) {
        long r = validate(c, m, type_level(t));
        if (r == kRestart) return r;
        if (r != 0) {
            // Entries [0, valid_upto) hold references: give them back, within
            // budget, before the domain's next memory operation.
            if (devalidate(c, m) == kRestart) defer_devalidation(c, m);
            else f.flags &= static_cast<uint8_t>(~kFramePartial);
            return r;
        }
        f.flags = static_cast<uint8_t>((f.flags & ~kFramePartial) | kFrameValidated);
    }
    if (f.type_count == ~0u) return err(abi::Errno::einval);
    ++f.type_count;
    return 0;
}

void put_page_type(MmCtx& c, Mfn m) {
    FrameInfo& f = frame_table()[m];
    if (--f.type_count != 0) return;
    f.tlb_stamp = g_tlb_clock;
    if (is_page_table(f.type)) start_devalidation(c, m);
}

long get_page_and_type(MmCtx& c, Mfn m, PageType t) {
    if (!get_page(c, m)) return err(abi::Errno::einval);
    long r = get_page_type(c, m, t);
    if (r != 0) put_page(m);
    return r;
}

void put_page_and_type(MmCtx& c, Mfn m) {
    put_page_type(c, m);
    put_page(m);
}

long finish_cleanup_slow(MmCtx& c) {
    while (c.v.ncleanup > 0) {
        Mfn m = c.v.cleanup[c.v.ncleanup - 1];
        FrameInfo& f = frame_table()[m];
        if (devalidate(c, m) == kRestart) return kRestart;
        f.flags &= static_cast<uint8_t>(~(kFramePartial | kFrameCleanup));
        // It may have been queued below newer entries; remove it wherever it is.
        for (unsigned i = 0; i < c.v.ncleanup; ++i)
            if (c.v.cleanup[i] == m) {
                c.v.cleanup[i] = c.v.cleanup[--c.v.ncleanup];
                break;
            }
    }
    return 0;
}

void put_entry_refs(MmCtx& c, uint64_t e, unsigned level) {
    if (e & pte::kPresent) put_entry_ref(c, e, level);
}

long mod_entry(MmCtx& c, Mfn table, unsigned index, uint64_t val, bool preserve_ad) {
    FrameInfo& tf = frame_table()[table];
    unsigned level = type_level(tf.type);
    if (level == 4 && is_hypervisor_l4_slot(index)) return err(abi::Errno::einval);
    uint64_t* slot = &table_of(table)[index];
    uint64_t old = __atomic_load_n(slot, __ATOMIC_RELAXED);
    // Grant mappings change only through the grant-table operations.
    if ((old & pte::kPresent) && (old & kGrantPte)) return err(abi::Errno::einval);
    if (val & pte::kPresent) {
        val |= pte::kUser;
        if (preserve_ad) val |= old & (pte::kAccessed | pte::kDirty);
    }

    // Same frame, same present/writable: only the other flags change, so no
    // references move; still check the flags.
    // (Device memory takes the slow path: its flags are checked there, with
    // the Mmio capability.)
    constexpr uint64_t kRefBits = pte::kPresent | pte::kWritable | pte::kAddrMask;
    if ((old & pte::kPresent) && (val & pte::kPresent) && ((old ^ val) & kRefBits) == 0 &&
        frame_table().valid(pte::mfn(val))) {
        if (val & ~(level == 1 ? kL1Allowed : kUpperAllowed)) return err(abi::Errno::einval);
        __atomic_store_n(slot, val, __ATOMIC_RELAXED);
        return 0;
    }

    // Decode: take the new entry's references first; nothing has changed if
    // that fails. A foreign L1 mapping (building another domain) is checked
    // against that domain as owner.
    if (val & pte::kPresent) {
        long r;
        if (level == 1 && c.pg_owner && c.pg_owner != &c.d) {
            MmCtx fc{*c.pg_owner, c.v, c.budget};
            r = get_entry_ref(fc, val, 1);
        } else {
            r = get_entry_ref(c, val, level);
        }
        if (r != 0) return r;
    }
    // Invoke: the CPU may set accessed/dirty bits in the old entry meanwhile;
    // the exchange keeps whatever it wrote in `old` for the references.
    old = __atomic_exchange_n(slot, val, __ATOMIC_SEQ_CST);
    if (old & pte::kPresent) put_entry_ref(c, old, level);
    return 0;
}

long pin_table(MmCtx& c, Mfn m, PageType t) {
    FrameTable& ft = frame_table();
    if (!ft.valid(m) || ft[m].owner != c.d.id) return err(abi::Errno::einval);
    if (ft[m].flags & kFramePinned) return err(abi::Errno::einval);
    long r = get_page_and_type(c, m, t);
    if (r != 0) return r;
    ft[m].flags |= kFramePinned;
    return 0;
}

long unpin_table(MmCtx& c, Mfn m) {
    FrameTable& ft = frame_table();
    if (!ft.valid(m) || ft[m].owner != c.d.id || !(ft[m].flags & kFramePinned)) return err(abi::Errno::einval);
    ft[m].flags &= static_cast<uint8_t>(~kFramePinned);
    put_page_and_type(c, m);
    return 0;
}

long new_baseptr(MmCtx& c, Mfn m, bool user) {
    Mfn& slot = user ? c.v.guest_table_user : c.v.guest_table;
    if (user && m == 0) {   // no user page table
        Mfn old = slot;
        slot = 0;
        if (old) put_page_and_type(c, old);
        return 0;
    }
    long r = get_page_and_type(c, m, PageType::l4);
    if (r != 0) return r;
    Mfn old = slot;
    slot = m;
    // Load it now if it is the table of the mode the vCPU is in.
    if (user != c.v.kernel_mode) platform::load_page_table(m);
    if (old) put_page_and_type(c, old);
    return 0;
}

bool guest_l1_slot(const Domain& d, Mfn l4, uint64_t va, Mfn* l1, unsigned* index) {
    if (!is_canonical(va) || is_hypervisor_l4_slot(pte::index(va, 4))) return false;
    const FrameTable& ft = frame_table();
    // Every table on the way: a frame of d's, validated and in use as a page
    // table of the level the walk expects (so its entries are d's too).
    auto table_ok = [&](Mfn m, unsigned level) {
        if (!ft.valid(m)) return false;
        const FrameInfo& f = ft[m];
        return f.owner == d.id && f.type == level_type(level) && (f.flags & kFrameValidated) && f.type_count > 0;
    };
    Mfn m = l4;
    for (unsigned level = 4; level > 1; --level) {
        if (!table_ok(m, level)) return false;
        uint64_t e = __atomic_load_n(&table_of(m)[pte::index(va, level)], __ATOMIC_RELAXED);
        if (!(e & pte::kPresent) || (e & pte::kPse)) return false;
        m = pte::mfn(e);
    }
    if (!table_ok(m, 1)) return false;
    *l1 = m;
    *index = pte::index(va, 1);
    return true;
}

bool release_foreign_mappings(Domain& d, uint64_t& t, Budget& b) {
    FrameTable& ft = frame_table();
    bool changed = false;
    auto stop = [&] {
        if (changed) tlb_flush_all();
        return false;
    };
    for (; t < ft.nframes(); ++t) {
        if ((t & 3) == 0 && !b.spend(cost::kFrameScan)) return stop();
        const FrameInfo& tf = ft[t];
        // Only L1 entries can map another domain's frame (upper levels link
        // tables of their own owner only).
        if (tf.type != PageType::l1 || tf.owner == d.id) continue;
        Domain* td = domain_at(tf.owner);
        if (!td || td->state == DomainState::free) continue;
        unsigned n = (tf.flags & kFrameValidated) ? 512u : tf.valid_upto;
        if (n == 0) continue;
        if (!b.spend(n / 8 + 1)) return stop();
        uint64_t* e = table_of(t);
        for (unsigned i = 0; i < n; ++i) {
            uint64_t v = __atomic_load_n(&e[i], __ATOMIC_RELAXED);
            if (!(v & pte::kPresent) || (v & kGrantPte) || !ft.valid(pte::mfn(v)) || ft[pte::mfn(v)].owner != d.id)
                continue;
            __atomic_store_n(&e[i], uint64_t(0), __ATOMIC_SEQ_CST);
            MmCtx c{*td, td->vcpu[0], b};
            put_entry_ref(c, v, 1);
            changed = true;
        }
    }
    if (changed) tlb_flush_all();
    return true;
}

namespace {
// The references one present entry of d's own table holds, dropped without
// devalidating anything: every table of d is visited by relinquish_tables
// itself. Other domains' frames (d's foreign mappings) are released as usual.
void drop_entry_flat(Domain& d, uint64_t e, unsigned level, Budget& b) {
    if (e & kGrantPte) return;   // its maptrack entry's, released already
    FrameTable& ft = frame_table();
    Mfn child = pte::mfn(e);
    if (!ft.valid(child)) return;   // device memory: no references
    FrameInfo& f = ft[child];
    if (f.owner != d.id) {
        MmCtx c{d, d.vcpu[0], b};
        put_entry_ref(c, e, level);
        return;
    }
    if (level > 1 || (e & pte::kWritable)) --f.type_count;
    --f.count;
}
}  // namespace

bool relinquish_tables(Domain& d, uint64_t& t, Budget& b) {
    FrameTable& ft = frame_table();
    if (t == 0) {
        // Its vCPUs' base pointers (a type and a general reference each), and
        // their unfinished devalidations: the frames keep their prefix of
        // entries holding references, which the pass below drops.
        for (auto& v : d.vcpu) {
            for (Mfn* p : {&v.guest_table, &v.guest_table_user}) {
                if (*p == 0) continue;
                FrameInfo& f = ft[*p];
                --f.type_count;
                --f.count;
                *p = 0;
            }
            for (unsigned i = 0; i < v.ncleanup; ++i) ft[v.cleanup[i]].flags &= static_cast<uint8_t>(~kFrameCleanup);
            v.ncleanup = 0;
        }
    }
    for (; t < ft.nframes(); ++t) {
        if ((t & 3) == 0 && !b.spend(cost::kFrameScan)) return false;
        FrameInfo& f = ft[t];
        if (f.owner != d.id) continue;
        if (f.flags & kFramePinned) {
            f.flags &= static_cast<uint8_t>(~kFramePinned);
            --f.type_count;
            --f.count;
        }
        if (!is_page_table(f.type)) continue;
        // Entries [0, valid_upto) hold references; a validated table all 512.
        if (f.flags & kFrameValidated) {
            f.flags = static_cast<uint8_t>((f.flags & ~kFrameValidated) | kFramePartial);
            f.valid_upto = 512;
        }
        unsigned level = type_level(f.type);
        uint64_t* e = table_of(t);
        while (f.valid_upto > 0) {
            unsigned i = f.valid_upto - 1u;
            uint64_t v = __atomic_load_n(&e[i], __ATOMIC_RELAXED);
            if ((v & pte::kPresent) && !(level == 4 && is_hypervisor_l4_slot(i))) {
                if (!b.spend(cost::kEntry)) return false;
                drop_entry_flat(d, v, level, b);
            }
            f.valid_upto = static_cast<uint16_t>(i);
        }
        f.flags &= static_cast<uint8_t>(~kFramePartial);
    }
    return true;
}

}  // namespace core
