#include <xenstore/blob.hpp>
#include <xenstore/domains.hpp>

namespace xs {

namespace {

uint32_t over(uint64_t used, uint32_t reserve) { return used > reserve ? uint32_t(used - reserve) : 0; }

}  // namespace

void Domains::reset(DomId privileged) {
    for (auto& s : slot_) s = 0;
    bump_ = 0;
    free_ = planned_ = kNoRecord;
    in_use_ = 0;
    priv_ = privileged;
    for (auto& s : shared_used_) s = 0;
}

Result<Domain*> Domains::get(DomId id) {
    if (Domain* d = find(id)) return d;
    if (id >= kDomIdLimit) return Err{Error::inval};
    uint32_t i;
    if (free_ != kNoRecord) {
        i = free_;
        free_ = doms_[i].next;
    } else if (bump_ < cap_) {
        i = bump_++;
    } else {
        return Err{Error::nospc};
    }
    Domain& d = doms_[i];
    d = Domain{};
    d.in_use = true;
    d.id = id;
    d.ev_head = d.ev_tail = kNil;
    d.watch_head = kNil;
    d.owned_head = kNil;
    d.next = kNoRecord;
    slot_[id] = static_cast<uint16_t>(i + 1);
    in_use_++;
    return &d;
}

void Domains::maybe_drop(Domain* d) {
    if (!d || d->introduced || d->id == priv_ || d->nodes != 0 || d->outstanding != 0 || d->planned) return;
    for (uint32_t u : d->used.v)
        if (u != 0) return;
    d->in_use = false;
    slot_[d->id] = 0;
    d->next = free_;
    free_ = static_cast<uint32_t>(d - doms_);
    in_use_--;
}

void Domains::plan(Domain& d, Res r, int64_t k) {
    if (!d.planned) {
        d.planned = true;
        d.next = planned_;
        planned_ = static_cast<uint32_t>(&d - doms_);
    }
    d.delta[static_cast<size_t>(r)] += k;
}

uint32_t Domains::excess(const Domain& d, Res r) const { return over(d.used[r], reserve(d)[r]); }

Status Domains::can_take(const Domain& d, const Amounts& need) const {
    for (size_t i = 0; i < kResCount; ++i) {
        Res r = static_cast<Res>(i);
        if (need[r] == 0) continue;
        uint64_t after = uint64_t(d.used[r]) + need[r];
        if (!privileged(d) && after > kQuota[r]) return Err{Error::quota};
        uint64_t shared = uint64_t(shared_used_[i]) - excess(d, r) + over(after, reserve(d)[r]);
        if (shared > shared_of(r)) return Err{Error::quota};
    }
    return {};
}

// Only the domains on the plan list can have a delta: the check and the
// change cost what the transaction touches, not the number of domains.
Status Domains::can_apply() {
    bool fits = true;
    for (size_t i = 0; i < kResCount && fits; ++i) {
        Res r = static_cast<Res>(i);
        int64_t shared = shared_used_[i];
        for (uint32_t k = planned_; k != kNoRecord; k = doms_[k].next) {
            Domain& d = doms_[k];
            if (d.delta[i] == 0) continue;
            int64_t after = int64_t(d.used[r]) + d.delta[i];
            if (after < 0 || (!privileged(d) && d.delta[i] > 0 && after > int64_t(kQuota[r]))) fits = false;
            shared += int64_t(over(uint64_t(after < 0 ? 0 : after), reserve(d)[r])) - excess(d, r);
        }
        if (shared > int64_t(shared_of(r))) fits = false;
    }
    if (fits) return {};
    forget_plan(false);
    return Err{Error::quota};
}

void Domains::apply() { forget_plan(true); }

void Domains::forget_plan(bool apply) {
    while (planned_ != kNoRecord) {
        Domain& d = doms_[planned_];
        planned_ = d.next;
        d.next = kNoRecord;
        d.planned = false;
        for (size_t i = 0; i < kResCount; ++i) {
            if (apply && d.delta[i] > 0) take(d, Res(i), uint32_t(d.delta[i]));
            if (apply && d.delta[i] < 0) give(d, Res(i), uint32_t(-d.delta[i]));
            d.delta[i] = 0;
        }
    }
}

void Domains::take(Domain& d, Res r, uint32_t k) {
    size_t i = static_cast<size_t>(r);
    shared_used_[i] -= excess(d, r);
    d.used[r] += k;
    shared_used_[i] += excess(d, r);
}

void Domains::give(Domain& d, Res r, uint32_t k) {
    size_t i = static_cast<size_t>(r);
    shared_used_[i] -= excess(d, r);
    d.used[r] -= k;
    shared_used_[i] += excess(d, r);
}

void Domains::take(Domain& d, const Amounts& a) {
    for (size_t i = 0; i < kResCount; ++i) take(d, static_cast<Res>(i), a.v[i]);
}

void Domains::give(Domain& d, const Amounts& a) {
    for (size_t i = 0; i < kResCount; ++i) give(d, static_cast<Res>(i), a.v[i]);
}

}  // namespace xs
