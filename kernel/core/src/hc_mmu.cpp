// mmu_update, mmuext_op and update_va_mapping: the only ways a guest changes
// its page tables. Decode and check every request (core/mm), then apply it.
// Batches are preemptible: when the budget runs out the hypercall continues
// itself with the remaining requests, exactly as Xen's continuations do.

#include <core/caps.hpp>
#include <core/descriptors.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>
#include <core/m2p.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/pte.hpp>

#include <abi/errno.hpp>
#include <abi/memory.hpp>
#include <abi/x86_64.hpp>

namespace core {

namespace {

constexpr long err(abi::Errno e) { return abi::neg(e); }

// Set in the count of a continued batch; the guest's done counter then holds
// the progress so far (Xen's MMU_UPDATE_PREEMPTED).
constexpr uint64_t kPreempted = 1ull << 31;



// A write to ordinary memory through mmu_update: the frame must be one the
// guest could map writable, i.e. not a page table.
long write_plain(MmCtx& c, Mfn m, unsigned index, uint64_t val) {
    long r = get_page_and_type(c, m, PageType::writable);
    if (r != 0) return r;
    __atomic_store_n(&static_cast<uint64_t*>(platform::phys_to_virt(m << 12))[index], val, __ATOMIC_RELAXED);
    put_page_and_type(c, m);
    return 0;
}

long do_mmu_update(MmCtx& c, MmCtx& fc, const abi::MmuUpdate& req) {
    FrameTable& ft = frame_table();
    uint64_t cmd = req.ptr & abi::kMmuCmdMask;
    uint64_t ma = req.ptr & ~abi::kMmuCmdMask;
    switch (cmd) {
    case abi::kMmuNormalPtUpdate:
    case abi::kMmuPtUpdatePreserveAd: {
        if (ma & 7) return err(abi::Errno::einval);
        Mfn m = ma >> 12;
        unsigned index = static_cast<unsigned>((ma & 4095) >> 3);
        if (!ft.valid(m) || ft[m].owner != c.d.id) return err(abi::Errno::einval);
        const FrameInfo& f = ft[m];
        if (is_page_table(f.type) && (f.flags & kFrameValidated) && f.type_count > 0)
            return mod_entry(c, m, index, req.val, cmd == abi::kMmuPtUpdatePreserveAd);
        return write_plain(c, m, index, req.val);
    }
    case abi::kMmuMachphysUpdate: {
        Mfn m = req.ptr >> 12;
        if (!get_page(fc, m)) return err(abi::Errno::einval);
        m2p_set(m, req.val);
        put_page(m);
        return 0;
    }
    default:
        return err(abi::Errno::enosys);
    }
}

// `c` is the caller's context, `fc` the frame owner's (the same unless the
// batch names a domain being built): pins and page operations act on its
// frames, base pointers and flushes on the caller.
long do_mmuext_op(MmCtx& c, MmCtx& fc, const abi::MmuextOp& op) {
    using C = abi::MmuextCmd;
    bool foreign = &fc.d != &c.d;
    switch (static_cast<C>(op.cmd)) {
    case C::pin_l1_table: return pin_table(fc, op.arg1.mfn, PageType::l1);
    case C::pin_l2_table: return pin_table(fc, op.arg1.mfn, PageType::l2);
    case C::pin_l3_table: return pin_table(fc, op.arg1.mfn, PageType::l3);
    case C::pin_l4_table: return pin_table(fc, op.arg1.mfn, PageType::l4);
    case C::unpin_table: return unpin_table(fc, op.arg1.mfn);
    case C::new_baseptr: return foreign ? err(abi::Errno::einval) : new_baseptr(c, op.arg1.mfn, false);
    case C::new_user_baseptr: return foreign ? err(abi::Errno::einval) : new_baseptr(c, op.arg1.mfn, true);
    case C::tlb_flush_multi:
    case C::invlpg_multi: {
        // One vCPU per domain for now: the mask can only name this one, but
        // it must still be readable.
        uint64_t mask;
        if (!get_guest(mask, op.arg2.vcpumask)) return err(abi::Errno::efault);
        if (static_cast<C>(op.cmd) == C::invlpg_multi) platform::invlpg_local(op.arg1.linear_addr);
        else tlb_flush_all();
        return 0;
    }
    case C::tlb_flush_local:
    case C::tlb_flush_all:
        tlb_flush_all();
        return 0;
    case C::invlpg_local:
    case C::invlpg_all:
        if (!is_canonical(op.arg1.linear_addr)) return err(abi::Errno::einval);
        platform::invlpg_local(op.arg1.linear_addr);
        return 0;
    case C::set_ldt:
        // The caller's own LDT only (core/descriptors.hpp), as Xen.
        return foreign ? err(abi::Errno::eperm) : set_ldt(c, op.arg1.linear_addr, op.arg2.nr_ents);
    case C::clear_page: {
        if (!c.budget.spend(cost::kPage)) return kRestart;   // nothing done yet: the retry does it
        long r = get_page_and_type(fc, op.arg1.mfn, PageType::writable);
        if (r != 0) return r;
        __builtin_memset(frame_va(op.arg1.mfn), 0, 4096);
        put_page_and_type(fc, op.arg1.mfn);
        return 0;
    }
    case C::copy_page: {
        if (!c.budget.spend(cost::kPage)) return kRestart;
        if (!get_page(fc, op.arg2.src_mfn)) return err(abi::Errno::einval);
        long r = get_page_and_type(fc, op.arg1.mfn, PageType::writable);
        if (r == 0) {
            __builtin_memcpy(frame_va(op.arg1.mfn), frame_va(op.arg2.src_mfn), 4096);
            put_page_and_type(fc, op.arg1.mfn);
        }
        put_page(op.arg2.src_mfn);
        return r;
    }
    case C::flush_cache:
    case C::flush_cache_global:
        return err(abi::Errno::eperm);   // needs device access
    default:
        return err(abi::Errno::enosys);
    }
}

// The shared shape of mmu_update and mmuext_op: (requests, count, done, foreign domain).
template <typename Req, long (*Do)(MmCtx&, MmCtx&, const Req&)>
int64_t batch(Vcpu& v, Regs& r) {
    uint64_t reqs = r.rdi, count = r.rsi, pdone = r.rdx;
    uint64_t done = 0;
    if (count & kPreempted) {
        count &= ~kPreempted;
        if (pdone) (void)get_guest(done, pdone);
    }
    // Whose frames the batch may map or manage: the caller's, or those of a
    // domain it builds (the foreign-mapping path, Domain capability with build).
    Domain* owner = caps::acting_on(*v.domain, r.r10 & 0xFFFF, cap::right::build);
    if (!owner) return err(abi::Errno::eperm);

    // One budget for the invocation, whichever context an op uses.
    MmCtx c{*v.domain, v, v.work, owner};
    MmCtx fc{*owner, owner->vcpu[0], v.work, owner};
    long rc = 0;
    uint64_t i = 0;
    if (finish_cleanup(c) == kRestart) {
        rc = kRestart;
    } else {
        for (; i < count; ++i) {
            Req req;
            if (!c.budget.spend(cost::kRequest)) { rc = kRestart; break; }
            if (!get_guest(req, reqs + i * sizeof(Req))) { rc = err(abi::Errno::efault); break; }
            rc = Do(c, fc, req);
            if (v.domain->state != DomainState::running) return 0;
            if (rc != 0) break;
        }
    }
    if (rc == kRestart) {
        if (pdone) (void)put_guest(pdone, done + i);
        r.rdi = reqs + i * sizeof(Req);
        r.rsi = (count - i) | kPreempted;
        return hypercall_continue(r);
    }
    if (pdone && !put_guest(pdone, done + i) && rc == 0) rc = err(abi::Errno::efault);
    return rc;
}

}  // namespace

int64_t hc_mmu_update(Vcpu& v, Regs& r) { return batch<abi::MmuUpdate, do_mmu_update>(v, r); }
int64_t hc_mmuext_op(Vcpu& v, Regs& r) { return batch<abi::MmuextOp, do_mmuext_op>(v, r); }

int64_t hc_update_va_mapping(Vcpu& v, Regs& r) {
    uint64_t va = r.rdi, val = r.rsi, fl = r.rdx;
    if (!is_guest_address(va)) return err(abi::Errno::einval);
    MmCtx c{*v.domain, v, v.work};
    if (finish_cleanup(c) == kRestart) return hypercall_continue(r);

    // Hypercalls come from guest kernel mode: its kernel page tables.
    Mfn l1;
    unsigned index;
    if (!guest_l1_slot(*v.domain, v.guest_table, va, &l1, &index)) return err(abi::Errno::einval);
    long rc = mod_entry(c, l1, index, val, false);
    if (rc == kRestart) return hypercall_continue(r);
    if (rc != 0 || v.domain->state != DomainState::running) return rc;

    // Flush as asked. A vCPU mask (flags >> 2, when not "all") must be readable.
    uint64_t target = fl & ~abi::kUvmfFlushTypeMask;
    if (target != abi::kUvmfLocal && target != abi::kUvmfAll) {
        uint64_t mask;
        if (!get_guest(mask, target)) return err(abi::Errno::efault);
    }
    switch (fl & abi::kUvmfFlushTypeMask) {
    case abi::kUvmfInvlpg: platform::invlpg_local(va); break;
    case abi::kUvmfTlbFlush: tlb_flush_all(); break;
    default: break;
    }
    return 0;
}

}  // namespace core
