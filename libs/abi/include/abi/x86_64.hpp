#pragma once
// x86-64 specifics of the Xen PV guest ABI: flat selectors, the reserved
// hypervisor range, the trap table, the iret frame, the exception bounce
// frame, and the full vCPU register context.

#include <cstddef>
#include <cstdint>

#include <abi/types.hpp>

namespace abi {

// ---------------------------------------------------------------------------
// Flat segments the hypervisor keeps in the reserved tail of every GDT, so a
// 64-bit PV kernel can run without installing a GDT of its own. Guest kernel
// and user code both run in ring 3, so the kernel and user aliases coincide.
inline constexpr uint16_t kFlatRing3Cs32 = 0xe023;
inline constexpr uint16_t kFlatRing3Cs64 = 0xe033;
inline constexpr uint16_t kFlatRing3Ds32 = 0xe02b;
inline constexpr uint16_t kFlatRing3Ds64 = 0x0000;  // null selector
inline constexpr uint16_t kFlatRing3Ss32 = 0xe02b;
inline constexpr uint16_t kFlatRing3Ss64 = 0xe02b;

inline constexpr uint16_t kFlatKernelCs64 = kFlatRing3Cs64;
inline constexpr uint16_t kFlatKernelCs32 = kFlatRing3Cs32;
inline constexpr uint16_t kFlatKernelCs = kFlatKernelCs64;
inline constexpr uint16_t kFlatKernelDs64 = kFlatRing3Ds64;
inline constexpr uint16_t kFlatKernelDs32 = kFlatRing3Ds32;
inline constexpr uint16_t kFlatKernelDs = kFlatKernelDs64;
inline constexpr uint16_t kFlatKernelSs64 = kFlatRing3Ss64;
inline constexpr uint16_t kFlatKernelSs32 = kFlatRing3Ss32;
inline constexpr uint16_t kFlatKernelSs = kFlatKernelSs64;

inline constexpr uint16_t kFlatUserCs64 = kFlatRing3Cs64;
inline constexpr uint16_t kFlatUserCs32 = kFlatRing3Cs32;
inline constexpr uint16_t kFlatUserCs = kFlatUserCs64;
inline constexpr uint16_t kFlatUserDs64 = kFlatRing3Ds64;
inline constexpr uint16_t kFlatUserDs32 = kFlatRing3Ds32;
inline constexpr uint16_t kFlatUserDs = kFlatUserDs64;
inline constexpr uint16_t kFlatUserSs64 = kFlatRing3Ss64;
inline constexpr uint16_t kFlatUserSs32 = kFlatRing3Ss32;
inline constexpr uint16_t kFlatUserSs = kFlatUserSs64;

// The hypervisor owns GDT pages 14 and 15 (entries 7168..8191); guests may
// only install descriptors below.
inline constexpr uint32_t kFirstReservedGdtPage = 14;
inline constexpr uint32_t kFirstReservedGdtByte = kFirstReservedGdtPage * 4096;
inline constexpr uint32_t kFirstReservedGdtEntry = kFirstReservedGdtByte / 8;
static_assert(kFirstReservedGdtEntry == 7168);
static_assert((kFlatRing3Cs64 >> 3) >= kFirstReservedGdtEntry);

// ---------------------------------------------------------------------------
// Virtual range a 64-bit PV guest must leave to the hypervisor (L4 slots
// 256..271). Guests learn HYPERVISOR_VIRT_START via platform_parameters.
inline constexpr uint64_t kHypervisorVirtStart = 0xFFFF800000000000ull;
inline constexpr uint64_t kHypervisorVirtEnd = 0xFFFF880000000000ull;

// Machine-to-physical table, mapped read-only into every guest at the very
// start of the hypervisor range (L4 slot 256): 8 bytes per machine frame.
inline constexpr uint64_t kMach2PhysVirtStart = 0xFFFF800000000000ull;
inline constexpr uint64_t kMach2PhysVirtEnd = 0xFFFF804000000000ull;
inline constexpr uint64_t kMach2PhysNrEntries =
    (kMach2PhysVirtEnd - kMach2PhysVirtStart) >> 3;
// Xen's own name for the guest-visible read-only M2P mapping; the same
// address as kMach2PhysVirtStart.
inline constexpr uint64_t kRoMptVirtStart = kMach2PhysVirtStart;
inline constexpr uint64_t kRoMptVirtEnd = kMach2PhysVirtEnd;
static_assert(kMach2PhysNrEntries == (1ull << 35));

constexpr uint64_t pfn_to_cr3(uint64_t pfn) { return pfn << 12; }
constexpr uint64_t cr3_to_pfn(uint64_t cr3) { return cr3 >> 12; }

// ---------------------------------------------------------------------------
// One entry of the virtual IDT a guest installs with set_trap_table (the
// list ends at an entry whose address is 0).
struct TrapInfo {
  uint8_t vector;
  uint8_t flags;     // bits 0-1: DPL allowed to raise it with INT n;
                     // bit 2: mask events on entry (interrupt-gate semantics)
  uint16_t cs;
  XenUlong address;
};
static_assert(sizeof(TrapInfo) == 16);
static_assert(offsetof(TrapInfo, vector) == 0);
static_assert(offsetof(TrapInfo, flags) == 1);
static_assert(offsetof(TrapInfo, cs) == 2);
static_assert(offsetof(TrapInfo, address) == 8);

inline constexpr uint8_t kTrapInfoDplMask = 0x3;
inline constexpr uint8_t kTrapInfoMaskEvents = 0x4;

constexpr unsigned trap_info_dpl(const TrapInfo& t) { return t.flags & kTrapInfoDplMask; }
constexpr bool trap_info_masks_events(const TrapInfo& t) {
  return (t.flags & kTrapInfoMaskEvents) != 0;
}
constexpr uint8_t trap_info_flags(unsigned dpl, bool mask_events) {
  return static_cast<uint8_t>((dpl & kTrapInfoDplMask) | (mask_events ? kTrapInfoMaskEvents : 0));
}

// ---------------------------------------------------------------------------
// HYPERVISOR_iret takes no arguments: the frame below sits at the guest
// kernel's %rsp (rax lowest). A saved CS with RPL 0 means "return to guest
// kernel"; RPL 3 means "return to user mode" (the hypervisor switches to the
// user page table and GS base). With kVgcfInSyscall set in flags only rax,
// rip, rflags and rsp are restored (SYSRET-style, rcx/r11/cs/ss discarded).
struct IretContext {
  uint64_t rax;
  uint64_t r11;
  uint64_t rcx;
  uint64_t flags;  // kVgcfInSyscall
  uint64_t rip;
  uint64_t cs;
  uint64_t rflags;
  uint64_t rsp;
  uint64_t ss;
};
static_assert(sizeof(IretContext) == 72);
static_assert(offsetof(IretContext, rax) == 0);
static_assert(offsetof(IretContext, r11) == 8);
static_assert(offsetof(IretContext, rcx) == 16);
static_assert(offsetof(IretContext, flags) == 24);
static_assert(offsetof(IretContext, rip) == 32);
static_assert(offsetof(IretContext, cs) == 40);
static_assert(offsetof(IretContext, rflags) == 48);
static_assert(offsetof(IretContext, rsp) == 56);
static_assert(offsetof(IretContext, ss) == 64);

inline constexpr uint64_t kVgcfInSyscall = 1ull << 8;

// ---------------------------------------------------------------------------
// Exception / event bounce frame, as the hypervisor writes it on the guest
// kernel stack before entering a trap handler or callback (create_bounce_frame
// in Xen's x86_64/entry.S). Lowest address first:
//
//     rcx, r11,
//     [ds, es, fs, gs]     failsafe callback only (selectors, zero-extended)
//     [error code]         vectors that push one (zero-extended to 64 bits)
//     rip, cs, rflags, rsp, ss
//
// Placement: if the guest was in user mode the hypervisor switches it to
// kernel mode and starts from kernel_sp (set with stack_switch); otherwise it
// starts from the interrupted %rsp, and clears CS.RPL in the saved CS so the
// handler can tell a kernel-mode interruption (RPL 0) from a user one (RPL 3).
// The start is rounded down to 16 bytes before anything is written, so the
// ss slot is at (start & ~15) - 8 and the rip slot at (start & ~15) - 40.
// The handler is entered with %rsp pointing at the rcx slot; its own frame
// (rip...ss) looks like a hardware one once it pops rcx and r11.
//
// Saved CS slot: bits 0-15 hold the selector, bits 32-39 the vCPU's
// evtchn_upcall_mask as it was *before* delivery (the hypervisor then sets
// the mask for event upcalls and for traps registered with
// kTrapInfoMaskEvents / kCallbackFlagMaskEvents).
// Saved RFLAGS: the real flags with IF replaced by !saved_upcall_mask (the
// guest's virtual interrupt flag), so a plain iretq-style restore of RFLAGS
// can be mapped back onto the upcall mask by HYPERVISOR_iret.
// After building the frame the hypervisor clears TF, NT, RF, VM and AC in the
// live RFLAGS and resumes the guest at the handler with FLAT_KERNEL_CS/SS.
struct BounceFrame {
  uint64_t rcx;
  uint64_t r11;
  uint64_t rip;
  uint64_t cs;  // selector | (saved_upcall_mask << 32)
  uint64_t rflags;
  uint64_t rsp;
  uint64_t ss;
};
static_assert(sizeof(BounceFrame) == 56);
static_assert(offsetof(BounceFrame, rip) == 16);
static_assert(offsetof(BounceFrame, ss) == 48);

struct BounceFrameErrorCode {
  uint64_t rcx;
  uint64_t r11;
  uint64_t error_code;
  uint64_t rip;
  uint64_t cs;
  uint64_t rflags;
  uint64_t rsp;
  uint64_t ss;
};
static_assert(sizeof(BounceFrameErrorCode) == 64);
static_assert(offsetof(BounceFrameErrorCode, error_code) == 16);
static_assert(offsetof(BounceFrameErrorCode, rip) == 24);

inline constexpr unsigned kBounceCsUpcallMaskShift = 32;
constexpr uint64_t bounce_cs(uint16_t selector, uint8_t saved_upcall_mask) {
  return uint64_t{selector} | (uint64_t{saved_upcall_mask} << kBounceCsUpcallMaskShift);
}
inline constexpr uint64_t kRflagsIf = 1ull << 9;
constexpr uint64_t bounce_rflags(uint64_t rflags, uint8_t saved_upcall_mask) {
  return (rflags & ~kRflagsIf) | (saved_upcall_mask == 0 ? kRflagsIf : 0);
}

// ---------------------------------------------------------------------------
// Per-vCPU arch part of VcpuInfo: the page-fault address of the last #PF
// bounced to the guest (PV guests cannot read the real %cr2).
struct ArchVcpuInfo {
  XenUlong cr2;
  XenUlong pad;
};
static_assert(sizeof(ArchVcpuInfo) == 16);
static_assert(offsetof(ArchVcpuInfo, cr2) == 0);

// Arch part of SharedInfo: how tools find the guest's P2M.
struct ArchSharedInfo {
  XenUlong max_pfn;                     // number of valid P2M entries
  XenPfn pfn_to_mfn_frame_list_list;    // 3-level frame list root (MFN)
  XenUlong nmi_reason;
  // Virtually mapped linear P2M (valid when p2m_cr3 != 0).
  XenUlong p2m_cr3;
  XenUlong p2m_vaddr;
  XenUlong p2m_generation;  // odd while the guest is remapping the list
};
static_assert(sizeof(ArchSharedInfo) == 48);
static_assert(offsetof(ArchSharedInfo, max_pfn) == 0);
static_assert(offsetof(ArchSharedInfo, pfn_to_mfn_frame_list_list) == 8);
static_assert(offsetof(ArchSharedInfo, nmi_reason) == 16);
static_assert(offsetof(ArchSharedInfo, p2m_cr3) == 24);
static_assert(offsetof(ArchSharedInfo, p2m_vaddr) == 32);
static_assert(offsetof(ArchSharedInfo, p2m_generation) == 40);

// ---------------------------------------------------------------------------
// General-purpose register frame as exchanged in VcpuGuestContext. The order
// matches Xen's internal save area; error_code / entry_vector are private to
// the hypervisor.
struct CpuUserRegs {
  uint64_t r15;
  uint64_t r14;
  uint64_t r13;
  uint64_t r12;
  uint64_t rbp;
  uint64_t rbx;
  uint64_t r11;
  uint64_t r10;
  uint64_t r9;
  uint64_t r8;
  uint64_t rax;
  uint64_t rcx;
  uint64_t rdx;
  uint64_t rsi;
  uint64_t rdi;
  uint32_t error_code;
  uint32_t entry_vector;
  uint64_t rip;
  uint16_t cs;
  uint16_t _pad0[1];
  uint8_t saved_upcall_mask;
  uint8_t _pad1[3];
  uint64_t rflags;  // IF == !saved_upcall_mask
  uint64_t rsp;
  uint16_t ss, _pad2[3];
  uint16_t es, _pad3[3];
  uint16_t ds, _pad4[3];
  uint16_t fs, _pad5[3];  // non-zero selector wins over fs_base
  uint16_t gs, _pad6[3];  // non-zero selector wins over gs_base_user
};
static_assert(sizeof(CpuUserRegs) == 200);
static_assert(offsetof(CpuUserRegs, r15) == 0);
static_assert(offsetof(CpuUserRegs, rbp) == 32);
static_assert(offsetof(CpuUserRegs, rbx) == 40);
static_assert(offsetof(CpuUserRegs, r11) == 48);
static_assert(offsetof(CpuUserRegs, r8) == 72);
static_assert(offsetof(CpuUserRegs, rax) == 80);
static_assert(offsetof(CpuUserRegs, rcx) == 88);
static_assert(offsetof(CpuUserRegs, rdx) == 96);
static_assert(offsetof(CpuUserRegs, rsi) == 104);
static_assert(offsetof(CpuUserRegs, rdi) == 112);
static_assert(offsetof(CpuUserRegs, error_code) == 120);
static_assert(offsetof(CpuUserRegs, entry_vector) == 124);
static_assert(offsetof(CpuUserRegs, rip) == 128);
static_assert(offsetof(CpuUserRegs, cs) == 136);
static_assert(offsetof(CpuUserRegs, saved_upcall_mask) == 140);
static_assert(offsetof(CpuUserRegs, rflags) == 144);
static_assert(offsetof(CpuUserRegs, rsp) == 152);
static_assert(offsetof(CpuUserRegs, ss) == 160);
static_assert(offsetof(CpuUserRegs, es) == 168);
static_assert(offsetof(CpuUserRegs, ds) == 176);
static_assert(offsetof(CpuUserRegs, fs) == 184);
static_assert(offsetof(CpuUserRegs, gs) == 192);

// VcpuGuestContext::flags
inline constexpr uint64_t kVgcfI387Valid = 1ull << 0;
inline constexpr uint64_t kVgcfInKernel = 1ull << 2;
inline constexpr uint64_t kVgcfFailsafeDisablesEvents = 1ull << 3;
inline constexpr uint64_t kVgcfSyscallDisablesEvents = 1ull << 4;
inline constexpr uint64_t kVgcfOnline = 1ull << 5;

inline constexpr std::size_t kGuestGdtFrames = 16;
inline constexpr std::size_t kTrapTableEntries = 256;

// Full vCPU state: used by VCPUOP_initialise to start secondary vCPUs.
// On x86-64 the user-mode page table base goes in ctrlreg[1].
struct VcpuGuestContext {
  uint8_t fpu_ctxt[512];  // FXSAVE image; first so it can be 16-aligned
  XenUlong flags;         // kVgcf*
  CpuUserRegs user_regs;
  TrapInfo trap_ctxt[kTrapTableEntries];
  XenUlong ldt_base, ldt_ents;
  XenUlong gdt_frames[kGuestGdtFrames], gdt_ents;
  XenUlong kernel_ss, kernel_sp;  // the guest kernel's stack (stack_switch)
  XenUlong ctrlreg[8];
  XenUlong debugreg[8];
  XenUlong event_callback_eip;
  XenUlong failsafe_callback_eip;
  XenUlong syscall_callback_eip;
  XenUlong vm_assist;  // bitmap of VmAssistType
  uint64_t fs_base;
  uint64_t gs_base_kernel;
  uint64_t gs_base_user;
};
static_assert(sizeof(VcpuGuestContext) == 5168);
static_assert(offsetof(VcpuGuestContext, flags) == 512);
static_assert(offsetof(VcpuGuestContext, user_regs) == 520);
static_assert(offsetof(VcpuGuestContext, trap_ctxt) == 720);
static_assert(offsetof(VcpuGuestContext, ldt_base) == 4816);
static_assert(offsetof(VcpuGuestContext, ldt_ents) == 4824);
static_assert(offsetof(VcpuGuestContext, gdt_frames) == 4832);
static_assert(offsetof(VcpuGuestContext, gdt_ents) == 4960);
static_assert(offsetof(VcpuGuestContext, kernel_ss) == 4968);
static_assert(offsetof(VcpuGuestContext, kernel_sp) == 4976);
static_assert(offsetof(VcpuGuestContext, ctrlreg) == 4984);
static_assert(offsetof(VcpuGuestContext, debugreg) == 5048);
static_assert(offsetof(VcpuGuestContext, event_callback_eip) == 5112);
static_assert(offsetof(VcpuGuestContext, failsafe_callback_eip) == 5120);
static_assert(offsetof(VcpuGuestContext, syscall_callback_eip) == 5128);
static_assert(offsetof(VcpuGuestContext, vm_assist) == 5136);
static_assert(offsetof(VcpuGuestContext, fs_base) == 5144);
static_assert(offsetof(VcpuGuestContext, gs_base_kernel) == 5152);
static_assert(offsetof(VcpuGuestContext, gs_base_user) == 5160);

}  // namespace abi
