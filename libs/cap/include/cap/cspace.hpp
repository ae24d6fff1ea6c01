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

class CSpace;

// "No slot" in the index's 32-bit slot numbers.
constexpr uint32_t kNoSlot = ~uint32_t{0};

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
    // The CSpace whose array holds this slot (set when it is made).
    const CSpace* space() const { return space_; }

private:
    friend struct detail::Tree;
    friend class CSpace;
    Capability cap_{};
    Slot* parent_ = nullptr;
    Slot* first_child_ = nullptr;
    Slot* next_sibling_ = nullptr;
    Slot* prev_sibling_ = nullptr;
    // The lookup index (see CSpace), kept in the slot memory the CSpace's
    // creator supplies so it grows with the CSpace and costs nothing else:
    // 24 bytes a slot (64 -> 88; the four fields below fill 20 of them).
    CSpace* space_ = nullptr;
    // Bucket number (this slot's index): the first full slot whose key hashes
    // there, kNoSlot if none. Slot i holds bucket i's head whatever slot i holds.
    uint32_t bucket_head_ = kNoSlot;
    // While full: the other full slots of its bucket, a doubly linked chain
    // (so deleting is O(1) however many copies share a key). kNoSlot at the
    // ends and while empty.
    uint32_t chain_next_ = kNoSlot;
    uint32_t chain_prev_ = kNoSlot;
    // Word (this slot's index) of the free-slot bitmap, when the bitmap has
    // that many words (it has fewer than size() / 31 + 7).
    uint32_t free_word_ = 0;
};
static_assert(sizeof(void*) != 8 || sizeof(Slot) == 88, "docs/capabilities.md states the memory per slot");

constexpr uint32_t kNoSpace = ~uint32_t{0};

// One domain's capability table. Its size is fixed at creation; the slots
// are the caller's memory (raw or Slot objects) and must outlive the CSpace's
// registration. Slot index 0 is an ordinary slot.
//
// The index. Every lookup the kernel makes on a cross-domain path costs the
// same however many capabilities the CSpace holds:
//   - a hash table keyed by (type, object), or by type alone for range types
//     (Untyped, IoPorts, Mmio: few, and looked up by a range, not an object),
//     with size() buckets chained through the slots: find/find_slot walk one
//     bucket (O(1) expected; the copies one domain keeps of one key all share
//     its bucket, so they cost only that domain's own lookups);
//   - a bitmap of the empty slots in levels of 32-bit words (level 0: a bit
//     per slot, each level above: a bit per non-zero word below, the top one
//     word), stored in the slots' free_word_: the lowest empty slot in
//     O(log32 size()), at most 3 steps for 16,384 slots;
//   - counts: empty slots, and full ones per (type, rights) for holds().
// Invariants (checked by audit_index, and by cap::audit):
//   - every full slot is in exactly one chain, that of bucket_of(its cap), and
//     chains hold nothing else; every slot's space_ is this CSpace;
//   - bitmap bit i (level 0) is set iff slot i is empty; a bit at level l > 0
//     is set iff the word it stands for at level l - 1 is non-zero;
//   - free_ is the number of empty slots; held_[k] the number of full slots
//     whose (type, rights) map to k.
// Only detail::Tree writes a slot's capability, and it keeps the index in step.
class CSpace {
public:
    // Empties all `nslots` slots at `slots`.
    CSpace(Slot* slots, uint32_t nslots, uint64_t domain);
    CSpace(const CSpace&) = delete;
    CSpace& operator=(const CSpace&) = delete;

    uint32_t size() const { return nslots_; }
    uint64_t domain() const { return domain_; }
    // Its registration number (kNoSpace until registered): unique among the
    // CSpaces registered at one time, for diagnostics and tests.
    uint32_t id() const { return id_; }
    bool registered() const { return id_ != kNoSpace; }
    // The next registered CSpace after this one (Registry::first()), nullptr at the end.
    CSpace* next_registered() const { return next_; }

    // nullptr when i >= size().
    Slot* slot(uint32_t i) { return i < nslots_ ? &slots_[i] : nullptr; }
    const Slot* slot(uint32_t i) const { return i < nslots_ ? &slots_[i] : nullptr; }

