#include <core/domain.hpp>
#include <core/evtchn.hpp>
#include <core/evtchn_fifo.hpp>
#include <core/irq.hpp>
#include <core/platform.hpp>
#include <core/sched.hpp>
#include <core/trace.hpp>

namespace core {

namespace {

// A vCPU polling `port` wakes whether or not the port is masked.
void wake_pollers(Vcpu& v, uint32_t port) {
    for (unsigned i = 0; i < v.npoll; ++i)
        if (v.poll_ports[i] == port) {
            v.npoll = 0;
            v.poll_deadline = 0;
            vcpu_wake(v);
            break;
        }
}

}  // namespace

void evtchn_set_pending(Domain& d, uint32_t port) {
    if (port >= kMaxEvtchnPorts) return;
    trace_event(d.id, port);
    if (d.fifo.active) {
        if (evtchn_fifo_set_pending(d, port)) wake_pollers(d.vcpu[0], port);
        return;
    }
    abi::SharedInfo* si = d.shared_info;
    if (!si) return;
    uint64_t word = port / 64, bit = 1ull << (port % 64);
    // The guest writes these words too: every change is one atomic operation.
    if (__atomic_fetch_or(&si->evtchn_pending[word], bit, __ATOMIC_SEQ_CST) & bit) return;
    Vcpu& v = d.vcpu[0];
    wake_pollers(v, port);
    if (__atomic_load_n(&si->evtchn_mask[word], __ATOMIC_SEQ_CST) & bit) return;
    if (__atomic_fetch_or(&v.info->evtchn_pending_sel, 1ull << word, __ATOMIC_SEQ_CST) & (1ull << word)) return;
    __atomic_store_n(&v.info->evtchn_upcall_pending, 1, __ATOMIC_SEQ_CST);
    vcpu_wake(v);
}

bool evtchn_is_pending(const Domain& d, uint32_t port) {
    if (port >= kMaxEvtchnPorts) return false;
    if (d.fifo.active) return evtchn_fifo_is_pending(d, port);
    const abi::SharedInfo* si = d.shared_info;
    return si && (__atomic_load_n(&si->evtchn_pending[port / 64], __ATOMIC_SEQ_CST) >> (port % 64)) & 1;
}

bool virq_is_per_vcpu(uint32_t virq) {
    switch (static_cast<abi::Virq>(virq)) {
    case abi::Virq::timer: case abi::Virq::debug: case abi::Virq::xenoprof: case abi::Virq::xenpmu:
        return true;
    default:
        // The arch ones are per vCPU on x86 but for VIRQ_MCA (arch 0).
        return virq > uint32_t(abi::Virq::arch_0) && virq < abi::kNrVirqs;
    }
}

void send_virq(Vcpu& v, uint32_t virq) {
    if (virq >= abi::kNrVirqs || !v.virq_port[virq]) return;
    evtchn_set_pending(*v.domain, v.virq_port[virq]);
}

void evtchn_unlink_peer(Domain& d, uint32_t port) {
    const Channel* c = port_channel(d, port);
    if (!c) return;
    Domain* peer = domain_at(c->remote_dom);
    Channel* pcp = peer && c->remote_port != 0 ? port_channel(*peer, c->remote_port) : nullptr;
    if (!pcp) return;
    Channel& pc = *pcp;
    // Only the peer's end of this very channel: a port of its that has been
    // closed and reused since (possible while this domain was stopped) is
    // someone else's channel now.
    if (pc.state != ChannelState::interdomain || pc.remote_dom != d.id || pc.remote_port != port) return;
    pc.state = ChannelState::unbound;   // the peer may bind it again
    pc.remote_dom = d.id;
    pc.remote_port = 0;
}

void evtchn_destroy(Domain& d) {
    // Only the buckets it allocated: ports it never used cost nothing here.
    for (uint32_t p = 0; p < kMaxEvtchnPorts; ++p) {
        Channel* c = port_channel(d, p);
        if (!c) {
            p += kEvtchnBucketPorts - 1;   // the whole bucket is absent
            continue;
        }
        if (c->state == ChannelState::interdomain) evtchn_unlink_peer(d, p);
        if (c->state == ChannelState::pirq) irq_unbind_port(d, p);
        *c = Channel{};
    }
    for (auto& v : d.vcpu)
        for (auto& p : v.virq_port) p = 0;
    // The FIFO control blocks and event-array pages: their references go
    // back before its frames do (domain_teardown frees only unreferenced ones).
    evtchn_fifo_destroy(d);
    // Nothing can reach its ports any more: the buckets go back.
    for (auto*& b : d.evtchn_bucket) {
        domain_mem_free(d, b, kEvtchnBucketPorts * sizeof(Channel));
        b = nullptr;
    }
}

}  // namespace core
