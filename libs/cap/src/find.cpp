// Lookups the kernel makes before acting on a domain's behalf, through the
// CSpace's index (cspace.hpp): one bucket each, however much the CSpace holds.

#include <cap/ops.hpp>

namespace cap {

using base::Err;
using base::Result;

Result<uint32_t, Error> find_slot(const CSpace& cs, Type t, uint64_t object, uint32_t rights) {
    // The whole bucket, for the lowest match: the same slot a scan from 0
    // would give, so callers see no change from the index.
    uint32_t best = kNoSlot;
    for (const Slot* s = cs.first_candidate(t, object); s; s = cs.next_candidate(s)) {
        const Capability& c = s->cap();
        if (c.type == t && c.object == object && c.allows(rights) && cs.index_of(s) < best)
            best = cs.index_of(s);
    }
    if (best == kNoSlot) return Err{Error::not_found};
    return best;
}

bool find(const CSpace& cs, Type t, uint64_t object, uint32_t rights) {
    for (const Slot* s = cs.first_candidate(t, object); s; s = cs.next_candidate(s)) {
        const Capability& c = s->cap();
        if (c.type == t && c.object == object && c.allows(rights)) return true;
    }
    return false;
}

bool find_range(const CSpace& cs, Type t, uint64_t first, uint64_t count, uint32_t rights) {
    // Range types are filed by type alone: this walks every capability of
    // type t the CSpace holds (few: ports, MMIO windows, RAM regions), plus
    // whatever else shares that bucket. Other types never cover a range.
    if (!is_range(t)) return false;
    for (const Slot* s = cs.first_candidate(t, first); s; s = cs.next_candidate(s)) {
        const Capability& c = s->cap();
        if (c.type == t && c.covers(first, count) && c.allows(rights)) return true;
    }
    return false;
}

Result<uint32_t, Error> find_empty(const CSpace& cs) {
    uint32_t i = cs.lowest_empty();
    if (i == kNoSlot) return Err{Error::not_found};
    return i;
}

}  // namespace cap
