// Xen's FIFO event-channel ABI on the host (issue 11), through
// event_channel_op as a guest issues it: init_control, expand_array and
// set_priority with their worst arguments; delivery order by priority, mask
// and unmask as Linux's events_fifo.c uses them; the switch from the 2-level
// ABI with ports already pending; a hostile guest that scribbles over its
// event words and control block (the hypervisor must stay consistent, write
// nowhere else, and never loop on the guest); and teardown giving back every
// frame reference FIFO took.

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <core/evtchn_fifo.hpp>

#include "multi_domain.hpp"

namespace {

using namespace coretest;
using abi::EvtchnOp;
using abi::Hypercall;

constexpr int64_t kEinval = -22, kEnoent = -2, kEnospc = -28, kEnosys = -38, kEopnotsupp = -95;

constexpr uint32_t kPending = 1u << abi::kEvtchnFifoPending;
constexpr uint32_t kMasked = 1u << abi::kEvtchnFifoMasked;
constexpr uint32_t kLinked = 1u << abi::kEvtchnFifoLinked;
constexpr uint32_t kBusy = 1u << abi::kEvtchnFifoBusy;
constexpr uint32_t kLinkMask = abi::kEvtchnFifoLinkMask;
// The ports the first event-array page covers: the tests bind and raise only these.
constexpr uint32_t kWords = abi::kEvtchnFifoWordsPerPage;

class EvtchnFifo : public MultiDomainTest {
protected:
    // Pages of the guest's 4 MiB region it uses for FIFO (mapped writable, plain).
    static constexpr uint64_t kControlVa = kPlay;
    static constexpr uint64_t kArrayVa = kPlay + 0x1000;

    void SetUp() override {
        MultiDomainTest::SetUp();
        a = build("a", true, kPages + 16);
        b = build("b");
        ASSERT_TRUE(a && b);
        give(a, cap::Type::event, cap::right::bind, b->id);
        give(b, cap::Type::event, cap::right::bind, a->id);
        ctl_mfn = mfn_at(a, kControlVa);
        arr_mfn = mfn_at(a, kArrayVa);
    }

    template <typename T>
    int64_t op(core::Domain* d, EvtchnOp cmd, T& arg) {
        put(d, kScratch, arg);
        int64_t r = hc(d, Hypercall::event_channel_op, uint64_t(cmd), kScratch);
        arg = get<T>(d, kScratch);
        return r;
    }
    int64_t init(core::Domain* d, uint64_t gfn, uint32_t offset = 0, uint32_t vcpu = 0, uint8_t* link_bits = nullptr) {
        abi::EvtchnInitControl ic{};
        ic.control_gfn = gfn;
        ic.offset = offset;
        ic.vcpu = vcpu;
        int64_t r = op(d, EvtchnOp::init_control, ic);
        if (link_bits) *link_bits = ic.link_bits;
        return r;
    }
    int64_t expand(core::Domain* d, uint64_t gfn) {
        abi::EvtchnExpandArray e{gfn};
        return op(d, EvtchnOp::expand_array, e);
    }
    int64_t set_priority(core::Domain* d, uint32_t port, uint32_t prio) {
        abi::EvtchnSetPriority sp{port, prio};
        return op(d, EvtchnOp::set_priority, sp);
    }
    long bind_ipi(core::Domain* d) {
        abi::EvtchnBindIpi bi{0, 0};
        int64_t r = op(d, EvtchnOp::bind_ipi, bi);
        return r ? r : long(bi.port);
    }
    int64_t send(core::Domain* d, uint32_t port) {
        abi::EvtchnSend s{port};
        return op(d, EvtchnOp::send, s);
    }
    int64_t unmask(core::Domain* d, uint32_t port) {
        abi::EvtchnUnmask u{port};
        return op(d, EvtchnOp::unmask, u);
    }
    int64_t close(core::Domain* d, uint32_t port) {
        abi::EvtchnClose c{port};
        return op(d, EvtchnOp::close, c);
    }

    // What the guest sees: its control block and event words.
    abi::EvtchnFifoControlBlock* ctl(uint32_t offset = 0) {
        return reinterpret_cast<abi::EvtchnFifoControlBlock*>(core::frame_va<uint8_t>(ctl_mfn) + offset);
    }
    uint32_t* words() { return core::frame_va<uint32_t>(arr_mfn); }
    uint32_t word(uint32_t port) { return __atomic_load_n(&words()[port], __ATOMIC_SEQ_CST); }
    uint8_t upcall() { return a->vcpu[0].info->evtchn_upcall_pending; }

