// grant_table_op: setup_table, query_size, map_grant_ref, unmap_grant_ref,
// copy, set_version, get_status_frames, get_version (grant tables v1 and
// v2). See core/gnttab.hpp for the rules.

#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/gnttab.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>
#include <core/iommu.hpp>
#include <core/log.hpp>
#include <core/m2p.hpp>
#include <core/memory.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/pte.hpp>
#include <core/trace.hpp>

#include <abi/errno.hpp>
#include <abi/grant_table.hpp>
#include <abi/memory.hpp>

namespace core {

namespace {

constexpr long err(abi::Errno e) { return abi::neg(e); }
using St = abi::GntStatus;
constexpr int16_t st(St s) { return static_cast<int16_t>(s); }
constexpr uint32_t kV1PerPage = abi::kGrantEntriesV1PerPage;
constexpr uint32_t kV2PerPage = abi::kGrantEntriesV2PerPage;
constexpr uint32_t kStatusPerPage = abi::kGrantStatusPerPage;
constexpr uint32_t kReserved = abi::kGrantNrReservedEntries;
constexpr uint16_t kInUse = abi::kGtfReading | abi::kGtfWriting;

// What one operation of a batch costs: its own work, and a share of the
// maptrack scans an unmap may make (update_in_use).
uint32_t op_cost(const Vcpu& v) { return cost::kGrantOp + v.domain->maptrack_limit / 32; }

bool is_self(const Domain& d, uint16_t id) { return id == abi::kDomidSelf || id == d.id; }

Domain* live_domain(uint16_t id) {
    Domain* g = domain_at(id);
    return g && g->state == DomainState::running ? g : nullptr;
}

// ---- the table's layout ------------------------------------------------------

uint32_t per_page(const Domain& g) { return g.grant_version == 2 ? kV2PerPage : kV1PerPage; }
uint32_t nr_entries(const Domain& g) { return g.nr_grant_frames * per_page(g); }

// Entry `ref` in the layout of g's version; the caller checked ref < nr_entries(g).
abi::GrantEntryV1* entry_v1(Domain& g, uint32_t ref) {
    return frame_va<abi::GrantEntryV1>(g.grant_frames[ref / kV1PerPage]) + ref % kV1PerPage;
}
abi::GrantEntryV2* entry_v2(Domain& g, uint32_t ref) {
    return frame_va<abi::GrantEntryV2>(g.grant_frames[ref / kV2PerPage]) + ref % kV2PerPage;
}

// Where entry `ref`'s GTF_reading/GTF_writing live: the v1 entry's own flags,
// or its word in the v2 status frames (there are enough of them: Domain's
// invariant). nullptr beyond the table.
uint16_t* in_use_word(Domain& g, uint32_t ref) {
    if (ref >= nr_entries(g)) return nullptr;
    if (g.grant_version == 1) return &entry_v1(g, ref)->flags;
    return frame_va<uint16_t>(g.status_frames[ref / kStatusPerPage]) + ref % kStatusPerPage;
}

// A new frame for d's table (grant or status frame): zeroed, d's own, and
// holding the hypervisor's general and writable type reference, so that it
// can never become a page table or descriptor page while the hypervisor
// writes it.
bool table_frame_alloc(Domain& d, Mfn* out) {
    auto m = alloc_domain_frame(d.id);
    if (!m) return false;
    Budget unlimited = Budget::unlimited();   // a writable type: never validates anything
    MmCtx c{d, d.vcpu[0], unlimited};
    if (get_page_and_type(c, *m, PageType::writable) != 0) {   // a fresh frame: cannot happen
        free_domain_frame(*m);
        return false;
    }
    *out = *m;
    return true;
}

// Drops the hypervisor's references on a frame leaving d's table.
void table_frame_release(Domain& d, Mfn m) {
    Budget unlimited = Budget::unlimited();
    MmCtx c{d, d.vcpu[0], unlimited};
    put_page_and_type(c, m);
}

// A table frame nothing else references goes back to the allocator (the
// caller flushed the TLB first if the guest ever mapped it).
void table_frame_free(Domain& d, Mfn m) {
    table_frame_release(d, m);
    m2p_set(m, kM2pInvalid);
    free_domain_frame(m);
}

// Grows d's table to `nr` grant frames (and, in v2, the status frames they
// need). A frame is entered only with the status frames it needs, so the
// invariants hold after a failure too. false if memory ran out.
bool grow_table(Domain& d, unsigned nr) {
    while (d.nr_grant_frames < nr) {
        unsigned status = d.grant_version == 2 ? gnttab_status_frames_for(d.nr_grant_frames + 1) : 0;
        Mfn gf, sf = 0;
        if (!table_frame_alloc(d, &gf)) return false;
        if (d.nr_status_frames < status && !table_frame_alloc(d, &sf)) {
            table_frame_free(d, gf);
            return false;
        }
        if (sf) d.status_frames[d.nr_status_frames++] = sf;
        d.grant_frames[d.nr_grant_frames++] = gf;
    }
    return true;
}

// ---- one entry, read once and checked ------------------------------------------

// What an entry grants: a frame of the granter's, and the bytes of it
// [off, off + len) (a sub-page grant's window; the whole page otherwise).
struct Granted {
    Mfn frame;
    uint16_t off;
    uint16_t len;
};

// Reads entry `ref` of g's table once (each word one atomic load) and checks
// it grants `to` access: permit-access (transitive grants are refused, as
// Xen does when they are switched off), to `to`, writable if asked, not a
// sub-page grant if it is to be mapped (Xen maps whole pages only), a window
// inside the page, a frame of the granter's own RAM. A status.
int16_t check_entry(Domain& g, uint32_t ref, DomId to, bool write, bool map, Granted* out) {
    if (ref >= nr_entries(g)) return st(St::bad_gntref);
    uint16_t flags;
    DomId domid;
    uint64_t frame;
    uint32_t off = 0, len = 4096;
    if (g.grant_version == 1) {
        uint64_t raw = __atomic_load_n(reinterpret_cast<uint64_t*>(entry_v1(g, ref)), __ATOMIC_ACQUIRE);
        flags = uint16_t(raw);
        domid = uint16_t(raw >> 16);
        frame = raw >> 32;
    } else {
        auto* w = reinterpret_cast<uint64_t*>(entry_v2(g, ref));
        uint64_t head = __atomic_load_n(&w[0], __ATOMIC_ACQUIRE);   // header, then sub_page's page_off/length
        flags = uint16_t(head);
        domid = uint16_t(head >> 16);
        frame = __atomic_load_n(&w[1], __ATOMIC_ACQUIRE);
        if (flags & abi::kGtfSubPage) {
            off = uint16_t(head >> 32);
            len = uint16_t(head >> 48);
        }
    }
    unsigned type = flags & abi::kGtfTypeMask;
    bool transitive = g.grant_version == 2 && type == abi::kGtfTransitive;
    if ((type != abi::kGtfPermitAccess && !transitive) || domid != to) return st(St::permission_denied);
    if (transitive) return st(St::general_error);
    if (map && (flags & abi::kGtfSubPage)) return st(St::general_error);
    if (write && (flags & abi::kGtfReadonly)) return st(St::permission_denied);
    if (off + len > 4096) return st(St::general_error);   // 32-bit sum of two 16-bit values: no wrap
    FrameTable& ft = frame_table();
    if (!ft.valid(frame) || ft[frame].owner != g.id) return st(St::bad_page);
    *out = Granted{frame, uint16_t(off), uint16_t(len)};
    return st(St::okay);
}

void set_in_use(Domain& g, uint32_t ref, bool write) {
    uint16_t bits = abi::kGtfReading | (write ? abi::kGtfWriting : 0);
    __atomic_fetch_or(in_use_word(g, ref), bits, __ATOMIC_SEQ_CST);
}

// Clears the in-use flags of (granter, ref) once no mapping of it is left.
void update_in_use(Domain& mapper, Domain& g, uint32_t ref) {
    bool reading = false, writing = false;
    for (unsigned i = 0; i < mapper.maptrack_limit; ++i) {
        const Maptrack* mp = maptrack_at(mapper, i);
        if (!mp) {
            i += kMaptrackChunk - 1 - i % kMaptrackChunk;   // an absent chunk: nothing used in it
            continue;
        }
        const Maptrack& m = *mp;
        if (m.used && m.granter == g.id && m.ref == ref) {
            reading = true;
            writing |= m.writable;
        }
    }
    uint16_t* w = in_use_word(g, ref);
    if (!w) return;
    uint16_t clear = (reading ? 0 : abi::kGtfReading) | (writing ? 0 : abi::kGtfWriting);
    __atomic_fetch_and(w, static_cast<uint16_t>(~clear), __ATOMIC_SEQ_CST);
}

// Drops the parts of a mapping asked for (host: the PTE, if its table is
// still an L1 holding it; device: nothing but references) and the
// references each holds. Once it holds neither part, the entry is free and
// the grant's in-use flags follow. A self-mapping (granter == mapper) is one
// entry like any other: released once, here.
void release_parts(Domain& mapper, Maptrack& m, bool host, bool device) {
    host = host && m.host;
    device = device && m.device;
    FrameTable& ft = frame_table();
    if (host) {
        const FrameInfo& l1 = ft[m.l1];
        if (l1.owner == mapper.id && l1.type == PageType::l1 &&
            ((l1.flags & kFrameValidated) || m.index < l1.valid_upto)) {
            uint64_t* slot = frame_va(m.l1) + m.index;
            uint64_t cur = __atomic_load_n(slot, __ATOMIC_RELAXED);
            if ((cur & kGrantPte) && pte::mfn(cur) == m.frame) __atomic_store_n(slot, uint64_t(0), __ATOMIC_SEQ_CST);
        }
    }
    Domain* g = domain_at(m.granter);
    for (unsigned k = unsigned(host) + unsigned(device); k > 0; --k) {
        if (m.writable && g) {
            // A writable type reference on an ordinary frame: no devalidation,
            // so no budget is needed.
            Budget unlimited = Budget::unlimited();
            MmCtx gc{*g, g->vcpu[0], unlimited};
            put_page_type(gc, m.frame);
        }
        put_page(m.frame);
    }
    if (host) m.host = false;
    if (device) m.device = false;
    if (m.host || m.device) return;
    m.used = false;
    // Its devices lose the frame too; the IOTLB is flushed before the
    // hypercall returns (iommu_flush_pending), so before the granter can
    // take the frame back.
    iommu_grant_unmapped(mapper, m.frame, m.writable);
    --mapper.maptrack_used;
    if (g) {
        --g->grants_mapped;
        if (m.ref >= kReserved) --g->grants_busy;
    }
    if (g && g->state == DomainState::running) update_in_use(mapper, *g, m.ref);
}

// ---- map, unmap, copy ------------------------------------------------------------

void do_map(Domain& d, Vcpu& v, abi::GnttabMapGrantRef& op) {
    op.handle = ~0u;
    op.dev_bus_addr = 0;
    op.status = st(St::general_error);
    bool host = op.flags & abi::kGntmapHostMap, device = op.flags & abi::kGntmapDeviceMap;
    if (!host && !device) return;   // nothing to map
    bool write = !(op.flags & abi::kGntmapReadonly);
    // A domain's id as it is (as in Xen, DOMID_SELF names no domain here).
    if (op.dom == abi::kDomidSelf) {
        op.status = st(St::bad_domain);
        return;
    }
    // Its own grants need no capability. Another domain's: the capability
    // first, as without one, whether the domain exists is none of the
    // caller's business.
    bool own = op.dom == d.id;
    if (!own && !caps::allows(d, cap::Type::grant, op.dom, write ? cap::right::map_rw : cap::right::map_ro) &&
        !(!write && caps::allows(d, cap::Type::grant, op.dom, cap::right::map_rw))) {
        log_for(d, "domain %u: map of grant %u from domain %u refused: no Grant capability for it with %s", d.id, op.ref,
            op.dom, write ? "map-rw" : "map-ro");
        op.status = st(St::permission_denied);
        return;
    }
    Domain* g = own ? &d : live_domain(op.dom);
    if (!g) {
        op.status = st(St::bad_domain);
        return;
    }
    Granted gr;
    if (int16_t s = check_entry(*g, op.ref, d.id, write, true, &gr); s != st(St::okay)) {
        op.status = s;
        return;
    }
    Mfn frame = gr.frame;

    // Where the PTE of a host mapping goes: a PTE's machine address, or the
    // L1 entry mapping a VA. A device mapping alone makes none.
    Mfn l1 = 0;
    unsigned index = 0;
    uint64_t* slot = nullptr;
    FrameTable& ft = frame_table();
    if (host) {
        if (op.flags & abi::kGntmapContainsPte) {
            l1 = op.host_addr >> 12;
            index = static_cast<unsigned>((op.host_addr & 4095) >> 3);
            if (!ft.valid(l1) || ft[l1].owner != d.id || ft[l1].type != PageType::l1 ||
                !(ft[l1].flags & kFrameValidated) || ft[l1].type_count == 0) {
                op.status = st(St::bad_virt_addr);
                return;
            }
        } else if (!guest_l1_slot(d, v.guest_table, op.host_addr, &l1, &index)) {
            // A virtual address of the guest's own, mapped by its own tables:
            // never the hypervisor's range, never a superpage.
            op.status = st(St::bad_virt_addr);
            return;
        }
        slot = frame_va(l1) + index;
        uint64_t old = __atomic_load_n(slot, __ATOMIC_RELAXED);
        if ((old & pte::kPresent) && (old & kGrantPte)) {   // one grant per slot
            op.status = st(St::bad_virt_addr);
            return;
        }
    }
    // The lowest free handle; a chunk is allocated when the ones before it
    // are full (Xen grows its maptrack a page at a time the same way).
    unsigned h = 0;
    for (; h < kMaxMaptrack; ++h) {
        const Maptrack* m = maptrack_at(d, h);
        if (!m || !m->used) break;
    }
    if (h == kMaxMaptrack) {
        op.status = st(St::no_space);
        return;
    }
    if (!d.maptrack_dir) {
        d.maptrack_dir = static_cast<Maptrack**>(domain_mem_alloc(d, kMaptrackChunks * sizeof(Maptrack*)));
        if (!d.maptrack_dir) {
            op.status = st(St::no_space);   // out of hypervisor memory: as a full maptrack
            return;
        }
        for (unsigned i = 0; i < kMaptrackChunks; ++i) d.maptrack_dir[i] = nullptr;
    }
    Maptrack*& chunk = d.maptrack_dir[h / kMaptrackChunk];
    if (!chunk) chunk = static_cast<Maptrack*>(domain_mem_alloc(d, kMaptrackChunk * sizeof(Maptrack)));
    if (!chunk) {
        op.status = st(St::no_space);   // out of hypervisor memory: as a full maptrack (Xen: GNTST_no_space)
        return;
    }
    // The frame's references, one set per part: a writable mapping needs
    // the granter's frame to be (or become) writable, which a page table
    // cannot.
    unsigned parts = unsigned(host) + unsigned(device);
    if (ft[frame].count > ~0u - parts) {
        op.status = st(St::bad_page);
        return;
    }
    if (write) {
        Budget unlimited = Budget::unlimited();   // a writable type: never validates anything
        MmCtx gc{*g, g->vcpu[0], unlimited};
        unsigned took = 0;
        while (took < parts && get_page_type(gc, frame, PageType::writable) == 0) ++took;
        if (took < parts) {
            while (took--) put_page_type(gc, frame);
            op.status = st(St::bad_page);
            return;
        }
    }
    ft[frame].count += parts;

    // Invoke: nothing below can fail.
    set_in_use(*g, op.ref, write);
    if (host) {
        // The guest's available bits (XENFEAT_gnttab_map_avail_bits: GNTMAP
        // guest_avail0..2 become PTE bits 9-11, which Linux uses to mark them).
        uint64_t avail = (uint64_t(op.flags >> abi::kGntmapGuestAvailShift) & 7) << 9;
        uint64_t val = pte::make(frame, pte::kPresent | pte::kUser | pte::kAccessed | kGrantPte | avail |
                                            (write ? pte::kWritable | pte::kDirty : 0));
        uint64_t old = __atomic_exchange_n(slot, val, __ATOMIC_SEQ_CST);
        MmCtx c{d, v, v.work};
        put_entry_refs(c, old, 1);
        if (!(op.flags & abi::kGntmapContainsPte)) platform::invlpg_local(op.host_addr);
        else tlb_flush_all();
    }
    *maptrack_at(d, h) = Maptrack{true, write, g->id, op.ref, frame, l1, static_cast<uint16_t>(index), host, device};
    ++d.maptrack_used;
    ++g->grants_mapped;
    if (op.ref >= kReserved) ++g->grants_busy;
    if (h >= d.maptrack_limit) d.maptrack_limit = h + 1;
    // A driver domain's devices reach the frame while the mapping lives
    // (core/iommu.hpp), at the address below.
    iommu_grant_mapped(d, frame, write);
    // The machine address, for every mapping: with an IOMMU too, a driver
    // domain's I/O addresses are machine addresses (core/iommu.hpp).
    op.dev_bus_addr = frame << 12;
    op.handle = h;
    op.status = st(St::okay);
}

// Removes what the operation names of mapping `handle`, as Xen does: the
// host part when host_addr names it (the VA it is mapped at, or its PTE's
// machine address), the device part when dev_bus_addr is given (it must be
// the mapping's, whatever parts it holds). A host-only mapping may also be
// named by its handle alone (host_addr 0), as Moat always allowed.
void do_unmap(Domain& d, Vcpu& v, abi::GnttabUnmapGrantRef& op) {
    Maptrack* mp = maptrack_at(d, op.handle);
    if (!mp || !mp->used) {
        op.status = st(St::bad_handle);
        return;
    }
    Maptrack& m = *mp;
    if (op.dev_bus_addr && op.dev_bus_addr != (m.frame << 12)) {
        op.status = st(St::general_error);
        return;
    }
    bool host = false, by_va = false;
    if (m.host && op.host_addr) {
        Mfn l1;
        unsigned index;
        by_va = guest_l1_slot(d, v.guest_table, op.host_addr, &l1, &index) && l1 == m.l1 && index == m.index;
        if (!by_va && !((op.host_addr >> 12) == m.l1 && ((op.host_addr & 4095) >> 3) == m.index)) {
            op.status = st(St::bad_virt_addr);
            return;
        }
        host = true;
    } else if (m.host && !m.device) {
        host = true;
    }
    bool device = m.device && op.dev_bus_addr;
    release_parts(d, m, host, device);
    // A virtual address names the one translation to drop; otherwise flush all.
    if (host) {
        if (by_va) platform::invlpg_local(op.host_addr);
        else tlb_flush_all();
    }
    op.status = st(St::okay);
}

// One side of a copy: a grant of another domain (or our own), or a frame of
// ours. The bytes [offset, offset + len) must lie inside the page and inside
// what the grant grants (a sub-page grant's window).
int16_t resolve(Domain& d, const abi::GnttabCopyPtr& p, bool by_ref, bool dest, uint16_t len, Mfn* frame,
                Domain** owner) {
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
    Granted gr;
    if (int16_t s = check_entry(*g, p.u.ref, d.id, dest, false, &gr); s != st(St::okay)) return s;
    if (p.offset < gr.off || uint32_t(p.offset) + len > uint32_t(gr.off) + gr.len) return st(St::general_error);
    *frame = gr.frame;
    *owner = g;
    return st(St::okay);
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
    d.grant_copy_bytes += op.len;   // at most 4096 (resolve): no overflow in 2^52 copies
    if (fast) {
        --f.type_count;
    } else {
        Budget unlimited = Budget::unlimited();
        MmCtx dc{*dso, dso->vcpu[0], unlimited};
        put_page_type(dc, dst);
    }
    op.status = st(St::okay);
}

// ---- versions --------------------------------------------------------------------

// GNTTABOP_set_version: switches d's table to layout `want` (1 or 2). As in
// Xen: only while no reference past the reserved ones is in use by anyone;
// the reserved entries (the console's and xenstore's, which stay mapped) are
// carried over, in-use flags included; the rest of the table is cleared. v2
// gets status frames; going back to v1 frees them, which needs the guest to
// have unmapped them. Decode, then invoke: errors change nothing.
long set_version(Domain& d, Vcpu& v, uint32_t want) {
    if (want != 1 && want != 2) return err(abi::Errno::einval);
    if (want == d.grant_version) return 0;
    if (d.grants_busy) return err(abi::Errno::ebusy);
    FrameTable& ft = frame_table();
    uint32_t keep = nr_entries(d) < kReserved ? nr_entries(d) : kReserved;
    abi::GrantEntryV1 saved[kReserved] = {};
    Mfn fresh[kMaxStatusFrames] = {};
    unsigned nfresh = 0;
    if (want == 1) {
        for (uint32_t i = 0; i < keep; ++i) {
            auto* w = reinterpret_cast<uint64_t*>(entry_v2(d, i));
            uint64_t head = __atomic_load_n(&w[0], __ATOMIC_ACQUIRE);
            uint64_t frame = __atomic_load_n(&w[1], __ATOMIC_ACQUIRE);
            uint16_t flags = uint16_t(head);
            unsigned type = flags & abi::kGtfTypeMask;
            // What a v1 entry cannot say.
            if (type == abi::kGtfTransitive || (type == abi::kGtfPermitAccess && (frame >> 32)))
                return err(abi::Errno::erange);
            if (type == abi::kGtfPermitAccess)
                saved[i] = abi::GrantEntryV1{uint16_t(flags | *in_use_word(d, i)), uint16_t(head >> 16), uint32_t(frame)};
        }
        // The status frames leave: nothing but the table may hold them.
        for (unsigned k = 0; k < d.nr_status_frames; ++k) {
            const FrameInfo& f = ft[d.status_frames[k]];
            if (f.count != 1 || f.type_count != 1) return err(abi::Errno::ebusy);
        }
    } else {
        for (uint32_t i = 0; i < keep; ++i) {
            uint64_t raw = __atomic_load_n(reinterpret_cast<uint64_t*>(entry_v1(d, i)), __ATOMIC_ACQUIRE);
            saved[i] = abi::GrantEntryV1{uint16_t(raw), uint16_t(raw >> 16), uint32_t(raw >> 32)};
        }
        unsigned need = gnttab_status_frames_for(d.nr_grant_frames);
        for (; nfresh < need; ++nfresh) {
            if (!table_frame_alloc(d, &fresh[nfresh])) {
                while (nfresh--) table_frame_free(d, fresh[nfresh]);
                return err(abi::Errno::enomem);
            }
            v.work.charge(cost::kPage);
        }
    }

    // Invoke: nothing below can fail.
    if (want == 1) {
        tlb_flush_all();   // nothing may still translate to a frame that leaves the domain
        for (unsigned k = 0; k < d.nr_status_frames; ++k) {
            table_frame_free(d, d.status_frames[k]);
            d.status_frames[k] = 0;
            v.work.charge(cost::kPage);
        }
        d.nr_status_frames = 0;
    } else {
        for (unsigned k = 0; k < nfresh; ++k) d.status_frames[k] = fresh[k];
        d.nr_status_frames = nfresh;
    }
    for (unsigned k = 0; k < d.nr_grant_frames; ++k) {
        __builtin_memset(frame_va<uint8_t>(d.grant_frames[k]), 0, 4096);
        v.work.charge(cost::kPage);
    }
    d.grant_version = uint8_t(want);
    for (uint32_t i = 0; i < keep; ++i) {
        const abi::GrantEntryV1& e = saved[i];
        if (want == 1) {
            auto* to = entry_v1(d, i);
            to->domid = e.domid;
            to->frame = e.frame;
            __atomic_store_n(&to->flags, e.flags, __ATOMIC_RELEASE);
        } else {
            auto* to = entry_v2(d, i);
            *in_use_word(d, i) = e.flags & kInUse;
            to->full_page.frame = e.frame;
            to->hdr.domid = e.domid;
            __atomic_store_n(&to->hdr.flags, uint16_t(e.flags & ~kInUse), __ATOMIC_RELEASE);
        }
    }
    return 0;
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
    for (; k < kMaxMaptrack && d.maptrack_used; ++k) {
        Maptrack* mp = maptrack_at(d, k);
        if (!mp || !mp->used) continue;
        Maptrack& m = *mp;
        if (!b.spend(cost::kGrantOp + d.maptrack_limit / 32)) return false;
        release_parts(d, m, true, true);   // its own grants too: this is their only entry
    }
    tlb_flush_all();
    d.maptrack_limit = 0;
    return true;
}

bool gnttab_release_given(Domain& d, uint64_t& id, Budget& b) {
    // Its own mappings of its own grants went with gnttab_release_held, so
    // d.grants_mapped counts exactly the mappings others still hold: once it
    // is 0 no other domain needs a look. Until then the domains are visited
    // in id order (the cursor survives continuations, whoever comes and goes
    // meanwhile), only those holding any mapping looked into.
    bool changed = false;
    for (; id < kMaxDomains && d.grants_mapped; ++id) {
        if ((id & 63) == 0 && !b.spend(1)) {
            if (changed) tlb_flush_all();
            return false;
        }
        Domain* o = domain_at(unsigned(id));
        if (!o || o == &d || o->maptrack_used == 0) continue;
        // A mapper that is stopped (or itself dying) holds its mappings as
        // firmly as a running one: they go now, before d's frames do.
        for (unsigned i = 0; i < o->maptrack_limit; ++i) {
            Maptrack* mp = maptrack_at(*o, i);
            if (!mp || !mp->used || mp->granter != d.id) continue;
            if (!b.spend(cost::kGrantOp)) {
                if (changed) tlb_flush_all();
                return false;   // this domain again next time: what is done stays done
            }
            release_parts(*o, *mp, true, true);
            changed = true;
        }
    }
    if (changed) tlb_flush_all();
    // Its table and status frames: the hypervisor lets go, and they go with
    // the rest of its frames (its own mappings of them with its tables).
    for (unsigned k = 0; k < d.nr_status_frames; ++k) table_frame_release(d, d.status_frames[k]);
    for (unsigned k = 0; k < d.nr_grant_frames; ++k) table_frame_release(d, d.grant_frames[k]);
    d.nr_status_frames = 0;
    d.nr_grant_frames = 0;
    return true;
}

long gnttab_seed(Domain& d, uint32_t ref, uint16_t flags, uint16_t domid, Mfn frame) {
    uint32_t per = per_page(d);
    if (ref >= kMaxGrantFrames * per) return err(abi::Errno::einval);
    if (flags & ~(abi::kGtfPermitAccess | abi::kGtfReadonly)) return err(abi::Errno::einval);
    FrameTable& ft = frame_table();
    if (flags && (!ft.valid(frame) || ft[frame].owner != d.id)) return err(abi::Errno::einval);
    if (!grow_table(d, ref / per + 1)) return err(abi::Errno::enomem);
    if (__atomic_load_n(in_use_word(d, ref), __ATOMIC_ACQUIRE) & kInUse) return err(abi::Errno::ebusy);
    if (d.grant_version == 1) {
        abi::GrantEntryV1* e = entry_v1(d, ref);
        e->domid = domid;
        e->frame = uint32_t(frame);
        __atomic_store_n(&e->flags, flags, __ATOMIC_RELEASE);
    } else {
        abi::GrantEntryV2* e = entry_v2(d, ref);
        e->full_page.frame = frame;
        e->hdr.domid = domid;
        __atomic_store_n(&e->hdr.flags, flags, __ATOMIC_RELEASE);
    }
    return 0;
}

unsigned gnttab_mapped_by_others(const Domain& d) {
    unsigned own = 0;
    for (unsigned i = 0; i < d.maptrack_limit; ++i) {
        const Maptrack* m = maptrack_at(d, i);
        own += m && m->used && m->granter == d.id;
    }
    return d.grants_mapped - own;
}

int64_t hc_grant_table_op(Vcpu& v, Regs& r) {
    Domain& d = *v.domain;
    trace_grant(v, r.rdi, r.rdx);   // the command and the count asked for, before any check
    switch (static_cast<abi::GnttabOp>(r.rdi)) {
    case abi::GnttabOp::setup_table:
        return batch<abi::GnttabSetupTable>(v, r, [&](abi::GnttabSetupTable& op) {
            op.status = st(St::general_error);
            if (!is_self(d, op.dom)) {
                op.status = st(St::permission_denied);
                return;
            }
            if (op.nr_frames > kMaxGrantFrames || !grow_table(d, op.nr_frames)) return;
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
        // grant_ops and grant_copy_bytes: core/domain.hpp (each operation
        // read counts once, whatever its status; only copied bytes count).
        return batch<abi::GnttabMapGrantRef>(v, r, [&](abi::GnttabMapGrantRef& op) {
            ++d.grant_ops;
            do_map(d, v, op);
        });
    case abi::GnttabOp::unmap_grant_ref:
        return batch<abi::GnttabUnmapGrantRef>(v, r, [&](abi::GnttabUnmapGrantRef& op) {
            ++d.grant_ops;
            do_unmap(d, v, op);
        });
    case abi::GnttabOp::copy:   // only the status goes back, as in Xen
        return batch<abi::GnttabCopy>(
            v, r,
            [&](abi::GnttabCopy& op) {
                v.work.charge(op.len / 512);   // the bytes, beyond the operation itself
                ++d.grant_ops;
                do_copy(d, op);
            },
            [](uint64_t at, const abi::GnttabCopy& op) {
                return put_guest(at + offsetof(abi::GnttabCopy, status), op.status);
            });
    case abi::GnttabOp::set_version: {   // one operation, whatever the count (as Xen)
        abi::GnttabSetVersion op;
        if (!get_guest(op, r.rsi)) return err(abi::Errno::efault);
        long rc = set_version(d, v, op.version);
        op.version = d.grant_version;   // the version in effect, also on failure
        return put_guest(r.rsi, op) ? rc : err(abi::Errno::efault);
    }
    case abi::GnttabOp::get_status_frames: {
        if (r.rdx != 1) return err(abi::Errno::einval);
        abi::GnttabGetStatusFrames op;
        if (!get_guest(op, r.rsi)) return err(abi::Errno::efault);
        op.status = st(St::okay);
        if (!is_self(d, op.dom)) {
            op.status = st(St::permission_denied);
        } else if (op.nr_frames > d.nr_status_frames) {   // none at all in v1
            op.status = st(St::general_error);
        } else {
            for (uint32_t k = 0; k < op.nr_frames; ++k)
                if (!put_guest(op.frame_list + k * sizeof(uint64_t), uint64_t(d.status_frames[k]))) {
                    op.status = st(St::bad_virt_addr);
                    break;
                }
        }
        return put_guest(r.rsi + offsetof(abi::GnttabGetStatusFrames, status), op.status) ? 0
                                                                                        : err(abi::Errno::efault);
    }
    case abi::GnttabOp::get_version: {
        abi::GnttabGetVersion op;
        if (!get_guest(op, r.rsi)) return err(abi::Errno::efault);
        if (!is_self(d, op.dom)) return err(abi::Errno::eperm);
        uint32_t version = d.grant_version;
        return put_guest(r.rsi + offsetof(abi::GnttabGetVersion, version), version) ? 0 : err(abi::Errno::efault);
    }
    default:
        return err(abi::Errno::enosys);
    }
}

}  // namespace core
