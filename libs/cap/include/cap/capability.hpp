#pragma once
// A capability: the kernel's unforgeable record that its holder may do
// something to one object. Every cross-domain operation in Moat is allowed by
// exactly one check, Capability::allows(), on a capability the kernel found
// in the caller's CSpace.
//
// Rights bits are unique across types (a Domain right is never a Grant
// right), and a capability only ever holds rights valid for its type, so
// cap.allows(right::map_rw) also proves the capability is a Grant.

#include <cstddef>
#include <cstdint>

namespace cap {

enum class Type : uint8_t {
    null,           // empty slot; grants nothing
    untyped,        // object: first frame, object2: frame count
    domain,         // object: domain id
    grant,          // object: peer (granting) domain id; object2: kernel-defined, 0 if unused
    event,          // object: peer domain id; object2: kernel-defined, 0 if unused
    io_ports,       // object: first port, object2: port count
    irq,            // object: irq line
    mmio,           // object: first frame, object2: frame count
    pci_device,     // object: PCI segment/bus/device/function (bdf)
    module,         // object: boot module index
    debug_console,  // no object
    trace,          // no object: start, read and stop the kernel's trace buffers
};
constexpr unsigned kTypeCount = 12;

// Rights. In a namespace of their own so `right::copy` does not collide with
// cap::copy(); `Right::copy` works as well.
namespace right {
enum Right : uint32_t {
    // Domain.
    control = 1u << 0,       // pause, unpause, destroy, query
    build = 1u << 1,         // populate memory and registers before first run
    install_caps = 1u << 2,  // place capabilities into its CSpace
    // Grant.
    map_ro = 1u << 3,
    map_rw = 1u << 4,
    copy = 1u << 5,  // grant copy with the peer, and copying this capability further
    // Event.
    bind = 1u << 6,
    // Every other type has the single right `use`.
    use = 1u << 7,
};
}  // namespace right
using right::Right;

// Every right a capability of type t may hold; 0 for null.
constexpr uint32_t valid_rights(Type t) {
    switch (t) {
    case Type::null: return 0;
    case Type::domain: return right::control | right::build | right::install_caps;
    case Type::grant: return right::map_ro | right::map_rw | right::copy;
    case Type::event: return right::bind;
    case Type::untyped:
    case Type::io_ports:
    case Type::irq:
    case Type::mmio:
    case Type::pci_device:
    case Type::module:
    case Type::debug_console:
    case Type::trace: return right::use;
    }
    return 0;
}

// The right a capability must hold to be copied or minted; 0 when any
// capability of that type may be. Only Grant capabilities restrict it.
constexpr uint32_t derive_right(Type t) { return t == Type::grant ? uint32_t{right::copy} : 0; }

// Types whose object is a range [object, object + object2).
constexpr bool is_range(Type t) {
    return t == Type::untyped || t == Type::io_ports || t == Type::mmio;
}

struct Capability {
    Type type = Type::null;
    uint32_t rights = 0;   // subset of valid_rights(type)
    uint64_t object = 0;   // meaning per Type, see above
    uint64_t object2 = 0;
    uint64_t badge = 0;    // 0: unbadged; set once, by mint

    // THE check point: true iff this is a real capability holding every
    // right in `wanted`. A null capability allows nothing, not even 0.
    bool allows(uint32_t wanted) const {
        return type != Type::null && (rights & wanted) == wanted;
    }

    bool empty() const { return type == Type::null; }

    // Same type and same object: what every descendant shares with its
    // ancestors.
    bool same_object(const Capability& o) const {
        return type == o.type && object == o.object && object2 == o.object2;
    }

    // Names domain `domid` as its object or peer (Domain, Grant, Event).
    bool names_domain(uint64_t domid) const {
        return (type == Type::domain || type == Type::grant || type == Type::event) &&
               object == domid;
    }

    // For range types: [first, first + count) lies within this capability's
    // range (count 0 is never covered).
    bool covers(uint64_t first, uint64_t count) const {
        if (!is_range(type) || count == 0) return false;
        if (first < object) return false;
        uint64_t off = first - object;
        return off < object2 && count <= object2 - off;
    }

    // Constructors for the kernel's root capabilities.
    static constexpr Capability make(Type t, uint32_t rights, uint64_t object = 0,
                                     uint64_t object2 = 0) {
        Capability c;
        c.type = t;
        c.rights = rights;
        c.object = object;
        c.object2 = object2;
        return c;
    }
    static constexpr Capability domain(uint64_t domid, uint32_t rights) {
        return make(Type::domain, rights, domid);
    }
    static constexpr Capability grant(uint64_t peer, uint32_t rights, uint64_t extra = 0) {
        return make(Type::grant, rights, peer, extra);
    }
    static constexpr Capability event(uint64_t peer, uint32_t rights, uint64_t extra = 0) {
        return make(Type::event, rights, peer, extra);
    }
    static constexpr Capability untyped(uint64_t first_frame, uint64_t count) {
        return make(Type::untyped, right::use, first_frame, count);
    }
    static constexpr Capability io_ports(uint64_t first, uint64_t count) {
        return make(Type::io_ports, right::use, first, count);
    }
    static constexpr Capability irq(uint64_t line) { return make(Type::irq, right::use, line); }
    static constexpr Capability mmio(uint64_t first_frame, uint64_t count) {
        return make(Type::mmio, right::use, first_frame, count);
    }
    static constexpr Capability pci_device(uint64_t bdf) {
        return make(Type::pci_device, right::use, bdf);
    }
    static constexpr Capability module(uint64_t index) {
        return make(Type::module, right::use, index);
    }
    static constexpr Capability debug_console() { return make(Type::debug_console, right::use); }
    static constexpr Capability trace() { return make(Type::trace, right::use); }
};

// A human name for a type ("grant"); never null.
const char* type_name(Type t);

}  // namespace cap
