#include <core/kmem.hpp>

#include <core/frame_table.hpp>
#include <core/log.hpp>
#include <core/memory.hpp>
#include <core/platform.hpp>

namespace core::kmem {

namespace {

constexpr size_t kFrame = 4096;
constexpr size_t kSlabRoom = kFrame - kSlabHeader;
constexpr uint16_t kNoObject = 0xFFFF;

// Size classes: as many objects of a class fit in a slab as its size says,
// sizes chosen so a slab wastes little (multiples of 16, for alignment).
constexpr uint16_t kClasses[] = {64, 128, 256, 400, 496, 576, 800, 1008, 1344, 2032};
constexpr unsigned kNrClasses = sizeof kClasses / sizeof kClasses[0];
static_assert(kClasses[kNrClasses - 1] == kMaxSlabObject);
static_assert(kSlabRoom / kMaxSlabObject == 2);

constexpr unsigned per_slab(unsigned cls) { return unsigned(kSlabRoom / kClasses[cls]); }

struct SlabHeader {
    SlabHeader* next;   // partial list of its class
    SlabHeader* prev;
    Mfn mfn;            // its frame
    uint16_t used;      // live objects in it
    uint16_t free_head; // first free object's index, kNoObject if none
    uint8_t cls;
};
static_assert(sizeof(SlabHeader) <= kSlabHeader);

SlabHeader* g_partial[kNrClasses];
Stats g_stats;

uint8_t* frame_ptr(Mfn m) { return static_cast<uint8_t*>(platform::phys_to_virt(m << 12)); }
Mfn mfn_of(const void* p) {
    return (reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(platform::phys_to_virt(0))) >> 12;
}
SlabHeader* header_of(uint8_t* frame) { return reinterpret_cast<SlabHeader*>(frame + kSlabRoom); }

int class_of(size_t bytes) {
    for (unsigned c = 0; c < kNrClasses; ++c)
        if (bytes <= kClasses[c]) return int(c);
    return -1;
}

unsigned block_order(size_t bytes) {
    unsigned order = 0;
    while ((kFrame << order) < bytes) ++order;
    return order;
}

// 2^order frames of the hypervisor's own, not yet zeroed.
bool take_frames(unsigned order, Mfn* out) {
    auto r = frame_allocator().alloc(order);
    if (!r) return false;
    for (Mfn m = *r; m < *r + (Mfn{1} << order); ++m)
        frame_table()[m] = FrameInfo{kOwnerXen, PageType::none, 0, 0, 0, 0, 0, 0, 0};
    *out = *r;
    g_stats.frames += uint64_t{1} << order;
    return true;
}

void give_frames(Mfn first, unsigned order) {
    for (Mfn m = first; m < first + (Mfn{1} << order); ++m)
        frame_table()[m] = FrameInfo{kOwnerNone, PageType::none, 0, 0, 0, 0, 0, 0, 0};
    if (!frame_allocator().free(first, order))
        log("kmem: frames %#lx (order %u) not returned to the allocator (bookkeeping error)", first, order);
    g_stats.frames -= uint64_t{1} << order;
}

void unlink_partial(SlabHeader* h) {
    (h->prev ? h->prev->next : g_partial[h->cls]) = h->next;
    if (h->next) h->next->prev = h->prev;
    h->next = h->prev = nullptr;
}

void push_partial(SlabHeader* h) {
    h->prev = nullptr;
    h->next = g_partial[h->cls];
    if (h->next) h->next->prev = h;
    g_partial[h->cls] = h;
}

uint16_t& link_of(uint8_t* frame, unsigned cls, unsigned i) {
    return *reinterpret_cast<uint16_t*>(frame + size_t(i) * kClasses[cls]);
}

void* slab_alloc(unsigned cls) {
    SlabHeader* h = g_partial[cls];
    if (!h) {
        Mfn m;
        if (!take_frames(0, &m)) return nullptr;
        uint8_t* f = frame_ptr(m);
        h = header_of(f);
        *h = SlabHeader{nullptr, nullptr, m, 0, 0, uint8_t(cls)};
        for (unsigned i = 0; i < per_slab(cls); ++i)
            link_of(f, cls, i) = i + 1 < per_slab(cls) ? uint16_t(i + 1) : kNoObject;
        push_partial(h);
    }
    uint8_t* f = frame_ptr(h->mfn);
    unsigned i = h->free_head;
    h->free_head = link_of(f, cls, i);
    if (++h->used == per_slab(cls)) unlink_partial(h);
    uint8_t* p = f + size_t(i) * kClasses[cls];
    __builtin_memset(p, 0, kClasses[cls]);
    return p;
}

void slab_free(uint8_t* p, unsigned cls) {
    uint8_t* f = frame_ptr(mfn_of(p));
    SlabHeader* h = header_of(f);
    size_t off = size_t(p - f);
    if (h->cls != cls || off % kClasses[cls] != 0 || off / kClasses[cls] >= per_slab(cls) || h->used == 0) {
        log("kmem: freeing offset %#lx of frame %#lx as %u bytes: not an object of that class (bookkeeping error)",
            uint64_t(off), h->mfn, unsigned(kClasses[cls]));
        return;
    }
    bool was_full = h->used == per_slab(cls);
    link_of(f, cls, unsigned(off / kClasses[cls])) = h->free_head;
    h->free_head = uint16_t(off / kClasses[cls]);
    --h->used;
    if (h->used == 0) {
        if (!was_full) unlink_partial(h);
        give_frames(h->mfn, 0);
    } else if (was_full) {
        push_partial(h);
    }
}

}  // namespace

size_t footprint(size_t bytes) {
    if (bytes == 0) return 0;
    int c = class_of(bytes);
    if (c >= 0) return kClasses[c];
    unsigned order = block_order(bytes);
    return order > FrameAllocator::kMaxOrder ? 0 : kFrame << order;
}

void* alloc(size_t bytes) {
    size_t fp = footprint(bytes);
    if (fp == 0) return nullptr;
    void* p;
    int c = class_of(bytes);
    if (c >= 0) {
        p = slab_alloc(unsigned(c));
    } else {
        Mfn m;
        if (!take_frames(block_order(bytes), &m)) return nullptr;
        p = frame_ptr(m);
        __builtin_memset(p, 0, fp);
    }
    if (!p) return nullptr;
    ++g_stats.objects;
    g_stats.bytes += fp;
    return p;
}

void free(void* p, size_t bytes) {
    if (!p) return;
    size_t fp = footprint(bytes);
    int c = class_of(bytes);
    if (c >= 0) slab_free(static_cast<uint8_t*>(p), unsigned(c));
    else give_frames(mfn_of(p), block_order(bytes));
    --g_stats.objects;
    g_stats.bytes -= fp;
}

Stats stats() { return g_stats; }

bool check_invariants() {
    uint64_t slabs = 0, slab_objects = 0;
    for (unsigned c = 0; c < kNrClasses; ++c) {
        uint64_t steps = 0;
        for (SlabHeader* h = g_partial[c]; h; h = h->next) {
            if (++steps > g_stats.frames) return false;   // a cycle
            if (h->cls != c || h->used == 0 || h->used >= per_slab(c)) return false;
            if (h->next && h->next->prev != h) return false;
            if (frame_table()[h->mfn].owner != kOwnerXen) return false;
            unsigned nfree = 0;
            uint8_t* f = frame_ptr(h->mfn);
            for (uint16_t i = h->free_head; i != kNoObject; i = link_of(f, c, i))
                if (i >= per_slab(c) || ++nfree > per_slab(c)) return false;
            if (nfree != per_slab(c) - h->used) return false;
            ++slabs;
            slab_objects += h->used;
        }
    }
    // Full slabs and blocks are on no list: only the totals can be checked.
    return slabs <= g_stats.frames && slab_objects <= g_stats.objects;
}

#if MOAT_HOSTED
void reset_for_tests() {
    for (auto& p : g_partial) p = nullptr;
    g_stats = Stats{};
}
#endif

}  // namespace core::kmem
