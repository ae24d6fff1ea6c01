#pragma once
// Grant tables, Xen v1. A domain grants another access to one of its frames
// by filling an entry of its grant table (frames it got with setup_table and
// maps itself); the grantee maps or copies it by (granter, reference). Beyond
// the entry's own checks, map and copy need a Grant capability naming the
// granter. A mapped frame holds references (and a writable type reference for
// a writable mapping), so the granter can neither give it back nor make it a
// page table until it is unmapped. Grant PTEs carry kGrantPte, which guests
// cannot set, and are changed only by map/unmap.

#include <cstdint>

#include <core/frame_table.hpp>

namespace core {

struct Domain;

constexpr unsigned kMaxGrantFrames = 4;               // 2048 v1 entries
constexpr unsigned kMaxMaptrack = 256;                // mappings a domain may hold
constexpr uint64_t kGrantPte = 1ull << 62;            // software bit: a grant mapping

struct Maptrack {
    bool used = false;
    bool writable = false;
    uint16_t granter = 0;
    uint32_t ref = 0;
    Mfn frame = 0;
    Mfn l1 = 0;               // where the PTE is
    uint16_t index = 0;
};

struct Budget;

// Taking a domain apart (core/domain.hpp), as much as `budget` allows; true
// when done. `cursor` is the step's own (start it at 0).
//  - gnttab_release_held: every grant of others that d maps;
//  - gnttab_release_given: every mapping any other domain holds of d's
//    grants, whatever state that domain is in (running, stopped, dying),
//    PTE cleared and references dropped, so none outlives d's frames.
[[nodiscard]] bool gnttab_release_held(Domain& d, uint64_t& cursor, Budget& budget);
[[nodiscard]] bool gnttab_release_given(Domain& d, uint64_t& cursor, Budget& budget);
// Writes entry `ref` of d's table as Xen's builder seeds the reserved ones
// (allocating the table's first frame if d has none yet). `frame` must be
// d's own; an entry in use is not touched. 0 or a negative errno.
long gnttab_seed(Domain& d, uint32_t ref, uint16_t flags, uint16_t domid, Mfn frame);
// How many mappings of d's grants other domains hold now.
unsigned gnttab_mapped_by_others(const Domain& d);

}  // namespace core
