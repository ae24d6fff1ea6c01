// The CSpace lookup index (see cspace.hpp): hash buckets chained through the
// slots, the leveled bitmap of empty slots, and the per-(type, rights) counts.

#include <cap/cspace.hpp>

namespace cap {

namespace {

// A type's valid rights are contiguous bits: a capability's rights, shifted
// down, number its kind among the 2^bits kinds of that type.
constexpr unsigned rights_shift(Type t) {
    uint32_t v = valid_rights(t);
    return v ? unsigned(__builtin_ctz(v)) : 0;
}
constexpr unsigned rights_bits(Type t) { return unsigned(__builtin_popcount(valid_rights(t))); }
constexpr unsigned kind_base(unsigned t) {
    unsigned b = 0;
    for (unsigned k = 0; k < t; ++k) b += 1u << rights_bits(static_cast<Type>(k));
    return b;
}
constexpr bool contiguous_rights() {
    for (unsigned k = 0; k < kTypeCount; ++k) {
        auto t = static_cast<Type>(k);
        if ((valid_rights(t) >> rights_shift(t)) != (1u << rights_bits(t)) - 1) return false;
    }
    return true;
}
static_assert(contiguous_rights(), "held_kind needs each type's rights in one run of bits");
static_assert(kind_base(kTypeCount) == 35, "CSpace::kHeldKinds");

// Precondition: c.rights is a subset of valid_rights(c.type) (every stored
// capability's is).
unsigned held_kind(const Capability& c) {
    return kind_base(static_cast<unsigned>(c.type)) + (c.rights >> rights_shift(c.type));
}

}  // namespace

void CSpace::init_index() {
    free_ = nslots_;
    // Level l has one bit per item of level l - 1 (slots for level 0), in
    // ceil(items / 32) words, laid out one level after another from slot 0.
    // Fewer words than slots: nslots/32 + nslots/1024 + ... + kMaxLevels <= nslots
    // once nslots >= 8, and a single word below that.
    levels_ = 0;
    uint32_t at = 0, items = nslots_;
    for (;;) {
        uint32_t words = (items + 31) / 32;
        level_at_[levels_++] = at;
        for (uint32_t w = 0; w < words; ++w) {
            uint32_t n = items - 32 * w;
            slots_[at + w].free_word_ = n >= 32 ? ~0u : (1u << n) - 1;
        }
        at += words;
        items = words;
        if (items <= 1) break;
    }
}

uint32_t CSpace::lowest_empty() const {
    if (free_ == 0) return kNoSlot;
    // From the top level's only word down: each set bit names a word below
    // with an empty slot under it.
    uint32_t i = 0;
    for (unsigned l = levels_; l-- > 0;) i = i * 32 + static_cast<uint32_t>(__builtin_ctz(word(l, i)));
    return i;
}

bool CSpace::holds(Type t, uint32_t rights) const {
    if (t == Type::null || static_cast<unsigned>(t) >= kTypeCount) return false;
    if ((rights & ~valid_rights(t)) != 0) return false;
    unsigned base = kind_base(static_cast<unsigned>(t)), kinds = 1u << rights_bits(t);
    uint32_t want = rights >> rights_shift(t);
    for (uint32_t k = 0; k < kinds; ++k)
        if ((k & want) == want && held_[base + k] != 0) return true;
    return false;
}

void CSpace::mark(uint32_t i, bool empty) {
    for (unsigned l = 0; l < levels_; ++l) {
        uint32_t& w = word(l, i / 32);
        bool was = w != 0;
        uint32_t bit = 1u << (i % 32);
        w = empty ? (w | bit) : (w & ~bit);
        // The level above records only whether this word is zero.
        if ((w != 0) == was) return;
        i /= 32;
    }
}

void CSpace::index_add(Slot* s) {
    uint32_t i = index_of(s);
    uint32_t& head = slots_[bucket_of(s->cap_.type, s->cap_.object)].bucket_head_;
    s->chain_prev_ = kNoSlot;
    s->chain_next_ = head;
    if (head != kNoSlot) slots_[head].chain_prev_ = i;
    head = i;
    mark(i, false);
    --free_;
    ++held_[held_kind(s->cap_)];
}

void CSpace::index_remove(Slot* s) {
    uint32_t i = index_of(s);
    if (s->chain_prev_ != kNoSlot) slots_[s->chain_prev_].chain_next_ = s->chain_next_;
    else slots_[bucket_of(s->cap_.type, s->cap_.object)].bucket_head_ = s->chain_next_;
    if (s->chain_next_ != kNoSlot) slots_[s->chain_next_].chain_prev_ = s->chain_prev_;
    s->chain_next_ = s->chain_prev_ = kNoSlot;
    mark(i, true);
    ++free_;
    --held_[held_kind(s->cap_)];
}

const char* CSpace::audit_index() const {
    uint32_t full = 0;
    uint32_t held[kHeldKinds] = {};
    for (uint32_t i = 0; i < nslots_; ++i) {
        const Slot& s = slots_[i];
        if (s.space_ != this) return "slot does not name its CSpace";
        if (s.bucket_head_ != kNoSlot && s.bucket_head_ >= nslots_) return "bucket head outside the CSpace";
        bool marked_empty = (word(0, i / 32) >> (i % 32)) & 1;
        if (s.empty()) {
            if (s.chain_next_ != kNoSlot || s.chain_prev_ != kNoSlot) return "empty slot is chained";
            if (!marked_empty) return "empty slot missing from the free bitmap";
            continue;
        }
        if (marked_empty) return "full slot marked empty in the free bitmap";
        if ((s.cap_.rights & ~valid_rights(s.cap_.type)) != 0) return "rights not valid for type";
        ++full;
        ++held[held_kind(s.cap_)];
    }
    if (free_ != nslots_ - full) return "free count does not match the slots";
    for (unsigned k = 0; k < kHeldKinds; ++k)
        if (held[k] != held_[k]) return "per-type count does not match the slots";

    // Every chain: full slots of that bucket, back links right. A slot met
    // twice would be a cycle, which runs the count past `full`; so with the
    // total equal to `full`, every full slot is in exactly one chain.
    uint32_t chained = 0;
    for (uint32_t b = 0; b < nslots_; ++b) {
        uint32_t prev = kNoSlot;
        for (uint32_t x = slots_[b].bucket_head_; x != kNoSlot; x = slots_[x].chain_next_) {
            if (x >= nslots_) return "chain leaves the CSpace";
            const Slot& s = slots_[x];
            if (s.empty()) return "empty slot is chained";
            if (bucket_of(s.cap_.type, s.cap_.object) != b) return "slot chained in another bucket";
            if (s.chain_prev_ != prev) return "chain back link is wrong";
            if (++chained > full) return "cycle in a bucket chain";
            prev = x;
        }
    }
    if (chained != full) return "full slot missing from its bucket chain";

    // The bitmap's shape, and each upper level summarising the one below.
    uint32_t at = 0, items = nslots_;
    for (unsigned l = 0;; ++l) {
        if (l >= levels_ || level_at_[l] != at) return "free bitmap levels are misplaced";
        uint32_t words = (items + 31) / 32;
        for (uint32_t w = 0; w < words; ++w) {
            uint32_t n = items - 32 * w;
            uint32_t valid = n >= 32 ? ~0u : (1u << n) - 1;
            uint32_t v = word(l, w);
            if ((v & ~valid) != 0) return "free bitmap bit beyond the end";
            if (l == 0) continue;
            for (uint32_t j = 0; j < 32 && 32 * w + j < items; ++j)
                if (((v >> j) & 1) != (word(l - 1, 32 * w + j) != 0)) return "free bitmap summary is wrong";
        }
        at += words;
        items = words;
        if (items <= 1) return levels_ == l + 1 ? nullptr : "free bitmap levels are misplaced";
    }
}

}  // namespace cap
