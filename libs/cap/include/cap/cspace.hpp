#pragma once
// CSpaces (one table of capability slots per domain), the derivation tree
// that links slots across every CSpace, and the Registry of CSpaces.
//
// Derivation tree. Each non-empty slot records its parent (the slot it was
// copied or minted from; none for a root the kernel created), its first
// child and its siblings. Links are plain pointers: a CSpace's slot memory is
// supplied by its creator and never moves while the CSpace is registered.
// Invariants (checked by cap::audit):
//   - an empty slot has no links, and no slot links to an empty slot;
//   - a root has no parent and no siblings;
//   - a child has the same type and object as its parent, rights that are a
//     subset of its parent's, and its parent's badge if the parent is badged;
//     hence rights never grow down the tree;
//   - children form a doubly linked list from parent->first_child, every
//     member of which has that parent; the tree is acyclic;
//   - every linked slot lies in a registered CSpace.
// Every descendant of X lies in X's subtree; revoke(X) empties exactly that
// subtree and leaves X.

#include <cstddef>
#include <cstdint>

#include <base/result.hpp>
#include <cap/capability.hpp>
#include <cap/error.hpp>

namespace cap {

namespace detail {
struct Tree;
}

class Slot {
public:
    Slot() = default;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

    const Capability& cap() const { return cap_; }
    bool empty() const { return cap_.empty(); }
    const Slot* parent() const { return parent_; }
    const Slot* first_child() const { return first_child_; }
    const Slot* next_sibling() const { return next_sibling_; }
    const Slot* prev_sibling() const { return prev_sibling_; }

private:
    friend struct detail::Tree;
    Capability cap_{};
    Slot* parent_ = nullptr;
    Slot* first_child_ = nullptr;
    Slot* next_sibling_ = nullptr;
    Slot* prev_sibling_ = nullptr;
};

constexpr uint32_t kNoSpace = ~uint32_t{0};

// One domain's capability table. Its size is fixed at creation; the slots
// are the caller's memory (raw or Slot objects) and must outlive the CSpace's
// registration. Slot index 0 is an ordinary slot.
class CSpace {
public:
    // Empties all `nslots` slots at `slots`.
    CSpace(Slot* slots, uint32_t nslots, uint64_t domain);
    CSpace(const CSpace&) = delete;
    CSpace& operator=(const CSpace&) = delete;

    uint32_t size() const { return nslots_; }
    uint64_t domain() const { return domain_; }
    uint32_t id() const { return id_; }  // kNoSpace until registered
    bool registered() const { return id_ != kNoSpace; }

    // nullptr when i >= size().
    Slot* slot(uint32_t i) { return i < nslots_ ? &slots_[i] : nullptr; }
    const Slot* slot(uint32_t i) const { return i < nslots_ ? &slots_[i] : nullptr; }

    bool contains(const Slot* s) const;
    // Precondition: contains(s).
    uint32_t index_of(const Slot* s) const { return static_cast<uint32_t>(s - slots_); }
    bool all_empty() const;

private:
    friend class Registry;
    Slot* slots_;
    uint32_t nslots_;
    uint32_t id_ = kNoSpace;
    uint64_t domain_;
};

constexpr uint32_t kMaxSpaces = 128;

// Every live CSpace, by id. The kernel has one; capability operations refuse
// CSpaces that are not in it, so revoke and destroy_domain_caps reach every
// capability.
class Registry {
public:
    Registry() = default;
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Gives `cs` the lowest free id. Refused if it is already registered, if
    // its domain already has a CSpace, or if every id is taken.
    [[nodiscard]] base::Status<Error> add(CSpace& cs);
    // Only an empty CSpace can leave (destroy_domain_caps empties it).
    [[nodiscard]] base::Status<Error> remove(CSpace& cs);

    CSpace* get(uint32_t id) const { return id < kMaxSpaces ? spaces_[id] : nullptr; }
    CSpace* find_domain(uint64_t domid) const;

    struct Location {
        CSpace* space;  // nullptr: not in any registered CSpace
        uint32_t index;
    };
    // O(registered spaces); for audits and diagnostics.
    Location locate(const Slot* s) const;

private:
    CSpace* spaces_[kMaxSpaces] = {};
};

}  // namespace cap
