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
    d.io_gen = g_generation;
    // The bitmap exists only while it holds an IoPorts capability: most
    // domains never have one, and it is 8 KiB.
    if (!holds_type(d, cap::Type::io_ports, cap::right::use)) {
        domain_mem_free(d, d.io_bitmap, kIoBitmapBytes);
        d.io_bitmap = nullptr;
        d.io_open = false;
        return nullptr;
    }
    if (!d.io_bitmap) d.io_bitmap = static_cast<uint8_t*>(domain_mem_alloc(d, kIoBitmapBytes));
    // Out of memory: no port for now (io_gen left stale, so the next exit
    // to it tries again).
    if (!d.io_bitmap) {
        d.io_gen = 0;
        d.io_open = false;
        return nullptr;
    }
    __builtin_memset(d.io_bitmap, 0xFF, kIoBitmapBytes);
    // IoPorts capabilities are filed by type: this walks those it holds.
    const cap::CSpace& cs = *d.cspace;
    for (const cap::Slot* s = cs.first_candidate(cap::Type::io_ports, 0); s; s = cs.next_candidate(s)) {
        const cap::Capability& c = s->cap();
        if (c.type != cap::Type::io_ports || !c.allows(cap::right::use)) continue;
        for (uint64_t p = c.object; p < c.object + c.object2 && p < 65536; ++p)
            d.io_bitmap[p / 8] &= static_cast<uint8_t>(~(1u << (p % 8)));
    }
    d.io_open = true;
    return d.io_bitmap;
}

cap::Registry& registry() { return g_registry; }

namespace {
// Its CSpace and slots gone (unregistered, or never registered).
void drop_cspace(Domain& d) {
    uint32_t n = d.cspace->size();
    d.cspace->~CSpace();
    d.cspace = nullptr;
    domain_mem_free(d, d.cslots, n * sizeof(cap::Slot));
    d.cslots = nullptr;
}
}  // namespace

bool init_domain(Domain& d, uint32_t nslots) {
    if (nslots == 0 || nslots > kMaxSlots) return false;
    d.cslots = static_cast<cap::Slot*>(domain_mem_alloc(d, nslots * sizeof(cap::Slot)));
    if (!d.cslots) return false;
    d.cspace = new (d.cspace_storage) cap::CSpace(d.cslots, nslots, d.id);
    if (!g_registry.add(*d.cspace)) {
        drop_cspace(d);
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
    if (!g_registry.remove(*d.cspace)) {
        // Still linked from the registry: its slots must stay (a bookkeeping
        // error, said plainly; the memory is lost rather than reused).
        log("domain %u: its CSpace could not be unregistered", d.id);
        changed();
        return true;
    }
    changed();
    drop_cspace(d);
    return true;
}

bool allows(const Domain& d, cap::Type t, uint64_t object, uint32_t rights) {
    // On every grant and event path: one bucket of the CSpace's index, not
    // every slot (the builder holds three capabilities per domain it made).
    // (cap::find, inline.)
    const cap::CSpace* cs = d.cspace;
    if (!cs) return false;
    for (const cap::Slot* s = cs->first_candidate(t, object); s; s = cs->next_candidate(s)) {
        const cap::Capability& c = s->cap();
        if (c.type == t && c.object == object && c.allows(rights)) return true;
    }
    return false;
}

bool covers(const Domain& d, cap::Type t, uint64_t first, uint64_t len, uint32_t rights) {
    const cap::CSpace* cs = d.cspace;
    if (!cs || first + len < first) return false;
    auto hit = [&](const cap::Capability& c) {
        return c.type == t && c.allows(rights) && c.object <= first && first + len <= c.object + c.object2 &&
               c.object + c.object2 >= c.object;
    };
    // Range types are filed by type alone: the capabilities of type t it holds.
    if (cap::is_range(t)) {
        for (const cap::Slot* s = cs->first_candidate(t, first); s; s = cs->next_candidate(s))
            if (hit(s->cap())) return true;
        return false;
    }
    // Another type has no range to cover (object2 is not a length); kept as
    // it was, a scan, for the odd caller that asks.
    for (uint32_t i = 0, n = cs->size(); i < n; ++i)
        if (hit(cs->slot(i)->cap())) return true;
    return false;
}

bool holds_type(const Domain& d, cap::Type t, uint32_t rights) {
    return d.cspace && d.cspace->holds(t, rights);
}

Domain* acting_on(Domain& caller, uint64_t domid, uint32_t right) {
    if (domid == abi::kDomidSelf || domid == caller.id) return &caller;
    if (!allows(caller, cap::Type::domain, domid, right)) return nullptr;
    Domain* x = domain_at(static_cast<unsigned>(domid));
    return x && x->state == DomainState::running ? x : nullptr;
}

long give_root(Domain& d, const cap::Capability& c) {
    if (!d.cspace) return -1;
    auto i = cap::find_empty(*d.cspace);   // the lowest, from the index
    if (!i || !cap::create_root(*d.cspace, *i, c)) return -1;
    changed();
    return long(*i);
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
