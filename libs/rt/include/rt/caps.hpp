#pragma once
// Capabilities from inside a domain (Moat's cap_op).

#include <cstdint>

#include <abi/memory.hpp>
#include <abi/moat.hpp>
#include <rt/hypercall.hpp>

namespace rt {

inline long cap_op(abi::CapOp op, abi::CapOpArgs& a) {
    return hypercall(abi::Hypercall::cap_op, uint64_t(op), ptr(&a));
}

inline abi::MoatCap cap_inspect(uint32_t slot) {
    abi::CapOpArgs a{};
    a.src_slot = slot;
    a.domain = abi::kDomidSelf;
    if (cap_op(abi::CapOp::inspect, a) != 0) return abi::MoatCap{};
    return a.cap;
}

// The first slot holding a capability of `type` that `match` accepts, or -1.
template <typename Match>
inline long cap_find_if(abi::CapType type, Match&& match) {
    abi::CapOpArgs a{};
    a.domain = abi::kDomidSelf;
    long n = cap_op(abi::CapOp::size, a);
    for (long i = 0; i < n; ++i) {
        abi::MoatCap c = cap_inspect(uint32_t(i));
        if (c.type == uint32_t(type) && match(c)) return i;
    }
    return -1;
}

// The first slot holding a capability of `type` naming `object`, or -1.
inline long cap_find(abi::CapType type, uint64_t object) {
    return cap_find_if(type, [&](const abi::MoatCap& c) { return c.object == object; });
}

// Copies our slot `src` (rights & mask) into slot `dst` of `domain`.
// The first PCI function the domain holds a PciDevice capability for (bus
// << 8 | device << 3 | function), or -1: what a driver domain drives.
inline long pci_function_held() {
    long slot = cap_find_if(abi::CapType::pci_device, [](const abi::MoatCap&) { return true; });
    return slot < 0 ? -1 : long(cap_inspect(uint32_t(slot)).object);
}

inline long cap_install(uint16_t domain, uint32_t src, uint32_t dst, uint32_t mask) {
    abi::CapOpArgs a{};
    a.src_slot = src;
    a.dst_slot = dst;
    a.domain = domain;
    a.rights = mask;
    return cap_op(abi::CapOp::copy, a);
}

inline long cap_revoke(uint32_t slot) {
    abi::CapOpArgs a{};
    a.src_slot = slot;
    a.domain = abi::kDomidSelf;
    return cap_op(abi::CapOp::revoke, a);
}

}  // namespace rt
