#pragma once
// Moat's own additions to the guest ABI: the cap_op hypercall (a number Xen
// leaves unused, abi::Hypercall::cap_op) and the layouts of the domctl
// hypercall, which keeps Xen's number but has its own, capability-gated
// operations.

#include <cstddef>
#include <cstdint>

#include <abi/types.hpp>

namespace abi {

// ---------------------------------------------------------------------------
// Capabilities as a guest sees them (cap_op inspect). Type and right numbers
// are those of libs/cap (cap::Type, cap::right), part of this ABI.
enum class CapType : uint32_t {
  null = 0, untyped = 1, domain = 2, grant = 3, event = 4, io_ports = 5, irq = 6, mmio = 7,
  pci_device = 8, module = 9, debug_console = 10, trace = 11,   // trace: the kernel's trace buffers (abi/trace.hpp)
};
inline constexpr uint32_t kCapRightControl = 1u << 0;      // Domain: pause, unpause, destroy, info
inline constexpr uint32_t kCapRightBuild = 1u << 1;        // Domain: memory, foreign mappings, vCPU context
inline constexpr uint32_t kCapRightInstallCaps = 1u << 2;  // Domain: place capabilities in its CSpace
inline constexpr uint32_t kCapRightMapRo = 1u << 3;        // Grant
inline constexpr uint32_t kCapRightMapRw = 1u << 4;        // Grant
inline constexpr uint32_t kCapRightCopy = 1u << 5;         // Grant: grant copy
inline constexpr uint32_t kCapRightBind = 1u << 6;         // Event
inline constexpr uint32_t kCapRightUse = 1u << 7;          // every other type

struct MoatCap {
  uint32_t type;    // CapType
  uint32_t rights;
  uint64_t object;  // a domain id, a frame, a port, an IRQ line, ...
  uint64_t object2; // ranges: the count
  uint64_t badge;
};
static_assert(sizeof(MoatCap) == 32);
static_assert(offsetof(MoatCap, object) == 8);
static_assert(offsetof(MoatCap, badge) == 24);

// cap_op(cmd, CapOpArgs*). Slots name the caller's CSpace unless `domain`
// names another domain, for which the caller needs a Domain capability with
// install-caps (copy and mint place the new capability there).
enum class CapOp : uint32_t {
  copy = 0,     // src_slot -> dst_slot of `domain`, rights & mask
  mint = 1,     // copy with a badge
  move = 2,     // within the caller's CSpace
  remove = 3,   // src_slot (of `domain`, with install-caps)
  revoke = 4,   // every capability derived from src_slot, in every CSpace
  inspect = 5,  // src_slot -> cap
  size = 6,     // returns the caller's CSpace size
};

struct CapOpArgs {
  uint32_t src_slot;
  uint32_t dst_slot;
  DomId domain;      // kDomidSelf, or the target domain
  uint16_t pad0;
  uint32_t rights;   // copy/mint: mask
  uint64_t badge;    // mint
  MoatCap cap;       // inspect: out
};
static_assert(sizeof(CapOpArgs) == 56);
static_assert(offsetof(CapOpArgs, domain) == 8);
static_assert(offsetof(CapOpArgs, rights) == 12);
static_assert(offsetof(CapOpArgs, badge) == 16);
static_assert(offsetof(CapOpArgs, cap) == 24);

// ---------------------------------------------------------------------------
// domctl(MoatDomctl*). Every command but create names its domain and needs a
// Domain capability for it with the right shown.
// 2: getinfo gives the name; 3: and moat top's counters (events_sent, ...).
inline constexpr uint32_t kMoatDomctlVersion = 0x4d4f0003;

enum class DomctlCmd : uint32_t {
  create = 0,          // needs an Untyped capability; returns the new domain, paused
  destroy = 1,         // control
  pause = 2,           // control
  unpause = 3,         // control
  getinfo = 4,         // control
  setvcpucontext = 5,  // build: VcpuGuestContext* in `context`
  set_weight = 6,      // control
  module_info = 7,     // needs a Module capability for u.module.index
  module_read = 8,     // needs a Module capability for u.module.index
  set_grant = 9,       // build: writes entry u.grant.ref of the domain's grant table
  physinfo = 10,       // needs an Untyped capability; `domain` unused
  trace = 11,          // abi/trace.hpp: start, read, stop need the Trace capability; mark: anyone
};

// The largest CSpace a domain may have (create's cspace_slots; the first
// domain's): three capabilities for each of 4,096 domains and its own.
inline constexpr uint32_t kMaxCspaceSlots = 16384;

struct DomctlCreate {
  uint64_t max_pages;     // memory limit
  uint32_t vcpus;         // 1 for now
  uint32_t cspace_slots;  // size of its CSpace, 1..kMaxCspaceSlots
  uint32_t weight;        // scheduler share (relative), 0 = default 256
  uint32_t cap_pct;       // scheduler cap, % of a CPU, 0 = none
  // Out: the caller's slots now holding the new domain's root capabilities,
  // with every right: Domain, Grant and Event naming it.
  uint32_t slot_domain, slot_grant, slot_event;
  uint32_t pad;
  char name[24];          // its name (console prefix, logs), NUL-terminated
};
static_assert(sizeof(DomctlCreate) == 64);
static_assert(offsetof(DomctlCreate, name) == 40);

inline constexpr uint32_t kDomainStateRunning = 1, kDomainStateStopped = 3;

struct DomctlInfo {
  uint32_t state;          // kDomainStateRunning, or kDomainStateStopped: shut down
                           // or crashed, waiting for destroy
  uint32_t paused;
  uint32_t shutdown_reason;  // when stopped: abi::ShutdownReason
  uint32_t mapped_grants;    // how many of its grants other domains map now
  uint64_t tot_pages, max_pages;
  uint64_t shared_info_mfn;
  uint64_t cpu_time_ns;    // CPU time received
  uint64_t free_frames;    // machine-wide, for tests of frame accounting
  char name[32];           // its name (as created), NUL-terminated
  // What the domain asked of the hypervisor since it was created (core/
  // domain.hpp says exactly what counts), for `moat top`:
  uint64_t events_sent;       // EVTCHNOP_send calls that succeeded
  uint64_t grant_ops;         // grant map, unmap and copy operations, each of a batch, failed ones too
  uint64_t grant_copy_bytes;  // bytes GNTTABOP_copy copied for it
};
static_assert(sizeof(DomctlInfo) == 112);
static_assert(offsetof(DomctlInfo, events_sent) == 88);

// physinfo: the machine's frames, for whoever may turn memory into domains
// (and for tests of frame accounting).
struct DomctlPhysinfo {
  uint64_t total_frames;   // frames the hypervisor manages (RAM it can hand out)
  uint64_t free_frames;    // free now
  uint64_t held_frames;    // taken apart domains' frames still referenced: never reused (0 unless a bug)
  uint32_t domains;        // domains in existence (running, stopped or being taken apart)
  uint32_t flags;          // kPhysinfo* below
  // Bytes of hypervisor memory held for per-domain state, summed over every
  // domain that exists: each Domain with its vCPU, its event-channel buckets,
  // maptrack chunks, CSpace slots and I/O bitmap (at their allocator size
  // class), and its shared info frame (4 KiB, which the hypervisor allocates
  // beside the domain's own pages).
  uint64_t hv_domain_bytes;
};
static_assert(sizeof(DomctlPhysinfo) == 40);
// DMA remapping is on (an IOMMU, kernel/core/iommu.hpp): each driver domain's
// device reaches only its own frames and what it was granted. Without it a
// device given to a domain can DMA anywhere (Xen's XEN_SYSCTL_PHYSCAP_directio
// says the same of Xen's machine).
constexpr uint32_t kPhysinfoDmaConfined = 1u << 0;

// module_info and module_read: a boot module (its index is the Module
// capability's object).
struct DomctlModule {
  uint32_t index;
  uint32_t pad;
  uint64_t size;          // module_info: out, bytes
  uint64_t offset;        // module_read: from this byte
  uint64_t len;           // module_read: at most this many bytes (<= kModuleReadMax, 64 KiB)
  GuestHandle buf;        // module_read: destination
  char name[24];          // module_info: out, the module string's first word's file name
};
static_assert(sizeof(DomctlModule) == 64);
// Small enough that one read stays well inside a hypercall's work budget.
inline constexpr uint64_t kModuleReadMax = 64u << 10;

// set_grant: what Xen's builder seeds in a new domain's reserved grant
// entries (0 console, 1 xenstore).
struct DomctlGrant {
  uint32_t ref;
  uint16_t flags;         // kGtfPermitAccess [| kGtfReadonly], or 0 to clear
  DomId domid;            // grantee
  uint64_t frame;         // machine frame, owned by the domain being built
};
static_assert(sizeof(DomctlGrant) == 16);

struct MoatDomctl {
  uint32_t version;   // kMoatDomctlVersion
  uint32_t cmd;       // DomctlCmd
  DomId domain;       // target (out for create)
  uint16_t pad[3];
  union {
    DomctlCreate create;
    DomctlInfo info;
    DomctlModule module;
    DomctlGrant grant;
    DomctlPhysinfo physinfo;
    GuestHandle context;   // setvcpucontext: VcpuGuestContext*
    uint32_t weight;
    uint8_t raw[64];
  } u;
};
static_assert(sizeof(MoatDomctl) == 128);
static_assert(offsetof(MoatDomctl, domain) == 8);
static_assert(offsetof(MoatDomctl, u) == 16);

// ---------------------------------------------------------------------------
// physdev_op (Xen's number 33). Xen's own sub-ops that a PV kernel uses on
// itself:
inline constexpr uint32_t kPhysdevSetIopl = 6;              // PhysdevSetIopl*: its virtual IOPL

struct PhysdevSetIopl {
  uint32_t iopl;   // 0..3
};
static_assert(sizeof(PhysdevSetIopl) == 4);

// Moat's own sub-ops for PCI functions a domain holds a PciDevice capability
// for (object: bus << 8 | device << 3 | function). Config space is mediated:
// reads of the function's 256 bytes, writes only to the command register and
// to the device-specific area (0x40 and up) - never to the BARs, so a driver
// domain cannot move its device over memory it does not own.
inline constexpr uint32_t kPhysdevPciInfo = 0x4d500001;     // MoatPciInfo*
inline constexpr uint32_t kPhysdevPciConfigRead = 0x4d500002;  // MoatPciConfig*
inline constexpr uint32_t kPhysdevPciConfigWrite = 0x4d500003; // MoatPciConfig*

struct MoatPciConfig {
  uint32_t bdf;
  uint16_t offset;   // aligned to size
  uint8_t size;      // 1, 2 or 4
  uint8_t pad;
  uint32_t value;    // read: out; write: in
};
static_assert(sizeof(MoatPciConfig) == 12);

struct MoatPciBar {
  uint64_t base;     // I/O port or physical address; 0: none
  uint64_t size;     // bytes (ports for I/O)
  uint32_t is_io;
  uint32_t pad;
};
static_assert(sizeof(MoatPciBar) == 24);

struct MoatPciInfo {
  uint32_t bdf;          // in
  uint16_t vendor, device;
  uint8_t class_code, subclass, prog_if, irq_line;   // irq_line: the IOAPIC input, 0xff: none
  uint32_t pad;
  MoatPciBar bars[6];
};
static_assert(sizeof(MoatPciInfo) == 16 + 6 * 24);

}  // namespace abi
