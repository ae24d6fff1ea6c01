// update_va_mapping: a guest changes one L1 entry of its current address space.
//
// The guest's page tables are never writable by the guest (they are typed and
// every writable mapping holds a `writable` type reference), so this path is
// the only way an L1 entry changes, and each change is checked here:
//  - the new entry maps a frame the domain owns, with no flags it may not use;
//  - a writable entry needs a `writable` type reference, which a page-table
//    frame cannot give;
//  - references move from the old frame to the new one.

#include <core/domain.hpp>
#include <core/frame_table.hpp>
#include <core/hypercall.hpp>
#include <core/platform.hpp>
#include <core/pte.hpp>

#include <abi/errno.hpp>
#include <abi/memory.hpp>
#include <abi/x86_64.hpp>

namespace core {

namespace {
constexpr int64_t err(abi::Errno e) { return abi::neg(e); }

// Flags a guest may put in an L1 entry. PAT, global and the reserved bits are
// refused; user is forced on (PV guest kernels run in ring 3).
constexpr uint64_t kL1Allowed = pte::kPresent | pte::kWritable | pte::kUser | pte::kPwt | pte::kPcd |
                                pte::kAccessed | pte::kDirty | pte::kAvail | pte::kNx | pte::kAddrMask;

uint64_t* table(Mfn mfn) { return static_cast<uint64_t*>(platform::phys_to_virt(mfn << 12)); }

// The L1 entry that maps `va` in the tree rooted at `l4`, or nullptr if an
// upper level is missing.
uint64_t* find_l1e(Mfn l4, uint64_t va) {
    Mfn m = l4;
    for (unsigned level = 4; level > 1; --level) {
        uint64_t e = table(m)[pte::index(va, level)];
        if (!(e & pte::kPresent)) return nullptr;
        m = pte::mfn(e);
        if (!frame_table().valid(m)) return nullptr;
    }
    return &table(m)[pte::index(va, 1)];
}

bool get_mapping(Mfn mfn, DomId d, bool writable) {
    FrameTable& ft = frame_table();
    if (!ft.valid(mfn) || ft[mfn].owner != d) return false;
    if (writable) return ft.get_type(mfn, d, PageType::writable);
    ++ft[mfn].count;
    return true;
}

void put_mapping(uint64_t e) {
    if (!(e & pte::kPresent)) return;
    Mfn mfn = pte::mfn(e);
    FrameTable& ft = frame_table();
    if (!ft.valid(mfn)) return;
    if (e & pte::kWritable) ft.put_type(mfn);
    else --ft[mfn].count;
}
}  // namespace

int64_t hc_update_va_mapping(Vcpu& v, Regs& r) {
    uint64_t va = r.rdi, val = r.rsi, fl = r.rdx;
    if (!is_canonical(va) || (va >= abi::kHypervisorVirtStart && va < abi::kHypervisorVirtEnd))
        return err(abi::Errno::einval);

    Mfn root = v.kernel_mode ? v.guest_table : v.guest_table_user;
    uint64_t* l1e = find_l1e(root, va);
    if (!l1e) return err(abi::Errno::einval);

    // Decode: everything is checked before anything changes.
    if (val & pte::kPresent) {
        if (val & ~kL1Allowed) return err(abi::Errno::einval);
        val |= pte::kUser;
        if (!get_mapping(pte::mfn(val), v.domain->id, val & pte::kWritable)) return err(abi::Errno::einval);
    }

    // Invoke.
    uint64_t old = __atomic_exchange_n(l1e, val, __ATOMIC_SEQ_CST);
    put_mapping(old);

    switch (fl & abi::kUvmfFlushTypeMask) {
    case abi::kUvmfInvlpg: platform::invlpg_local(va); break;
    case abi::kUvmfTlbFlush: platform::flush_tlb_local(); break;
    default:
        // Even without a flush asked for, a dropped or downgraded mapping must
        // not live on in this CPU's TLB: the frame may change hands.
        if ((old & pte::kPresent) && old != val)
            platform::invlpg_local(va);
        break;
    }
    return 0;
}

}  // namespace core
