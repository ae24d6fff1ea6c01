#pragma once
// A fixed set of N pages, known by their index 0..N-1, handed out several
// at a time: blkback's bounce pages, which a request holds from the moment
// it starts until the device has given them back. No heap: the free list is
// an array of indices (a stack, so the pages used last are used again
// first). A request takes all it needs or nothing.

#include <cstdint>

namespace blk {

template <unsigned N>
class PagePool {
    static_assert(N > 0 && N <= 65535, "indices are 16-bit");

public:
    // constexpr: a pool in a domain's static storage is built by the
    // compiler (domains run no constructors).
    constexpr PagePool() { reset(); }

    // Every page free again (only when nothing holds one).
    constexpr void reset() {
        for (unsigned i = 0; i < N; ++i) free_[i] = uint16_t(N - 1 - i);
        nfree_ = N;
    }

    static constexpr unsigned size() { return N; }
    unsigned available() const { return nfree_; }

    // n pages into out[0..n); false (and nothing taken) if fewer are free.
    [[nodiscard]] bool take(unsigned n, uint16_t* out) {
        if (n > nfree_) return false;
        for (unsigned i = 0; i < n; ++i) out[i] = free_[--nfree_];
        return true;
    }

    // Gives back n pages take() handed out. An index out of range, or more
    // pages than the pool has, is ignored rather than corrupting the list.
    void give(unsigned n, const uint16_t* pages) {
        for (unsigned i = 0; i < n && nfree_ < N; ++i)
            if (pages[i] < N) free_[nfree_++] = pages[i];
    }

private:
    uint16_t free_[N] = {};
    unsigned nfree_ = 0;
};

}  // namespace blk
