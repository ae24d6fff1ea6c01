// Interdomain event channels on the host, through event_channel_op as a
// guest issues it: binding needs an Event capability; send, close and the end
// of either domain, with the peer running, stopped or gone (issue 10: a
// channel closed while its peer was stopped left the peer pointing at a port
// number that could be reused by an unrelated channel; a send on a VIRQ port
// faked the hypervisor's own events).

#include <gtest/gtest.h>

#include "multi_domain.hpp"

namespace {

using namespace coretest;
using abi::EvtchnOp;
using abi::Hypercall;

constexpr int64_t kEinval = -22, kEperm = -1, kEsrch = -3;

class EventChannels : public MultiDomainTest {
protected:
    void SetUp() override {
        MultiDomainTest::SetUp();
        a = build("a");
        b = build("b");
        c = build("c");
        ASSERT_TRUE(a && b && c);
        for (core::Domain* x : {a, b, c})
            for (core::Domain* y : {a, b, c})
                if (x != y) give(x, cap::Type::event, cap::right::bind, y->id);
    }

    template <typename T>
    int64_t op(core::Domain* d, EvtchnOp cmd, T& arg) {
        put(d, kScratch, arg);
        int64_t r = hc(d, Hypercall::event_channel_op, uint64_t(cmd), kScratch);
        arg = get<T>(d, kScratch);
        return r;
    }
    // An unbound port of `d` for `remote`.
    long offer(core::Domain* d, core::DomId remote) {
        abi::EvtchnAllocUnbound u{abi::kDomidSelf, remote, 0};
        int64_t r = op(d, EvtchnOp::alloc_unbound, u);
        return r ? r : long(u.port);
    }
    long bind(core::Domain* d, core::DomId remote, uint32_t port) {
        abi::EvtchnBindInterdomain bi{remote, port, 0};
        int64_t r = op(d, EvtchnOp::bind_interdomain, bi);
        return r ? r : long(bi.local_port);
    }
    int64_t send(core::Domain* d, uint32_t port) {
        abi::EvtchnSend s{port};
        return op(d, EvtchnOp::send, s);
    }
    int64_t close(core::Domain* d, uint32_t port) {
        abi::EvtchnClose cl{port};
        return op(d, EvtchnOp::close, cl);
    }
    abi::EvtchnStatus status(core::Domain* d, uint32_t port) {
        abi::EvtchnStatus s{};
        s.dom = abi::kDomidSelf;
        s.port = port;
        EXPECT_EQ(op(d, EvtchnOp::status, s), 0);
        return s;
    }
    bool pending(core::Domain* d, uint32_t port) {
        return d->shared_info->evtchn_pending[port / 64] & (1ull << (port % 64));
    }
    void clear(core::Domain* d, uint32_t port) { d->shared_info->evtchn_pending[port / 64] &= ~(1ull << (port % 64)); }
    // A connected pair: x's port and y's port.
    std::pair<uint32_t, uint32_t> connect(core::Domain* x, core::Domain* y) {
        long px = offer(x, y->id);
        EXPECT_GT(px, 0);
        long py = bind(y, x->id, uint32_t(px));
        EXPECT_GT(py, 0);
        clear(x, uint32_t(px));
        clear(y, uint32_t(py));
        return {uint32_t(px), uint32_t(py)};
    }

