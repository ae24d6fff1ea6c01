#pragma once
// A pool of byte strings (paths, values, tokens, queued events) stored as
// chains of fixed-size blocks. Nothing is initialised up front: blocks are
// handed out by a bump index, then recycled through a free list.

#include <xenstore/arena.hpp>
#include <xenstore/config.hpp>
#include <xenstore/error.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

inline constexpr uint32_t kNil = 0xffffffffu;

// A stored string: `len` bytes in a chain starting at `head` (kNil iff len == 0).
struct BlobRef {
    uint32_t head;
    uint32_t len;
};
inline constexpr BlobRef kEmptyBlob{kNil, 0};

class BlobPool {
public:
    // Takes room for `blocks` blocks from `a` (measures only, if into is null).
    static void place(Arena& a, uint32_t blocks, BlobPool* into);
    void reset();
    static size_t blocks_for(size_t len) { return (len + kBlobBlockBytes - 1) / kBlobBlockBytes; }
    size_t capacity() const { return cap_; }
    size_t free_blocks() const { return (cap_ - bump_) + free_count_; }
    size_t used_blocks() const { return cap_ - free_blocks(); }

    // Copies n bytes in; fails with ENOMEM (and stores nothing) when the pool is short.
    [[nodiscard]] Result<BlobRef> store(const char* s, size_t n);
    // Stores a followed by b.
    [[nodiscard]] Result<BlobRef> store2(const char* a, size_t an, const char* b, size_t bn);
    // Makes r hold the n bytes of s, in place: the blocks r has are reused,
    // only the difference is taken or given back (so a string can be
    // rewritten at the same size with the pool full). ENOMEM, r unchanged,
    // if the pool is short of the difference.
    [[nodiscard]] Status replace(BlobRef& r, const char* s, size_t n);
    // Returns the blocks; `r` becomes empty.
    void release(BlobRef& r);
    // Copies the whole string to out (r.len bytes).
    void read(BlobRef r, char* out) const;
    bool equals(BlobRef r, const char* s, size_t n) const;
    // The first n bytes of r equal s (r.len >= n).
    bool starts_with(BlobRef r, const char* s, size_t n) const;

private:
    struct Block {
        uint32_t next;
        char data[kBlobBlockBytes];
    };
    uint32_t take();

    Block* blocks_ = nullptr;  // cap_ of them
    uint32_t cap_ = 0;
    uint32_t bump_;
    uint32_t free_head_;
    uint32_t free_count_;
};

}  // namespace xs
