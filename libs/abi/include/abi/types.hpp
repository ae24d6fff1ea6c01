#pragma once
// Scalar types shared by every part of the Xen PV x86-64 guest ABI.

#include <cstdint>

namespace abi {

// Native register-width value (xen_ulong_t / unsigned long on x86-64).
using XenUlong = uint64_t;
// Frame number, machine or pseudo-physical (xen_pfn_t).
using XenPfn = uint64_t;
// A guest virtual address passed in place of a pointer (XEN_GUEST_HANDLE).
// Kept as a plain integer: it is meaningless in the hypervisor's own space
// and must go through the guest-copy routines.
using GuestHandle = uint64_t;
// Domain identifier (domid_t).
using DomId = uint16_t;
// Event channel port (evtchn_port_t).
using EvtchnPort = uint32_t;
// Grant reference and grant mapping handle.
using GrantRef = uint32_t;
using GrantHandle = uint32_t;

inline constexpr uint64_t kPageSize = 4096;
inline constexpr unsigned kPageShift = 12;

}  // namespace abi
