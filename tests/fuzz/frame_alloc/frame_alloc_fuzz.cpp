// Fuzz the frame allocator: input bytes drive add_free/alloc/alloc_low/free/
// claim on a small frame space split into a low and a high zone at an
// input-chosen frame, checked against a per-frame reference model. Every
// result, error code and counter is predicted from the model; any mismatch or
// broken invariant traps.

#include "../input.hpp"

#include <core/frame_alloc.hpp>

#include <cstddef>
#include <cstdint>

using core::AllocError;
using core::FrameAllocator;
using core::FrameLink;

namespace {

constexpr uint64_t kFrames = 4096;
constexpr unsigned kMax = FrameAllocator::kMaxOrder;

enum : uint8_t { M_RES, M_FREE, M_ALLOC, M_CLAIM, M_DRAINED };

struct Live {
    uint64_t first;
    unsigned order;
};

FrameLink links[kFrames];
FrameLink fresh_links[kFrames];
uint8_t model[kFrames];
uint8_t head_order[kFrames];  // order + 1 at the head of a live allocation
Live live[kFrames];
size_t nlive;

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

using Input = fuzz::Input;

bool all_free(uint64_t f, uint64_t len) {
    for (uint64_t g = f; g < f + len; ++g)
        if (model[g] != M_FREE) return false;
    return true;
}

// A free aligned run of `size` frames lies wholly in zone [lo, hi)?
bool free_run_in(uint64_t lo, uint64_t hi, uint64_t size) {
    for (uint64_t f = (lo + size - 1) & ~(size - 1); f + size <= hi; f += size)
        if (all_free(f, size)) return true;
    return false;
}

uint64_t count_free(uint64_t lo, uint64_t hi) {
    uint64_t c = 0;
    for (uint64_t f = lo; f < hi; ++f) c += model[f] == M_FREE;
    return c;
}

void set_model(uint64_t f, uint64_t len, uint8_t state) {
    for (uint64_t g = f; g < f + len; ++g) model[g] = state;
}

void forget_live(uint64_t first) {
    for (size_t i = 0; i < nlive; ++i)
        if (live[i].first == first) {
            live[i] = live[--nlive];
            return;
        }
    __builtin_trap();
}

// Returns whether the free succeeded (and the model was updated).
bool do_free(FrameAllocator& fa, uint64_t n, uint64_t first, unsigned order) {
    // Predict the outcome, in the order the allocator checks.
    bool ok = false;
    AllocError want{};
    if (order > kMax) want = AllocError::bad_order;
    else if (first >= n) want = AllocError::out_of_range;
    else if (first & ((uint64_t{1} << order) - 1)) want = AllocError::misaligned;
    else if (model[first] == M_RES) want = AllocError::not_ram;
    else if (model[first] == M_FREE) want = AllocError::double_free;
    else if (model[first] == M_CLAIM || head_order[first] == 0) want = AllocError::not_allocated;
    else if (head_order[first] != order + 1) want = AllocError::wrong_order;
    else ok = true;

    auto st = fa.free(first, order);
    CHECK(st.ok() == ok);
    if (!ok) {
        CHECK(st.error() == want);
        return false;
    }
    set_model(first, uint64_t{1} << order, M_FREE);
    head_order[first] = 0;
    forget_live(first);
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in{data, size};
    // Mostly small frame spaces (every O(nframes) check is cheaper), one
    // input in four up to the full 4096 frames (order-12 blocks).
    uint64_t space = in.byte() % 4 == 0 ? kFrames : 512;
    uint64_t n = 1 + in.u16() % space;
    // The zone boundary: the machine's (beyond the space: all frames low),
    // or anywhere in the space, aligned or not.
    uint64_t low_end = in.byte() % 4 == 0 ? FrameAllocator::kLowZoneFrames : in.u16() % (n + 1);
    FrameAllocator fa;
    fa.init(links, n, low_end);
    uint64_t low_top = low_end < n ? low_end : n;
    for (uint64_t f = 0; f < n + 64 && f < kFrames; ++f) {
        model[f] = M_RES;
        head_order[f] = 0;
    }
    nlive = 0;
    uint64_t managed = 0, nfree = 0;

    // The full O(nframes) invariant check runs after every one of the first
    // ops of an input and every 32nd op after that (and at the end), to keep
    // long inputs fast; the counters are checked after every op.
    for (unsigned step = 0; !in.empty(); ++step) {
        unsigned op = in.byte() % 7;
        switch (op) {
        case 0: {  // add_free, possibly overlapping, possibly past the end
            uint64_t first = in.u16() % (n + 64);
            uint64_t count = in.u16() % 1100;
            if (in.byte() == 0xff) count = ~uint64_t{0} - in.byte();  // overflow guard
            uint64_t end = first >= n ? first : (count > n - first ? n : first + count);
            bool ok = true;
            AllocError want{};
            for (uint64_t g = first; g < end; ++g) {
                if (model[g] == M_FREE) { ok = false; want = AllocError::already_free; break; }
                if (model[g] == M_ALLOC) { ok = false; want = AllocError::in_use; break; }
            }
            auto r = fa.add_free(first, count);
            CHECK(r.ok() == ok);
            if (!ok) {
                CHECK(r.error() == want);
                break;
            }
            CHECK(r.value() == (end > first ? end - first : 0));
            for (uint64_t g = first; g < end; ++g) {
                if (model[g] == M_RES) ++managed;
                model[g] = M_FREE;
            }
            nfree += end > first ? end - first : 0;
            break;
        }
        case 1:
        case 2:
        case 6: {  // alloc (6: alloc_low); orders past the frame space and past kMaxOrder too
            bool low_only = op == 6;
            uint8_t b = in.byte();
            unsigned order = b < 240 ? b % 10 : b % 21;
            auto r = low_only ? fa.alloc_low(order) : fa.alloc(order);
            if (order > kMax) {
                CHECK(!r.ok() && r.error() == AllocError::bad_order);
                break;
            }
            uint64_t size = uint64_t{1} << order;
            bool high_had = !low_only && free_run_in(low_top, n, size);
            bool low_had = free_run_in(0, low_top, size);
            if (!r.ok()) {
                CHECK(r.error() == AllocError::out_of_memory);
                // Fully coalesced buddies of a zone fail only if no aligned
                // run of it is free (a run across the boundary is no block).
                CHECK(!high_had && !low_had);
                break;
            }
            uint64_t f = r.value();
            CHECK((f & (size - 1)) == 0 && f + size <= n);
            CHECK(all_free(f, size));
            // Never across the boundary; low frames only when asked for or
            // when the high zone has no such block.
            CHECK(f + size <= low_top || f >= low_top);
            if (f < low_top) CHECK(!high_had);
            else CHECK(!low_only);
            set_model(f, size, M_ALLOC);
            head_order[f] = static_cast<uint8_t>(order + 1);
            live[nlive++] = {f, order};
            nfree -= size;
            break;
        }
        case 3: {  // free a live block
            if (nlive == 0) break;
            Live l = live[in.u16() % nlive];
            CHECK(do_free(fa, n, l.first, l.order));
            nfree += uint64_t{1} << l.order;
            break;
        }
        case 4: {  // free anything: double, misaligned, wrong order, not RAM...
            uint64_t first = in.u16() % (n + 16);
            unsigned order = in.byte() % 21;
            if (do_free(fa, n, first, order)) nfree += uint64_t{1} << order;
            break;
        }
        case 5: {  // claim
            uint64_t first = in.u16() % (n + 16);
            uint64_t count = in.byte() % 2 ? in.byte() % 8 : in.u16() % 600;
            bool ok;
            AllocError want{};
            if (count == 0) ok = true;
            else if (first >= n || count > n - first) ok = false, want = AllocError::out_of_range;
            else if (!all_free(first, count)) ok = false, want = AllocError::not_free;
            else ok = true;
            auto st = fa.claim(first, count);
            CHECK(st.ok() == ok);
            if (!ok) {
                CHECK(st.error() == want);
                break;
            }
            set_model(first, count, M_CLAIM);
            nfree -= count;
            break;
        }
        }
        CHECK(fa.free_frames() == nfree);
        CHECK(fa.total_frames() == managed);
        if (step < 16 || step % 32 == 0)
            CHECK(fa.check_invariants() && fa.free_frames(FrameAllocator::low) == count_free(0, low_top));
    }
    CHECK(fa.check_invariants() && fa.free_frames(FrameAllocator::low) == count_free(0, low_top));

    // The allocator's free set is exactly the model's: drain it frame by
    // frame (each frame must be free in the model, and the count must match),
    // then give the frames back. Cheaper than is_free() on every frame.
    uint64_t drained = 0;
    for (;;) {
        auto r = fa.alloc(0);
        if (!r.ok()) break;
        CHECK(r.value() < n && model[r.value()] == M_FREE);
        model[r.value()] = M_DRAINED;
        ++drained;
    }
    CHECK(drained == nfree && fa.free_frames() == 0);
    for (uint64_t f = 0; f < n; ++f) {
        if (model[f] != M_DRAINED) continue;
        CHECK(fa.free(f, 0).ok());
        model[f] = M_FREE;
    }
    CHECK(fa.free_frames() == nfree && fa.check_invariants());
    CHECK(fa.is_free(n) == false && fa.is_free(~uint64_t{0}) == false);

    // Release everything; the result must be the unique fully coalesced
    // decomposition of the managed frames, i.e. what a fresh allocator given
    // the same frames builds.
    for (size_t i = 0; i < nlive; ++i) CHECK(fa.free(live[i].first, live[i].order).ok());
    nlive = 0;
    FrameAllocator fresh;
    fresh.init(fresh_links, n, low_end);
    for (uint64_t f = 0; f < n;) {
        if (model[f] == M_RES) { ++f; continue; }
        uint64_t e = f;
        while (e < n && model[e] != M_RES) ++e;
        CHECK(fresh.add_free(f, e - f).ok());
        f = e;
    }
    for (uint64_t f = 0; f < n;) {
        if (model[f] != M_CLAIM) { ++f; continue; }
        uint64_t e = f;
        while (e < n && model[e] == M_CLAIM) ++e;
        auto r = fa.add_free(f, e - f);
        CHECK(r.ok() && r.value() == e - f);
        f = e;
    }
    CHECK(fa.free_frames() == managed && fa.total_frames() == managed);
    for (unsigned k = 0; k <= kMax; ++k)
        CHECK(fa.free_blocks(k, FrameAllocator::low) == fresh.free_blocks(k, FrameAllocator::low) &&
              fa.free_blocks(k, FrameAllocator::high) == fresh.free_blocks(k, FrameAllocator::high));
    CHECK(fa.free_frames(FrameAllocator::low) == fresh.free_frames(FrameAllocator::low));
    CHECK(fa.check_invariants() && fresh.check_invariants());
    return 0;
}
