#pragma once
// blkif requests as blkback judges them, and the block test pattern.
//
// A virtual disk is `sectors` 512-byte sectors of the device starting at
// device sector `first_sector`, read-only or not (the manifest's VBD
// connection says which). check_request() decides, from the private copy of
// one ring request alone, whether blkback may carry it out and on which
// device sectors; nothing in the request is believed before it is checked.
// An indirect request is judged in two steps: check_indirect() from the
// ring copy (which pages hold its segments), then, once blkback has copied
// those segments into its own memory, check_indirect_segments().

#include <cstddef>
#include <cstdint>

#include <abi/blkif.hpp>
#include <ring/ring.hpp>

namespace blk {

// What blkback offers beyond Xen's basic blkif, and the bounds its
// structures are sized for.
inline constexpr unsigned kMaxIndirectSegments = 32;  // feature-max-indirect-segments (Linux's default)
inline constexpr unsigned kMaxSegments = kMaxIndirectSegments;  // in any request blkback starts
inline constexpr unsigned kMaxIndirectPages =
    (kMaxIndirectSegments + abi::kBlkifSegmentsPerIndirectPage - 1) / abi::kBlkifSegmentsPerIndirectPage;
inline constexpr unsigned kMaxRingPageOrder = 2;  // max-ring-page-order: rings of up to 4 pages
inline constexpr unsigned kMaxRingPages = 1u << kMaxRingPageOrder;
static_assert(kMaxSegments >= abi::kBlkifMaxSegmentsPerRequest && kMaxSegments <= 255);
static_assert(kMaxIndirectPages <= abi::kBlkifMaxIndirectPagesPerRequest);

// The two ends of a blkif ring (32 entries a page, 128 on 4 pages).
using FrontRing = ring::FrontRing<abi::BlkifRequest, abi::BlkifResponse>;
using BackRing = ring::BackRing<abi::BlkifRequest, abi::BlkifResponse>;

struct Disk {
    uint64_t first_sector = 0;  // on the device
    uint64_t sectors = 0;       // how many the front-end sees
    bool read_only = false;
};

// The virtual disk the back-end's nodes describe on a device of `capacity`
// sectors: `sectors` 0 means everything from `first` to the end. False (and
// *out untouched) if the range is empty or does not fit the device.
bool place_disk(uint64_t capacity, uint64_t first, uint64_t sectors, bool read_only, Disk* out);

// What the back-end does for a request it accepted.
enum class Action : uint8_t {
    read,     // device -> segments
    write,    // segments -> device
    flush,    // nothing before it outstanding, then the device's cache flushed
    discard,  // the device forgets the sectors
    none,     // nothing to do (answer OKAY): a discard of 0 sectors
};

// Everything blkback needs to carry a request out, in its own memory: once
// a request is Checked, nothing the front-end writes changes what is done.
struct Checked {
    Action action;
    bool drain;           // wait until this front-end's earlier requests are done
    bool flush_after;     // flush the device cache after the write (barrier, flush with data)
    uint8_t nr_segments;  // 0..11 (0..kMaxSegments indirect), for read/write
    uint32_t nr_sectors;  // total of the segments (read/write), or the discard's length
    uint64_t device_sector;
    // Per segment: the front-end's page, its first sector and count (the
    // page offset is first * 512).
    abi::GrantRef gref[kMaxSegments];
    uint8_t first[kMaxSegments];
    uint8_t count[kMaxSegments];
};

// How the front-end may use the disk beyond read/write.
struct Features {
    bool flush = true;     // FLUSH_DISKCACHE and WRITE_BARRIER
    bool discard = false;  // DISCARD (the device offers it)
    uint64_t max_discard_sectors = 0;  // 0: no limit
    unsigned max_indirect_segments = 0;  // INDIRECT with up to this many (<= kMaxSegments); 0: not offered
};

// Checks `r` against `disk`: returns kBlkifRspOkay and fills *out, or the
// status to answer with (kBlkifRspEopnotsupp for operations we do not do,
// kBlkifRspError for everything malformed, out of range, or a write to a
// read-only disk). Rules:
//   READ/WRITE: 1..11 segments, each first_sect <= last_sect <= 7; the
//     request's sectors within the disk;
//   FLUSH_DISKCACHE/WRITE_BARRIER: 0..11 segments (with data: a write
//     first), only if features.flush;
//   DISCARD (read as BlkifDiscard): only if features.discard and not
//     secure; the range within the disk; at most max_discard_sectors;
//   anything written to a read-only disk: ERROR;
//   INDIRECT: not judged here (check_indirect): EOPNOTSUPP.
int16_t check_request(const abi::BlkifRequest& r, const Disk& disk, const Features& features, Checked* out);

// The operation a response to `r` carries: an indirect request's
// indirect_op (Linux's blkfront refuses a response that says INDIRECT),
// every other request's own.
uint8_t response_operation(const abi::BlkifRequest& r);

// An indirect request, judged from the ring copy: the pages that hold its
// segments (the first nr_pages of indirect_grefs; the rest are ignored).
struct IndirectFetch {
    uint16_t nr_segments;  // 1..features.max_indirect_segments
    uint8_t nr_pages;      // ceil(nr_segments / 512)
    abi::GrantRef gref[kMaxIndirectPages];
};

// Step one of an INDIRECT request (read as BlkifRequestIndirect): returns
// kBlkifRspOkay and fills *out, or the status to answer with:
// EOPNOTSUPP if indirect is not offered (max_indirect_segments 0); ERROR
// for an indirect_op other than READ/WRITE, a WRITE to a read-only disk,
// nr_segments 0 or above what was offered, or a first sector beyond the
// disk.
int16_t check_indirect(const abi::BlkifRequest& r, const Disk& disk, const Features& features, IndirectFetch* out);

// Step two: `segs` is blkback's own copy of the `n` segments the pages held
// (copied once: the front-end may rewrite its pages meanwhile, to no
// effect). The same rules as a READ/WRITE's segments, and n must be the
// request's nr_segments. kBlkifRspOkay and *out, or ERROR.
int16_t check_indirect_segments(const abi::BlkifRequest& r, const abi::BlkifSegment* segs, unsigned n,
                                const Disk& disk, const Features& features, Checked* out);

// The shape of the ring a front-end asks for: 2^order pages, their grant
// references in ring-ref0..ring-ref<2^order - 1> (numbered), or in ring-ref
// alone when the front-end wrote no ring-page-order (Linux's front- and
// back-ends do the same).
struct RingLayout {
    uint8_t order;
    bool numbered;
    unsigned pages() const { return 1u << order; }
};
// From the front-end's ring-page-order node: `present` false if it has
// none, else its value (a node that is not a number: pass ~0). False for an
// order above `max_order` (what we offered).
bool ring_layout(bool present, uint64_t order, unsigned max_order, RingLayout* out);

// ---- The test pattern ---------------------------------------------------

inline constexpr size_t kSectorBytes = 512;

// The 512 bytes that virtual sector `sector` holds in the pattern of `seed`:
// the sector number (8 bytes, little-endian) and the seed (4 bytes) first,
// so a misplaced sector never matches, then bytes derived from both.
void pattern_sector(uint32_t seed, uint64_t sector, uint8_t* out);
// Whether `data` (512 bytes) is that sector; if not, the first byte that
// differs in *offset (may be null).
bool pattern_matches(uint32_t seed, uint64_t sector, const uint8_t* data, size_t* offset = nullptr);

// A running checksum of the bytes of a disk (FNV-1a, 64-bit), the guest's
// and the host's way of saying "the same data".
inline constexpr uint64_t kChecksumStart = 0xcbf29ce484222325ull;
uint64_t checksum(uint64_t running, const uint8_t* data, size_t n);

}  // namespace blk
