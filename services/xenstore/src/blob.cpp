#include <xenstore/blob.hpp>

namespace xs {

namespace {

size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

}  // namespace

void BlobPool::place(Arena& a, uint32_t blocks, BlobPool* into) {
    Block* b = a.take<Block>(blocks);
    if (!into) return;
    into->blocks_ = b;
    into->cap_ = blocks;
}

void BlobPool::reset() {
    bump_ = 0;
    free_head_ = kNil;
    free_count_ = 0;
}

uint32_t BlobPool::take() {
    if (free_head_ != kNil) {
        uint32_t b = free_head_;
        free_head_ = blocks_[b].next;
        free_count_--;
        return b;
    }
    return bump_++;
}

Result<BlobRef> BlobPool::store(const char* s, size_t n) { return store2(s, n, nullptr, 0); }

Result<BlobRef> BlobPool::store2(const char* a, size_t an, const char* b, size_t bn) {
    size_t n = an + bn;
    if (n == 0) return kEmptyBlob;
    if (blocks_for(n) > free_blocks()) return Err{Error::nomem};
    BlobRef r{kNil, static_cast<uint32_t>(n)};
    uint32_t* link = &r.head;
    size_t i = 0;
    while (i < n) {
        uint32_t blk = take();
        *link = blk;
        Block& bl = blocks_[blk];
        // A block's bytes come from a, from b, or from both.
        size_t k = 0;
        while (k < kBlobBlockBytes && i < n) {
            const char* src = i < an ? a + i : b + (i - an);
            size_t run = min_size(kBlobBlockBytes - k, (i < an ? an : n) - i);
            __builtin_memcpy(bl.data + k, src, run);
            k += run;
            i += run;
        }
        bl.next = kNil;
        link = &bl.next;
    }
    return r;
}

Status BlobPool::replace(BlobRef& r, const char* s, size_t n) {
    size_t have = blocks_for(r.len), need = blocks_for(n);
    if (need > have && need - have > free_blocks()) return Err{Error::nomem};
    if (n == 0) {
        release(r);
        return {};
    }
    uint32_t* link = &r.head;
    size_t i = 0;
    while (i < n) {
        if (*link == kNil) {
            *link = take();
            blocks_[*link].next = kNil;
        }
        Block& bl = blocks_[*link];
        size_t run = min_size(kBlobBlockBytes, n - i);
        __builtin_memcpy(bl.data, s + i, run);
        i += run;
        link = &bl.next;
    }
    // Blocks past the new end go back.
    BlobRef tail{*link, 0};
    *link = kNil;
    release(tail);
    r.len = static_cast<uint32_t>(n);
    return {};
}

void BlobPool::release(BlobRef& r) {
    uint32_t b = r.head;
    while (b != kNil) {
        uint32_t next = blocks_[b].next;
        blocks_[b].next = free_head_;
        free_head_ = b;
        free_count_++;
        b = next;
    }
    r = kEmptyBlob;
}

void BlobPool::read(BlobRef r, char* out) const {
    uint32_t b = r.head;
    size_t i = 0;
    while (i < r.len) {
        const Block& bl = blocks_[b];
        size_t run = min_size(kBlobBlockBytes, r.len - i);
        __builtin_memcpy(out + i, bl.data, run);
        i += run;
        b = bl.next;
    }
}

bool BlobPool::equals(BlobRef r, const char* s, size_t n) const {
    return r.len == n && starts_with(r, s, n);
}

bool BlobPool::starts_with(BlobRef r, const char* s, size_t n) const {
    if (r.len < n) return false;
    uint32_t b = r.head;
    size_t i = 0;
    while (i < n) {
        const Block& bl = blocks_[b];
        size_t run = min_size(kBlobBlockBytes, n - i);
        if (__builtin_memcmp(bl.data, s + i, run) != 0) return false;
        i += run;
        b = bl.next;
    }
    return true;
}

}  // namespace xs
