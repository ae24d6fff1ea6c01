#pragma once
// What a PV guest kernel does that only the hypervisor may, done for it the
// way Xen does (xen/arch/x86/pv/emul-priv-op.c, emul-inv-op.c): the guest
// kernel runs in ring 3, so these instructions fault, and the fault handler
// emulates them against the vCPU's virtual state instead of delivering the
// fault.
//
//  - #GP(0) in guest kernel mode: rdmsr/wrmsr (guest_rdmsr/guest_wrmsr),
//    mov to/from CR0/CR2/CR3/CR4 and DR0-7, clts, wbinvd/invd (ignored),
//    and with a virtual IOPL that allows it (physdev_op set_iopl) cli/sti
//    (the event mask) and port I/O (real only for ports the domain holds an
//    IoPorts capability for, which never fault; any other port reads as all
//    ones and drops writes, as Xen does for a domain without access).
//  - #UD: Xen's forced-emulation prefix (`ud2a; .ascii "xen"`) before
//    `cpuid`, from any mode: the guest's CPUID policy (guest_cpuid).
//
// Anything else, or an emulation that must fail (an MSR the guest may not
// touch, a CR0 write changing more than TS, ...), leaves the fault to be
// delivered as it happened. Every byte fetched is guest memory: decoded by
// core/x86_insn with every length checked.

#include <cstddef>
#include <cstdint>

#include <core/domain.hpp>

namespace core {

// The fault was handled (rip past the instruction) when true.
[[nodiscard]] bool emulate_privileged(Vcpu& v, Regs& r);
[[nodiscard]] bool emulate_forced_cpuid(Vcpu& v, Regs& r);

// The guest's CPUID: the host's leaves with what a PV guest must not use or
// cannot have masked (virtualisation, monitoring, XSAVE/AVX state Moat does not
// switch, superpages, the local APIC, MTRRs, PCID, SMEP/SMAP, FSGSBASE, speculation
// controls), the hypervisor bit set, one logical CPU, and Xen's leaves at
// 0x40000000 ("XenVMMXenVMM", version, hypercall page MSR).
void guest_cpuid(const Domain& d, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

// Model-specific registers as a PV guest sees them: its FS/GS bases, EFER,
// PAT (Xen's fixed value), MISC_ENABLE; everything else faults (#GP), as in Xen
// without msr_relaxed. false: deliver #GP.
[[nodiscard]] bool guest_rdmsr(Vcpu& v, uint32_t msr, uint64_t* value);
[[nodiscard]] bool guest_wrmsr(Vcpu& v, uint32_t msr, uint64_t value);

// CR0 and CR4 as the guest reads them.
uint64_t guest_cr0(const Vcpu& v);
uint64_t guest_cr4(const Vcpu& v);

// Copies up to x86::kMaxInsnLen bytes of guest code at `rip` into `buf`
// through the guest's own mappings, stopping at the first page that cannot be
// read; how many were read (0: none). For the emulator and ptwr.
size_t fetch_guest_insn(uint64_t rip, uint8_t* buf);

// Whether the vCPU's virtual IOPL lets it use port I/O and cli/sti now.
bool iopl_ok(const Vcpu& v);

// Debug registers (set_debugreg, mov to %dr): false if the value is refused
// (a breakpoint on the hypervisor's addresses, reserved bits, ...).
[[nodiscard]] bool set_debugreg(Vcpu& v, unsigned reg, uint64_t value);
[[nodiscard]] bool get_debugreg(const Vcpu& v, unsigned reg, uint64_t* value);

// Xen's PAT MSR value for PV guests (WB, WT, UC-, UC, WC, WP, UC, UC).
constexpr uint64_t kXenPat = 0x0000050100070406ull;

}  // namespace core