    // a in FIFO mode, as Linux sets it up: the control block at offset 0 of
    // a zeroed page, then one page of words, every one MASKED.
    void go_fifo() {
        std::memset(core::frame_va<uint8_t>(ctl_mfn), 0, 4096);
        ASSERT_EQ(init(a, ctl_mfn), 0);
        for (uint32_t p = 0; p < kWords; ++p) words()[p] = kMasked;
        ASSERT_EQ(expand(a, arr_mfn), 0);
    }
    // An IPI port of a's, unmasked as Linux's clear_masked does (no
    // hypercall while it is not pending).
    uint32_t live_port(uint32_t prio = abi::kEvtchnFifoPriorityDefault) {
        long p = bind_ipi(a);
        EXPECT_GT(p, 0);
        if (prio != abi::kEvtchnFifoPriorityDefault) EXPECT_EQ(set_priority(a, uint32_t(p), prio), 0);
        __atomic_fetch_and(&words()[p], ~kMasked, __ATOMIC_SEQ_CST);
        return uint32_t(p);
    }

    // The guest's upcall handler, as Linux's __evtchn_fifo_handle_events:
    // take READY, walk each queue from the head by LINK (bounds-checked: the
    // guest's own defence), clear LINKED, deliver pending unmasked ports in
    // order and acknowledge them (clear PENDING).
    std::vector<uint32_t> consume() {
        std::vector<uint32_t> got;
        abi::EvtchnFifoControlBlock* cb = ctl();
        __atomic_store_n(&a->vcpu[0].info->evtchn_upcall_pending, 0, __ATOMIC_SEQ_CST);
        constexpr uint32_t kQueues = (1u << abi::kEvtchnFifoMaxQueues) - 1;
        uint32_t ready = __atomic_exchange_n(&cb->ready, 0u, __ATOMIC_SEQ_CST) & kQueues;
        for (unsigned steps = 0; ready && steps < 4 * kWords; ++steps) {
            unsigned q = unsigned(__builtin_ctz(ready));
            uint32_t head = local_head[q] ? local_head[q] : __atomic_load_n(&cb->head[q], __ATOMIC_SEQ_CST);
            if (head == 0 || head >= kWords) {
                ready &= ~(1u << q);
                local_head[q] = 0;
                continue;
            }
            uint32_t* w = &words()[head];
            uint32_t old = __atomic_load_n(w, __ATOMIC_SEQ_CST);
            while (!__atomic_compare_exchange_n(w, &old, old & ~(kLinked | kLinkMask), false, __ATOMIC_SEQ_CST,
                                                __ATOMIC_SEQ_CST)) {
            }
            uint32_t next = old & kLinkMask;
            if (next == 0) ready &= ~(1u << q);
            uint32_t now = __atomic_load_n(w, __ATOMIC_SEQ_CST);
            if ((now & kPending) && !(now & kMasked)) {
                got.push_back(head);
                __atomic_fetch_and(w, ~kPending, __ATOMIC_SEQ_CST);
            }
            local_head[q] = next;
            ready |= __atomic_exchange_n(&cb->ready, 0u, __ATOMIC_SEQ_CST) & kQueues;
        }
        return got;
    }

    const core::FrameInfo& fi(core::Mfn m) { return core::frame_table()[m]; }

