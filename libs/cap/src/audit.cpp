#include <cap/audit.hpp>

namespace cap {

namespace {

const char* audit_slot(const Registry& reg, const Slot* s, uint64_t total) {
    const Capability& c = s->cap();
    if (c.empty()) {
        if (s->parent() || s->first_child() || s->next_sibling() || s->prev_sibling())
            return "empty slot has links";
        return nullptr;
    }
    if ((c.rights & ~valid_rights(c.type)) != 0) return "rights not valid for type";
    const Slot* links[] = {s->parent(), s->first_child(), s->next_sibling(), s->prev_sibling()};
    for (const Slot* l : links) {
        if (!l) continue;
        if (!reg.locate(l).space) return "link outside every registered CSpace";
        if (l->empty()) return "link to an empty slot";
    }
    if (const Slot* f = s->first_child()) {
        if (f->parent() != s) return "first child's parent is not this slot";
        if (f->prev_sibling()) return "first child has a previous sibling";
    }
    const Slot* p = s->parent();
    if (!p) {
        if (s->next_sibling() || s->prev_sibling()) return "root has siblings";
        return nullptr;
    }
    const Capability& pc = p->cap();
    if (!c.same_object(pc)) return "child names another object than its parent";
    if ((c.rights & ~pc.rights) != 0) return "child has rights its parent lacks";
    if (pc.badge != 0 && c.badge != pc.badge) return "child lost its parent's badge";
    if (const Slot* n = s->next_sibling()) {
        if (n->prev_sibling() != s) return "next sibling's prev is not this slot";
        if (n->parent() != p) return "sibling has another parent";
    }
    if (const Slot* v = s->prev_sibling()) {
        if (v->next_sibling() != s) return "prev sibling's next is not this slot";
        if (v->parent() != p) return "sibling has another parent";
    }
    // Reachable from the parent's child list (bounded walk: no cycles).
    uint64_t steps = 0;
    const Slot* x = p->first_child();
    for (; x && x != s; x = x->next_sibling())
        if (++steps > total) return "cycle in a child list";
    if (!x) return "slot missing from its parent's child list";
    // Acyclic: the parent chain ends within `total` steps.
    steps = 0;
    for (const Slot* a = p; a; a = a->parent())
        if (++steps > total) return "cycle in the parent chain";
    return nullptr;
}

}  // namespace

const char* audit(const Registry& reg) {
    uint64_t total = 0;
    uint32_t n = 0;
    for (const CSpace* cs = reg.first(); cs; cs = cs->next_registered()) {
        total += cs->size();
        if (++n > reg.count()) return "cycle in the registry's list";
    }
    if (n != reg.count()) return "the registry's count does not match its list";
    for (const CSpace* cs = reg.first(); cs; cs = cs->next_registered()) {
        for (uint32_t i = 0; i < cs->size(); ++i)
            if (const char* why = audit_slot(reg, cs->slot(i), total)) return why;
    }
    // The lookup index against a full scan, once the tree is known sound.
    for (const CSpace* cs = reg.first(); cs; cs = cs->next_registered())
        if (const char* why = cs->audit_index()) return why;
    return nullptr;
}

}  // namespace cap
