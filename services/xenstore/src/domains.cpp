#include <xenstore/blob.hpp>
#include <xenstore/domains.hpp>

namespace xs {

void Domains::reset() {
    for (auto& d : doms_) d.in_use = false;
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
    return Err{Error::nomem};
}

void Domains::maybe_drop(Domain* d, DomId privileged) {
    if (d && !d->introduced && d->id != privileged && d->nodes == 0 && d->watches == 0 &&
        d->transactions == 0 && d->outstanding == 0 && d->ev_count == 0)
        d->in_use = false;
}

}  // namespace xs
