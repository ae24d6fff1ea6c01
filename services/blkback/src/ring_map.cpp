// Front-ends' ring pages (ring_map.hpp).

#include "ring_map.hpp"

#include "frontends.hpp"

#include <rt/gnttab.hpp>
#include <rt/mm.hpp>

namespace blkback {

namespace {

alignas(4096) uint8_t g_window[kMaxFrontends][blk::kMaxRingPages][4096];

uint64_t page_va(unsigned entry, unsigned page) { return rt::ptr(g_window[entry][page]); }

// Our own frame back at `va` (its place in the initial region).
long own_frame_back(uint64_t va) {
    uint64_t pte = (rt::maddr_of(reinterpret_cast<void*>(va)) & rt::kPteAddr) | rt::kPteP | rt::kPteRw | rt::kPteA |
                   rt::kPteD;
    return rt::update_va_mapping(va, pte);
}

void unmap_pages(unsigned entry, const uint32_t* handles, const bool* mapped, unsigned n) {
    abi::GnttabUnmapGrantRef ops[blk::kMaxRingPages] = {};
    unsigned k = 0;
    for (unsigned i = 0; i < n; ++i) {
        if (!mapped[i]) continue;
        ops[k].host_addr = page_va(entry, i);
        ops[k].handle = handles[i];
        ++k;
    }
    // A status other than okay (bad_handle: the hypervisor took the page
    // away already) leaves nothing mapped there either: our frame goes back
    // all the same.
    if (k) (void)rt::gnttab_op(abi::GnttabOp::unmap_grant_ref, ops, k);
    for (unsigned i = 0; i < n; ++i)
        if (mapped[i]) (void)own_frame_back(page_va(entry, i));
}

}  // namespace

void* ring_map(unsigned entry, uint16_t dom, const uint32_t* refs, unsigned n, uint32_t* handles, long* error) {
    if (entry >= kMaxFrontends || n == 0 || n > blk::kMaxRingPages) {
        *error = -22;  // EINVAL
        return nullptr;
    }
    abi::GnttabMapGrantRef ops[blk::kMaxRingPages] = {};
    for (unsigned i = 0; i < n; ++i) {
        ops[i].host_addr = page_va(entry, i);
        ops[i].flags = abi::kGntmapHostMap;
        ops[i].ref = refs[i];
        ops[i].dom = dom;
        ops[i].status = 1;  // no GntStatus: still 1 if the hypervisor never got to it
    }
    long r = rt::gnttab_op(abi::GnttabOp::map_grant_ref, ops, n);
    bool mapped[blk::kMaxRingPages] = {};
    long first_error = r;
    for (unsigned i = 0; i < n; ++i) {
        mapped[i] = ops[i].status == 0;
        handles[i] = ops[i].handle;
        if (first_error == 0 && ops[i].status != 0) first_error = ops[i].status;
    }
    if (first_error != 0) {
        // All or nothing: what did map is unmapped again.
        unmap_pages(entry, handles, mapped, n);
        *error = first_error;
        return nullptr;
    }
    return g_window[entry][0];
}

void ring_unmap(unsigned entry, const uint32_t* handles, unsigned n) {
    if (entry >= kMaxFrontends || n > blk::kMaxRingPages) return;
    bool mapped[blk::kMaxRingPages];
    for (unsigned i = 0; i < n; ++i) mapped[i] = true;
    unmap_pages(entry, handles, mapped, n);
}

bool ring_window_fault(uint64_t va) {
    va &= ~0xFFFull;
    uint64_t base = rt::ptr(g_window);
    if (va < base || va >= base + sizeof g_window) return false;
    return own_frame_back(va) == 0;
}

}  // namespace blkback
