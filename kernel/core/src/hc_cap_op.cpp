// cap_op: Moat's one hypercall beyond Xen's. Operations on the caller's
// CSpace, and placing capabilities into another domain's CSpace, which needs
// a Domain capability for it with install-caps. Decode then invoke: libs/cap
// checks everything before it changes anything.

#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>

#include <abi/errno.hpp>
#include <abi/memory.hpp>
#include <abi/moat.hpp>
#include <cap/ops.hpp>

namespace core {

namespace {
constexpr long err(abi::Errno e) { return abi::neg(e); }
constexpr uint32_t kRevokeBudget = 256;   // slots per invocation

long status(base::Status<cap::Error> s) {
    if (!s) return caps::to_errno(s.error());
    caps::changed();
    return 0;
}
}  // namespace

int64_t hc_cap_op(Vcpu& v, Regs& r) {
    Domain& d = *v.domain;
    if (!d.cspace) return err(abi::Errno::esrch);
    abi::CapOpArgs a;
    if (!get_guest(a, r.rsi)) return err(abi::Errno::efault);
    cap::CSpace& own = *d.cspace;

    // The CSpace that receives (copy, mint) or loses (remove) a capability.
    cap::CSpace* target = &own;
    if (a.domain != abi::kDomidSelf && a.domain != d.id) {
        if (!caps::allows(d, cap::Type::domain, a.domain, cap::right::install_caps)) return err(abi::Errno::eperm);
        Domain* t = domain_at(a.domain);
        if (!t || t->state != DomainState::running || !t->cspace) return err(abi::Errno::esrch);
        target = t->cspace;
    }

    switch (static_cast<abi::CapOp>(r.rdi)) {
    case abi::CapOp::copy: return status(cap::copy(own, a.src_slot, *target, a.dst_slot, a.rights));
    case abi::CapOp::mint: return status(cap::mint(own, a.src_slot, *target, a.dst_slot, a.rights, a.badge));
    case abi::CapOp::move:
        if (target != &own) return err(abi::Errno::einval);
        return status(cap::move(own, a.src_slot, own, a.dst_slot));
    case abi::CapOp::remove: return status(cap::remove(*target, a.src_slot));
    case abi::CapOp::revoke: {
        if (target != &own) return err(abi::Errno::einval);
        // Slots per invocation: kRevokeBudget, or what the invocation's
        // budget still pays for (a multicall of revokes shares one budget).
        if (!v.work.spend(kRevokeBudget / 4)) return hypercall_continue(r);
        cap::Budget b{kRevokeBudget};
        auto p = cap::revoke(own, a.src_slot, b);
        if (!p) return caps::to_errno(p.error());
        caps::changed();
        return *p == cap::Progress::restart ? hypercall_continue(r) : 0;
    }
    case abi::CapOp::inspect: {
        auto c = cap::inspect(own, a.src_slot);
        if (!c) return caps::to_errno(c.error());
        a.cap = abi::MoatCap{uint32_t(c->type), c->rights, c->object, c->object2, c->badge};
        return put_guest(r.rsi, a) ? 0 : err(abi::Errno::efault);
    }
    case abi::CapOp::size:
        return own.size();
    }
    return err(abi::Errno::enosys);
}

}  // namespace core
