// event_channel_op: Xen's event channels, 2-level and FIFO (the FIFO set-up
// and delivery are core/evtchn_fifo.hpp's). Binding a port to another domain
// needs an Event capability naming it (core/caps.hpp); everything else acts
// on the caller's own ports.

#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/evtchn.hpp>
#include <core/evtchn_fifo.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>
#include <core/irq.hpp>
#include <core/log.hpp>

#include <abi/errno.hpp>
#include <abi/event_channel.hpp>
#include <abi/memory.hpp>

namespace core {

namespace {

constexpr long err(abi::Errno e) { return abi::neg(e); }

bool is_self(const Domain& d, uint16_t id) { return id == abi::kDomidSelf || id == d.id; }

// The lowest free port; port 0 is never used (Xen reserves it). In FIFO
// mode it starts at the default priority. Buckets are allocated in order
// and kept until the domain goes, so the allocated ones are a prefix: a new
// bucket is taken only when every port of those is in use.
long alloc_port(Domain& d) {
    for (unsigned b = 0; b < kEvtchnBuckets; ++b) {
        Channel*& bucket = d.evtchn_bucket[b];
        if (!bucket) {
            bucket = static_cast<Channel*>(domain_mem_alloc(d, kEvtchnBucketPorts * sizeof(Channel)));
            if (!bucket) return err(abi::Errno::enomem);
            for (unsigned i = 0; i < kEvtchnBucketPorts; ++i) {
                bucket[i] = Channel{};
                bucket[i].priority = bucket[i].last_queue = abi::kEvtchnFifoPriorityDefault;
            }
        }
        for (unsigned i = b == 0 ? 1 : 0; i < kEvtchnBucketPorts; ++i)
            if (bucket[i].state == ChannelState::free) {
                uint32_t p = b * kEvtchnBucketPorts + i;
                evtchn_fifo_port_init(d, p);
                return p;
            }
    }
    return err(abi::Errno::enospc);
}

// What a port is bound to; its FIFO priority and last queue stay.
void set_binding(Channel& c, ChannelState s, uint8_t virq, uint16_t remote_dom, uint32_t remote_port) {
    c.state = s;
    c.virq = virq;
    c.remote_dom = remote_dom;
    c.remote_port = remote_port;
}
void unbind(Channel& c) { set_binding(c, ChannelState::free, 0, 0, 0); }

void clear_port_bits(Domain& d, uint32_t p) {
    if (d.fifo.active) {
        evtchn_fifo_port_close(d, p);
        return;
    }
    __atomic_and_fetch(&d.shared_info->evtchn_pending[p / 64], ~(1ull << (p % 64)), __ATOMIC_SEQ_CST);
}

// The FIFO set-up calls change state in one indivisible step: when the
// invocation's budget cannot pay for the most one costs, it continues first.
int64_t fifo_init_control(Vcpu& v, Regs& r, uint64_t arg) {
    abi::EvtchnInitControl a;
    if (!get_guest(a, arg)) return err(abi::Errno::efault);
    if (v.work.left < kFifoInitCost) return hypercall_continue(r);
    long rc = evtchn_fifo_init_control(v, a);
    if (rc) return rc;
    return put_guest(arg, a) ? 0 : err(abi::Errno::efault);   // link_bits, as Xen: on success only
}

int64_t fifo_expand_array(Vcpu& v, Regs& r, uint64_t arg) {
    abi::EvtchnExpandArray a;
    if (!get_guest(a, arg)) return err(abi::Errno::efault);
    if (v.work.left < kFifoExpandCost) return hypercall_continue(r);
    return evtchn_fifo_expand_array(v, a.array_gfn);
}

long do_close(Domain& d, uint32_t port) {
    Channel* cp = port == 0 ? nullptr : port_channel(d, port);
    if (!cp || cp->state == ChannelState::free) return err(abi::Errno::einval);
    Channel& c = *cp;
    if (c.state == ChannelState::interdomain) {
        evtchn_unlink_peer(d, port);   // the peer's end becomes unbound, whatever state the peer is in
    } else if (c.state == ChannelState::virq) {
        d.vcpu[0].virq_port[c.virq] = 0;
    } else if (c.state == ChannelState::pirq) {
        irq_unbind_port(d, port);
    }
    unbind(c);
    clear_port_bits(d, port);
    return 0;
}

}  // namespace

int64_t hc_event_channel_op(Vcpu& v, Regs& r) {
    Domain& d = *v.domain;
    uint64_t arg = r.rsi;
    switch (static_cast<abi::EvtchnOp>(r.rdi)) {
    case abi::EvtchnOp::alloc_unbound: {
        abi::EvtchnAllocUnbound a;
        if (!get_guest(a, arg)) return err(abi::Errno::efault);
        // On another domain's behalf only while building it (Xen's toolstack
        // sets up a new domain's console and store ports this way).
        Domain* owner = &d;
        if (!is_self(d, a.dom)) {
            if (!caps::allows(d, cap::Type::domain, a.dom, cap::right::build)) return err(abi::Errno::eperm);
            owner = domain_at(a.dom);
            if (!owner || owner->state != DomainState::running) return err(abi::Errno::esrch);
        }
        long p = alloc_port(*owner);
        if (p < 0) return p;
        Channel& oc = *port_channel(*owner, uint32_t(p));
        set_binding(oc, ChannelState::unbound, 0, a.remote_dom == abi::kDomidSelf ? d.id : a.remote_dom, 0);
        a.port = static_cast<uint32_t>(p);
        if (!put_guest(arg, a)) {
            unbind(oc);
            return err(abi::Errno::efault);
        }
        return 0;
    }
    case abi::EvtchnOp::bind_interdomain: {
        abi::EvtchnBindInterdomain b;
        if (!get_guest(b, arg)) return err(abi::Errno::efault);
        uint16_t rd = is_self(d, b.remote_dom) ? d.id : b.remote_dom;
        // Decode: the capability, then the peer's port, then a port of ours.
        if (rd != d.id && !caps::allows(d, cap::Type::event, rd, cap::right::bind)) {
            log_for(d, "domain %u: bind_interdomain to domain %u refused: no Event capability for it", d.id, rd);
            return err(abi::Errno::eperm);
        }
        Domain* peer = domain_at(rd);
        if (!peer || peer->state != DomainState::running) return err(abi::Errno::esrch);
        Channel* pcp = b.remote_port == 0 ? nullptr : port_channel(*peer, b.remote_port);
        if (!pcp || pcp->state != ChannelState::unbound || pcp->remote_dom != d.id) return err(abi::Errno::einval);
        Channel& pc = *pcp;
        long p = alloc_port(d);
        if (p < 0) return p;
        b.local_port = static_cast<uint32_t>(p);
        if (!put_guest(arg, b)) return err(abi::Errno::efault);
        // Invoke.
        set_binding(*port_channel(d, uint32_t(p)), ChannelState::interdomain, 0, rd, b.remote_port);
        set_binding(pc, ChannelState::interdomain, 0, d.id, static_cast<uint32_t>(p));
        // Xen marks the new local port pending so nothing sent before the bind is lost.
        evtchn_set_pending(d, static_cast<uint32_t>(p));
        return 0;
    }
    case abi::EvtchnOp::bind_virq: {
        abi::EvtchnBindVirq b;
        if (!get_guest(b, arg)) return err(abi::Errno::efault);
        // Any virtual IRQ (Xen's rules: a global one on vCPU 0 only); the
        // hypervisor raises the timer, VIRQ_DOM_EXC and VIRQ_CON_RING.
        if (b.virq >= abi::kNrVirqs) return err(abi::Errno::einval);
        if (!virq_is_per_vcpu(b.virq) && b.vcpu != 0) return err(abi::Errno::einval);
        if (b.vcpu != v.id) return err(abi::Errno::enoent);   // one vCPU per domain
        if (v.virq_port[b.virq]) return err(abi::Errno::eexist);
        long p = alloc_port(d);
        if (p < 0) return p;
        b.port = static_cast<uint32_t>(p);
        if (!put_guest(arg, b)) return err(abi::Errno::efault);
        set_binding(*port_channel(d, uint32_t(p)), ChannelState::virq, static_cast<uint8_t>(b.virq), d.id, 0);
        v.virq_port[b.virq] = static_cast<uint32_t>(p);
        return 0;
    }
    case abi::EvtchnOp::bind_ipi: {
        // A port the domain signals itself with (another of its vCPUs, when
        // it has several): EVTCHNOP_send on it marks it pending here.
        abi::EvtchnBindIpi b;
        if (!get_guest(b, arg)) return err(abi::Errno::efault);
        if (b.vcpu != v.id) return err(abi::Errno::enoent);
        long p = alloc_port(d);
        if (p < 0) return p;
        b.port = static_cast<uint32_t>(p);
        if (!put_guest(arg, b)) return err(abi::Errno::efault);
        set_binding(*port_channel(d, uint32_t(p)), ChannelState::ipi, 0, d.id, 0);
        return 0;
    }
    case abi::EvtchnOp::bind_vcpu: {
        // Which vCPU a port notifies: with one vCPU only vCPU 0, and only for
        // the kinds Xen lets move (not a per-vCPU VIRQ, not an IPI).
        abi::EvtchnBindVcpu b;
        if (!get_guest(b, arg)) return err(abi::Errno::efault);
        if (b.port == 0 || b.port >= kMaxEvtchnPorts) return err(abi::Errno::einval);
        if (b.vcpu != v.id) return err(abi::Errno::enoent);
        const Channel* cp = port_channel(d, b.port);
        if (!cp) return err(abi::Errno::einval);
        const Channel& c = *cp;
        switch (c.state) {
        case ChannelState::unbound: case ChannelState::interdomain: case ChannelState::pirq: return 0;
        case ChannelState::virq: return virq_is_per_vcpu(c.virq) ? err(abi::Errno::einval) : 0;
        default: return err(abi::Errno::einval);
        }
    }
    case abi::EvtchnOp::bind_pirq: {
        // A physical interrupt line, with an Irq capability naming it.
        abi::EvtchnBindPirq b;
        if (!get_guest(b, arg)) return err(abi::Errno::efault);
        if (!caps::allows(d, cap::Type::irq, b.pirq, cap::right::use)) {
            log_for(d, "domain %u: bind_pirq %u refused: no Irq capability for it", d.id, b.pirq);
            return err(abi::Errno::eperm);
        }
        if (b.pirq >= kNrIrqLines) return err(abi::Errno::einval);
        long p = alloc_port(d);
        if (p < 0) return p;
        b.port = static_cast<uint32_t>(p);
        if (!put_guest(arg, b)) return err(abi::Errno::efault);
        Channel& pc = *port_channel(d, uint32_t(p));
        set_binding(pc, ChannelState::pirq, 0, d.id, b.pirq);
        long rc = irq_bind(d, b.pirq, uint32_t(p));
        if (rc) unbind(pc);
        return rc;
    }
    case abi::EvtchnOp::close: {
        abi::EvtchnClose c;
        if (!get_guest(c, arg)) return err(abi::Errno::efault);
        return do_close(d, c.port);
    }
    case abi::EvtchnOp::send: {
        abi::EvtchnSend s;
        if (!get_guest(s, arg)) return err(abi::Errno::efault);
        const Channel* cp = s.port == 0 ? nullptr : port_channel(d, s.port);
        if (!cp) return err(abi::Errno::einval);
        const Channel& c = *cp;
        // events_sent (core/domain.hpp) counts the sends that return 0.
        switch (c.state) {
        case ChannelState::interdomain: {
            ++d.events_sent;
            Domain* peer = domain_at(c.remote_dom);
            if (peer && peer->state == DomainState::running) evtchn_set_pending(*peer, c.remote_port);
            return 0;
        }
        case ChannelState::ipi:
            ++d.events_sent;
            evtchn_set_pending(d, s.port);
            return 0;
        case ChannelState::virq:    // only the hypervisor raises a VIRQ (Xen: -EINVAL)
        case ChannelState::pirq:    // only the device raises its line
            return err(abi::Errno::einval);
        case ChannelState::unbound:
            ++d.events_sent;
            return 0;   // nobody listens yet: dropped, as in Xen
        case ChannelState::free:
            return err(abi::Errno::einval);
        }
        return err(abi::Errno::einval);
    }
    case abi::EvtchnOp::unmask: {
        abi::EvtchnUnmask u;
        if (!get_guest(u, arg)) return err(abi::Errno::efault);
        if (u.port >= kMaxEvtchnPorts) return err(abi::Errno::einval);
        if (d.fifo.active) {
            evtchn_fifo_unmask(d, u.port);   // MASKED cleared; linked if pending
        } else {
            uint64_t word = u.port / 64, bit = 1ull << (u.port % 64);
            abi::SharedInfo* si = d.shared_info;
            __atomic_and_fetch(&si->evtchn_mask[word], ~bit, __ATOMIC_SEQ_CST);
            // A port that became pending while masked is delivered now.
            if ((__atomic_load_n(&si->evtchn_pending[word], __ATOMIC_SEQ_CST) & bit) &&
                !(__atomic_fetch_or(&v.info->evtchn_pending_sel, 1ull << word, __ATOMIC_SEQ_CST) & (1ull << word)))
                __atomic_store_n(&v.info->evtchn_upcall_pending, 1, __ATOMIC_SEQ_CST);
        }
        // The acknowledgement of an interrupt line bound to this port.
        if (port_state(d, u.port) == ChannelState::pirq) irq_port_unmasked(d, u.port);
        return 0;
    }
    case abi::EvtchnOp::status: {
        abi::EvtchnStatus st;
        if (!get_guest(st, arg)) return err(abi::Errno::efault);
        if (!is_self(d, st.dom)) return err(abi::Errno::eperm);
        if (st.port >= kMaxEvtchnPorts) return err(abi::Errno::einval);
        const Channel free_channel{};
        const Channel* cp = port_channel(d, st.port);
        const Channel& c = cp ? *cp : free_channel;
        st.vcpu = 0;
        switch (c.state) {
        case ChannelState::free: st.status = uint32_t(abi::EvtchnStat::closed); break;
        case ChannelState::unbound:
            st.status = uint32_t(abi::EvtchnStat::unbound);
            st.u.unbound.dom = c.remote_dom;
            break;
        case ChannelState::interdomain:
            st.status = uint32_t(abi::EvtchnStat::interdomain);
            st.u.interdomain.dom = c.remote_dom;
            st.u.interdomain.port = c.remote_port;
            break;
        case ChannelState::virq:
            st.status = uint32_t(abi::EvtchnStat::virq);
            st.u.virq = c.virq;
            break;
        case ChannelState::pirq:
            st.status = uint32_t(abi::EvtchnStat::pirq);
            st.u.pirq = c.remote_port;   // the line
            break;
        case ChannelState::ipi:
            st.status = uint32_t(abi::EvtchnStat::ipi);
            break;
        }
        return put_guest(arg, st) ? 0 : err(abi::Errno::efault);
    }
    case abi::EvtchnOp::init_control:
        return fifo_init_control(v, r, arg);
    case abi::EvtchnOp::expand_array:
        return fifo_expand_array(v, r, arg);
    case abi::EvtchnOp::set_priority: {
        abi::EvtchnSetPriority sp;
        if (!get_guest(sp, arg)) return err(abi::Errno::efault);
        return evtchn_fifo_set_priority(d, sp.port, sp.priority);
    }
    default:
        return err(abi::Errno::enosys);
    }
}

}  // namespace core
