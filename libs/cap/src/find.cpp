// Lookups the kernel makes before acting on a domain's behalf.

#include <cap/ops.hpp>

namespace cap {

using base::Err;
using base::Result;

Result<uint32_t, Error> find_slot(const CSpace& cs, Type t, uint64_t object, uint32_t rights) {
    for (uint32_t i = 0; i < cs.size(); ++i) {
        const Capability& c = cs.slot(i)->cap();
        if (c.type == t && c.object == object && c.allows(rights)) return i;
    }
    return Err{Error::not_found};
}

bool find(const CSpace& cs, Type t, uint64_t object, uint32_t rights) {
    return find_slot(cs, t, object, rights).ok();
}

bool find_range(const CSpace& cs, Type t, uint64_t first, uint64_t count, uint32_t rights) {
    for (uint32_t i = 0; i < cs.size(); ++i) {
        const Capability& c = cs.slot(i)->cap();
        if (c.type == t && c.covers(first, count) && c.allows(rights)) return true;
    }
    return false;
}

Result<uint32_t, Error> find_empty(const CSpace& cs) {
    for (uint32_t i = 0; i < cs.size(); ++i)
        if (cs.slot(i)->empty()) return i;
    return Err{Error::not_found};
}

}  // namespace cap
