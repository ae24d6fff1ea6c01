#pragma once
// Grant tables, versions 1 and 2: how one domain lets another map or copy
// its pages. grant_table_op(cmd, ops, count).

#include <cstddef>
#include <cstdint>

#include <abi/types.hpp>

namespace abi {

// One slot of the granting domain's (shared) v1 grant table.
struct GrantEntryV1 {
  uint16_t flags;  // kGtf*; the type is written last, after domid/frame
  DomId domid;     // domain being granted access
  uint32_t frame;  // frame being granted (or to receive a transfer)
};
static_assert(sizeof(GrantEntryV1) == 8);
static_assert(offsetof(GrantEntryV1, flags) == 0);
static_assert(offsetof(GrantEntryV1, domid) == 2);
static_assert(offsetof(GrantEntryV1, frame) == 4);

inline constexpr std::size_t kGrantEntriesV1PerPage = kPageSize / sizeof(GrantEntryV1);

// Xen reserves the first references for the toolstack (0: console, 1:
// xenstore); set_version keeps them (GNTTAB_NR_RESERVED_ENTRIES).
inline constexpr GrantRef kGrantNrReservedEntries = 8;

// ---- Version 2 (set_version(2)) ----
// The first half of every v2 entry: the same two fields as v1 begins with.
struct GrantEntryHeader {
  uint16_t flags;  // kGtf*; GTF_reading/GTF_writing live in the status frames
  DomId domid;     // domain being granted access
};
static_assert(sizeof(GrantEntryHeader) == 4);

// One slot of a v2 table; which member applies is chosen by hdr.flags.
union GrantEntryV2 {
  GrantEntryHeader hdr;
  struct FullPage {  // permit_access without GTF_sub_page, accept_transfer
    GrantEntryHeader hdr;
    uint32_t pad0;
    uint64_t frame;
  } full_page;
  struct SubPage {   // permit_access with GTF_sub_page: [page_off, page_off + length)
    GrantEntryHeader hdr;
    uint16_t page_off;
    uint16_t length;
    uint64_t frame;
  } sub_page;
  struct Transitive {  // GTF_transitive: grant `gref` of `trans_domid`, passed on
    GrantEntryHeader hdr;
    DomId trans_domid;
    uint16_t pad0;
    GrantRef gref;
  } transitive;
  uint32_t spacer[4];
};
static_assert(sizeof(GrantEntryV2) == 16);
static_assert(offsetof(GrantEntryV2, full_page.frame) == 8);
static_assert(offsetof(GrantEntryV2, sub_page.page_off) == 4);
static_assert(offsetof(GrantEntryV2, sub_page.length) == 6);
static_assert(offsetof(GrantEntryV2, sub_page.frame) == 8);
static_assert(offsetof(GrantEntryV2, transitive.trans_domid) == 4);
static_assert(offsetof(GrantEntryV2, transitive.gref) == 8);

// A v2 entry's GTF_reading/GTF_writing, one word per reference in the
// status frames (grant_status_t).
using GrantStatus = uint16_t;

inline constexpr std::size_t kGrantEntriesV2PerPage = kPageSize / sizeof(GrantEntryV2);
inline constexpr std::size_t kGrantStatusPerPage = kPageSize / sizeof(GrantStatus);

// GrantEntryV1::flags: entry type.
inline constexpr uint16_t kGtfInvalid = 0;
inline constexpr uint16_t kGtfPermitAccess = 1;
inline constexpr uint16_t kGtfAcceptTransfer = 2;
inline constexpr uint16_t kGtfTransitive = 3;  // v2 only
inline constexpr uint16_t kGtfTypeMask = 3;
// Flags for permit_access entries.
inline constexpr uint16_t kGtfReadonly = 1u << 2;  // grantee may only read
inline constexpr uint16_t kGtfReading = 1u << 3;   // set by hypervisor while mapped/copied
inline constexpr uint16_t kGtfWriting = 1u << 4;   // set by hypervisor while writable
inline constexpr uint16_t kGtfPwt = 1u << 5;
inline constexpr uint16_t kGtfPcd = 1u << 6;
inline constexpr uint16_t kGtfPat = 1u << 7;
inline constexpr uint16_t kGtfSubPage = 1u << 8;   // v2 only
// Flags for accept_transfer entries.
inline constexpr uint16_t kGtfTransferCommitted = 1u << 2;
inline constexpr uint16_t kGtfTransferCompleted = 1u << 3;

enum class GnttabOp : uint32_t {
  map_grant_ref = 0,
  unmap_grant_ref = 1,
  setup_table = 2,
  dump_table = 3,
  transfer = 4,
  copy = 5,
  query_size = 6,
  unmap_and_replace = 7,
  set_version = 8,
  get_status_frames = 9,
  get_version = 10,
  swap_grant_ref = 11,
  cache_flush = 12,
};

// GnttabMapGrantRef::flags
inline constexpr uint32_t kGntmapDeviceMap = 1u << 0;
inline constexpr uint32_t kGntmapHostMap = 1u << 1;
inline constexpr uint32_t kGntmapReadonly = 1u << 2;
inline constexpr uint32_t kGntmapApplicationMap = 1u << 3;  // user-accessible mapping
inline constexpr uint32_t kGntmapContainsPte = 1u << 4;     // host_addr is a PTE's MA
// Bits 16-31 are copied into guest-available PTE bits
// (XenFeature::gnttab_map_avail_bits).
inline constexpr unsigned kGntmapGuestAvailShift = 16;
inline constexpr uint32_t kGntmapGuestAvailMask = 0xFFFFu << kGntmapGuestAvailShift;

// Per-operation status codes (the hypercall itself returns 0).
enum class GntStatus : int16_t {
  okay = 0,
  general_error = -1,
  bad_domain = -2,
  bad_gntref = -3,
  bad_handle = -4,
  bad_virt_addr = -5,
  bad_dev_addr = -6,
  no_device_space = -7,
  permission_denied = -8,
  bad_page = -9,
  bad_copy_arg = -10,
  address_too_big = -11,
  eagain = -12,
  no_space = -13,
};

struct GnttabMapGrantRef {
  uint64_t host_addr;    // in: VA (or PTE MA with kGntmapContainsPte)
  uint32_t flags;        // in: kGntmap*
  GrantRef ref;          // in
  DomId dom;             // in: granting domain
  int16_t status;        // out: GntStatus
  GrantHandle handle;    // out: for unmap
  uint64_t dev_bus_addr; // out: with kGntmapDeviceMap
};
static_assert(sizeof(GnttabMapGrantRef) == 32);
static_assert(offsetof(GnttabMapGrantRef, host_addr) == 0);
static_assert(offsetof(GnttabMapGrantRef, flags) == 8);
static_assert(offsetof(GnttabMapGrantRef, ref) == 12);
static_assert(offsetof(GnttabMapGrantRef, dom) == 16);
static_assert(offsetof(GnttabMapGrantRef, status) == 18);
static_assert(offsetof(GnttabMapGrantRef, handle) == 20);
static_assert(offsetof(GnttabMapGrantRef, dev_bus_addr) == 24);

struct GnttabUnmapGrantRef {
  uint64_t host_addr;
  uint64_t dev_bus_addr;
  GrantHandle handle;
  int16_t status;  // out
};
static_assert(sizeof(GnttabUnmapGrantRef) == 24);
static_assert(offsetof(GnttabUnmapGrantRef, dev_bus_addr) == 8);
static_assert(offsetof(GnttabUnmapGrantRef, handle) == 16);
static_assert(offsetof(GnttabUnmapGrantRef, status) == 20);

// Ask for the frames of the caller's grant table (PV guests then map them).
struct GnttabSetupTable {
  DomId dom;
  uint32_t nr_frames;
  int16_t status;          // out
  GuestHandle frame_list;  // out: XenPfn array
};
static_assert(sizeof(GnttabSetupTable) == 24);
static_assert(offsetof(GnttabSetupTable, nr_frames) == 4);
static_assert(offsetof(GnttabSetupTable, status) == 8);
static_assert(offsetof(GnttabSetupTable, frame_list) == 16);

struct GnttabDumpTable {
  DomId dom;
  int16_t status;
};
static_assert(sizeof(GnttabDumpTable) == 4);

struct GnttabTransfer {
  XenPfn mfn;
  DomId domid;
  GrantRef ref;
  int16_t status;
};
static_assert(sizeof(GnttabTransfer) == 24);
static_assert(offsetof(GnttabTransfer, domid) == 8);
static_assert(offsetof(GnttabTransfer, ref) == 12);
static_assert(offsetof(GnttabTransfer, status) == 16);

// GnttabCopy::flags: which side is named by a grant reference.
inline constexpr uint16_t kGntcopySourceGref = 1u << 0;
inline constexpr uint16_t kGntcopyDestGref = 1u << 1;

struct GnttabCopyPtr {
  union {
    GrantRef ref;
    XenPfn gmfn;
  } u;
  DomId domid;
  uint16_t offset;
};
static_assert(sizeof(GnttabCopyPtr) == 16);
static_assert(offsetof(GnttabCopyPtr, domid) == 8);
static_assert(offsetof(GnttabCopyPtr, offset) == 10);

struct GnttabCopy {
  GnttabCopyPtr source;
  GnttabCopyPtr dest;
  uint16_t len;
  uint16_t flags;  // kGntcopy*
  int16_t status;  // out
};
static_assert(sizeof(GnttabCopy) == 40);
static_assert(offsetof(GnttabCopy, dest) == 16);
static_assert(offsetof(GnttabCopy, len) == 32);
static_assert(offsetof(GnttabCopy, flags) == 34);
static_assert(offsetof(GnttabCopy, status) == 36);

struct GnttabQuerySize {
  DomId dom;
  uint32_t nr_frames;      // out
  uint32_t max_nr_frames;  // out
  int16_t status;          // out
};
static_assert(sizeof(GnttabQuerySize) == 16);
static_assert(offsetof(GnttabQuerySize, nr_frames) == 4);
static_assert(offsetof(GnttabQuerySize, max_nr_frames) == 8);
static_assert(offsetof(GnttabQuerySize, status) == 12);

struct GnttabSetVersion {
  uint32_t version;  // in: 1 or 2; out: the version in effect
};
static_assert(sizeof(GnttabSetVersion) == 4);

// The caller's v2 status frames (PV guests then map them).
struct GnttabGetStatusFrames {
  uint32_t nr_frames;
  DomId dom;
  int16_t status;          // out
  GuestHandle frame_list;  // out: uint64_t array
};
static_assert(sizeof(GnttabGetStatusFrames) == 16);
static_assert(offsetof(GnttabGetStatusFrames, dom) == 4);
static_assert(offsetof(GnttabGetStatusFrames, status) == 6);
static_assert(offsetof(GnttabGetStatusFrames, frame_list) == 8);

struct GnttabGetVersion {
  DomId dom;
  uint16_t pad;
  uint32_t version;  // out
};
static_assert(sizeof(GnttabGetVersion) == 8);
static_assert(offsetof(GnttabGetVersion, version) == 4);

}  // namespace abi
