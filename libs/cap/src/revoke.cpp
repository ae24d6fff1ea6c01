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

namespace {

// Deletes the matches among the slots of `cs` that may hold (t, object),
// through its index: false when the budget ran out first.
bool delete_key(CSpace& cs, Type t, uint64_t object, Budget& budget) {
    // Deleting a slot takes only that slot out of its chain, so the next one,
    // read first, stays valid.
    for (const Slot* c = cs.first_candidate(t, object); c;) {
        const Slot* next = cs.next_candidate(c);
        if (c->cap().type == t && c->cap().object == object) {
            if (budget.remaining == 0) return false;
            Tree::erase(cs.slot(cs.index_of(c)));
            --budget.remaining;
        }
        c = next;
    }
    return true;
}

// Deletes every capability `cs` holds: false when the budget ran out first.
bool delete_all(CSpace& cs, Budget& budget) {
    for (uint32_t i = 0; i < cs.size() && !cs.all_empty(); ++i) {
        Slot* s = cs.slot(i);
        if (s->empty()) continue;
        if (budget.remaining == 0) return false;
        Tree::erase(s);
        --budget.remaining;
    }
    return true;
}

}  // namespace

Progress apply_delete_matching(const DeleteMatching& op) {
    // Deleting never fills a slot, so a pass that reaches the end without
    // running out of budget has left no match anywhere. Each CSpace costs a
    // walk of the few buckets the object files under, not of its slots
    // (only the dying domain's own CSpace is walked whole).
    for (CSpace* cs = op.registry->first(); cs; cs = cs->next_registered()) {
        bool done;
        if (!op.whole_domain) done = delete_key(*cs, op.type, op.object, *op.budget);
        else if (cs->domain() == op.object) done = delete_all(*cs, *op.budget);
        else
            done = delete_key(*cs, Type::domain, op.object, *op.budget) &&
                   delete_key(*cs, Type::grant, op.object, *op.budget) &&
                   delete_key(*cs, Type::event, op.object, *op.budget);
        if (!done) return Progress::restart;
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
