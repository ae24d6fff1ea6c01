#pragma once
// Per-domain accounting: introduction state, what each domain holds of every
// pool (config.hpp: Res), the Xen node quota, the queue of pending watch
// events. A record exists while the domain is introduced or privileged, or
// anything is still counted against it (a node the privileged domain handed
// it before introducing it, for instance); every record holds a reserve.
//
// The ledger. For each resource r and domain d, used(d, r) is what d holds;
// its reserve R(d, r) is kPrivReserve for the privileged domain, kReserve
// for everybody else. What a domain holds beyond its reserve comes from the
// shared remainder:
//   shared_used(r) = sum over d of max(0, used(d, r) - R(d, r))
//                  <= shared_of(r)                     (config.hpp)
//   used(d, r) <= kQuota[r] for every unprivileged d.
// Since the reserves of all kMaxDomains records and the shared remainder add
// up to the pool, what is in use never exceeds the pool, and no domain's
// taking can cut into another's reserve. can_take checks both rules before
// an operation changes anything; take and give then move the counts (they
// cannot fail).

#include <xenstore/config.hpp>
#include <xenstore/error.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

struct Domain {
    bool in_use;
    bool introduced;
    DomId id;
    Amounts used;           // what it holds of each pool (the ledger)
    uint32_t nodes;         // records charged to it: Xen's node quota (tree.hpp)
    uint32_t outstanding;   // requests between begin_request and end_request
    uint32_t ev_head, ev_tail;  // FIFO of queued events (watches.hpp); used[events] counts them
    uint64_t ring_mfn;
    uint32_t ring_port;
    int64_t delta[kResCount];  // scratch of Domains::can_apply: a change being checked
};

class Domains {
public:
    void reset(DomId privileged);
    Domain* find(DomId d);
    const Domain* find(DomId d) const;
    // The record for d, created if needed; ENOSPC once every record (and so
    // every reserve) is in use.
    [[nodiscard]] Result<Domain*> get(DomId d);
    // Frees the record if nothing refers to it any more; its reserve waits
    // for the next domain.
    void maybe_drop(Domain* d);
    Domain* at(size_t i) { return &doms_[i]; }
    const Domain* at(size_t i) const { return &doms_[i]; }
    static constexpr size_t size() { return kMaxDomains; }

    bool privileged(const Domain& d) const { return d.id == priv_; }
    const Amounts& reserve(const Domain& d) const { return privileged(d) ? kPrivReserve : kReserve; }

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
    void plan(Domain& d, Res r, int64_t k) { d.delta[static_cast<size_t>(r)] += k; }
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
    Domain doms_[kMaxDomains];
    DomId priv_;
    uint32_t shared_used_[kResCount];
};

}  // namespace xs
