#include <core/iommu.hpp>
#include <core/log.hpp>
#include <core/memory.hpp>
#include <core/platform.hpp>

namespace core {

namespace {
FrameAllocator g_allocator;
uint64_t g_held;
}

uint64_t held_frames() { return g_held; }

void hold_frame(Mfn mfn) {
    FrameInfo& f = frame_table()[mfn];
    log("frame %#lx of domain %u is still referenced (count %u, type %u count %u) as its domain goes: held back",
        mfn, f.owner, f.count, unsigned(f.type), f.type_count);
    DomId was = f.owner;
    f.owner = kOwnerHeld;
    iommu_frame_changed(mfn, was, true);
    ++g_held;
}

void release_held_frame(Mfn mfn) {
    FrameInfo& f = frame_table()[mfn];
    if (f.owner != kOwnerHeld || f.count != 0 || f.type_count != 0) return;
    --g_held;
    free_domain_frame(mfn);
}

FrameAllocator& frame_allocator() { return g_allocator; }

base::Result<Mfn, AllocError> alloc_domain_frame(DomId owner, unsigned address_bits) {
    // Frames [0, limit) are below 2^address_bits.
    uint64_t limit = address_bits == 0 || address_bits >= 64 ? ~0ull : (1ull << address_bits) >> 12;
    bool low = limit < frame_table().nframes();
    auto r = low ? g_allocator.alloc_low(0) : g_allocator.alloc(0);
    if (!r) return base::Err{r.error()};
    Mfn mfn = *r;
    if (mfn >= limit) {   // a limit under 4 GiB the low zone's frame misses
        if (!g_allocator.free(mfn, 0)) log("frame %#lx: not returned to the allocator (bookkeeping error)", mfn);
        return base::Err{AllocError::out_of_memory};
    }
    // Never hand a guest another guest's (or the hypervisor's) old data.
    // Frames domains gave back were zeroed then (as Xen scrubs on free), so
    // building a domain does not pay for it; the rest are zeroed now.
    FrameInfo& f = frame_table()[mfn];
    if (!(f.flags & kFrameScrubbed)) __builtin_memset(platform::phys_to_virt(mfn << 12), 0, 4096);
    f = FrameInfo{owner, PageType::none, 0, 0, 0, 0, 0, 0, 0};
    return mfn;
}

void free_domain_frame(Mfn mfn) {
    // Out of its domain's devices' reach (and their IOTLB) before it is
    // scrubbed: nothing a device writes afterwards reaches the next owner.
    DomId was = frame_table()[mfn].owner;
    frame_table()[mfn] = FrameInfo{kOwnerNone, PageType::none, 0, 0, 0, 0, 0, 0, 0};
    iommu_frame_changed(mfn, was, true);
    __builtin_memset(platform::phys_to_virt(mfn << 12), 0, 4096);
    frame_table()[mfn].flags = kFrameScrubbed;
    if (!g_allocator.free(mfn, 0)) log("frame %#lx: not returned to the allocator (bookkeeping error)", mfn);
}

}  // namespace core