    core::Domain *a = nullptr, *b = nullptr;
    core::Mfn ctl_mfn = 0, arr_mfn = 0;
    uint32_t local_head[abi::kEvtchnFifoMaxQueues] = {};
};

// ---- argument checking ----------------------------------------------------------

TEST_F(EvtchnFifo, InitControlRefusesEveryBadArgumentAndChangesNothing) {
    uint32_t count = fi(ctl_mfn).count, tcount = fi(ctl_mfn).type_count;
    const uint64_t ram = core::frame_table().nframes();
    // Frames that are not a's ordinary RAM: another domain's, the
    // hypervisor's, beyond RAM (up to absurd), a's own page tables.
    for (uint64_t gfn : {uint64_t(mfn_at(b, kControlVa)), uint64_t(b->shared_info_mfn), uint64_t(0), uint64_t(1),
                         uint64_t(fake::kReservedFrames - 1), ram, ram + 1, uint64_t(1) << 40, ~uint64_t(0),
                         uint64_t(a->vcpu[0].guest_table)})
        EXPECT_EQ(init(a, gfn), kEinval) << "gfn " << gfn;
    // Offsets that leave no room for the block, or are not 8-byte aligned.
    for (uint32_t off : {4096u - 72u + 8u, 4096u - 8u, 4096u, 4095u, 0xFFFFFFFFu, 0x80000000u, 4u, 4020u, 1u})
        EXPECT_EQ(init(a, ctl_mfn, off), kEinval) << "offset " << off;
    // vCPUs it does not have (Xen: -ENOENT).
    for (uint32_t vcpu : {1u, 2u, 127u, 0xFFFFFFFFu}) EXPECT_EQ(init(a, ctl_mfn, 0, vcpu), kEnoent) << "vcpu " << vcpu;
    EXPECT_FALSE(a->fifo.active);
    EXPECT_EQ(fi(ctl_mfn).count, count);
    EXPECT_EQ(fi(ctl_mfn).type_count, tcount);
    EXPECT_EQ(mm_invariant_violations(), "");

    // The last offset that fits; link_bits comes back.
    uint8_t bits = 0;
    EXPECT_EQ(init(a, ctl_mfn, 4096 - 72, 0, &bits), 0);
    EXPECT_EQ(bits, 17);
    EXPECT_TRUE(a->fifo.active);
    EXPECT_EQ(fi(ctl_mfn).count, count + 1);
    EXPECT_EQ(fi(ctl_mfn).type_count, tcount + 1);
    EXPECT_EQ(mm_invariant_violations(), "");
    // Once per vCPU, whatever the frame.
    EXPECT_EQ(init(a, ctl_mfn, 4096 - 72), kEinval);
    EXPECT_EQ(init(a, arr_mfn, 0), kEinval);
    EXPECT_EQ(fi(ctl_mfn).count, count + 1);
    EXPECT_EQ(fi(arr_mfn).count, 1u);
}

TEST_F(EvtchnFifo, ExpandArrayChecksItsFrameAndStopsWhenEveryPortIsCovered) {
    EXPECT_EQ(expand(a, arr_mfn), kEopnotsupp) << "before init_control";
    ASSERT_EQ(init(a, ctl_mfn), 0);
    const uint64_t ram = core::frame_table().nframes();
    for (uint64_t gfn : {uint64_t(mfn_at(b, kArrayVa)), uint64_t(0), uint64_t(fake::kReservedFrames - 1), ram,
                         ~uint64_t(0), uint64_t(a->vcpu[0].guest_table)})
        EXPECT_EQ(expand(a, gfn), kEinval) << "gfn " << gfn;
    EXPECT_EQ(a->fifo.array_pages, 0u);
    uint32_t count = fi(arr_mfn).count;
    EXPECT_EQ(expand(a, arr_mfn), 0);
    EXPECT_EQ(fi(arr_mfn).count, count + 1);
    // A page at a time until every port has a word (4,096 ports: four
    // pages), and no more.
    ASSERT_EQ(core::kFifoMaxArrayPages, 4u) << "4096 ports: four pages";
    for (unsigned k = 1; k < core::kFifoMaxArrayPages; ++k)
        EXPECT_EQ(expand(a, mfn_at(a, kArrayVa + 0x1000 * k)), 0) << "page " << k;
    EXPECT_EQ(expand(a, mfn_at(a, kArrayVa + 0x1000 * core::kFifoMaxArrayPages)), kEnospc);
    EXPECT_EQ(expand(a, arr_mfn), kEnospc);
    EXPECT_EQ(a->fifo.array_pages, core::kFifoMaxArrayPages);
    EXPECT_EQ(fi(arr_mfn).count, count + 1);
    EXPECT_EQ(mm_invariant_violations(), "");
}

TEST_F(EvtchnFifo, SetPriorityNeedsFifoAPortAndAPriorityUpTo15) {
    long p = bind_ipi(a);
    ASSERT_GT(p, 0);
    EXPECT_EQ(set_priority(a, uint32_t(p), 3), kEnosys) << "2-level has no priorities";
    go_fifo();
    EXPECT_EQ(set_priority(a, uint32_t(p), 16), kEinval);
    EXPECT_EQ(set_priority(a, uint32_t(p), 0xFFFFFFFFu), kEinval);
    EXPECT_EQ(set_priority(a, core::kMaxEvtchnPorts, 3), kEinval);
    EXPECT_EQ(set_priority(a, 0xFFFFFFFFu, 3), kEinval);
    EXPECT_EQ(core::port_channel(*a, uint32_t(p))->priority, abi::kEvtchnFifoPriorityDefault);
    EXPECT_EQ(set_priority(a, uint32_t(p), 15), 0);
    EXPECT_EQ(set_priority(a, uint32_t(p), 0), 0);
    EXPECT_EQ(core::port_channel(*a, uint32_t(p))->priority, 0);
    // A closed port comes back at the default priority.
    ASSERT_EQ(close(a, uint32_t(p)), 0);
    long q = bind_ipi(a);
    EXPECT_EQ(q, p);
    EXPECT_EQ(core::port_channel(*a, uint32_t(q))->priority, abi::kEvtchnFifoPriorityDefault);
}

// ---- delivery -------------------------------------------------------------------

TEST_F(EvtchnFifo, EventsArriveByPriorityThenInOrder) {
    go_fifo();
    uint32_t low = live_port(15), high1 = live_port(0), mid = live_port(7), high2 = live_port(0);
    EXPECT_EQ(ctl()->ready, 0u);
    a->vcpu[0].info->evtchn_upcall_pending = 0;
    for (uint32_t p : {low, high1, mid, high2}) ASSERT_EQ(send(a, p), 0);
    EXPECT_EQ(upcall(), 1);
    EXPECT_EQ(ctl()->ready, (1u << 0) | (1u << 7) | (1u << 15));
    EXPECT_EQ(ctl()->head[0], high1);
    EXPECT_EQ(word(high1) & kLinkMask, high2) << "the second of a queue is linked behind the first";
    EXPECT_EQ(ctl()->head[7], mid);
    EXPECT_EQ(ctl()->head[15], low);
    for (uint32_t p : {low, high1, mid, high2}) EXPECT_EQ(word(p) & (kPending | kLinked), kPending | kLinked);
    EXPECT_EQ(consume(), (std::vector<uint32_t>{high1, high2, mid, low}));

    // Again, after the queues emptied: each new event heads its queue anew
    // (the old tails are not linked any more) and arrives once however often
    // it is sent while it is queued.
    for (uint32_t p : {mid, low, mid, high2, mid}) ASSERT_EQ(send(a, p), 0);
    EXPECT_EQ(consume(), (std::vector<uint32_t>{high2, mid, low}));
    EXPECT_EQ(consume(), std::vector<uint32_t>{});
    // A queue half consumed: the new event goes behind the remaining tail.
    uint32_t mid2 = live_port(7), mid3 = live_port(7);
    ASSERT_EQ(send(a, mid), 0);
    ASSERT_EQ(send(a, mid2), 0);
    local_head[7] = 0;
    {   // the guest takes the head only
        uint32_t old = __atomic_fetch_and(&words()[mid], ~(kLinked | kLinkMask), __ATOMIC_SEQ_CST);
        EXPECT_EQ(old & kLinkMask, mid2);
        __atomic_fetch_and(&words()[mid], ~kPending, __ATOMIC_SEQ_CST);
        local_head[7] = mid2;
    }
    ASSERT_EQ(send(a, mid3), 0);
    EXPECT_EQ(word(mid2) & kLinkMask, mid3);
    ctl()->ready = 1u << 7;
    EXPECT_EQ(consume(), (std::vector<uint32_t>{mid2, mid3}));
}

TEST_F(EvtchnFifo, VirqsAndInterdomainPortsAreDeliveredThroughTheQueues) {
    go_fifo();
    abi::EvtchnBindVirq bv{uint32_t(abi::Virq::timer), 0, 0};
    ASSERT_EQ(op(a, EvtchnOp::bind_virq, bv), 0);
    __atomic_fetch_and(&words()[bv.port], ~kMasked, __ATOMIC_SEQ_CST);
    core::send_virq(a->vcpu[0], uint32_t(abi::Virq::timer));
    EXPECT_EQ(consume(), std::vector<uint32_t>{bv.port});

    // b (2-level) and a (FIFO) connected: each end in its own ABI.
    abi::EvtchnAllocUnbound u{abi::kDomidSelf, b->id, 0};
    ASSERT_EQ(op(a, EvtchnOp::alloc_unbound, u), 0);
    abi::EvtchnBindInterdomain bi{a->id, u.port, 0};
    ASSERT_EQ(op(b, EvtchnOp::bind_interdomain, bi), 0);
    uint32_t pa = u.port, pb = bi.local_port;
    __atomic_fetch_and(&words()[pa], ~kMasked, __ATOMIC_SEQ_CST);
    b->shared_info->evtchn_pending[pb / 64] = 0;
    ASSERT_EQ(send(b, pb), 0);
    EXPECT_TRUE(core::evtchn_is_pending(*a, pa));
    EXPECT_EQ(consume(), std::vector<uint32_t>{pa});
    ASSERT_EQ(send(a, pa), 0);
    EXPECT_TRUE(b->shared_info->evtchn_pending[pb / 64] & (1ull << (pb % 64)));
    EXPECT_EQ(a->shared_info->evtchn_pending[pa / 64], 0u) << "FIFO mode leaves the 2-level bitmap alone";
    abi::EvtchnStatus st{};
    st.dom = abi::kDomidSelf;
    st.port = pa;
    ASSERT_EQ(op(a, EvtchnOp::status, st), 0);
    EXPECT_EQ(st.status, uint32_t(abi::EvtchnStat::interdomain));
    EXPECT_EQ(st.u.interdomain.port, pb);
    // Closing clears PENDING (a queued word stays linked for the guest to skip).
    ASSERT_EQ(send(b, pb), 0);
    EXPECT_EQ(word(pa) & kPending, kPending);
    ASSERT_EQ(close(a, pa), 0);
    EXPECT_EQ(word(pa) & kPending, 0u);
    EXPECT_EQ(consume(), std::vector<uint32_t>{}) << "linked but no longer pending: skipped";
    EXPECT_EQ(send(b, pb), 0) << "b's end is unbound now: dropped";
}

TEST_F(EvtchnFifo, AMaskedPortStaysPendingUntilUnmaskLinksIt) {
    go_fifo();
    long p = bind_ipi(a);   // masked, as Linux leaves a new port
    ASSERT_GT(p, 0);
    a->vcpu[0].info->evtchn_upcall_pending = 0;
    ASSERT_EQ(send(a, uint32_t(p)), 0);
    EXPECT_EQ(word(uint32_t(p)), kMasked | kPending);
    EXPECT_EQ(ctl()->ready, 0u);
    EXPECT_EQ(upcall(), 0);
    // Linux: clear_masked_cond sees PENDING and asks the hypervisor.
    ASSERT_EQ(unmask(a, uint32_t(p)), 0);
    EXPECT_EQ(word(uint32_t(p)), kPending | kLinked);
    EXPECT_EQ(ctl()->head[7], uint32_t(p));
    EXPECT_EQ(ctl()->ready, 1u << 7);
    EXPECT_EQ(upcall(), 1);
    EXPECT_EQ(consume(), std::vector<uint32_t>{uint32_t(p)});
    // Unmasking a port that is not pending only clears MASKED.
    words()[p] = kMasked;
    ASSERT_EQ(unmask(a, uint32_t(p)), 0);
    EXPECT_EQ(word(uint32_t(p)), 0u);
    EXPECT_EQ(ctl()->ready, 0u);
    EXPECT_EQ(unmask(a, core::kMaxEvtchnPorts), kEinval);
    EXPECT_EQ(unmask(a, 0xFFFFFFFFu), kEinval);
}

// SCHEDOP_poll looks at the port's own pending bit whichever ABI is in use:
// a masked port already pending in its FIFO event word returns at once.
TEST_F(EvtchnFifo, PollSeesAPortAlreadyPendingInItsEventWord) {
    go_fifo();
    long p = bind_ipi(a);   // masked
    ASSERT_GT(p, 0);
    ASSERT_EQ(send(a, uint32_t(p)), 0);
    ASSERT_EQ(word(uint32_t(p)), kMasked | kPending);
    uint32_t port = uint32_t(p);
    put(a, kScratch + 0x100, port);
    abi::SchedPoll sp{};
    sp.ports = kScratch + 0x100;
    sp.nr_ports = 1;
    put(a, kScratch, sp);
    EXPECT_EQ(hc(a, Hypercall::sched_op, uint64_t(abi::SchedOp::poll), kScratch), 0);
    EXPECT_EQ(a->vcpu[0].state, core::VcpuState::runnable) << "it did not sleep";
    EXPECT_EQ(a->vcpu[0].npoll, 0u);
}

// Xen's "old tail" fix: a port that was the tail of one queue and is linked
// on another must not leave the first queue pointing at it.
TEST_F(EvtchnFifo, APortMovedToAnotherQueueIsNoLongerItsOldQueuesTail) {
    go_fifo();
    uint32_t p1 = live_port(7), p2 = live_port(7);
    ASSERT_EQ(send(a, p1), 0);
    EXPECT_EQ(consume(), std::vector<uint32_t>{p1});   // tail of queue 7 still p1 (unlinked)
    ASSERT_EQ(set_priority(a, p1, 3), 0);
    ASSERT_EQ(send(a, p1), 0);
    EXPECT_EQ(ctl()->head[3], p1);
    EXPECT_EQ(a->fifo.control[0].tail[7], 0u);
    ASSERT_EQ(send(a, p2), 0);
    EXPECT_EQ(ctl()->head[7], p2) << "queue 7 was empty";
    EXPECT_EQ(word(p1) & kLinkMask, 0u) << "nothing linked behind p1 on queue 3";
    EXPECT_EQ(consume(), (std::vector<uint32_t>{p1, p2}));
}

// ---- 2-level -> FIFO ------------------------------------------------------------

TEST_F(EvtchnFifo, PortsPendingUnderTwoLevelStayPendingAfterTheSwitch) {
    uint32_t p1 = uint32_t(bind_ipi(a)), p2 = uint32_t(bind_ipi(a)), p3 = uint32_t(bind_ipi(a)),
             p4 = uint32_t(bind_ipi(a));
    ASSERT_EQ(send(a, p1), 0);
    ASSERT_EQ(send(a, p3), 0);
    ASSERT_EQ(send(a, p4), 0);
    ASSERT_TRUE(core::evtchn_is_pending(*a, p1));
    std::memset(core::frame_va<uint8_t>(ctl_mfn), 0, 4096);
    ASSERT_EQ(init(a, ctl_mfn), 0);
    // No event array yet: pending is remembered, for old and new events alike.
    ASSERT_EQ(send(a, p2), 0);
    for (uint32_t p : {p1, p2, p3, p4}) EXPECT_TRUE(core::evtchn_is_pending(*a, p)) << p;
    ASSERT_EQ(close(a, p4), 0);   // closed meanwhile: not raised again
    EXPECT_FALSE(core::evtchn_is_pending(*a, p4));
    // The guest's page has p1 masked and the rest unmasked.
    for (uint32_t p = 0; p < kWords; ++p) words()[p] = 0;
    words()[p1] = kMasked;
    a->vcpu[0].info->evtchn_upcall_pending = 0;
    ASSERT_EQ(expand(a, arr_mfn), 0);
    EXPECT_EQ(word(p1), kMasked | kPending);
    EXPECT_EQ(word(p2) & (kPending | kLinked), kPending | kLinked);
    EXPECT_EQ(word(p3) & (kPending | kLinked), kPending | kLinked);
    EXPECT_EQ(word(p4), 0u);
    EXPECT_EQ(upcall(), 1);
    EXPECT_EQ(consume(), (std::vector<uint32_t>{p2, p3}));
    ASSERT_EQ(unmask(a, p1), 0);
    EXPECT_EQ(consume(), std::vector<uint32_t>{p1});
    for (uint32_t p : {p1, p2, p3, p4}) {
        const core::Channel* c = core::port_channel(*a, p);
        ASSERT_NE(c, nullptr);
        EXPECT_FALSE(c->fifo_saved) << "port " << p;
    }
}

// ---- a hostile guest ------------------------------------------------------------

// Snapshot of every frame some domain owns, but those the hypervisor may
// write for a: its control block and event words, its shared info (the
// upcall flag), the scratch page (hypercall arguments come back there).
struct GuestMemory {
    std::vector<std::pair<core::Mfn, std::vector<uint8_t>>> frames;
    explicit GuestMemory(const std::vector<core::Mfn>& skip) {
        core::FrameTable& ft = core::frame_table();
        for (core::Mfn m = 0; m < ft.nframes(); ++m) {
            if (ft[m].owner >= core::kMaxDomains) continue;
            bool skipped = false;
            for (core::Mfn s : skip) skipped |= s == m;
            if (skipped) continue;
            const uint8_t* p = core::frame_va<uint8_t>(m);
            frames.emplace_back(m, std::vector<uint8_t>(p, p + 4096));
        }
    }
    std::string changed() const {
        std::string out;
        for (const auto& [m, bytes] : frames)
            if (std::memcmp(core::frame_va<uint8_t>(m), bytes.data(), 4096) != 0) out += std::to_string(m) + " ";
        return out;
    }
};

TEST_F(EvtchnFifo, AScribblingGuestCannotMakeTheHypervisorWriteElsewhereOrLoseTrack) {
    go_fifo();
    std::vector<uint32_t> ports;
    for (int i = 0; i < 40; ++i) ports.push_back(live_port(uint32_t(i % 16)));
    GuestMemory before({ctl_mfn, arr_mfn, a->shared_info_mfn, mfn_at(a, kScratch)});
    std::mt19937 rng(11);
    auto any_port = [&]() -> uint32_t {
        switch (rng() % 4) {
        case 0: return rng() % kWords;
        case 1: return uint32_t(rng());   // out of range too
        default: return ports[rng() % ports.size()];
        }
    };
    const uint32_t kNasty[] = {0, kLinkMask, kLinked | kLinkMask, kLinked | kBusy | 0x1FFFF, ~0u,
                               kLinked | kPending, kLinked | 0x10000, kBusy, kMasked | kLinked | 1};
    for (int step = 0; step < 20000; ++step) {
        switch (rng() % 10) {
        case 0: case 1:   // garbage in a word: LINK beyond the ports, self links, BUSY, everything
            words()[rng() % kWords] = rng() % 2 ? kNasty[rng() % std::size(kNasty)] : uint32_t(rng());
            break;
        case 2:   // garbage in the control block: HEADs that are no ports, READY everywhere
            ctl()->head[rng() % 16] = rng() % 2 ? ~0u : uint32_t(rng());
            if (rng() % 4 == 0) ctl()->ready = uint32_t(rng());
            if (rng() % 8 == 0) ctl()->_rsvd = uint32_t(rng());
            break;
        case 3: case 4: case 5:
            (void)send(a, ports[rng() % ports.size()]);
            break;
        case 6:
            (void)unmask(a, any_port());
            break;
        case 7:
            (void)set_priority(a, any_port(), rng() % 20);
            break;
        case 8:
            for (auto& h : local_head) h = 0;
            (void)consume();
            break;
        case 9:   // a tail made to link to itself / the queue chain made a cycle
            for (uint32_t t : a->fifo.control[0].tail)
                if (t) words()[t] = kLinked | t;
            break;
        }
        // The hypervisor's own view stays sane whatever the guest wrote.
        for (uint32_t t : a->fifo.control[0].tail) ASSERT_LT(t, kWords) << "step " << step;
        ASSERT_EQ(a->fifo.array_pages, 1u);
    }
    EXPECT_EQ(before.changed(), "") << "frames written outside the FIFO pages";
    EXPECT_EQ(mm_invariant_violations(), "");
    // And it still works for a guest that starts behaving: a clean array.
    std::memset(core::frame_va<uint8_t>(ctl_mfn), 0, 4096);
    for (uint32_t p = 0; p < kWords; ++p) words()[p] = 0;
    for (auto& h : local_head) h = 0;
    for (auto& t : a->fifo.control[0].tail) t = 0;   // as a fresh queue (the guest reset everything)
    ASSERT_EQ(set_priority(a, ports[0], 2), 0);
    ASSERT_EQ(send(a, ports[0]), 0);
    EXPECT_EQ(consume(), std::vector<uint32_t>{ports[0]});
}

// A guest vCPU changing the tail word as fast as it can while the
// hypervisor links behind it: every link attempt ends (Xen's bounded
// compare-and-swap, BUSY set meanwhile) and BUSY is never left set.
TEST_F(EvtchnFifo, AGuestRacingOnTheTailWordCannotHoldTheHypervisor) {
    go_fifo();
    uint32_t tail = live_port(), other = live_port();
    ASSERT_EQ(send(a, tail), 0);   // tail of queue 7, LINKED
    std::atomic<bool> stop{false};
    uint32_t* tw = &words()[tail];
    std::thread guest([&] {
        while (!stop.load()) {
            __atomic_fetch_xor(tw, kMasked, __ATOMIC_SEQ_CST);   // allowed, but not while BUSY
            __atomic_fetch_xor(tw, kPending, __ATOMIC_SEQ_CST);
        }
    });
    for (int i = 0; i < 20000; ++i) {
        __atomic_fetch_and(&words()[other], ~(kLinked | kPending), __ATOMIC_SEQ_CST);
        __atomic_fetch_or(tw, kLinked, __ATOMIC_SEQ_CST);
        a->fifo.control[0].tail[7] = tail;
        core::evtchn_set_pending(*a, other);
    }
    stop = true;
    guest.join();
    EXPECT_EQ(word(tail) & kBusy, 0u);
    EXPECT_EQ(a->fifo.control[0].tail[7], other);
}

// ---- references and teardown ----------------------------------------------------

TEST_F(EvtchnFifo, TeardownGivesBackEveryReferenceFifoTook) {
    // The domain's FIFO pages are spare frames it does not map, so only FIFO
    // references them: while it does they cannot leave the domain.
    std::vector<core::Mfn> spare;
    for (core::Mfn m = 0; m < core::frame_table().nframes(); ++m)
        if (fi(m).owner == a->id && fi(m).count == 0 && fi(m).type_count == 0 && m != a->shared_info_mfn)
            spare.push_back(m);
    ASSERT_GE(spare.size(), 2u);
    core::Mfn c = spare[0], arr = spare[1];
    ASSERT_EQ(init(a, c, 64), 0);
    ASSERT_EQ(expand(a, arr), 0);
    EXPECT_EQ(fi(c).count, 1u);
    EXPECT_EQ(fi(c).type_count, 1u);
    EXPECT_EQ(fi(c).type, core::PageType::writable);
    EXPECT_EQ(fi(arr).count, 1u);
    EXPECT_EQ(mm_invariant_violations(), "");
    // Neither can become a page table, nor be given back.
    abi::XenMemoryReservation res{};
    res.extent_start = kScratch + 0x800;
    res.nr_extents = 2;
    res.domid = abi::kDomidSelf;
    put(a, kScratch, res);
    uint64_t ext[2] = {c, arr};
    put(a, kScratch + 0x800, ext);
    EXPECT_EQ(hc(a, Hypercall::memory_op, uint64_t(abi::MemoryOp::decrease_reservation), kScratch), 0);
    EXPECT_EQ(fi(c).owner, a->id);
    EXPECT_EQ(fi(arr).owner, a->id);
    // A stopped domain keeps them (and the checker counts them).
    core::domain_shutdown(*a, abi::ShutdownReason::poweroff);
    ASSERT_EQ(a->state, core::DomainState::stopped);
    EXPECT_EQ(mm_invariant_violations(), "");
    destroy(a);
    destroy(b);
    EXPECT_EQ(a->teardown_held, 0u) << "nothing held back";
    EXPECT_EQ(fi(c).owner, core::kOwnerNone);
    EXPECT_EQ(fi(arr).owner, core::kOwnerNone);
    EXPECT_EQ(fi(c).count, 0u);
    EXPECT_EQ(free_frames(), free_at_start);
    EXPECT_EQ(mm_invariant_violations(), "");
}

TEST_F(EvtchnFifo, AKilledRunningDomainGivesThemBackToo) {
    go_fifo();
    uint32_t p = live_port();
    ASSERT_EQ(send(a, p), 0);
    core::Mfn c = ctl_mfn;
    uint32_t count = fi(c).count;
    core::domain_kill(*a);
    EXPECT_FALSE(a->fifo.active);
    EXPECT_EQ(fi(c).count, count - 1);
    // Events for it after that (a late timer) go nowhere near its pages.
    core::evtchn_set_pending(*a, p);
    destroy(a);
    destroy(b);
    EXPECT_EQ(free_frames(), free_at_start);
    EXPECT_EQ(mm_invariant_violations(), "");
}

// A domain built after one in FIFO mode went (very likely in the same
// memory) starts in 2-level mode with nothing held, under a new id: the old
// one names nobody.
TEST_F(EvtchnFifo, ARebuiltDomainStartsAfresh) {
    go_fifo();
    core::DomId id = a->id;
    destroy(a);
    core::Domain* again = build("again");
    ASSERT_NE(again, nullptr);
    EXPECT_NE(again->id, id);
    EXPECT_EQ(core::domain_at(id), nullptr);
    EXPECT_FALSE(again->fifo.active);
    EXPECT_EQ(again->fifo.array_pages, 0u);
    EXPECT_EQ(again->fifo.control[0].mfn, 0u);
    EXPECT_EQ(mm_invariant_violations(), "");
}

}  // namespace
