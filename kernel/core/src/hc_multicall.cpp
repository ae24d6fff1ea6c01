// multicall: a batch of hypercalls in one trap. Each entry runs through the
// normal dispatcher on a copy of the frame, drawing from the multicall's own
// work budget (core/budget.hpp): nesting buys no extra time. When the budget
// is spent, or an entry needs to continue, its updated arguments go back into
// the entry and the multicall continues from it, so the batch as a whole is
// preempted exactly like one long hypercall.

#include <core/guest_access.hpp>
#include <core/hypercall.hpp>

#include <abi/errno.hpp>
#include <abi/hypercall.hpp>
#include <abi/memory.hpp>

namespace core {

namespace {
constexpr long err(abi::Errno e) { return abi::neg(e); }
constexpr uint64_t kMarkRip = 0x1000;   // any value: a continuation moves it
}  // namespace

int64_t hc_multicall(Vcpu& v, Regs& r) {
    uint64_t entries = r.rdi, n = r.rsi;
    for (uint64_t i = 0; i < n; ++i) {
        uint64_t at = entries + i * sizeof(abi::MulticallEntry);
        abi::MulticallEntry e;
        if (!get_guest(e, at)) return err(abi::Errno::efault);
        // The entry's dispatch and the fixed cost of its call come first:
        // when the budget cannot pay them, continue from this entry.
        if (!v.work.spend(cost::kMulticallEntry + hypercall_base_cost(e.op))) {
            r.rdi = at;
            r.rsi = n - i;
            return hypercall_continue(r);
        }

        int64_t result;
        if (e.op == uint64_t(abi::Hypercall::multicall) || e.op == uint64_t(abi::Hypercall::iret)) {
            result = err(abi::Errno::einval);   // no nesting, no iret from inside a batch
        } else {
            Regs inner = r;
            inner.rax = e.op;
            inner.rdi = e.args[0];
            inner.rsi = e.args[1];
            inner.rdx = e.args[2];
            inner.r10 = e.args[3];
            inner.r8 = e.args[4];
            inner.rip = kMarkRip;
            hypercall_dispatch(v, inner);
            if (v.domain->state != DomainState::running) return 0;
            if (inner.rip != kMarkRip) {   // the entry wants to continue
                e.args[0] = inner.rdi;
                e.args[1] = inner.rsi;
                e.args[2] = inner.rdx;
                e.args[3] = inner.r10;
                e.args[4] = inner.r8;
                if (!put_guest(at, e)) return err(abi::Errno::efault);
                r.rdi = at;
                r.rsi = n - i;
                return hypercall_continue(r);
            }
            result = static_cast<int64_t>(inner.rax);
        }
        if (!put_guest(at + offsetof(abi::MulticallEntry, result), result)) return err(abi::Errno::efault);
    }
    return 0;
}

}  // namespace core
