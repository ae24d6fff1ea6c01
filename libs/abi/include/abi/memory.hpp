#pragma once
// Page-table and memory-reservation interface: mmu_update, mmuext_op,
// update_va_mapping, memory_op, multicall, and the reserved domain ids.

#include <cstddef>
#include <cstdint>

#include <abi/types.hpp>

namespace abi {

// ---------------------------------------------------------------------------
// Reserved domain ids (anything >= kDomidFirstReserved is not a real domain).
inline constexpr DomId kDomidFirstReserved = 0x7FF0;
inline constexpr DomId kDomidSelf = 0x7FF0;     // the caller
inline constexpr DomId kDomidIo = 0x7FF1;       // I/O memory owner
inline constexpr DomId kDomidXen = 0x7FF2;      // hypervisor-owned pages
inline constexpr DomId kDomidCow = 0x7FF3;      // shared copy-on-write pages
inline constexpr DomId kDomidInvalid = 0x7FF4;  // unknown owner
inline constexpr DomId kDomidIdle = 0x7FFF;

// ---------------------------------------------------------------------------
// mmu_update(reqs, count, done_out, foreigndom): a batch of checked writes.
// The low two bits of ptr select the command; the rest is a machine address.
struct MmuUpdate {
  uint64_t ptr;
  uint64_t val;
};
static_assert(sizeof(MmuUpdate) == 16);
static_assert(offsetof(MmuUpdate, ptr) == 0);
static_assert(offsetof(MmuUpdate, val) == 8);

inline constexpr uint64_t kMmuCmdMask = 0x3;
inline constexpr uint64_t kMmuNormalPtUpdate = 0;    // *ptr = val, validated; ptr = PTE MA
inline constexpr uint64_t kMmuMachphysUpdate = 1;    // M2P[ptr >> 12] = val
inline constexpr uint64_t kMmuPtUpdatePreserveAd = 2;  // as normal, keep A/D bits

constexpr uint64_t mmu_update_cmd(const MmuUpdate& u) { return u.ptr & kMmuCmdMask; }
constexpr uint64_t mmu_update_addr(const MmuUpdate& u) { return u.ptr & ~kMmuCmdMask; }

// foreigndom argument: bits 0-15 the data-page owner, bits 16-31 the
// page-table owner plus one (0 meaning DOMID_SELF).

// ---------------------------------------------------------------------------
// mmuext_op(ops, count, done_out, foreigndom)
enum class MmuextCmd : uint32_t {
  pin_l1_table = 0,
  pin_l2_table = 1,
  pin_l3_table = 2,
  pin_l4_table = 3,
  unpin_table = 4,
  new_baseptr = 5,         // load a pinned L4 as the kernel page table
  tlb_flush_local = 6,
  invlpg_local = 7,
  tlb_flush_multi = 8,     // arg2.vcpumask
  invlpg_multi = 9,        // arg1.linear_addr, arg2.vcpumask
  tlb_flush_all = 10,
  invlpg_all = 11,
  flush_cache = 12,
  set_ldt = 13,            // arg1.linear_addr, arg2.nr_ents
  // 14 is unused.
  new_user_baseptr = 15,   // the L4 used while in user mode
  clear_page = 16,
  copy_page = 17,          // arg1.mfn <- arg2.src_mfn
  flush_cache_global = 18,
  mark_super = 19,
  unmark_super = 20,
};

struct MmuextOp {
  uint32_t cmd;  // MmuextCmd
  union {
    XenPfn mfn;            // pin/unpin, baseptrs, clear/copy page, [un]mark_super
    XenUlong linear_addr;  // invlpg_*, set_ldt
  } arg1;
  union {
    uint32_t nr_ents;      // set_ldt
    GuestHandle vcpumask;  // *_multi: guest pointer to a vCPU bitmap
    XenPfn src_mfn;        // copy_page
  } arg2;
};
static_assert(sizeof(MmuextOp) == 24);
static_assert(offsetof(MmuextOp, cmd) == 0);
static_assert(offsetof(MmuextOp, arg1) == 8);
static_assert(offsetof(MmuextOp, arg2) == 16);

// ---------------------------------------------------------------------------
// update_va_mapping(va, pte, flags): flags choose the TLB flush. With
// kUvmfMulti the rest of flags is a guest pointer to a vCPU bitmap.
inline constexpr uint64_t kUvmfNone = 0;
inline constexpr uint64_t kUvmfTlbFlush = 1;
inline constexpr uint64_t kUvmfInvlpg = 2;
inline constexpr uint64_t kUvmfFlushTypeMask = 3;
inline constexpr uint64_t kUvmfMulti = 0u << 2;
inline constexpr uint64_t kUvmfLocal = 0u << 2;  // multi with a null bitmap
inline constexpr uint64_t kUvmfAll = 1u << 2;

// ---------------------------------------------------------------------------
// multicall(entries, count): a batch of hypercalls; each result lands in
// its entry.
struct MulticallEntry {
  XenUlong op;
  XenUlong result;
  XenUlong args[6];
};
static_assert(sizeof(MulticallEntry) == 64);
static_assert(offsetof(MulticallEntry, op) == 0);
static_assert(offsetof(MulticallEntry, result) == 8);
static_assert(offsetof(MulticallEntry, args) == 16);

// ---------------------------------------------------------------------------
// memory_op(cmd, arg). The low bits of cmd are the sub-op; a continuation
// start index is kept above kMemopExtentShift.
enum class MemoryOp : uint32_t {
  increase_reservation = 0,       // XenMemoryReservation
  decrease_reservation = 1,       // XenMemoryReservation
  maximum_ram_page = 2,
  current_reservation = 3,        // arg: DomId*
  maximum_reservation = 4,        // arg: DomId*
  machphys_mfn_list = 5,          // XenMachphysMfnList
  populate_physmap = 6,           // XenMemoryReservation
  add_to_physmap = 7,             // XenAddToPhysmap
  // 8 is unused.
  memory_map = 9,                 // XenMemoryMap: the guest's pseudo-physical E820
  machine_memory_map = 10,        // XenMemoryMap: the host E820 (dom0)
  exchange = 11,                  // XenMemoryExchange
  machphys_mapping = 12,          // XenMachphysMapping
  set_memory_map = 13,
  maximum_gpfn = 14,
  remove_from_physmap = 15,       // XenRemoveFromPhysmap
  set_pod_target = 16,
  get_pod_target = 17,
  get_sharing_freed_pages = 18,
  get_sharing_shared_pages = 19,
  paging_op = 20,
  access_op = 21,
  sharing_op = 22,
  add_to_physmap_batch = 23,
  claim_pages = 24,
  machphys_compat_mfn_list = 25,
  get_vnumainfo = 26,
  reserved_device_memory_map = 27,
  acquire_resource = 28,
};
inline constexpr unsigned kMemopExtentShift = 6;
inline constexpr uint32_t kMemopCmdMask = (1u << kMemopExtentShift) - 1;

// XenMemoryReservation::mem_flags
inline constexpr uint32_t kXenMemfAddressBitsMask = 0xFF;  // 0 = no limit
constexpr uint32_t xenmemf_node(uint32_t node) { return (node + 1) << 8; }
inline constexpr uint32_t kXenMemfPopulateOnDemand = 1u << 16;
inline constexpr uint32_t kXenMemfExactNodeRequest = 1u << 17;
inline constexpr uint32_t kXenMemfVnode = 1u << 18;

struct XenMemoryReservation {
  GuestHandle extent_start;  // XenPfn array: in and/or out
  XenUlong nr_extents;
  uint32_t extent_order;     // each extent is 2^order pages
  uint32_t mem_flags;        // kXenMemf*
  DomId domid;
};
static_assert(sizeof(XenMemoryReservation) == 32);
static_assert(offsetof(XenMemoryReservation, extent_start) == 0);
static_assert(offsetof(XenMemoryReservation, nr_extents) == 8);
static_assert(offsetof(XenMemoryReservation, extent_order) == 16);
static_assert(offsetof(XenMemoryReservation, mem_flags) == 20);
static_assert(offsetof(XenMemoryReservation, domid) == 24);

struct XenMemoryExchange {
  XenMemoryReservation in;
  XenMemoryReservation out;
  XenUlong nr_exchanged;  // progress, for continuation and partial failure
};
static_assert(sizeof(XenMemoryExchange) == 72);
static_assert(offsetof(XenMemoryExchange, out) == 32);
static_assert(offsetof(XenMemoryExchange, nr_exchanged) == 64);

// The MFNs backing the M2P table, so a guest can map it itself.
struct XenMachphysMfnList {
  uint32_t max_extents;
  GuestHandle extent_start;  // XenPfn array (out)
  uint32_t nr_extents;       // out
};
static_assert(sizeof(XenMachphysMfnList) == 24);
static_assert(offsetof(XenMachphysMfnList, extent_start) == 8);
static_assert(offsetof(XenMachphysMfnList, nr_extents) == 16);

// Where the M2P is mapped and how far it is valid.
struct XenMachphysMapping {
  XenUlong v_start, v_end;
  XenUlong max_mfn;
};
static_assert(sizeof(XenMachphysMapping) == 24);

enum class XenMapSpace : uint32_t {
  shared_info = 0,
  grant_table = 1,
  gmfn = 2,
  gmfn_range = 3,
  gmfn_foreign = 4,
  dev_mmio = 5,
};
// Ask for a grant status frame instead of a shared frame (grant_table space).
inline constexpr XenUlong kXenMapIdxGrantTableStatus = 0x80000000u;

struct XenAddToPhysmap {
  DomId domid;
  uint16_t size;   // gmfn_range only
  uint32_t space;  // XenMapSpace
  XenUlong idx;
  XenPfn gpfn;
};
static_assert(sizeof(XenAddToPhysmap) == 24);
static_assert(offsetof(XenAddToPhysmap, size) == 2);
static_assert(offsetof(XenAddToPhysmap, space) == 4);
static_assert(offsetof(XenAddToPhysmap, idx) == 8);
static_assert(offsetof(XenAddToPhysmap, gpfn) == 16);

struct XenRemoveFromPhysmap {
  DomId domid;
  XenPfn gpfn;
};
static_assert(sizeof(XenRemoveFromPhysmap) == 16);
static_assert(offsetof(XenRemoveFromPhysmap, gpfn) == 8);

// memory_map / machine_memory_map: nr_entries in = buffer capacity, out =
// entries written. The buffer holds E820 entries (20 bytes each, packed:
// u64 addr, u64 size, u32 type).
struct XenMemoryMap {
  uint32_t nr_entries;
  GuestHandle buffer;
};
static_assert(sizeof(XenMemoryMap) == 16);
static_assert(offsetof(XenMemoryMap, buffer) == 8);
inline constexpr std::size_t kE820EntrySize = 20;

}  // namespace abi
