#pragma once
// Hypercall numbers, their sub-operation numbers, and the small argument
// structures that belong to the scheduler, version, callback, vm_assist and
// vCPU hypercalls.
//
// x86-64 PV calling convention: %rax = number; %rdi, %rsi, %rdx, %r10, %r8,
// %r9 = arguments 1..6; result in %rax (negative Errno on failure). Guests
// call through the hypercall page: entry N lives at page + N * 32.

#include <cstddef>
#include <cstdint>

#include <abi/types.hpp>

namespace abi {

enum class Hypercall : uint32_t {
  set_trap_table = 0,
  mmu_update = 1,
  set_gdt = 2,
  stack_switch = 3,
  set_callbacks = 4,
  fpu_taskswitch = 5,
  sched_op_compat = 6,  // superseded by sched_op (29)
  platform_op = 7,      // dom0_op in old interface versions
  set_debugreg = 8,
  get_debugreg = 9,
  update_descriptor = 10,
  // 11 is unused.
  memory_op = 12,
  multicall = 13,
  update_va_mapping = 14,
  set_timer_op = 15,
  event_channel_op_compat = 16,  // superseded by event_channel_op (32)
  xen_version = 17,
  console_io = 18,
  physdev_op_compat = 19,  // superseded by physdev_op (33)
  grant_table_op = 20,
  vm_assist = 21,
  update_va_mapping_otherdomain = 22,
  iret = 23,
  vcpu_op = 24,
  set_segment_base = 25,
  mmuext_op = 26,
  xsm_op = 27,
  nmi_op = 28,
  sched_op = 29,
  callback_op = 30,
  xenoprof_op = 31,
  event_channel_op = 32,
  physdev_op = 33,
  hvm_op = 34,
  sysctl = 35,
  domctl = 36,
  kexec_op = 37,
  tmem_op = 38,   // retired in Xen, number stays reserved
  argo_op = 39,   // was xc_reserved_op
  xenpmu_op = 40,
  dm_op = 41,
  hypfs_op = 42,
  // Moat's own extension: capability operations. Xen leaves 43 unassigned
  // (43..47 sit between its common and arch ranges).
  cap_op = 43,
  // Architecture-specific range.
  arch_0 = 48,  // x86: mca
  arch_1 = 49,  // x86: paging_domctl_cont
  arch_2 = 50,
  arch_3 = 51,
  arch_4 = 52,
  arch_5 = 53,
  arch_6 = 54,
  arch_7 = 55,
};

// Hypercall page geometry: one 32-byte stub per hypercall number.
inline constexpr std::size_t kHypercallPageSize = 4096;
inline constexpr std::size_t kHypercallEntrySize = 32;
inline constexpr std::size_t kHypercallPageEntries =
    kHypercallPageSize / kHypercallEntrySize;
// One past the largest number a guest can reach through the page.
inline constexpr uint32_t kHypercallLimit = 56;
static_assert(kHypercallPageEntries == 128);
static_assert(kHypercallLimit <= kHypercallPageEntries);

constexpr std::size_t hypercall_page_offset(Hypercall h) {
  return static_cast<std::size_t>(h) * kHypercallEntrySize;
}

// Name for logs; nullptr for an unassigned number.
constexpr const char* hypercall_name(uint32_t nr) {
  switch (nr) {
    case 0: return "set_trap_table";
    case 1: return "mmu_update";
    case 2: return "set_gdt";
    case 3: return "stack_switch";
    case 4: return "set_callbacks";
    case 5: return "fpu_taskswitch";
    case 6: return "sched_op_compat";
    case 7: return "platform_op";
    case 8: return "set_debugreg";
    case 9: return "get_debugreg";
    case 10: return "update_descriptor";
    case 12: return "memory_op";
    case 13: return "multicall";
    case 14: return "update_va_mapping";
    case 15: return "set_timer_op";
    case 16: return "event_channel_op_compat";
    case 17: return "xen_version";
    case 18: return "console_io";
    case 19: return "physdev_op_compat";
    case 20: return "grant_table_op";
    case 21: return "vm_assist";
    case 22: return "update_va_mapping_otherdomain";
    case 23: return "iret";
    case 24: return "vcpu_op";
    case 25: return "set_segment_base";
    case 26: return "mmuext_op";
    case 27: return "xsm_op";
    case 28: return "nmi_op";
    case 29: return "sched_op";
    case 30: return "callback_op";
    case 31: return "xenoprof_op";
    case 32: return "event_channel_op";
    case 33: return "physdev_op";
    case 34: return "hvm_op";
    case 35: return "sysctl";
    case 36: return "domctl";
    case 37: return "kexec_op";
    case 38: return "tmem_op";
    case 39: return "argo_op";
    case 40: return "xenpmu_op";
    case 41: return "dm_op";
    case 42: return "hypfs_op";
    case 43: return "cap_op";
    case 48: return "arch_0";
    case 49: return "arch_1";
    case 50: return "arch_2";
    case 51: return "arch_3";
    case 52: return "arch_4";
    case 53: return "arch_5";
    case 54: return "arch_6";
    case 55: return "arch_7";
    default: return nullptr;
  }
}

// ---------------------------------------------------------------------------
// console_io(cmd, count, buffer): the emergency/debug console.
enum class ConsoleIo : uint32_t {
  write = 0,
  read = 1,
};

// ---------------------------------------------------------------------------
// sched_op(cmd, arg)
enum class SchedOp : uint32_t {
  yield = 0,
  block = 1,            // atomically unmasks events and waits for one
  shutdown = 2,         // arg: SchedShutdown*
  poll = 3,             // arg: SchedPoll*
  remote_shutdown = 4,  // arg: SchedRemoteShutdown*
  shutdown_code = 5,    // arg: SchedShutdown*; records the code only
  watchdog = 6,         // arg: SchedWatchdog*
  pin_override = 7,     // arg: SchedPinOverride*
};

// Why a domain stopped; read by the toolstack to decide what happens next.
enum class ShutdownReason : uint32_t {
  poweroff = 0,
  reboot = 1,
  suspend = 2,
  crash = 3,
  watchdog = 4,
  soft_reset = 5,
};
inline constexpr uint32_t kShutdownReasonMax = 5;

struct SchedShutdown {
  uint32_t reason;  // ShutdownReason
};
static_assert(sizeof(SchedShutdown) == 4);

struct SchedPoll {
  GuestHandle ports;  // EvtchnPort array
  uint32_t nr_ports;
  uint64_t timeout;   // absolute system time (ns); 0 = no timeout
};
static_assert(sizeof(SchedPoll) == 24);
static_assert(offsetof(SchedPoll, ports) == 0);
static_assert(offsetof(SchedPoll, nr_ports) == 8);
static_assert(offsetof(SchedPoll, timeout) == 16);

struct SchedRemoteShutdown {
  DomId domain_id;
  uint32_t reason;
};
static_assert(sizeof(SchedRemoteShutdown) == 8);
static_assert(offsetof(SchedRemoteShutdown, reason) == 4);

struct SchedWatchdog {
  uint32_t id;       // 0 allocates a new watchdog; result is its id
  uint32_t timeout;  // seconds; 0 destroys the watchdog
};
static_assert(sizeof(SchedWatchdog) == 8);

struct SchedPinOverride {
  int32_t pcpu;
};
static_assert(sizeof(SchedPinOverride) == 4);

// ---------------------------------------------------------------------------
// xen_version(cmd, arg). Every sub-op returns 0 on success except version,
// which returns (major << 16) | minor.
enum class XenVersion : uint32_t {
  version = 0,
  extraversion = 1,         // arg: char[kXenExtraversionLen]
  compile_info = 2,         // arg: XenCompileInfo*
  capabilities = 3,         // arg: char[kXenCapabilitiesLen]
  changeset = 4,            // arg: char[kXenChangesetLen]
  platform_parameters = 5,  // arg: XenPlatformParameters*
  get_features = 6,         // arg: XenFeatureInfo*
  pagesize = 7,             // returns the page size
  guest_handle = 8,         // arg: uint8_t[kXenDomainHandleLen]
  commandline = 9,          // arg: char[kXenCommandlineLen]
  build_id = 10,            // arg: XenBuildId header + buffer
  // Variable-length replacements (XenVarbuf header + buffer), newer Xen.
  extraversion2 = 11,
  capabilities2 = 12,
  changeset2 = 13,
  commandline2 = 14,
};

inline constexpr std::size_t kXenExtraversionLen = 16;
inline constexpr std::size_t kXenCapabilitiesLen = 1024;
inline constexpr std::size_t kXenChangesetLen = 64;
inline constexpr std::size_t kXenCommandlineLen = 1024;
inline constexpr std::size_t kXenDomainHandleLen = 16;

struct XenCompileInfo {
  char compiler[64];
  char compile_by[16];
  char compile_domain[32];
  char compile_date[32];
};
static_assert(sizeof(XenCompileInfo) == 144);
static_assert(offsetof(XenCompileInfo, compile_by) == 64);
static_assert(offsetof(XenCompileInfo, compile_domain) == 80);
static_assert(offsetof(XenCompileInfo, compile_date) == 112);

// Tells the guest where the hypervisor hole starts.
struct XenPlatformParameters {
  XenUlong virt_start;
};
static_assert(sizeof(XenPlatformParameters) == 8);

// One 32-bit word of the XENFEAT_* bitmap (see elfnote.hpp, XenFeature).
struct XenFeatureInfo {
  uint32_t submap_idx;  // in: which word
  uint32_t submap;      // out: its bits
};
static_assert(sizeof(XenFeatureInfo) == 8);
static_assert(offsetof(XenFeatureInfo, submap) == 4);

// Header of the build_id buffer; len bytes of data follow it.
struct XenBuildId {
  uint32_t len;  // in: buffer size; result: bytes written
};
static_assert(sizeof(XenBuildId) == 4);

// Header of the *2 sub-ops' buffers; len bytes of text (no NUL) follow it.
struct XenVarbuf {
  uint32_t len;
};
static_assert(sizeof(XenVarbuf) == 4);

// ---------------------------------------------------------------------------
// set_segment_base(which, base): x86-64 only.
enum class SegBase : uint32_t {
  fs = 0,
  gs_user = 1,
  gs_kernel = 2,
  gs_user_sel = 3,  // loads user %gs from the selector in base[15:0]
};

// ---------------------------------------------------------------------------
// callback_op(cmd, arg) and the older set_callbacks(event, failsafe, syscall).
enum class CallbackOp : uint32_t {
  register_ = 0,  // arg: CallbackRegister*
  unregister = 1, // arg: CallbackUnregister*
};

// Entry points a PV kernel registers with the hypervisor.
enum class CallbackType : uint16_t {
  event = 0,                // event-channel upcall
  failsafe = 1,             // bad segment state on return to guest
  syscall = 2,              // SYSCALL from 64-bit user code
  sysenter_deprecated = 3,  // old 32-bit-hypervisor number
  nmi = 4,
  sysenter = 5,             // SYSENTER from 32-bit user code
  syscall32 = 7,            // SYSCALL from 32-bit user code
};

// Mask events while the callback runs (honoured for failsafe and the syscall
// family; event and NMI callbacks always mask).
inline constexpr uint16_t kCallbackFlagMaskEvents = 1u << 0;

struct CallbackRegister {
  uint16_t type;   // CallbackType
  uint16_t flags;  // kCallbackFlag*
  XenUlong address;
};
static_assert(sizeof(CallbackRegister) == 16);
static_assert(offsetof(CallbackRegister, type) == 0);
static_assert(offsetof(CallbackRegister, flags) == 2);
static_assert(offsetof(CallbackRegister, address) == 8);

struct CallbackUnregister {
  uint16_t type;
  uint16_t _unused;
};
static_assert(sizeof(CallbackUnregister) == 4);

// nmi_op(cmd, arg): legacy NMI callback registration.
enum class NmiOp : uint32_t {
  register_callback = 0,
  unregister_callback = 1,
};

// ---------------------------------------------------------------------------
// vm_assist(cmd, type): opt-in hypervisor behaviours.
enum class VmAssistCmd : uint32_t {
  enable = 0,
  disable = 1,
};

enum class VmAssistType : uint32_t {
  four_gb_segments = 0,         // 32-bit only
  four_gb_segments_notify = 1,  // 32-bit only
  writable_pagetables = 2,      // trap-and-emulate writes to L1 entries
  pae_extended_cr3 = 3,
  architectural_iopl = 4,       // IOPL in guest RFLAGS behaves as on hardware
  runstate_update_flag = 5,     // runstate area carries an update-in-progress bit
  m2p_strict = 32,              // keep the M2P out of user page tables
};

// ---------------------------------------------------------------------------
// vcpu_op(cmd, vcpuid, arg)
enum class VcpuOp : uint32_t {
  initialise = 0,  // arg: VcpuGuestContext*
  up = 1,
  down = 2,
  is_up = 3,
  get_runstate_info = 4,              // arg: VcpuRunstateInfo*
  register_runstate_memory_area = 5,  // arg: VcpuRegisterArea*
  set_periodic_timer = 6,             // arg: VcpuSetPeriodicTimer*
  stop_periodic_timer = 7,
  set_singleshot_timer = 8,           // arg: VcpuSetSingleshotTimer*
  stop_singleshot_timer = 9,
  register_vcpu_info = 10,            // arg: VcpuRegisterVcpuInfo*
  send_nmi = 11,
  get_physid = 12,                    // arg: VcpuGetPhysid*
  register_vcpu_time_memory_area = 13,  // arg: VcpuRegisterArea*
  register_runstate_phys_area = 14,   // arg: VcpuRegisterArea* (guest phys)
  register_vcpu_time_phys_area = 15,  // arg: VcpuRegisterArea* (guest phys)
};

enum class RunstateState : int32_t {
  running = 0,
  runnable = 1,
  blocked = 2,
  offline = 3,
};

// Set in state_entry_time while the hypervisor rewrites the area (only with
// VmAssistType::runstate_update_flag).
inline constexpr uint64_t kRunstateUpdateFlag = 1ull << 63;

struct VcpuRunstateInfo {
  int32_t state;              // RunstateState
  uint64_t state_entry_time;  // system time at the last state change
  uint64_t time[4];           // ns spent in each RunstateState
};
static_assert(sizeof(VcpuRunstateInfo) == 48);
static_assert(offsetof(VcpuRunstateInfo, state_entry_time) == 8);
static_assert(offsetof(VcpuRunstateInfo, time) == 16);

// Where a guest wants runstate/time copies written (virtual or physical
// address depending on the sub-op).
struct VcpuRegisterArea {
  uint64_t addr;
};
static_assert(sizeof(VcpuRegisterArea) == 8);

struct VcpuSetPeriodicTimer {
  uint64_t period_ns;
};
static_assert(sizeof(VcpuSetPeriodicTimer) == 8);

// Fail with -ETIME instead of firing at once when the deadline is past.
inline constexpr uint32_t kVcpuSingleshotFuture = 1u << 0;

struct VcpuSetSingleshotTimer {
  uint64_t timeout_abs_ns;
  uint32_t flags;  // kVcpuSingleshot*
};
static_assert(sizeof(VcpuSetSingleshotTimer) == 16);
static_assert(offsetof(VcpuSetSingleshotTimer, flags) == 8);

// Move a vCPU's VcpuInfo out of the shared page into a guest frame.
struct VcpuRegisterVcpuInfo {
  uint64_t mfn;
  uint32_t offset;  // byte offset within that frame
  uint32_t rsvd;
};
static_assert(sizeof(VcpuRegisterVcpuInfo) == 16);
static_assert(offsetof(VcpuRegisterVcpuInfo, offset) == 8);
static_assert(offsetof(VcpuRegisterVcpuInfo, rsvd) == 12);

struct VcpuGetPhysid {
  uint64_t phys_id;
};
static_assert(sizeof(VcpuGetPhysid) == 8);

}  // namespace abi
