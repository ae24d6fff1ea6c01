// create_root, copy, mint, move, remove, inspect.

#include <cap/ops.hpp>

#include "tree.hpp"

namespace cap {

using base::Err;
using base::Result;
using base::Status;
using detail::Tree;

namespace {

// Resolves a slot index to a slot that must hold a capability.
Result<Slot*, Error> full_slot(CSpace& cs, uint32_t i) {
    Slot* s = cs.slot(i);
    if (!s) return Err{Error::invalid_slot};
    if (s->empty()) return Err{Error::empty_slot};
    return s;
}

// Resolves a slot index to an empty slot in a registered CSpace.
Result<Slot*, Error> free_slot(CSpace& cs, uint32_t i) {
    Slot* s = cs.slot(i);
    if (!s) return Err{Error::invalid_slot};
    if (!s->empty()) return Err{Error::slot_occupied};
    if (!cs.registered()) return Err{Error::unregistered_space};
    return s;
}

bool valid_object(const Capability& c) {
    if (!is_range(c.type)) return true;
    if (c.object2 == 0 || c.object + c.object2 < c.object) return false;
    if (c.type == Type::io_ports && c.object + c.object2 > 0x10000) return false;
    return true;
}

}  // namespace

// --- create_root ---

Result<CreateRoot, Error> check_create_root(CSpace& cs, uint32_t slot, const Capability& c) {
    auto dst = free_slot(cs, slot);
    if (!dst) return Err{dst.error()};
    if (c.type == Type::null || static_cast<unsigned>(c.type) >= kTypeCount)
        return Err{Error::bad_type};
    if ((c.rights & ~valid_rights(c.type)) != 0) return Err{Error::bad_rights};
    if (!valid_object(c)) return Err{Error::bad_object};
    return CreateRoot{*dst, c};
}

void apply_create_root(const CreateRoot& op) { Tree::set_root(op.dst, op.cap); }

Status<Error> create_root(CSpace& cs, uint32_t slot, const Capability& c) {
    auto op = check_create_root(cs, slot, c);
    if (!op) return Err{op.error()};
    apply_create_root(*op);
    return {};
}

// --- copy / mint ---

Result<Derive, Error> check_copy(CSpace& src, uint32_t src_slot, CSpace& dst, uint32_t dst_slot,
                                 uint32_t rights_mask) {
    auto s = full_slot(src, src_slot);
    if (!s) return Err{s.error()};
    auto d = free_slot(dst, dst_slot);
    if (!d) return Err{d.error()};
    if (!src.registered()) return Err{Error::unregistered_space};
    const Capability& c = (*s)->cap();
    if (!c.allows(derive_right(c.type))) return Err{Error::insufficient_rights};
    // Masking can only clear bits: the child never holds more than src.
    return Derive{*s, *d, c.rights & rights_mask, c.badge};
}

Result<Derive, Error> check_mint(CSpace& src, uint32_t src_slot, CSpace& dst, uint32_t dst_slot,
                                 uint32_t rights_mask, uint64_t badge) {
    auto op = check_copy(src, src_slot, dst, dst_slot, rights_mask);
    if (!op) return Err{op.error()};
    if (badge == 0) return Err{Error::bad_badge};
    if (op->badge != 0) return Err{Error::already_badged};
    Derive d = *op;
    d.badge = badge;
    return d;
}

void apply_derive(const Derive& op) {
    Capability c = op.src->cap();
    c.rights = op.rights;
    c.badge = op.badge;
    Tree::add_child(op.src, op.dst, c);
}

Status<Error> copy(CSpace& src, uint32_t src_slot, CSpace& dst, uint32_t dst_slot,
                   uint32_t rights_mask) {
    auto op = check_copy(src, src_slot, dst, dst_slot, rights_mask);
    if (!op) return Err{op.error()};
    apply_derive(*op);
    return {};
}

Status<Error> mint(CSpace& src, uint32_t src_slot, CSpace& dst, uint32_t dst_slot,
                   uint32_t rights_mask, uint64_t badge) {
    auto op = check_mint(src, src_slot, dst, dst_slot, rights_mask, badge);
    if (!op) return Err{op.error()};
    apply_derive(*op);
    return {};
}

// --- move ---

Result<Move, Error> check_move(CSpace& src, uint32_t src_slot, CSpace& dst, uint32_t dst_slot) {
    auto s = full_slot(src, src_slot);
    if (!s) return Err{s.error()};
    auto d = free_slot(dst, dst_slot);
    if (!d) return Err{d.error()};
    return Move{*s, *d};
}

void apply_move(const Move& op) { Tree::relocate(op.src, op.dst); }

Status<Error> move(CSpace& src, uint32_t src_slot, CSpace& dst, uint32_t dst_slot) {
    auto op = check_move(src, src_slot, dst, dst_slot);
    if (!op) return Err{op.error()};
    apply_move(*op);
    return {};
}

// --- remove ---

Result<Remove, Error> check_remove(CSpace& cs, uint32_t slot) {
    auto s = full_slot(cs, slot);
    if (!s) return Err{s.error()};
    return Remove{*s};
}

void apply_remove(const Remove& op) { Tree::erase(op.slot); }

Status<Error> remove(CSpace& cs, uint32_t slot) {
    auto op = check_remove(cs, slot);
    if (!op) return Err{op.error()};
    apply_remove(*op);
    return {};
}

// --- inspect ---

Result<Capability, Error> inspect(const CSpace& cs, uint32_t slot) {
    const Slot* s = cs.slot(slot);
    if (!s) return Err{Error::invalid_slot};
    return s->cap();
}

}  // namespace cap
