#include "tree.hpp"

namespace cap::detail {

void Tree::fill(Slot* s, const Capability& c) {
    s->cap_ = c;
    s->space_->index_add(s);
}

void Tree::clear(Slot* s) {
    s->space_->index_remove(s);   // while it still has the capability it is filed under
    s->cap_ = Capability{};
    s->parent_ = s->first_child_ = s->next_sibling_ = s->prev_sibling_ = nullptr;
}

void Tree::set_root(Slot* dst, const Capability& c) {
    dst->parent_ = dst->first_child_ = dst->next_sibling_ = dst->prev_sibling_ = nullptr;
    fill(dst, c);
}

void Tree::add_child(Slot* parent, Slot* dst, const Capability& c) {
    dst->first_child_ = nullptr;
    dst->parent_ = parent;
    dst->prev_sibling_ = nullptr;
    dst->next_sibling_ = parent->first_child_;
    if (parent->first_child_) parent->first_child_->prev_sibling_ = dst;
    parent->first_child_ = dst;
    fill(dst, c);
}

void Tree::relocate(Slot* src, Slot* dst) {
    dst->parent_ = src->parent_;
    dst->first_child_ = src->first_child_;
    dst->next_sibling_ = src->next_sibling_;
    dst->prev_sibling_ = src->prev_sibling_;
    if (dst->prev_sibling_) dst->prev_sibling_->next_sibling_ = dst;
    else if (dst->parent_) dst->parent_->first_child_ = dst;
    if (dst->next_sibling_) dst->next_sibling_->prev_sibling_ = dst;
    for (Slot* c = dst->first_child_; c; c = c->next_sibling_) c->parent_ = dst;
    fill(dst, src->cap_);   // perhaps in another CSpace: each index changes once
    clear(src);
}

void Tree::erase(Slot* s) {
    Slot* parent = s->parent_;
    Slot* first = s->first_child_;
    if (!parent) {
        // A root: each child becomes a root, with no siblings.
        for (Slot* c = first; c;) {
            Slot* next = c->next_sibling_;
            c->parent_ = c->prev_sibling_ = c->next_sibling_ = nullptr;
            c = next;
        }
    } else if (!first) {
        // A leaf: unlink it.
        if (s->prev_sibling_) s->prev_sibling_->next_sibling_ = s->next_sibling_;
        else parent->first_child_ = s->next_sibling_;
        if (s->next_sibling_) s->next_sibling_->prev_sibling_ = s->prev_sibling_;
    } else {
        // Splice the children list [first, last] in place of s.
        Slot* last = first;
        for (;;) {
            last->parent_ = parent;
            if (!last->next_sibling_) break;
            last = last->next_sibling_;
        }
        first->prev_sibling_ = s->prev_sibling_;
        if (s->prev_sibling_) s->prev_sibling_->next_sibling_ = first;
        else parent->first_child_ = first;
        last->next_sibling_ = s->next_sibling_;
        if (s->next_sibling_) s->next_sibling_->prev_sibling_ = last;
    }
    clear(s);
}

}  // namespace cap::detail
