// Preemptible deletion: revoke (a subtree) and delete-by-object.

#include <cap/ops.hpp>

#include "tree.hpp"

namespace cap {

using base::Err;
using base::Result;
using detail::Tree;

// --- revoke ---

Result<Revoke, Error> check_revoke(CSpace& cs, uint32_t slot, Budget& budget) {
    Slot* s = cs.slot(slot);
    if (!s) return Err{Error::invalid_slot};
    if (s->empty()) return Err{Error::empty_slot};
    if (budget.remaining == 0) return Err{Error::no_budget};
    return Revoke{s, &budget};
}

Progress apply_revoke(const Revoke& op) {
    // Erasing the first child splices its children into op.slot's child
    // list, so op.slot's subtree shrinks by one slot per step and nothing
    // outside it is touched. A re-parented slot now has op.slot as parent and
    // is next re-parented only by its own deletion: O(n) for the whole revoke.
    while (Slot* child = Tree::first_child(op.slot)) {
        if (op.budget->remaining == 0) return Progress::restart;
        Tree::erase(child);
        --op.budget->remaining;
    }
    return Progress::done;
}

Result<Progress, Error> revoke(CSpace& cs, uint32_t slot, Budget& budget) {
    auto op = check_revoke(cs, slot, budget);
    if (!op) return Err{op.error()};
    return apply_revoke(*op);
}

// --- revoke_object / destroy_domain_caps ---

Result<DeleteMatching, Error> check_revoke_object(Registry& reg, Type t, uint64_t object,
                                                  Budget& budget) {
    if (t == Type::null || static_cast<unsigned>(t) >= kTypeCount) return Err{Error::bad_type};
    if (budget.remaining == 0) return Err{Error::no_budget};
    return DeleteMatching{&reg, t, object, false, &budget};
}

Result<DeleteMatching, Error> check_destroy_domain_caps(Registry& reg, uint64_t domid,
                                                        Budget& budget) {
    if (budget.remaining == 0) return Err{Error::no_budget};
    return DeleteMatching{&reg, Type::null, domid, true, &budget};
}

Progress apply_delete_matching(const DeleteMatching& op) {
    // Deleting never fills a slot, so a scan that reaches the end without
    // running out of budget has left no match anywhere.
    for (uint32_t id = 0; id < kMaxSpaces; ++id) {
        CSpace* cs = op.registry->get(id);
        if (!cs) continue;
        bool held = op.whole_domain && cs->domain() == op.object;
        for (uint32_t i = 0; i < cs->size(); ++i) {
            Slot* s = cs->slot(i);
            const Capability& c = s->cap();
            if (c.empty()) continue;
            bool match = held || (op.whole_domain ? c.names_domain(op.object)
                                                  : c.type == op.type && c.object == op.object);
            if (!match) continue;
            if (op.budget->remaining == 0) return Progress::restart;
            Tree::erase(s);
            --op.budget->remaining;
        }
    }
    return Progress::done;
}

Result<Progress, Error> revoke_object(Registry& reg, Type t, uint64_t object, Budget& budget) {
    auto op = check_revoke_object(reg, t, object, budget);
    if (!op) return Err{op.error()};
    return apply_delete_matching(*op);
}

Result<Progress, Error> destroy_domain_caps(Registry& reg, uint64_t domid, Budget& budget) {
    auto op = check_destroy_domain_caps(reg, domid, budget);
    if (!op) return Err{op.error()};
    return apply_delete_matching(*op);
}

}  // namespace cap
