#include <cap/cspace.hpp>

#include <new>

namespace cap {

CSpace::CSpace(Slot* slots, uint32_t nslots, uint64_t domain)
    : slots_(slots), nslots_(nslots), domain_(domain) {
    for (uint32_t i = 0; i < nslots; ++i) new (&slots[i]) Slot();
}

bool CSpace::contains(const Slot* s) const {
    // Compare addresses as integers: pointers into other arrays are not
    // ordered relative to ours.
    auto p = reinterpret_cast<uintptr_t>(s);
    auto b = reinterpret_cast<uintptr_t>(slots_);
    return p >= b && p < b + uintptr_t{nslots_} * sizeof(Slot) && (p - b) % sizeof(Slot) == 0;
}

bool CSpace::all_empty() const {
    for (uint32_t i = 0; i < nslots_; ++i)
        if (!slots_[i].empty()) return false;
    return true;
}

base::Status<Error> Registry::add(CSpace& cs) {
    if (cs.registered()) return base::Err{Error::space_registered};
    if (find_domain(cs.domain())) return base::Err{Error::domain_has_space};
    for (uint32_t id = 0; id < kMaxSpaces; ++id) {
        if (!spaces_[id]) {
            spaces_[id] = &cs;
            cs.id_ = id;
            return {};
        }
    }
    return base::Err{Error::registry_full};
}

base::Status<Error> Registry::remove(CSpace& cs) {
    if (!cs.registered() || spaces_[cs.id_] != &cs) return base::Err{Error::unregistered_space};
    if (!cs.all_empty()) return base::Err{Error::space_not_empty};
    spaces_[cs.id_] = nullptr;
    cs.id_ = kNoSpace;
    return {};
}

CSpace* Registry::find_domain(uint64_t domid) const {
    for (CSpace* cs : spaces_)
        if (cs && cs->domain() == domid) return cs;
    return nullptr;
}

Registry::Location Registry::locate(const Slot* s) const {
    for (CSpace* cs : spaces_)
        if (cs && cs->contains(s)) return {cs, cs->index_of(s)};
    return {nullptr, 0};
}

}  // namespace cap
