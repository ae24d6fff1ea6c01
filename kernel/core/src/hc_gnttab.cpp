// grant_table_op (v1): setup_table, query_size, map_grant_ref,
// unmap_grant_ref, copy. See core/gnttab.hpp for the rules.

#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/gnttab.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>
#include <core/log.hpp>
#include <core/memory.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/pte.hpp>

#include <abi/errno.hpp>
#include <abi/grant_table.hpp>
#include <abi/memory.hpp>

namespace core {

namespace {

constexpr long err(abi::Errno e) { return abi::neg(e); }
using St = abi::GntStatus;
constexpr int16_t st(St s) { return static_cast<int16_t>(s); }

// What one operation of a batch costs: its own work, and a share of the
// maptrack scans an unmap may make (update_in_use).
uint32_t op_cost(const Vcpu& v) { return cost::kGrantOp + v.domain->maptrack_limit / 32; }

bool is_self(const Domain& d, uint16_t id) { return id == abi::kDomidSelf || id == d.id; }

abi::GrantEntryV1* entry_of(Domain& g, uint32_t ref) {
    uint32_t per = abi::kGrantEntriesV1PerPage;
    if (ref >= g.nr_grant_frames * per) return nullptr;
    return frame_va<abi::GrantEntryV1>(g.grant_frames[ref / per]) + ref % per;
}

Domain* live_domain(uint16_t id) {
    Domain* g = domain_at(id);
    return g && g->state == DomainState::running ? g : nullptr;
}

// Reads an entry once and checks it grants `to` access (writable if asked).
// Returns the frame, or a status.
int16_t check_entry(Domain& g, uint32_t ref, DomId to, bool write, Mfn* frame) {
    abi::GrantEntryV1* e = entry_of(g, ref);
    if (!e) return st(St::bad_gntref);
    uint64_t raw = __atomic_load_n(reinterpret_cast<uint64_t*>(e), __ATOMIC_ACQUIRE);
    abi::GrantEntryV1 snap;
    __builtin_memcpy(&snap, &raw, sizeof snap);
    if ((snap.flags & abi::kGtfTypeMask) != abi::kGtfPermitAccess || snap.domid != to) return st(St::permission_denied);
    if (write && (snap.flags & abi::kGtfReadonly)) return st(St::permission_denied);
    FrameTable& ft = frame_table();
    if (!ft.valid(snap.frame) || ft[snap.frame].owner != g.id) return st(St::bad_page);
    *frame = snap.frame;
    return st(St::okay);
}

void set_in_use(Domain& g, uint32_t ref, bool write) {
    abi::GrantEntryV1* e = entry_of(g, ref);
    uint16_t bits = abi::kGtfReading | (write ? abi::kGtfWriting : 0);
    __atomic_fetch_or(&e->flags, bits, __ATOMIC_SEQ_CST);
}

// Clears the in-use flags of (granter, ref) once no mapping of it is left.
void update_in_use(Domain& mapper, Domain& g, uint32_t ref) {
    bool reading = false, writing = false;
    for (unsigned i = 0; i < mapper.maptrack_limit; ++i) {
        const Maptrack& m = mapper.maptrack[i];
        if (m.used && m.granter == g.id && m.ref == ref) {
            reading = true;
            writing |= m.writable;
        }
    }
    abi::GrantEntryV1* e = entry_of(g, ref);
    if (!e) return;
    uint16_t clear = (reading ? 0 : abi::kGtfReading) | (writing ? 0 : abi::kGtfWriting);
    __atomic_fetch_and(&e->flags, static_cast<uint16_t>(~clear), __ATOMIC_SEQ_CST);
}

// Drops what a mapping holds: the PTE (if its table is still an L1 holding
// it), the frame's references, the in-use flags.
void release_mapping(Domain& mapper, Maptrack& m) {
    FrameTable& ft = frame_table();
    const FrameInfo& l1 = ft[m.l1];
    if (l1.owner == mapper.id && l1.type == PageType::l1 && ((l1.flags & kFrameValidated) || m.index < l1.valid_upto)) {
        uint64_t* slot = frame_va(m.l1) + m.index;
        uint64_t cur = __atomic_load_n(slot, __ATOMIC_RELAXED);
        if ((cur & kGrantPte) && pte::mfn(cur) == m.frame) __atomic_store_n(slot, uint64_t(0), __ATOMIC_SEQ_CST);
    }
    Domain* g = domain_at(m.granter);
    if (m.writable && g) {
        // A writable type reference on an ordinary frame: no devalidation,
        // so no budget is needed.
        Budget unlimited = Budget::unlimited();
        MmCtx gc{*g, g->vcpu[0], unlimited};
        put_page_type(gc, m.frame);
    }
    put_page(m.frame);
    m.used = false;
    if (g) --g->grants_mapped;
    if (g && g->state == DomainState::running) update_in_use(mapper, *g, m.ref);
}

void do_map(Domain& d, Vcpu& v, abi::GnttabMapGrantRef& op) {
    op.handle = ~0u;
    op.dev_bus_addr = 0;
    op.status = st(St::general_error);
    if (!(op.flags & abi::kGntmapHostMap) || (op.flags & abi::kGntmapDeviceMap)) return;   // host mappings only
    bool write = !(op.flags & abi::kGntmapReadonly);
    // The capability first: without one, whether the domain exists is none
    // of the caller's business.
    if (is_self(d, op.dom)) {
        op.status = st(St::bad_domain);
        return;
    }
    if (!caps::allows(d, cap::Type::grant, op.dom, write ? cap::right::map_rw : cap::right::map_ro) &&
        !(!write && caps::allows(d, cap::Type::grant, op.dom, cap::right::map_rw))) {
        log_for(d, "domain %u: map of grant %u from domain %u refused: no Grant capability for it with %s", d.id, op.ref,
            op.dom, write ? "map-rw" : "map-ro");
        op.status = st(St::permission_denied);
        return;
    }
    Domain* g = live_domain(op.dom);
    if (!g) {
        op.status = st(St::bad_domain);
        return;
    }
    Mfn frame;
    if (int16_t s = check_entry(*g, op.ref, d.id, write, &frame); s != st(St::okay)) {
        op.status = s;
        return;
    }

    // Where the PTE goes: a PTE's machine address, or the L1 entry mapping a VA.
    Mfn l1;
    unsigned index;
    FrameTable& ft = frame_table();
    if (op.flags & abi::kGntmapContainsPte) {
        l1 = op.host_addr >> 12;
        index = static_cast<unsigned>((op.host_addr & 4095) >> 3);
        if (!ft.valid(l1) || ft[l1].owner != d.id || ft[l1].type != PageType::l1 || !(ft[l1].flags & kFrameValidated) ||
            ft[l1].type_count == 0) {
            op.status = st(St::bad_virt_addr);
            return;
        }
    } else if (!guest_l1_slot(d, v.guest_table, op.host_addr, &l1, &index)) {
        // A virtual address of the guest's own, mapped by its own tables: never
        // the hypervisor's range, never a superpage.
        op.status = st(St::bad_virt_addr);
        return;
    }
    uint64_t* slot = frame_va(l1) + index;
    uint64_t old = __atomic_load_n(slot, __ATOMIC_RELAXED);
    if ((old & pte::kPresent) && (old & kGrantPte)) {   // one grant per slot
        op.status = st(St::bad_virt_addr);
        return;
    }
    unsigned h = 0;
    while (h < kMaxMaptrack && d.maptrack[h].used) ++h;
    if (h == kMaxMaptrack) {
        op.status = st(St::no_space);
        return;
    }
    // The frame's references: a writable mapping needs the granter's frame to
    // be (or become) writable, which a page table cannot.
    if (write) {
        Budget unlimited = Budget::unlimited();   // a writable type: never validates anything
        MmCtx gc{*g, g->vcpu[0], unlimited};
        if (ft[frame].count == ~0u || get_page_type(gc, frame, PageType::writable) != 0) {
            op.status = st(St::bad_page);
            return;
        }
    }
    ++ft[frame].count;

    // Invoke: nothing below can fail.
    set_in_use(*g, op.ref, write);
    uint64_t val = pte::make(frame, pte::kPresent | pte::kUser | pte::kAccessed | kGrantPte |
                                        (write ? pte::kWritable | pte::kDirty : 0));
    old = __atomic_exchange_n(slot, val, __ATOMIC_SEQ_CST);
    MmCtx c{d, v, v.work};
    put_entry_refs(c, old, 1);
    if (!(op.flags & abi::kGntmapContainsPte)) platform::invlpg_local(op.host_addr);
    else tlb_flush_all();
    d.maptrack[h] = Maptrack{true, write, g->id, op.ref, frame, l1, static_cast<uint16_t>(index)};
    ++g->grants_mapped;
    if (h >= d.maptrack_limit) d.maptrack_limit = h + 1;
    op.handle = h;
    op.status = st(St::okay);
}

void do_unmap(Domain& d, Vcpu& v, abi::GnttabUnmapGrantRef& op) {
    if (op.handle >= kMaxMaptrack || !d.maptrack[op.handle].used) {
        op.status = st(St::bad_handle);
        return;
    }
    Maptrack& m = d.maptrack[op.handle];
    // The address must name the mapping being removed: the virtual address
    // it is mapped at, or the machine address of its PTE.
    bool by_va = false;
    if (op.host_addr) {
        Mfn l1;
        unsigned index;
        by_va = guest_l1_slot(d, v.guest_table, op.host_addr, &l1, &index) && l1 == m.l1 && index == m.index;
        if (!by_va && !((op.host_addr >> 12) == m.l1 && ((op.host_addr & 4095) >> 3) == m.index)) {
            op.status = st(St::bad_virt_addr);
            return;
        }
    }
    release_mapping(d, m);
    // A virtual address names the one translation to drop; otherwise flush all.
    if (by_va) platform::invlpg_local(op.host_addr);
    else tlb_flush_all();
    op.status = st(St::okay);
}

// One side of a copy: a grant of another domain (or our own), or a frame of ours.
int16_t resolve(Domain& d, const abi::GnttabCopyPtr& p, bool by_ref, bool dest, uint16_t len, Mfn* frame, Domain** owner) {
    if (uint32_t(p.offset) + len > 4096) return st(St::bad_copy_arg);
    FrameTable& ft = frame_table();
    if (!by_ref) {
        if (!is_self(d, p.domid)) return st(St::bad_domain);
        if (!ft.valid(p.u.gmfn) || ft[p.u.gmfn].owner != d.id) return st(St::bad_page);
        *frame = p.u.gmfn;
        *owner = &d;
        return st(St::okay);
    }
    if (!is_self(d, p.domid) && !caps::allows(d, cap::Type::grant, p.domid, cap::right::copy)) {
        log_for(d, "domain %u: grant copy %s domain %u refused: no Grant capability for it with copy", d.id,
            dest ? "to" : "from", p.domid);
        return st(St::permission_denied);
    }
    Domain* g = is_self(d, p.domid) ? &d : live_domain(p.domid);
    if (!g) return st(St::bad_domain);
    *owner = g;
    return check_entry(*g, p.u.ref, d.id, dest, frame);
}

void do_copy(Domain& d, abi::GnttabCopy& op) {
    Mfn src, dst;
    Domain *so, *dso;
    if ((op.status = resolve(d, op.source, op.flags & abi::kGntcopySourceGref, false, op.len, &src, &so)) != 0) return;
    if ((op.status = resolve(d, op.dest, op.flags & abi::kGntcopyDestGref, true, op.len, &dst, &dso)) != 0) return;
    // The destination must be ordinary memory: never write into a page table.
    // It holds a writable type reference for the copy (the common case, a
    // frame already writable, without calls).
    FrameInfo& f = frame_table()[dst];
    bool fast = f.type == PageType::writable && f.type_count - 1u < ~0u - 1u && !(f.flags & kFrameCleanup);
    if (fast) {
        ++f.type_count;
    } else {
        Budget unlimited = Budget::unlimited();   // a writable type: never validates anything
        MmCtx dc{*dso, dso->vcpu[0], unlimited};
        if (get_page_type(dc, dst, PageType::writable) != 0) {
            op.status = st(St::bad_page);
            return;
        }
    }
    uint8_t* to = frame_va<uint8_t>(dst) + op.dest.offset;
    const uint8_t* from = frame_va<uint8_t>(src) + op.source.offset;
    if (dst != src) __builtin_memcpy(to, from, op.len);   // different frames cannot overlap
    else __builtin_memmove(to, from, op.len);
    if (fast) {
        --f.type_count;
    } else {
        Budget unlimited = Budget::unlimited();
        MmCtx dc{*dso, dso->vcpu[0], unlimited};
        put_page_type(dc, dst);
    }
    op.status = st(St::okay);
}

// Runs `each` on every operation of a batch (grant_table_op(cmd, ops, count)),
// continuing the hypercall when the invocation's budget cannot pay for the
// next operation (core/budget.hpp). `write_back` puts an operation's results
// back into guest memory at `at`.
template <typename Op, typename F, typename W>
int64_t batch(Vcpu& v, Regs& r, F&& each, W&& write_back) {
    uint64_t uop = r.rsi, count = r.rdx;
    for (uint64_t i = 0; i < count; ++i) {
        if (!v.work.spend(op_cost(v))) {
            r.rsi = uop + i * sizeof(Op);
            r.rdx = count - i;
            return hypercall_continue(r);
        }
        uint64_t at = uop + i * sizeof(Op);
        Op op;
        if (!get_guest(op, at)) return err(abi::Errno::efault);
        each(op);
        if (!write_back(at, op)) return err(abi::Errno::efault);
    }
    return 0;
}

template <typename Op, typename F>
int64_t batch(Vcpu& v, Regs& r, F&& each) {
    return batch<Op>(v, r, each, [](uint64_t at, const Op& op) { return put_guest(at, op); });
}

}  // namespace

bool gnttab_release_held(Domain& d, uint64_t& k, Budget& b) {
    for (; k < kMaxMaptrack; ++k) {
        Maptrack& m = d.maptrack[k];
        if (!m.used) continue;
        if (!b.spend(cost::kGrantOp + d.maptrack_limit / 32)) return false;
        release_mapping(d, m);
    }
    tlb_flush_all();
    d.maptrack_limit = 0;
    return true;
}

bool gnttab_release_given(Domain& d, uint64_t& slot, Budget& b) {
    bool changed = false;
    for (; slot < kMaxDomains; ++slot) {
        Domain* o = domain_at(unsigned(slot));
        if (o == &d || o->state == DomainState::free) continue;
        // A mapper that is stopped (or itself dying) holds its mappings as
        // firmly as a running one: they go now, before d's frames do.
        for (unsigned i = 0; i < o->maptrack_limit; ++i) {
            Maptrack& m = o->maptrack[i];
            if (!m.used || m.granter != d.id) continue;
            if (!b.spend(cost::kGrantOp)) {
                if (changed) tlb_flush_all();
                return false;   // this domain again next time: what is done stays done
            }
            release_mapping(*o, m);
            changed = true;
        }
    }
    if (changed) tlb_flush_all();
    d.nr_grant_frames = 0;
    return true;
}

long gnttab_seed(Domain& d, uint32_t ref, uint16_t flags, uint16_t domid, Mfn frame) {
    if (ref >= kMaxGrantFrames * abi::kGrantEntriesV1PerPage) return err(abi::Errno::einval);
    if (flags & ~(abi::kGtfPermitAccess | abi::kGtfReadonly)) return err(abi::Errno::einval);
    FrameTable& ft = frame_table();
    if (flags && (!ft.valid(frame) || ft[frame].owner != d.id)) return err(abi::Errno::einval);
    while (d.nr_grant_frames <= ref / abi::kGrantEntriesV1PerPage) {
        auto m = alloc_domain_frame(d.id);
        if (!m) return err(abi::Errno::enomem);
        d.grant_frames[d.nr_grant_frames++] = *m;
    }
    abi::GrantEntryV1* e = entry_of(d, ref);
    if (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & (abi::kGtfReading | abi::kGtfWriting)) return err(abi::Errno::ebusy);
    e->domid = domid;
    e->frame = uint32_t(frame);
    __atomic_store_n(&e->flags, flags, __ATOMIC_RELEASE);
    return 0;
}

unsigned gnttab_mapped_by_others(const Domain& d) { return d.grants_mapped; }

int64_t hc_grant_table_op(Vcpu& v, Regs& r) {
    Domain& d = *v.domain;
    switch (static_cast<abi::GnttabOp>(r.rdi)) {
    case abi::GnttabOp::setup_table:
        return batch<abi::GnttabSetupTable>(v, r, [&](abi::GnttabSetupTable& op) {
            op.status = st(St::general_error);
            if (!is_self(d, op.dom)) {
                op.status = st(St::permission_denied);
                return;
            }
            if (op.nr_frames > kMaxGrantFrames) return;
            while (d.nr_grant_frames < op.nr_frames) {
                auto m = alloc_domain_frame(d.id);
                if (!m) return;
                d.grant_frames[d.nr_grant_frames++] = *m;
            }
            for (uint32_t k = 0; k < op.nr_frames; ++k)
                if (!put_guest(op.frame_list + k * sizeof(uint64_t), uint64_t(d.grant_frames[k]))) return;
            op.status = st(St::okay);
        });
    case abi::GnttabOp::query_size:
        return batch<abi::GnttabQuerySize>(v, r, [&](abi::GnttabQuerySize& op) {
            op.status = is_self(d, op.dom) ? st(St::okay) : st(St::permission_denied);
            op.nr_frames = d.nr_grant_frames;
            op.max_nr_frames = kMaxGrantFrames;
        });
    case abi::GnttabOp::map_grant_ref:
        return batch<abi::GnttabMapGrantRef>(v, r, [&](abi::GnttabMapGrantRef& op) { do_map(d, v, op); });
    case abi::GnttabOp::unmap_grant_ref:
        return batch<abi::GnttabUnmapGrantRef>(v, r, [&](abi::GnttabUnmapGrantRef& op) { do_unmap(d, v, op); });
    case abi::GnttabOp::copy:   // only the status goes back, as in Xen
        return batch<abi::GnttabCopy>(
            v, r,
            [&](abi::GnttabCopy& op) {
                v.work.charge(op.len / 512);   // the bytes, beyond the operation itself
                do_copy(d, op);
            },
            [](uint64_t at, const abi::GnttabCopy& op) {
                return put_guest(at + offsetof(abi::GnttabCopy, status), op.status);
            });
    default:
        return err(abi::Errno::enosys);
    }
}

}  // namespace core
