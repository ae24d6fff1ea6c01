#pragma once
// The only code that writes derivation-tree links or a slot's capability.
// Each function takes a tree satisfying the invariants in cspace.hpp and
// leaves one that does, and keeps each touched CSpace's index in step.

#include <cap/cspace.hpp>

namespace cap::detail {

struct Tree {
    // Fills the empty slot `dst` with `c` as a root.
    static void set_root(Slot* dst, const Capability& c);
    // Fills the empty slot `dst` with `c` as the first child of `parent`.
    // Precondition: c is derived from parent->cap_ (same object, rights a
    // subset, badge kept or newly set on an unbadged parent).
    static void add_child(Slot* parent, Slot* dst, const Capability& c);
    // Moves src's capability and links to the empty slot dst; src is emptied.
    static void relocate(Slot* src, Slot* dst);
    // Empties s. Its children take its place among its parent's children, or
    // become roots if s was a root.
    static void erase(Slot* s);

    static Slot* first_child(Slot* s) { return s->first_child_; }

private:
    // The two changes of a slot's capability, each with its CSpace's index.
    // fill: s is empty and unlinked. clear: s's links are already undone.
    static void fill(Slot* s, const Capability& c);
    static void clear(Slot* s);
};

}  // namespace cap::detail