    bool contains(const Slot* s) const;
    // Precondition: contains(s).
    uint32_t index_of(const Slot* s) const { return static_cast<uint32_t>(s - slots_); }
    // O(1).
    bool all_empty() const { return free_ == nslots_; }
    uint32_t free_count() const { return free_; }
    // The lowest empty slot, kNoSlot if none. O(log32 size()).
    uint32_t lowest_empty() const;
    // Does it hold a capability of type t that allows `rights`? O(1).
    bool holds(Type t, uint32_t rights) const;

    // The full slots that may hold a capability of type t naming `object`
    // (for range types: every capability of type t), and others that share
    // their bucket: callers check each slot's capability. In no particular
    // order; the chain changes only when a slot of this CSpace does.
    const Slot* first_candidate(Type t, uint64_t object) const {
        if (nslots_ == 0) return nullptr;
        uint32_t h = slots_[bucket_of(t, object)].bucket_head_;
        return h == kNoSlot ? nullptr : &slots_[h];
    }
    const Slot* next_candidate(const Slot* s) const {
        return s->chain_next_ == kNoSlot ? nullptr : &slots_[s->chain_next_];
    }

    // nullptr when every index invariant above holds, else what is broken.
    // O(size()); for audits and tests.
    const char* audit_index() const;

    // Where the index files a capability of type t naming `object`.
    uint32_t bucket_of(Type t, uint64_t object) const {
        // Fibonacci hashing: one multiply spreads the small dense numbers
        // objects are (domain ids, lines, indices) over the high bits, the
        // type apart. On every grant and event check, so short and inline.
        uint64_t k = ((is_range(t) ? 0 : object) ^ (static_cast<uint64_t>(t) << 56)) * 0x9E3779B97F4A7C15ull;
        // Scaled to [0, nslots_) without a division.
        return static_cast<uint32_t>(((k >> 32) * nslots_) >> 32);
    }

private:
    friend class Registry;
    friend struct detail::Tree;
    static constexpr unsigned kMaxLevels = 7;   // 32^7 > 2^32 slots
    static constexpr unsigned kHeldKinds = 35;  // sum over types of 2^(rights bits)

    // Every slot empty: no chains, every bitmap bit set, counts zero.
    void init_index();
    // Index upkeep, for detail::Tree: s has just been filled / is about to be emptied.
    void index_add(Slot* s);
    void index_remove(Slot* s);
    void mark(uint32_t i, bool empty);
    uint32_t& word(unsigned level, uint32_t w) { return slots_[level_at_[level] + w].free_word_; }
    uint32_t word(unsigned level, uint32_t w) const { return slots_[level_at_[level] + w].free_word_; }

    Slot* slots_;
    uint32_t nslots_;
    uint32_t id_ = kNoSpace;
    uint64_t domain_;
    // Registry links: a doubly linked list of the registered CSpaces, so
    // adding and removing one costs the same however many there are.
    CSpace* next_ = nullptr;
    CSpace* prev_ = nullptr;
    uint32_t free_ = 0;               // empty slots
    uint32_t levels_ = 0;             // bitmap levels, 1..kMaxLevels
    uint32_t level_at_[kMaxLevels] = {};  // the slot holding each level's word 0
    uint32_t held_[kHeldKinds] = {};  // full slots per held_kind(type, rights)
};

// Every live CSpace, in a list (no fixed limit: one per domain, and the
// kernel has up to 32,752 domains). The kernel has one; capability
// operations refuse CSpaces that are not in it, so revoke and
// destroy_domain_caps reach every capability. Walking it costs the number
// of registered CSpaces, never the number of possible ones.
class Registry {
public:
    Registry() = default;
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Registers `cs` with the next registration number; refused if it is
    // already registered. O(1): the caller gives each domain one CSpace (the
    // kernel makes one per new domain id); find_domain tells, in
    // O(registered), whether a domain has one.
    [[nodiscard]] base::Status<Error> add(CSpace& cs);
    // Only an empty CSpace can leave (destroy_domain_caps empties it). O(1).
    [[nodiscard]] base::Status<Error> remove(CSpace& cs);

    // The registered CSpaces: first(), then each one's next_registered().
    CSpace* first() const { return head_; }
    uint32_t count() const { return count_; }
    CSpace* find_domain(uint64_t domid) const;

    struct Location {
        CSpace* space;  // nullptr: not in any registered CSpace
        uint32_t index;
    };
    // O(registered spaces); for audits and diagnostics.
    Location locate(const Slot* s) const;

private:
    CSpace* head_ = nullptr;
    uint32_t count_ = 0;
    uint32_t next_id_ = 0;   // the next registration number (skips kNoSpace)
};

}  // namespace cap
