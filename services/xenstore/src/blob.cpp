#include <xenstore/blob.hpp>

namespace xs {

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
        size_t k = 0;
        for (; k < kBlobBlockBytes && i < n; ++k, ++i) bl.data[k] = i < an ? a[i] : b[i - an];
        bl.next = kNil;
        link = &bl.next;
    }
    return r;
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
        for (size_t k = 0; k < kBlobBlockBytes && i < r.len; ++k) out[i++] = bl.data[k];
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
        for (size_t k = 0; k < kBlobBlockBytes && i < n; ++k, ++i)
            if (bl.data[k] != s[i]) return false;
        b = bl.next;
    }
    return true;
}

}  // namespace xs
