#pragma once
// Grant tables, Xen v1 and v2. A domain grants another access to one of its
// frames by filling an entry of its grant table (frames it got with
// setup_table and maps itself); the grantee maps or copies it by (granter,
// reference). Beyond the entry's own checks, map and copy of another
// domain's grant need a Grant capability naming the granter; a domain's own
// grants (granter == caller) need none, as its own memory raises no
// capability question. A mapped frame holds references (and a writable type
// reference for a writable mapping), so the granter can neither give it back
// nor make it a page table until it is unmapped. Grant PTEs carry kGrantPte,
// which guests cannot set, and are changed only by map/unmap.
//
// Layouts (GNTTABOP_set_version): v1 entries carry their own in-use flags
// (GTF_reading/GTF_writing); v2 entries are 16 bytes (full page, sub-page,
// transitive) and their in-use flags live in separate status frames. The
// hypervisor writes both kinds of frame itself, so it holds one general and
// one `writable` type reference on each for as long as it is part of the
// table: none can become a page table or descriptor page, and none can be
// given back. Sub-page grants may only be copied (never mapped); transitive
// grants are refused (as Xen does with transitive grants switched off).
//
// GNTMAP_device_map: no IOMMU yet, so, as Xen PV without one, the "bus
// address" is the frame's machine address. A device mapping holds the same
// references a host mapping does, keeps the grant in use, and goes only by
// unmap_grant_ref with that bus address (or with the domain).

#include <cstdint>

#include <abi/grant_table.hpp>
#include <core/frame_table.hpp>

namespace core {

struct Domain;

constexpr unsigned kMaxGrantFrames = 4;               // 2048 v1 entries, 1024 v2 entries
// Maptrack entries come in chunks allocated as handles are first used
// (Domain::maptrack_dir): 63 entries of 32 bytes fill a 2032-byte object, and
// the directory of 254 chunk pointers is another (allocated at the first
// mapping). A back-end serving thousands of front-ends maps a ring or two of
// each: 16,002 mappings a domain may hold.
constexpr unsigned kMaptrackChunk = 63;
constexpr unsigned kMaptrackChunks = 254;
constexpr unsigned kMaxMaptrack = kMaptrackChunk * kMaptrackChunks;
constexpr uint64_t kGrantPte = 1ull << 62;            // software bit: a grant mapping

// Status frames a v2 table of `grant_frames` frames needs.
constexpr unsigned gnttab_status_frames_for(unsigned grant_frames) {
    return unsigned((grant_frames * abi::kGrantEntriesV2PerPage + abi::kGrantStatusPerPage - 1) /
                    abi::kGrantStatusPerPage);
}
constexpr unsigned kMaxStatusFrames = gnttab_status_frames_for(kMaxGrantFrames);

// One mapping of a grant. `used` iff it holds a host part, a device part or
// both; each part holds one general reference on `frame`, plus a `writable`
// type reference if `writable`.
struct Maptrack {
    bool used = false;
    bool writable = false;
    uint16_t granter = 0;
    uint32_t ref = 0;
    Mfn frame = 0;
    Mfn l1 = 0;               // where the PTE is (host part)
    uint16_t index = 0;
    bool host = false;        // a PTE at (l1, index)
    bool device = false;      // GNTMAP_device_map: no PTE, the grant held in use
};
static_assert(sizeof(Maptrack) == 32);

struct Budget;

// Taking a domain apart (core/domain.hpp), as much as `budget` allows; true
// when done. `cursor` is the step's own (start it at 0).
//  - gnttab_release_held: every grant d maps (its own included);
//  - gnttab_release_given: every mapping any other domain holds of d's
//    grants, whatever state that domain is in (running, stopped, dying),
//    PTE cleared and references dropped, so none outlives d's frames; then
//    the references the hypervisor holds on d's table and status frames.
[[nodiscard]] bool gnttab_release_held(Domain& d, uint64_t& cursor, Budget& budget);
[[nodiscard]] bool gnttab_release_given(Domain& d, uint64_t& cursor, Budget& budget);
// Writes entry `ref` of d's table as Xen's builder seeds the reserved ones
// (allocating the table's frames if d has not that many yet), in the layout
// of d's version. `frame` must be d's own; an entry in use is not touched.
// 0 or a negative errno.
long gnttab_seed(Domain& d, uint32_t ref, uint16_t flags, uint16_t domid, Mfn frame);
// How many mappings of d's grants other domains hold now (not d's own).
unsigned gnttab_mapped_by_others(const Domain& d);

}  // namespace core
