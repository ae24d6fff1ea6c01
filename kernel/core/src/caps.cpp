#include <core/caps.hpp>

#include <abi/memory.hpp>
#include <core/domain.hpp>
#include <core/log.hpp>
#include <core/platform.hpp>

#include <cap/ops.hpp>

namespace core::caps {

namespace {
cap::Registry g_registry;
}

uint64_t g_generation = 1;

void changed() {
    ++g_generation;
    platform::request_reschedule();
}

const uint8_t* io_bitmap_recompute(Domain& d) {
    {
        d.io_gen = g_generation;
        d.io_open = false;
        __builtin_memset(d.io_bitmap, 0xFF, sizeof d.io_bitmap);
        if (d.cspace)
            for (uint32_t i = 0; i < d.cspace->size(); ++i) {
                const cap::Capability& c = d.cspace->slot(i)->cap();
                if (c.type != cap::Type::io_ports || !c.allows(cap::right::use)) continue;
                for (uint64_t p = c.object; p < c.object + c.object2 && p < 65536; ++p)
                    d.io_bitmap[p / 8] &= static_cast<uint8_t>(~(1u << (p % 8)));
                d.io_open = true;
            }
    }
    return d.io_open ? d.io_bitmap : nullptr;
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

bool destroy_domain(Domain& d, Budget& budget) {
    if (!d.cspace) return true;
    // One scan of every registered slot, deleting what matches: a share of
    // the budget for the scan, one unit per 4 deletions.
    constexpr uint32_t kScan = 64;
    if (!budget.spend(kScan)) return false;
    cap::Budget b{budget.left > ~0u / 4 ? ~0u : budget.left * 4 + 1};
    uint32_t before = b.remaining;
    auto r = cap::destroy_domain_caps(g_registry, d.id, b);
    budget.charge((before - b.remaining) / 4);
    if (r && *r == cap::Progress::restart) return false;
    if (!g_registry.remove(*d.cspace)) log("domain %u: its CSpace could not be unregistered", d.id);
    changed();
    d.cspace->~CSpace();
    d.cspace = nullptr;
    return true;
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

bool covers(const Domain& d, cap::Type t, uint64_t first, uint64_t len, uint32_t rights) {
    const cap::CSpace* cs = d.cspace;
    if (!cs || first + len < first) return false;
    for (uint32_t i = 0, n = cs->size(); i < n; ++i) {
        const cap::Capability& c = cs->slot(i)->cap();
        if (c.type == t && c.allows(rights) && c.object <= first && first + len <= c.object + c.object2 &&
            c.object + c.object2 >= c.object)
            return true;
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

Domain* acting_on(Domain& caller, uint64_t domid, uint32_t right) {
    if (domid == abi::kDomidSelf || domid == caller.id) return &caller;
    if (!allows(caller, cap::Type::domain, domid, right)) return nullptr;
    Domain* x = domain_at(static_cast<unsigned>(domid));
    return x && x->state == DomainState::running ? x : nullptr;
}

long give_root(Domain& d, const cap::Capability& c) {
    if (!d.cspace) return -1;
    for (uint32_t i = 0; i < d.cspace->size(); ++i)
        if (d.cspace->slot(i)->empty()) {
            if (!cap::create_root(*d.cspace, i, c)) return -1;
            changed();
            return long(i);
        }
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
