#pragma once
// blkif requests as blkback judges them, and the block test pattern.
//
// A virtual disk is `sectors` 512-byte sectors of the device starting at
// device sector `first_sector`, read-only or not (the manifest's VBD
// connection says which). check_request() decides, from the private copy of
// one ring request alone, whether blkback may carry it out and on which
// device sectors; nothing in the request is believed before it is checked.

#include <cstddef>
#include <cstdint>

#include <abi/blkif.hpp>
#include <ring/ring.hpp>

namespace blk {

// The two ends of a blkif ring (one page: 32 entries).
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

struct Checked {
    Action action;
    bool drain;           // wait until this front-end's earlier requests are done
    bool flush_after;     // flush the device cache after the write (barrier, flush with data)
    uint8_t nr_segments;  // 0..11, for read/write
    uint32_t nr_sectors;  // total of the segments (read/write), or the discard's length
    uint64_t device_sector;
    // Per segment: its first sector and count (the page offset is first * 512).
    uint8_t first[abi::kBlkifMaxSegmentsPerRequest];
    uint8_t count[abi::kBlkifMaxSegmentsPerRequest];
};

// How the front-end may use the disk beyond read/write.
struct Features {
    bool flush = true;     // FLUSH_DISKCACHE and WRITE_BARRIER
    bool discard = false;  // DISCARD (the device offers it)
    uint64_t max_discard_sectors = 0;  // 0: no limit
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
//   anything written to a read-only disk: ERROR.
int16_t check_request(const abi::BlkifRequest& r, const Disk& disk, const Features& features, Checked* out);

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