    core::Domain *a = nullptr, *b = nullptr, *c = nullptr;
};

TEST_F(EventChannels, BindAndSend) {
    auto [pa, pb] = connect(a, b);
    EXPECT_EQ(send(a, pa), 0);
    EXPECT_TRUE(pending(b, pb));
    EXPECT_FALSE(pending(a, pa));
    EXPECT_EQ(send(b, pb), 0);
    EXPECT_TRUE(pending(a, pa));
    auto s = status(a, pa);
    EXPECT_EQ(s.status, uint32_t(abi::EvtchnStat::interdomain));
    EXPECT_EQ(s.u.interdomain.dom, b->id);
    EXPECT_EQ(s.u.interdomain.port, pb);
}

// moat top's events_sent (core/domain.hpp): the sends that succeeded, in
// the sender's counter only (not the receiver's, not a third domain's).
TEST_F(EventChannels, EventsSentCountsTheSendersSuccessfulSends) {
    auto [pa, pb] = connect(a, b);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(send(a, pa), 0);
    EXPECT_EQ(a->events_sent, 5u);
    EXPECT_EQ(b->events_sent, 0u) << "receiving is not sending";
    EXPECT_EQ(c->events_sent, 0u);
    EXPECT_EQ(send(b, pb), 0);
    EXPECT_EQ(b->events_sent, 1u);
    EXPECT_EQ(a->events_sent, 5u);
    // Refused sends (no such port, a VIRQ's) do not count.
    EXPECT_EQ(send(a, 0), kEinval);
    EXPECT_EQ(send(a, 1023), kEinval);
    EXPECT_EQ(send(a, 0xFFFFFFFFu), kEinval);
    abi::EvtchnBindVirq bv{uint32_t(abi::Virq::timer), 0, 0};
    ASSERT_EQ(op(a, EvtchnOp::bind_virq, bv), 0);
    EXPECT_EQ(send(a, bv.port), kEinval);
    EXPECT_EQ(a->events_sent, 5u);
    // To itself on an IPI port, and into a closed peer's unbound end (dropped,
    // as Xen does, but the sender's call succeeded): both count.
    abi::EvtchnBindIpi bi{0, 0};
    ASSERT_EQ(op(a, EvtchnOp::bind_ipi, bi), 0);
    EXPECT_EQ(send(a, bi.port), 0);
    ASSERT_EQ(close(b, pb), 0);
    EXPECT_EQ(send(a, pa), 0);
    EXPECT_EQ(a->events_sent, 7u);
    EXPECT_EQ(b->events_sent, 1u);

    // getinfo reads them, with a Domain capability with control only.
    give(c, cap::Type::domain, cap::right::control, a->id);
    auto getinfo = [&](core::Domain* asker, core::DomId of, abi::DomctlInfo* out) {
        abi::MoatDomctl d{};
        d.version = abi::kMoatDomctlVersion;
        d.cmd = uint32_t(abi::DomctlCmd::getinfo);
        d.domain = of;
        put(asker, kScratch, d);
        int64_t rc = hc(asker, Hypercall::domctl, kScratch);
        *out = get<abi::MoatDomctl>(asker, kScratch).u.info;
        return rc;
    };
    abi::DomctlInfo i{};
    EXPECT_EQ(getinfo(c, a->id, &i), 0);
    EXPECT_EQ(i.events_sent, 7u);
    EXPECT_EQ(getinfo(b, a->id, &i), kEperm) << "b may send to a, not look at it";
}

TEST_F(EventChannels, BindNeedsACapabilityAndAnOffer) {
    core::Domain* loner = build("loner");
    ASSERT_NE(loner, nullptr);
    long pa = offer(a, loner->id);
    ASSERT_GT(pa, 0);
    EXPECT_EQ(bind(loner, a->id, uint32_t(pa)), kEperm) << "no Event capability for a";
    // b has a capability, but the port is offered to the loner only.
    EXPECT_EQ(bind(b, a->id, uint32_t(pa)), kEinval);
    // Ports that are not unbound, or out of range.
    EXPECT_EQ(bind(b, a->id, 0), kEinval);
    EXPECT_EQ(bind(b, a->id, 5000), kEinval);
    EXPECT_EQ(bind(b, a->id, 0xFFFFFFFFu), kEinval);
    // A domain that does not exist: the capability is checked first.
    EXPECT_EQ(bind(b, 99, 1), kEperm);
}

// Only the hypervisor raises a VIRQ, only a device its line.
TEST_F(EventChannels, SendOnAVirqPortIsRefused) {
    abi::EvtchnBindVirq bv{uint32_t(abi::Virq::timer), 0, 0};
    ASSERT_EQ(op(a, EvtchnOp::bind_virq, bv), 0);
    clear(a, bv.port);
    EXPECT_EQ(send(a, bv.port), kEinval);
    EXPECT_FALSE(pending(a, bv.port)) << "no fake timer event";
    EXPECT_EQ(send(a, 0), kEinval);
    EXPECT_EQ(send(a, 1023), kEinval);
    EXPECT_EQ(send(a, 1024), kEinval);
    EXPECT_EQ(send(a, 0xFFFFFFFFu), kEinval);
}

TEST_F(EventChannels, CloseMakesThePeersEndUnbound) {
    auto [pa, pb] = connect(a, b);
    EXPECT_EQ(close(a, pa), 0);
    auto s = status(b, pb);
    EXPECT_EQ(s.status, uint32_t(abi::EvtchnStat::unbound));
    EXPECT_EQ(s.u.unbound.dom, a->id);
    EXPECT_EQ(send(b, pb), 0) << "dropped, as in Xen";
    EXPECT_EQ(close(a, pa), kEinval) << "not twice";
    // a may bind b's port again.
    long again = bind(a, b->id, pb);
    EXPECT_GT(again, 0);
}

// Issue 10, finding 6: a and b are connected; b stops (its builder has not
// destroyed it yet); a closes its end and reuses the port number for a channel
// with c; then b is taken apart. Only the end of the channel b really had may
// change: a's new channel with c must be left alone.
TEST_F(EventChannels, AStoppedPeersEndIsUnlinkedAndAReusedPortIsLeftAlone) {
    auto [pa, pb] = connect(a, b);
    core::domain_shutdown(*b, abi::ShutdownReason::crash);
    ASSERT_EQ(b->state, core::DomainState::stopped);
    EXPECT_EQ(close(a, pa), 0);
    // The stopped peer's end was unlinked too (it names a's old port no more).
    EXPECT_EQ(core::port_channel(*b, pb)->state, core::ChannelState::unbound);
    // a's next port is the same number: a channel with c.
    long pc = offer(c, a->id);
    ASSERT_GT(pc, 0);
    long pa2 = bind(a, c->id, uint32_t(pc));
    ASSERT_EQ(pa2, long(pa)) << "the lowest free port is reused";
    destroy(b);
    auto s = status(a, uint32_t(pa2));
    EXPECT_EQ(s.status, uint32_t(abi::EvtchnStat::interdomain)) << "a's channel with c survived b's end";
    EXPECT_EQ(s.u.interdomain.dom, c->id);
    clear(c, uint32_t(pc));
    EXPECT_EQ(send(a, uint32_t(pa2)), 0);
    EXPECT_TRUE(pending(c, uint32_t(pc)));
}

// The same, with b stopped and a's end still bound when b goes: a's end
// becomes unbound (b's successor in the same slot could bind it only with an
// Event capability for a).
TEST_F(EventChannels, APeerTakenApartLeavesAnUnboundEnd) {
    auto [pa, pb] = connect(a, b);
    (void)pb;
    core::domain_shutdown(*b, abi::ShutdownReason::poweroff);
    destroy(b);
    auto s = status(a, pa);
    EXPECT_EQ(s.status, uint32_t(abi::EvtchnStat::unbound));
    EXPECT_EQ(send(a, pa), 0);
    EXPECT_EQ(fake::log().find("LEFT BEHIND"), std::string::npos) << fake::log();
}

TEST_F(EventChannels, AStoppedDomainIsNotBound) {
    long pa = offer(a, b->id);
    ASSERT_GT(pa, 0);
    core::domain_shutdown(*a, abi::ShutdownReason::poweroff);
    EXPECT_EQ(bind(b, a->id, uint32_t(pa)), kEsrch);
}

TEST_F(EventChannels, OffersOnBehalfNeedBuild) {
    abi::EvtchnAllocUnbound u{b->id, c->id, 0};
    EXPECT_EQ(op(a, EvtchnOp::alloc_unbound, u), kEperm);
    give(a, cap::Type::domain, cap::right::build, b->id);
    EXPECT_EQ(op(a, EvtchnOp::alloc_unbound, u), 0);
    EXPECT_EQ(core::port_channel(*b, u.port)->state, core::ChannelState::unbound);
    EXPECT_EQ(core::port_channel(*b, u.port)->remote_dom, c->id);
}

TEST_F(EventChannels, PortsRunOutCleanly) {
    unsigned got = 0;
    for (unsigned i = 0; i < core::kMaxEvtchnPorts + 10; ++i) got += offer(a, b->id) > 0;
    EXPECT_EQ(got, core::kMaxEvtchnPorts - 1) << "port 0 is never used";
    EXPECT_EQ(offer(a, b->id), -28) << "ENOSPC";
    destroy(a);
    EXPECT_EQ(owned_by(a->id), 0u);
}

}  // namespace
