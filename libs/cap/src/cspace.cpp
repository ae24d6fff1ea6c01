#include <cap/cspace.hpp>

#include <new>

namespace cap {

CSpace::CSpace(Slot* slots, uint32_t nslots, uint64_t domain)
    : slots_(slots), nslots_(nslots), domain_(domain) {
    for (uint32_t i = 0; i < nslots; ++i) {
        new (&slots[i]) Slot();
        slots[i].space_ = this;
    }
    init_index();
}

bool CSpace::contains(const Slot* s) const {
    // Compare addresses as integers: pointers into other arrays are not
    // ordered relative to ours.
    auto p = reinterpret_cast<uintptr_t>(s);
    auto b = reinterpret_cast<uintptr_t>(slots_);
    return p >= b && p < b + uintptr_t{nslots_} * sizeof(Slot) && (p - b) % sizeof(Slot) == 0;
}

base::Status<Error> Registry::add(CSpace& cs) {
    if (cs.registered()) return base::Err{Error::space_registered};
    if (next_id_ == kNoSpace) next_id_ = 0;
    cs.id_ = next_id_++;
    cs.prev_ = nullptr;
    cs.next_ = head_;
    if (head_) head_->prev_ = &cs;
    head_ = &cs;
    ++count_;
    return {};
}

base::Status<Error> Registry::remove(CSpace& cs) {
    if (!cs.registered() || (cs.prev_ ? cs.prev_->next_ != &cs : head_ != &cs))
        return base::Err{Error::unregistered_space};
    if (!cs.all_empty()) return base::Err{Error::space_not_empty};
    (cs.prev_ ? cs.prev_->next_ : head_) = cs.next_;
    if (cs.next_) cs.next_->prev_ = cs.prev_;
    cs.next_ = cs.prev_ = nullptr;
    cs.id_ = kNoSpace;
    --count_;
    return {};
}

CSpace* Registry::find_domain(uint64_t domid) const {
    for (CSpace* cs = head_; cs; cs = cs->next_)
        if (cs->domain() == domid) return cs;
    return nullptr;
}

Registry::Location Registry::locate(const Slot* s) const {
    for (CSpace* cs = head_; cs; cs = cs->next_)
        if (cs->contains(s)) return {cs, cs->index_of(s)};
    return {nullptr, 0};
}

}  // namespace cap
