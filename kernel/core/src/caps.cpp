#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/log.hpp>

#include <cap/ops.hpp>

namespace core::caps {

namespace {
cap::Registry g_registry;
}

cap::Registry& registry() { return g_registry; }

bool init_domain(Domain& d, uint32_t nslots) {
    if (nslots == 0 || nslots > kMaxSlots) return false;
    d.cspace = new (d.cspace_storage) cap::CSpace(d.cslots, nslots, d.id);
    if (!g_registry.add(*d.cspace)) {
        d.cspace->~CSpace();
        d.cspace = nullptr;
        return false;
    }
    return true;
}

void destroy_domain(Domain& d) {
    if (!d.cspace) return;
    // Runs to completion: destroying a domain is itself bounded by the number
    // of registered slots.
    for (;;) {
        cap::Budget b{~0u};
        auto r = cap::destroy_domain_caps(g_registry, d.id, b);
        if (!r || *r == cap::Progress::done) break;
    }
    if (!g_registry.remove(*d.cspace)) log("domain %u: its CSpace could not be unregistered", d.id);
    d.cspace->~CSpace();
    d.cspace = nullptr;
}

bool allows(const Domain& d, cap::Type t, uint64_t object, uint32_t rights) {
    // cap::find, without its Result: this is on every grant and event path.
    const cap::CSpace* cs = d.cspace;
    if (!cs) return false;
    for (uint32_t i = 0, n = cs->size(); i < n; ++i) {
        const cap::Capability& c = cs->slot(i)->cap();
        if (c.type == t && c.object == object && c.allows(rights)) return true;
    }
    return false;
}

bool holds_type(const Domain& d, cap::Type t, uint32_t rights) {
    if (!d.cspace) return false;
    for (uint32_t i = 0; i < d.cspace->size(); ++i) {
        const cap::Capability& c = d.cspace->slot(i)->cap();
        if (c.type == t && c.allows(rights)) return true;
    }
    return false;
}

long give_root(Domain& d, const cap::Capability& c) {
    if (!d.cspace) return -1;
    for (uint32_t i = 0; i < d.cspace->size(); ++i)
        if (d.cspace->slot(i)->empty()) return cap::create_root(*d.cspace, i, c) ? long(i) : -1;
    return -1;
}

long to_errno(cap::Error e) {
    switch (e) {
    case cap::Error::empty_slot: return abi::neg(abi::Errno::enoent);
    case cap::Error::slot_occupied: return abi::neg(abi::Errno::eexist);
    case cap::Error::insufficient_rights: return abi::neg(abi::Errno::eperm);
    default: return abi::neg(abi::Errno::einval);
    }
}

}  // namespace core::caps
