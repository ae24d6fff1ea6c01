#include <xenstore/blob.hpp>
#include <xenstore/domains.hpp>

namespace xs {

namespace {

uint32_t over(uint64_t used, uint32_t reserve) { return used > reserve ? uint32_t(used - reserve) : 0; }

}  // namespace

void Domains::reset(DomId privileged) {
    for (auto& d : doms_) d.in_use = false;
    priv_ = privileged;
    for (auto& s : shared_used_) s = 0;
}

Domain* Domains::find(DomId id) {
    for (auto& d : doms_)
        if (d.in_use && d.id == id) return &d;
    return nullptr;
}

const Domain* Domains::find(DomId id) const {
    for (auto& d : doms_)
        if (d.in_use && d.id == id) return &d;
    return nullptr;
}

Result<Domain*> Domains::get(DomId id) {
    if (Domain* d = find(id)) return d;
    for (auto& d : doms_) {
        if (d.in_use) continue;
        d = Domain{};
        d.in_use = true;
        d.id = id;
        d.ev_head = d.ev_tail = kNil;
        return &d;
    }
    return Err{Error::nospc};
}

void Domains::maybe_drop(Domain* d) {
    if (!d || d->introduced || d->id == priv_ || d->nodes != 0 || d->outstanding != 0) return;
    for (uint32_t u : d->used.v)
        if (u != 0) return;
    d->in_use = false;
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

Status Domains::can_apply() {
    bool fits = true;
    for (size_t i = 0; i < kResCount && fits; ++i) {
        Res r = static_cast<Res>(i);
        int64_t shared = shared_used_[i];
        for (auto& d : doms_) {
            if (!d.in_use || d.delta[i] == 0) continue;
            int64_t after = int64_t(d.used[r]) + d.delta[i];
            if (after < 0 || (!privileged(d) && d.delta[i] > 0 && after > int64_t(kQuota[r]))) fits = false;
            shared += int64_t(over(uint64_t(after < 0 ? 0 : after), reserve(d)[r])) - excess(d, r);
        }
        if (shared > int64_t(shared_of(r))) fits = false;
    }
    if (fits) return {};
    for (auto& d : doms_)
        for (auto& k : d.delta) k = 0;
    return Err{Error::quota};
}

void Domains::apply() {
    for (auto& d : doms_) {
        for (size_t i = 0; i < kResCount; ++i) {
            if (d.in_use && d.delta[i] > 0) take(d, Res(i), uint32_t(d.delta[i]));
            if (d.in_use && d.delta[i] < 0) give(d, Res(i), uint32_t(-d.delta[i]));
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
