#pragma once
// A guest's own descriptor tables (GDT and LDT), as Xen gives 64-bit PV guests
// (xen/arch/x86/pv/descriptor-tables.c): set_gdt names up to 14 of its frames
// holding up to 7168 descriptors; they take the `seg_desc` page type, which
// validates every descriptor (check_descriptor) and excludes writable
// mappings, so from then on a descriptor changes only through
// update_descriptor, which checks it the same way. The CPU uses the
// descriptors from the hypervisor's own per-CPU GDT, whose first 7168 entries
// are the running vCPU's (copied in when it is put on the CPU and kept in step
// by update_descriptor); the entries above are the hypervisor's (Xen's
// reserved selectors 0xe000 and up, flat ring-3 code and data among them).
//
// check_descriptor (Xen's rules for a 64-bit PV guest, whose kernel runs in
// ring 3): a not-present descriptor is harmless; a code or data descriptor
// gets DPL 3 (so nothing a guest writes is usable from ring 0-2); a call gate
// may name only a guest code selector and gets DPL 0 (so using it faults);
// every other system descriptor (TSS, LDT, interrupt and trap gates) is
// refused, as are reserved bits.
//
// The LDT (MMUEXT_SET_LDT, Xen's mm.c): up to 8192 descriptors at a page
// aligned guest address. Xen maps its pages lazily, on the first fault on an
// LDT selector; Moat takes them when the LDT is set: each page the guest's
// kernel page tables map there (Xen looks them up in the kernel's tables too)
// must be a present 4 KiB mapping of a frame of the domain's own, and takes
// the same seg_desc type as a GDT page (every descriptor checked by
// check_descriptor; no writable mapping of it may exist, nor be made while it
// is in use). Anything else refuses the LDT with -EINVAL and leaves the old
// one (Xen would accept it and fault on use). The frames are released when
// the LDT changes and when the domain goes. The CPU uses a copy of the LDT in
// hypervisor memory (platform::load_guest_ldt), kept in step by
// update_descriptor, with a limit of exactly its entries; so a guest that
// changes the mapping at the LDT's address keeps the frames it had until it
// sets the LDT again.

#include <cstdint>

#include <core/domain.hpp>

namespace core {

constexpr unsigned kGdtMaxFrames = 14;
constexpr unsigned kGdtMaxEntries = kGdtMaxFrames * 512;   // selectors below 0xe000

struct MmCtx;

constexpr unsigned kLdtMaxEntries = 8192;
constexpr unsigned kLdtMaxFrames = kLdtMaxEntries / 512;

// Checks (and fixes up, as Xen does) one descriptor; false: refused. A
// call gate's second half (type 0, not present) is fine on its own.
[[nodiscard]] bool check_descriptor(uint64_t& desc);

// Validates a frame as a page of descriptors (every one, fixed up in place).
[[nodiscard]] bool validate_descriptor_page(Mfn m);

// set_gdt(frames, entries) and update_descriptor(machine address, descriptor).
int64_t hc_set_gdt(Vcpu& v, Regs& r);
int64_t hc_update_descriptor(Vcpu& v, Regs& r);

// MMUEXT_SET_LDT for the vCPU of `c` (its own domain's frames, within its
// budget): `nr_ents` descriptors at `linear_addr` (ignored when nr_ents is 0).
// 0, -EINVAL (not page aligned, not a guest address, more than 8192 entries,
// a page not mapped by its kernel tables or not usable as a descriptor page),
// or kRestart (nothing changed: continue the hypercall).
[[nodiscard]] long set_ldt(MmCtx& c, uint64_t linear_addr, uint64_t nr_ents);

// Releases the vCPU's descriptor tables, GDT and LDT, when the domain goes.
void gdt_release(Vcpu& v);
// Releases its LDT only (it has none afterwards).
void ldt_release(Vcpu& v);

// Whether `sel` (RPL 3) names, in the vCPU's GDT or LDT or among the
// hypervisor's flat ones, a present DPL-3 code segment usable as CS (64-bit,
// or 32-bit compatibility mode) or, for `data`, a writable data segment usable
// as SS.
bool guest_selector_ok(const Vcpu& v, uint16_t sel, bool code);

// The base of the data segment `sel` names in its GDT or LDT (for a %gs
// selector load), or 0.
uint64_t guest_selector_base(const Vcpu& v, uint16_t sel);

}  // namespace core
