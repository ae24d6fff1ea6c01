// Event channels, Xen's FIFO ABI (core/evtchn_fifo.hpp).

#include <core/domain.hpp>
#include <core/evtchn_fifo.hpp>
#include <core/mm.hpp>
#include <core/sched.hpp>

#include <abi/errno.hpp>

namespace core {

static_assert(sizeof(Domain::vcpu) / sizeof(Vcpu) == kFifoVcpus, "a control block slot per vCPU");
static_assert(kFifoVcpus * abi::kEvtchnFifoMaxQueues <= 256, "Channel::last_queue is a byte");
static_assert(kMaxEvtchnPorts <= abi::kEvtchnFifoNrChannels, "every port fits a LINK field");

namespace {

constexpr long err(abi::Errno e) { return abi::neg(e); }

constexpr uint32_t kQueues = abi::kEvtchnFifoMaxQueues;
constexpr uint32_t kWordsPerPage = abi::kEvtchnFifoWordsPerPage;
constexpr uint32_t kPending = 1u << abi::kEvtchnFifoPending;
constexpr uint32_t kMasked = 1u << abi::kEvtchnFifoMasked;
constexpr uint32_t kLinked = 1u << abi::kEvtchnFifoLinked;
constexpr uint32_t kBusy = 1u << abi::kEvtchnFifoBusy;

// Compare-and-swap attempts on a tail word once BUSY is set. A guest may
// only set or clear MASKED, clear PENDING or clear LINKED on a linked word,
// and BUSY forbids it to clear MASKED: a guest keeping to the ABI makes at
// most this many attempts fail (Xen's bound).
constexpr unsigned kLinkTries = 4;

// Ports that have an event word.
uint32_t nr_words(const EvtchnFifo& f) {
    uint32_t n = f.array_pages * kWordsPerPage;
    return n < kMaxEvtchnPorts ? n : kMaxEvtchnPorts;
}

// The event word of `port` in the guest's array page, nullptr if it has none.
abi::EventWord* word_of(const EvtchnFifo& f, uint32_t port) {
    if (port >= nr_words(f)) return nullptr;
    return frame_va<abi::EventWord>(f.array_mfn[port / kWordsPerPage]) + port % kWordsPerPage;
}

// vCPU `vcpu`'s control block in the guest's frame, nullptr if none.
abi::EvtchnFifoControlBlock* control_block(const EvtchnFifo& f, unsigned vcpu) {
    const EvtchnFifo::Control& c = f.control[vcpu];
    if (!c.mfn) return nullptr;
    return reinterpret_cast<abi::EvtchnFifoControlBlock*>(frame_va<uint8_t>(c.mfn) + c.offset);
}

bool test_bits(const abi::EventWord* w, uint32_t b) { return __atomic_load_n(w, __ATOMIC_SEQ_CST) & b; }
bool test_and_set_bits(abi::EventWord* w, uint32_t b) { return __atomic_fetch_or(w, b, __ATOMIC_SEQ_CST) & b; }
void clear_bits(abi::EventWord* w, uint32_t b) { __atomic_fetch_and(w, ~b, __ATOMIC_SEQ_CST); }

// One attempt to point the tail word's LINK at `port` (clearing BUSY in the
// same write) while it is still LINKED. 1: linked; 0: the tail is not linked
// (the guest consumed it: the queue is empty); -1: the word changed under
// us, `seen` holds what it is now.
int try_link(abi::EventWord* tail, uint32_t& seen, uint32_t port) {
    if (!(seen & kLinked)) return 0;
    uint32_t want = (seen & ~(kBusy | abi::kEvtchnFifoLinkMask)) | port;
    return __atomic_compare_exchange_n(tail, &seen, want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) ? 1 : -1;
}

// Links `port` behind the tail word: true if it did, false if the tail was
// no longer linked (the caller makes `port` the queue's head). A guest that
// keeps changing the word loses the event (it stays LINKED, on no queue the
// hypervisor knows), as in Xen: the hypervisor never waits for the guest.
bool link_behind(abi::EventWord* tail, uint32_t port) {
    uint32_t seen = __atomic_load_n(tail, __ATOMIC_SEQ_CST);
    int r = try_link(tail, seen, port);
    if (r >= 0) return r == 1;
    __atomic_fetch_or(tail, kBusy, __ATOMIC_SEQ_CST);   // the guest may not unmask it now
    seen = __atomic_load_n(tail, __ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < kLinkTries; ++i) {
        r = try_link(tail, seen, port);
        if (r == 1) return true;
        if (r == 0) {
            clear_bits(tail, kBusy);
            return false;
        }
    }
    clear_bits(tail, kBusy);
    return true;
}

// The guest is told there is something in one of its queues.
void raise_upcall(Vcpu& v) {
    if (v.info) __atomic_store_n(&v.info->evtchn_upcall_pending, 1, __ATOMIC_SEQ_CST);
    vcpu_wake(v);
}

// Puts a pending port whose word is `w` on its queue on `vcpu`, unless it is
// masked or already linked (Xen's evtchn_fifo_set_pending after PENDING).
void link_port(Domain& d, unsigned vcpu, uint32_t port, abi::EventWord* w) {
    EvtchnFifo& f = d.fifo;
    abi::EvtchnFifoControlBlock* cb = control_block(f, vcpu);
    // No control block: the guest must not unmask a port before it made one,
    // so the event is only pending (Xen drops it the same way).
    if (!cb) return;
    if (test_bits(w, kMasked) || test_and_set_bits(w, kLinked)) return;
    // Its channel keeps its priority and last queue (a port raised without
    // one, which no caller does, is taken at the default).
    Channel* ch = port_channel(d, port);
    uint32_t prio = (ch ? ch->priority : abi::kEvtchnFifoPriorityDefault) % kQueues;
    // If it was the tail of the queue it was last on, that queue is empty now
    // (the guest unlinked it): nothing may be linked behind it there any more.
    uint32_t old = (ch ? ch->last_queue : abi::kEvtchnFifoPriorityDefault) % (kFifoVcpus * kQueues);
    uint32_t& old_tail = f.control[old / kQueues].tail[old % kQueues];
    if (old_tail == port) old_tail = 0;
    if (ch) ch->last_queue = static_cast<uint8_t>(vcpu * kQueues + prio);

    uint32_t& tail = f.control[vcpu].tail[prio];
    bool linked = false;
    if (tail) {
        abi::EventWord* tw = word_of(f, tail);   // always has one (the invariant); a missing one reads as empty
        if (tw) linked = link_behind(tw, port);
    }
    if (!linked) __atomic_store_n(&cb->head[prio], port, __ATOMIC_SEQ_CST);
    tail = port;
    if (!linked && !(__atomic_fetch_or(&cb->ready, 1u << prio, __ATOMIC_SEQ_CST) & (1u << prio)))
        raise_upcall(d.vcpu[vcpu]);
}

// A frame of the domain's, as a control block or event-array page: a
// general and a writable type reference (it can never become a page table
// or leave the domain while FIFO holds it).
bool take_frame(Vcpu& v, uint64_t gfn) {
    Budget b = Budget::unlimited();   // a writable type: nothing to validate
    MmCtx c{*v.domain, v, b};
    return get_page_and_type(c, gfn, PageType::writable) == 0;
}

// A port raised while no page held its word (Channel::fifo_saved). Only a
// bound port is raised, and a bound port has its channel.
void set_saved(Domain& d, uint32_t port, bool on) {
    if (Channel* c = port_channel(d, port)) c->fifo_saved = on;
}
bool saved(const Domain& d, uint32_t port) {
    const Channel* c = port_channel(d, port);
    return c && c->fifo_saved;
}

// The first control block: from now on the domain's ports are FIFO ports,
// each at the default priority; a port pending in the 2-level bitmap stays
// pending, raised again once a page holds its word (Xen's setup_ports).
void switch_to_fifo(Domain& d) {
    EvtchnFifo& f = d.fifo;
    f.active = true;
    const abi::SharedInfo* si = d.shared_info;
    for (uint32_t p = 0; p < kMaxEvtchnPorts; ++p) {
        Channel* c = port_channel(d, p);
        if (!c) {   // a bucket never allocated: its ports start at the default when it is
            p += kEvtchnBucketPorts - 1;
            continue;
        }
        c->priority = abi::kEvtchnFifoPriorityDefault;
        c->last_queue = abi::kEvtchnFifoPriorityDefault;
        if (p == 0 || c->state == ChannelState::free || !si) continue;
        if (__atomic_load_n(&si->evtchn_pending[p / 64], __ATOMIC_SEQ_CST) & (1ull << (p % 64))) set_saved(d, p, true);
    }
}

}  // namespace

long evtchn_fifo_init_control(Vcpu& v, abi::EvtchnInitControl& a) {
    Domain& d = *v.domain;
    EvtchnFifo& f = d.fifo;
    a.link_bits = abi::kEvtchnFifoLinkBits;
    // Decode: the vCPU, the block inside one page and aligned, once per
    // vCPU, then the frame's reference (the one step that changes anything).
    if (a.vcpu >= kFifoVcpus) return err(abi::Errno::enoent);
    if (a.offset > 4096 - sizeof(abi::EvtchnFifoControlBlock) || (a.offset & 7)) return err(abi::Errno::einval);
    if (f.control[a.vcpu].mfn) return err(abi::Errno::einval);
    v.work.charge(2);
    if (!take_frame(v, a.control_gfn)) return err(abi::Errno::einval);
    // Invoke.
    f.control[a.vcpu].mfn = a.control_gfn;
    f.control[a.vcpu].offset = a.offset;
    for (auto& t : f.control[a.vcpu].tail) t = 0;
    if (!f.active) {
        switch_to_fifo(d);
        v.work.charge(kMaxEvtchnPorts / 16);
    }
    return 0;
}

long evtchn_fifo_expand_array(Vcpu& v, uint64_t gfn) {
    Domain& d = *v.domain;
    EvtchnFifo& f = d.fifo;
    if (!f.active) return err(abi::Errno::eopnotsupp);
    if (f.array_pages >= kFifoMaxArrayPages) return err(abi::Errno::enospc);
    v.work.charge(2);
    if (!take_frame(v, gfn)) return err(abi::Errno::einval);
    uint32_t first = nr_words(f);
    f.array_mfn[f.array_pages] = gfn;
    ++f.array_pages;
    // Ports raised while they had no word are raised now (Xen's
    // add_page_to_event_array); their pollers woke when they were raised.
    v.work.charge(kMaxEvtchnPorts / 16);
    for (uint32_t p = first; p < nr_words(f); ++p) {
        if (!saved(d, p)) continue;
        set_saved(d, p, false);
        (void)evtchn_fifo_set_pending(d, p);
        v.work.charge(2);
    }
    return 0;
}

long evtchn_fifo_set_priority(Domain& d, uint32_t port, uint32_t priority) {
    if (port >= kMaxEvtchnPorts) return err(abi::Errno::einval);
    if (!d.fifo.active) return err(abi::Errno::enosys);   // the 2-level ABI has no priorities
    if (priority > abi::kEvtchnFifoPriorityMin) return err(abi::Errno::einval);
    // Only the next linking uses it: a port on a queue stays where it is.
    // (A port never allocated has no channel: it is refused as unbound.)
    Channel* c = port_channel(d, port);
    if (!c) return err(abi::Errno::einval);
    c->priority = static_cast<uint8_t>(priority);
    return 0;
}

bool evtchn_fifo_set_pending(Domain& d, uint32_t port) {
    EvtchnFifo& f = d.fifo;
    abi::EventWord* w = word_of(f, port);
    if (!w) {
        // No page holds its word yet: raised when one does.
        bool was = saved(d, port);
        set_saved(d, port, true);
        return !was;
    }
    bool was_pending = test_and_set_bits(w, kPending);
    link_port(d, 0, port, w);   // every port notifies vCPU 0 (the only one)
    return !was_pending;
}

void evtchn_fifo_unmask(Domain& d, uint32_t port) {
    abi::EventWord* w = word_of(d.fifo, port);
    if (!w) return;
    clear_bits(w, kMasked);
    if (test_bits(w, kPending)) link_port(d, 0, port, w);
}

void evtchn_fifo_port_init(Domain& d, uint32_t port) {
    EvtchnFifo& f = d.fifo;
    Channel* c = port_channel(d, port);
    if (!f.active || !c) return;
    c->priority = abi::kEvtchnFifoPriorityDefault;
}

void evtchn_fifo_port_close(Domain& d, uint32_t port) {
    EvtchnFifo& f = d.fifo;
    if (!f.active || port >= kMaxEvtchnPorts) return;
    set_saved(d, port, false);
    // Not pending any more; a linked word stays on its queue (the guest skips
    // it when it finds it not pending, as under Xen).
    if (abi::EventWord* w = word_of(f, port)) clear_bits(w, kPending);
}

bool evtchn_fifo_is_pending(const Domain& d, uint32_t port) {
    if (port >= kMaxEvtchnPorts) return false;
    const abi::EventWord* w = word_of(d.fifo, port);
    return w ? test_bits(w, kPending) : saved(d, port);
}

void evtchn_fifo_destroy(Domain& d) {
    EvtchnFifo& f = d.fifo;
    Budget b = Budget::unlimited();   // two frames at most: nothing to devalidate
    MmCtx c{d, d.vcpu[0], b};
    for (auto& cb : f.control) {
        if (cb.mfn) put_page_and_type(c, cb.mfn);
        cb.mfn = 0;
        cb.offset = 0;
        for (auto& t : cb.tail) t = 0;
    }
    for (unsigned i = 0; i < f.array_pages; ++i) {
        put_page_and_type(c, f.array_mfn[i]);
        f.array_mfn[i] = 0;
    }
    f.array_pages = 0;
    f.active = false;
}

}  // namespace core
