#pragma once
// Why a capability operation was refused. A refused operation changed
// nothing (decode, then invoke).

#include <cstdint>

namespace cap {

enum class Error : uint8_t {
    invalid_slot = 1,     // slot index >= the CSpace's size
    empty_slot,           // the source (or target) slot holds no capability
    slot_occupied,        // the destination slot is not empty
    insufficient_rights,  // the source lacks the right the operation needs
    bad_type,             // null type, or a type the operation does not accept
    bad_rights,           // rights not valid for the capability's type
    bad_object,           // an empty or wrapping range
    bad_badge,            // mint with badge 0 (0 means unbadged)
    already_badged,       // mint from a badged capability (seL4: badges are set once)
    unregistered_space,   // the CSpace is not in a Registry
    space_registered,     // Registry::add of a CSpace already registered
    domain_has_space,     // Registry::add: that domain already has a CSpace
    registry_full,        // no longer returned: the Registry has no fixed size
    space_not_empty,      // Registry::remove of a CSpace still holding capabilities
    no_budget,            // revoke/destroy with a budget of 0 (could make no progress)
    not_found,            // find_slot/find_empty found nothing
};

// A sentence fragment, e.g. "destination slot is occupied". Never null.
const char* describe(Error e);

}  // namespace cap
