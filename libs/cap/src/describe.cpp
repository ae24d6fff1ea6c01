#include <cap/capability.hpp>
#include <cap/error.hpp>

namespace cap {

const char* describe(Error e) {
    switch (e) {
    case Error::invalid_slot: return "slot index is beyond the end of the CSpace";
    case Error::empty_slot: return "slot holds no capability";
    case Error::slot_occupied: return "destination slot is occupied";
    case Error::insufficient_rights: return "capability lacks the rights the operation needs";
    case Error::bad_type: return "capability type not accepted here";
    case Error::bad_rights: return "rights not valid for the capability's type";
    case Error::bad_object: return "capability names an empty or wrapping range";
    case Error::bad_badge: return "badge 0 means unbadged and cannot be minted";
    case Error::already_badged: return "capability is already badged (a badge is set once)";
    case Error::unregistered_space: return "CSpace is not registered";
    case Error::space_registered: return "CSpace is already registered";
    case Error::domain_has_space: return "domain already has a CSpace";
    case Error::registry_full: return "no free CSpace id";
    case Error::space_not_empty: return "CSpace still holds capabilities";
    case Error::no_budget: return "work budget is zero";
    case Error::not_found: return "no matching capability or slot";
    }
    return "unknown capability error";
}

const char* type_name(Type t) {
    switch (t) {
    case Type::null: return "null";
    case Type::untyped: return "untyped";
    case Type::domain: return "domain";
    case Type::grant: return "grant";
    case Type::event: return "event";
    case Type::io_ports: return "io_ports";
    case Type::irq: return "irq";
    case Type::mmio: return "mmio";
    case Type::pci_device: return "pci_device";
    case Type::module: return "module";
    case Type::debug_console: return "debug_console";
    case Type::trace: return "trace";
    }
    return "unknown";
}

}  // namespace cap
