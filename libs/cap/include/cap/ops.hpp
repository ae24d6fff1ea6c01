#pragma once
// Capability operations, each split seL4-style into check_X (decode: checks
// every argument, changes nothing, returns the resolved operation or an
// error) and apply_X (invoke: cannot fail). X() does both.
//
// Delete semantics (seL4): remove() deletes one slot only. Its children are
// re-parented to its parent, taking its place among its parent's children
// (or become roots if it was a root). They keep their rights, which were
// already no more than the deleted slot's and so no more than its parent's.
// To take back everything derived from a capability, revoke() it.

#include <cstdint>

#include <base/result.hpp>
#include <cap/capability.hpp>
#include <cap/cspace.hpp>
#include <cap/error.hpp>

namespace cap {

// How many slots a preemptible operation may still delete. Consumed in place;
// the caller refills it before calling again.
struct Budget {
    uint32_t remaining;
};

enum class Progress : uint8_t {
    done,     // finished
    restart,  // budget exhausted: call again (with a fresh budget) to continue
};

// --- create_root: the kernel places a capability with no parent. ----------
struct CreateRoot {
    Slot* dst;
    Capability cap;
};
// Errors: invalid_slot, slot_occupied, unregistered_space, bad_type (null),
// bad_rights (not a subset of valid_rights), bad_object (empty or wrapping
// range; io_ports beyond 0xffff).
base::Result<CreateRoot, Error> check_create_root(CSpace& cs, uint32_t slot, const Capability& c);
void apply_create_root(const CreateRoot& op);
[[nodiscard]] base::Status<Error> create_root(CSpace& cs, uint32_t slot, const Capability& c);

// --- copy / mint: derive a child of src in dst. ---------------------------
// The child's rights are src.rights & rights_mask: never more than src's.
struct Derive {
    Slot* src;
    Slot* dst;
    uint32_t rights;
    uint64_t badge;
};
// Errors: invalid_slot, empty_slot (src), slot_occupied (dst),
// unregistered_space, insufficient_rights (src lacks derive_right(type)).
base::Result<Derive, Error> check_copy(CSpace& src, uint32_t src_slot, CSpace& dst,
                                       uint32_t dst_slot, uint32_t rights_mask);
// As copy, and: bad_badge (badge 0), already_badged (src has a badge).
base::Result<Derive, Error> check_mint(CSpace& src, uint32_t src_slot, CSpace& dst,
                                       uint32_t dst_slot, uint32_t rights_mask, uint64_t badge);
void apply_derive(const Derive& op);  // apply_copy and apply_mint are both this
inline void apply_copy(const Derive& op) { apply_derive(op); }
inline void apply_mint(const Derive& op) { apply_derive(op); }
[[nodiscard]] base::Status<Error> copy(CSpace& src, uint32_t src_slot, CSpace& dst,
                                       uint32_t dst_slot, uint32_t rights_mask);
[[nodiscard]] base::Status<Error> mint(CSpace& src, uint32_t src_slot, CSpace& dst,
                                       uint32_t dst_slot, uint32_t rights_mask, uint64_t badge);

// --- move: relocate a capability; it keeps its parent and children. -------
struct Move {
    Slot* src;
    Slot* dst;
};
// Errors: invalid_slot, empty_slot (src), slot_occupied (dst; also src == dst),
// unregistered_space (dst).
base::Result<Move, Error> check_move(CSpace& src, uint32_t src_slot, CSpace& dst, uint32_t dst_slot);
void apply_move(const Move& op);
[[nodiscard]] base::Status<Error> move(CSpace& src, uint32_t src_slot, CSpace& dst, uint32_t dst_slot);

// --- remove: delete one capability (see delete semantics above). ----------
struct Remove {
    Slot* slot;
};
// Errors: invalid_slot, empty_slot.
base::Result<Remove, Error> check_remove(CSpace& cs, uint32_t slot);
void apply_remove(const Remove& op);
[[nodiscard]] base::Status<Error> remove(CSpace& cs, uint32_t slot);

// --- revoke: delete every descendant, in every CSpace; the slot stays. ----
// Preemptible: deletes at most budget.remaining slots per call and at least
// one while any descendant remains, so repeated calls finish. Each deletion
// costs O(1) plus the re-parenting of the deleted slot's children, and every
// slot is re-parented at most once per revoke, so the whole revoke is O(n).
struct Revoke {
    Slot* slot;
    Budget* budget;
};
// Errors: invalid_slot, empty_slot, no_budget.
base::Result<Revoke, Error> check_revoke(CSpace& cs, uint32_t slot, Budget& budget);
Progress apply_revoke(const Revoke& op);
[[nodiscard]] base::Result<Progress, Error> revoke(CSpace& cs, uint32_t slot, Budget& budget);

// --- inspect ---------------------------------------------------------------
// Errors: invalid_slot (an empty slot gives a null capability, not an error).
[[nodiscard]] base::Result<Capability, Error> inspect(const CSpace& cs, uint32_t slot);

// --- Deleting by object, across every registered CSpace. ------------------
// Both visit every registered CSpace once per call, in each only the index
// bucket(s) the object is filed under (the dying domain's own CSpace whole),
// and delete at most budget.remaining matches, at least one while any remain;
// `done` means a whole pass found nothing left. Deleted slots' children are
// re-parented (remove semantics); when those name the same object they are
// deleted in the same scan.
struct DeleteMatching {
    Registry* registry;
    Type type;          // revoke_object: this type; destroy: unused
    uint64_t object;    // the object, or the dying domain
    bool whole_domain;  // destroy_domain_caps
    Budget* budget;
};

// Every capability of type t whose object is `object` (any object2).
// Errors: bad_type (null), no_budget.
base::Result<DeleteMatching, Error> check_revoke_object(Registry& reg, Type t, uint64_t object,
                                                        Budget& budget);
[[nodiscard]] base::Result<Progress, Error> revoke_object(Registry& reg, Type t, uint64_t object,
                                                          Budget& budget);

// For destroying domain `domid`: every capability naming it (Domain, Grant
// peer, Event peer), and every capability held in its CSpace. Its CSpace
// stays registered (and empty) for the caller to Registry::remove.
// Errors: no_budget.
base::Result<DeleteMatching, Error> check_destroy_domain_caps(Registry& reg, uint64_t domid,
                                                              Budget& budget);
Progress apply_delete_matching(const DeleteMatching& op);
[[nodiscard]] base::Result<Progress, Error> destroy_domain_caps(Registry& reg, uint64_t domid,
                                                                Budget& budget);

// --- Lookups for the kernel, through the CSpace's index (cspace.hpp). -----
// Does cs hold a capability of type t naming `object` that allows `rights`?
// E.g. find(cs, Type::grant, granting_domid, right::map_rw). O(1) expected:
// one bucket, which holds the CSpace's copies of that key and little else.
bool find(const CSpace& cs, Type t, uint64_t object, uint32_t rights);
// As find, giving the lowest such slot; not_found otherwise. Walks the whole
// bucket (so O(copies of the key held) + O(1) expected).
[[nodiscard]] base::Result<uint32_t, Error> find_slot(const CSpace& cs, Type t, uint64_t object,
                                                      uint32_t rights);
// Range types: a capability of type t covering [first, first + count).
// Linear in the capabilities of type t held (range types are filed by type).
bool find_range(const CSpace& cs, Type t, uint64_t first, uint64_t count, uint32_t rights);
// The lowest empty slot; not_found when the CSpace is full. O(log32 size).
[[nodiscard]] base::Result<uint32_t, Error> find_empty(const CSpace& cs);

}  // namespace cap
