#pragma once
// Xen's block-device ring protocol (io/blkif.h): the request and response
// entries of a blkif ring (libs/ring carries them), the operations, the
// response statuses and the VDISK_* bits of the back-end's `info` node.
//
// Units: sector numbers and first_sect/last_sect count 512-byte sectors,
// whatever the disk's sector-size says. A segment is one granted page; its
// sectors [first_sect, last_sect] lie inside it (a page holds 8).
//
// Layout: the x86-64 ABI (protocol "x86_64-abi"): id and sector_number are
// 8-byte aligned, so a request has 4 bytes of padding after handle.

#include <cstddef>
#include <cstdint>

#include <abi/io_ring.hpp>
#include <abi/types.hpp>

namespace abi {

using BlkifVdev = uint16_t;
using BlkifSector = uint64_t;

// BlkifRequest::operation.
inline constexpr uint8_t kBlkifOpRead = 0;
inline constexpr uint8_t kBlkifOpWrite = 1;
// All requests before it complete before it, and it is on stable storage
// before any later one starts (feature-barrier).
inline constexpr uint8_t kBlkifOpWriteBarrier = 2;
// The disk's volatile cache written out (feature-flush-cache); may carry no
// segments.
inline constexpr uint8_t kBlkifOpFlushDiskcache = 3;
inline constexpr uint8_t kBlkifOpReserved1 = 4;
// Sectors the front-end no longer needs (feature-discard); a BlkifDiscard.
inline constexpr uint8_t kBlkifOpDiscard = 5;
// A read or write whose segments are listed in granted pages, not in the
// request (feature-max-indirect-segments); a BlkifRequestIndirect. Its
// response carries the indirect_op (READ or WRITE), not this.
inline constexpr uint8_t kBlkifOpIndirect = 6;

inline constexpr unsigned kBlkifMaxSegmentsPerRequest = 11;
// An indirect request names at most this many pages of segments.
inline constexpr unsigned kBlkifMaxIndirectPagesPerRequest = 8;
inline constexpr unsigned kBlkifSectorSize = 512;
inline constexpr unsigned kBlkifSectorsPerPage = 4096 / kBlkifSectorSize;

struct BlkifSegment {
    GrantRef gref;       // the granted page
    uint8_t first_sect;  // first sector of the page used (0-7)
    uint8_t last_sect;   // last one, inclusive (first_sect-7)
};
static_assert(sizeof(BlkifSegment) == 8);
static_assert(offsetof(BlkifSegment, first_sect) == 4);
static_assert(offsetof(BlkifSegment, last_sect) == 5);

struct BlkifRequest {
    uint8_t operation;
    uint8_t nr_segments;
    BlkifVdev handle;  // only in a multi-disk back-end; ours ignores it
    uint64_t id;       // echoed in the response
    BlkifSector sector_number;
    BlkifSegment seg[kBlkifMaxSegmentsPerRequest];
};
static_assert(sizeof(BlkifRequest) == 112);
static_assert(offsetof(BlkifRequest, nr_segments) == 1);
static_assert(offsetof(BlkifRequest, handle) == 2);
static_assert(offsetof(BlkifRequest, id) == 8);
static_assert(offsetof(BlkifRequest, sector_number) == 16);
static_assert(offsetof(BlkifRequest, seg) == 24);

// The same slot read as a discard (operation kBlkifOpDiscard).
inline constexpr uint8_t kBlkifDiscardSecure = 1;  // flag: erase, not just forget
struct BlkifDiscard {
    uint8_t operation;
    uint8_t flag;  // kBlkifDiscardSecure
    BlkifVdev handle;
    uint64_t id;
    BlkifSector sector_number;
    uint64_t nr_sectors;
    uint8_t pad[112 - 32];
};
static_assert(sizeof(BlkifDiscard) == sizeof(BlkifRequest));
static_assert(offsetof(BlkifDiscard, flag) == 1);
static_assert(offsetof(BlkifDiscard, id) == 8);
static_assert(offsetof(BlkifDiscard, sector_number) == 16);
static_assert(offsetof(BlkifDiscard, nr_sectors) == 24);

// The same slot read as an indirect request (operation kBlkifOpIndirect):
// nr_segments segments (BlkifSegment, 512 to a page) fill the first
// ceil(nr_segments / 512) pages of indirect_grefs, in order.
struct BlkifRequestIndirect {
    uint8_t operation;    // kBlkifOpIndirect
    uint8_t indirect_op;  // kBlkifOpRead or kBlkifOpWrite
    uint16_t nr_segments;
    uint32_t pad1;
    uint64_t id;
    BlkifSector sector_number;
    BlkifVdev handle;
    uint16_t pad2;
    GrantRef indirect_grefs[kBlkifMaxIndirectPagesPerRequest];
    uint32_t pad3;
    uint8_t pad[112 - 64];
};
static_assert(sizeof(BlkifRequestIndirect) == sizeof(BlkifRequest));
static_assert(offsetof(BlkifRequestIndirect, indirect_op) == 1);
static_assert(offsetof(BlkifRequestIndirect, nr_segments) == 2);
static_assert(offsetof(BlkifRequestIndirect, id) == 8);
static_assert(offsetof(BlkifRequestIndirect, sector_number) == 16);
static_assert(offsetof(BlkifRequestIndirect, handle) == 24);
static_assert(offsetof(BlkifRequestIndirect, indirect_grefs) == 28);

// Segments in one indirect page.
inline constexpr unsigned kBlkifSegmentsPerIndirectPage = 4096 / sizeof(BlkifSegment);
static_assert(kBlkifSegmentsPerIndirectPage == 512);

struct BlkifResponse {
    uint64_t id;        // the request's
    uint8_t operation;  // the request's
    int16_t status;     // kBlkifRsp*
};
static_assert(sizeof(BlkifResponse) == 16);
static_assert(offsetof(BlkifResponse, operation) == 8);
static_assert(offsetof(BlkifResponse, status) == 10);

// BlkifResponse::status.
inline constexpr int16_t kBlkifRspEopnotsupp = -2;  // operation not supported
inline constexpr int16_t kBlkifRspError = -1;       // refused or failed
inline constexpr int16_t kBlkifRspOkay = 0;

// Bits of the back-end's `info` node.
inline constexpr uint32_t kVdiskCdrom = 1;
inline constexpr uint32_t kVdiskRemovable = 2;
inline constexpr uint32_t kVdiskReadonly = 4;

// One page of blkif ring: 32 entries; a ring of 2^order pages
// (max-ring-page-order, ring-page-order, ring-ref0..N-1): 32 << order, the
// 64-byte header being in the first page only.
static_assert(sring_entries(4096, sizeof(BlkifRequest)) == 32);
static_assert(sring_entries(4096 << 2, sizeof(BlkifRequest)) == 128);
static_assert(sring_entries(4096 << 4, sizeof(BlkifRequest)) == 512);

}  // namespace abi
