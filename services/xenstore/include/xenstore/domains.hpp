#pragma once
// Per-domain accounting: introduction state, what each domain holds of every
// pool (config.hpp: Res), the Xen node quota, the queue of pending watch
// events. A record exists while the domain is introduced or privileged, or
// anything is still counted against it (a node the privileged domain handed
// it before introducing it, for instance); every record holds a reserve.
//
// The ledger. For each resource r and domain d, used(d, r) is what d holds;
// its reserve R(d, r) is the sizing's priv_reserve for the privileged
// domain, its reserve for everybody else (config.hpp: Sizing). What a domain holds beyond its reserve comes from the
// shared remainder:
//   shared_used(r) = sum over d of max(0, used(d, r) - R(d, r))
//                  <= shared_of(r)                     (config.hpp)
//   used(d, r) <= kQuota[r] for every unprivileged d.
// Since the reserves of all records (the sizing's domains + 1) and the shared remainder add
// up to the pool, what is in use never exceeds the pool, and no domain's
// taking can cut into another's reserve. can_take checks both rules before
// an operation changes anything; take and give then move the counts (they
// cannot fail).

#include <xenstore/arena.hpp>
#include <xenstore/config.hpp>
#include <xenstore/error.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

struct Domain {
    bool in_use;
    bool introduced;
    bool planned;           // on the plan list (delta may be non-zero)
    DomId id;
    Amounts used;           // what it holds of each pool (the ledger)
    uint32_t nodes;         // records charged to it: Xen's node quota (tree.hpp)
    uint32_t outstanding;   // requests between begin_request and end_request
    uint32_t ev_head, ev_tail;  // FIFO of queued events (watches.hpp); used[events] counts them
    uint64_t ring_mfn;
    uint32_t ring_port;
    int64_t delta[kResCount];  // scratch of Domains::can_apply: a change being checked
    uint32_t next;          // free list while unused; the plan list while planned
    uint32_t watch_head;    // its watches (watches.hpp), a list through Watch::dom_next
    uint32_t owned_head;    // records charged to it (tree.hpp), a list through Node::own_next
};

// Records are found by domain id in O(1): slot_[id] is the index of id's
// record plus one, 0 if it has none (ids are below kDomIdLimit, Xen's
// DOMID_FIRST_RESERVED; anything above has no record). Records are taken
// from a free list and given back to it in any order.
class Domains {
public:
    // Takes room for the records of s.domains + 1 domains from `a`
    // (measures only, if into is null); into then keeps s.
    static void place(Arena& a, const Sizing& s, Domains* into) {
        Domain* d = a.take<Domain>(s.domains + 1u);
        if (!into) return;
        into->doms_ = d;
        into->cap_ = s.domains + 1u;
        into->sizing_ = s;
    }
    void reset(DomId privileged);
    Domain* find(DomId d) { return d < kDomIdLimit && slot_[d] ? &doms_[slot_[d] - 1] : nullptr; }
    const Domain* find(DomId d) const { return d < kDomIdLimit && slot_[d] ? &doms_[slot_[d] - 1] : nullptr; }
    // The record for d, created if needed; ENOSPC once every record (and so
    // every reserve) is in use, EINVAL for an id no domain can have.
    [[nodiscard]] Result<Domain*> get(DomId d);
    // Whether get() of a domain without a record would find one free.
    bool has_room() const { return free_ != kNoRecord || bump_ < cap_; }
    // Records in use.
    size_t in_use() const { return in_use_; }
    // Frees the record if nothing refers to it any more; its reserve waits
    // for the next domain.
    void maybe_drop(Domain* d);
    Domain* at(size_t i) { return &doms_[i]; }
    const Domain* at(size_t i) const { return &doms_[i]; }
    // Every record in use is below high() (the others may be uninitialised).
    size_t high() const { return bump_; }

    bool privileged(const Domain& d) const { return d.id == priv_; }
    const Amounts& reserve(const Domain& d) const { return privileged(d) ? sizing_.priv_reserve : sizing_.reserve; }
    uint32_t shared_of(Res r) const { return sizing_.shared_of(r); }
    const Sizing& sizing() const { return sizing_; }

    // Whether d may take `need` more: EQUOTA if that passes its quota or
    // what is left of the shared remainder.
    [[nodiscard]] Status can_take(const Domain& d, const Amounts& need) const;
    // For changes that move holdings between domains (a transaction's
    // commit): add signed amounts with plan(), then can_apply() checks every
    // domain's quota for what it gains, and the shared remainder for the
    // sum. Refused, the plan is forgotten; accepted, the caller applies it
    // with apply() before anything else touches the ledger, so that what
    // happens meanwhile (watch events queued) is checked against the ledger
    // as it will be.
    void plan(Domain& d, Res r, int64_t k);
    [[nodiscard]] Status can_apply();
    void apply();
    void take(Domain& d, const Amounts& a);
    void give(Domain& d, const Amounts& a);
    void take(Domain& d, Res r, uint32_t k);
    void give(Domain& d, Res r, uint32_t k);

    // shared_used(r) as above.
    uint32_t shared_used(Res r) const { return shared_used_[static_cast<size_t>(r)]; }
    // What d holds beyond its reserve.
    uint32_t excess(const Domain& d, Res r) const;

private:
    void forget_plan(bool apply);

    static constexpr uint32_t kNoRecord = 0xffffffffu;
    Domain* doms_ = nullptr;  // cap_ of them; [bump_, cap_) never used since reset
    uint32_t cap_ = 0;         // at most kDomainSlotsMax + 1: slot_ holds an index plus one in 16 bits
    Sizing sizing_{};
    uint16_t slot_[kDomIdLimit];
    uint32_t bump_;
    uint32_t free_;             // records given back, through Domain::next
    uint32_t planned_;          // records with a planned change, through Domain::next
    size_t in_use_;
    DomId priv_;
    uint32_t shared_used_[kResCount];
};

}  // namespace xs
