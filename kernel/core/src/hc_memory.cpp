// memory_op: a domain's reservation (how many frames it owns, within its
// limit) and where the machine-to-phys table is. For a PV domain the frame
// numbers exchanged are machine frames, as in Xen.

#include <core/caps.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>
#include <core/log.hpp>
#include <core/m2p.hpp>
#include <core/memory.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>

#include <abi/errno.hpp>
#include <abi/memory.hpp>
#include <abi/x86_64.hpp>

namespace core {

namespace {

constexpr long err(abi::Errno e) { return abi::neg(e); }


// A frame the domain may give back: its own, with no reference of any kind
// (not mapped, not a page table, not pinned, nothing half-done).
bool removable(const Domain& d, Mfn m) {
    FrameTable& ft = frame_table();
    if (!ft.valid(m) || m == d.shared_info_mfn) return false;
    for (unsigned i = 0; i < d.nr_grant_frames; ++i)
        if (d.grant_frames[i] == m) return false;
    const FrameInfo& f = ft[m];
    return f.owner == d.id && f.count == 0 && f.type_count == 0 && !(f.flags & (kFramePartial | kFrameCleanup | kFramePinned));
}

int64_t reservation(Vcpu& v, Regs& r, abi::MemoryOp op, uint64_t start) {
    abi::XenMemoryReservation res;
    if (!get_guest(res, r.rsi)) return err(abi::Errno::efault);
    Domain* target = caps::acting_on(*v.domain, res.domid, cap::right::build);
    if (!target) return err(abi::Errno::eperm);
    Domain& d = *target;
    // Single frames only for now: contiguous extents need an allocator that
    // can split them back, which no caller needs yet.
    if (res.extent_order != 0) return err(abi::Errno::einval);
    if (start > res.nr_extents) return err(abi::Errno::einval);

    MmCtx c{d, d.vcpu[0], v.work};
    if (finish_cleanup(c) == kRestart) return hypercall_continue(r);

    bool flushed = false;
    uint64_t i = start;
    for (; i < res.nr_extents; ++i) {
        if (!c.budget.spend(cost::kPage)) {   // a frame zeroed, taken or given back
            r.rdi = uint64_t(op) | (i << abi::kMemopExtentShift);
            return hypercall_continue(r);
        }
        uint64_t slot = res.extent_start + i * sizeof(uint64_t);
        if (op == abi::MemoryOp::decrease_reservation) {
            uint64_t m;
            if (!get_guest(m, slot) || !removable(d, m)) break;
            // Nothing may still translate to a frame that leaves the domain.
            if (!flushed) {
                tlb_flush_all();
                flushed = true;
            }
            m2p_set(m, kM2pInvalid);
            free_domain_frame(m);
            --d.tot_pages;
            continue;
        }
        uint64_t gpfn = 0;
        if (op == abi::MemoryOp::populate_physmap && !get_guest(gpfn, slot)) break;
        if (d.tot_pages >= d.max_pages) break;
        // A limit on the frame's address (a 32-bit device's buffers) is
        // honoured; none is the common case.
        auto m = alloc_domain_frame(d.id, res.mem_flags & abi::kXenMemfAddressBitsMask);
        if (!m) break;
        if (!put_guest(slot, *m)) {
            free_domain_frame(*m);
            break;
        }
        m2p_set(*m, op == abi::MemoryOp::populate_physmap ? gpfn : kM2pInvalid);
        ++d.tot_pages;
    }
    return static_cast<int64_t>(i);
}

}  // namespace

int64_t hc_memory_op(Vcpu& v, Regs& r) {
    Domain& d = *v.domain;
    auto op = static_cast<abi::MemoryOp>(r.rdi & abi::kMemopCmdMask);
    uint64_t start = r.rdi >> abi::kMemopExtentShift;
    switch (op) {
    case abi::MemoryOp::increase_reservation:
    case abi::MemoryOp::decrease_reservation:
    case abi::MemoryOp::populate_physmap:
        return reservation(v, r, op, start);
    case abi::MemoryOp::maximum_ram_page:
        return static_cast<int64_t>(frame_table().nframes() - 1);
    case abi::MemoryOp::current_reservation:
    case abi::MemoryOp::maximum_reservation: {
        uint16_t domid;
        if (!get_guest(domid, r.rsi)) return err(abi::Errno::efault);
        Domain* x = caps::acting_on(d, domid, cap::right::control);
        if (!x) return err(abi::Errno::eperm);
        return static_cast<int64_t>(op == abi::MemoryOp::current_reservation ? x->tot_pages : x->max_pages);
    }
    case abi::MemoryOp::machphys_mfn_list: {
        abi::XenMachphysMfnList ml;
        if (!get_guest(ml, r.rsi)) return err(abi::Errno::efault);
        const Mfn* blocks;
        unsigned n = m2p_backing(&blocks);
        unsigned k = 0;
        for (; k < n && k < ml.max_extents; ++k)
            if (!put_guest(ml.extent_start + k * sizeof(uint64_t), uint64_t(blocks[k]))) return err(abi::Errno::efault);
        ml.nr_extents = k;
        return put_guest(r.rsi, ml) ? 0 : err(abi::Errno::efault);
    }
    case abi::MemoryOp::memory_map: {
        // Its pseudo-physical map: RAM from 0 for as much as it may own, as
        // Xen's toolstack sets it for a PV guest.
        abi::XenMemoryMap mm;
        if (!get_guest(mm, r.rsi)) return err(abi::Errno::efault);
        if (mm.nr_entries < 1) return err(abi::Errno::einval);
        struct [[gnu::packed]] E820 {
            uint64_t addr, size;
            uint32_t type;
        } ram{0, d.max_pages << 12, 1};
        static_assert(sizeof(E820) == abi::kE820EntrySize);
        if (!put_guest(mm.buffer, ram)) return err(abi::Errno::efault);
        mm.nr_entries = 1;
        return put_guest(r.rsi, mm) ? 0 : err(abi::Errno::efault);
    }
    case abi::MemoryOp::machphys_mapping: {
        abi::XenMachphysMapping mm{abi::kRoMptVirtStart, abi::kRoMptVirtStart + m2p_entries() * sizeof(uint64_t),
                                   m2p_entries() - 1};
        return put_guest(r.rsi, mm) ? 0 : err(abi::Errno::efault);
    }
    default:
        return err(abi::Errno::enosys);
    }
}

}  // namespace core
