#pragma once
// Memory the caller gives an Engine (or anything else sized at start), cut
// into arrays front to back. With a null base it only measures: the same
// sequence of take() calls then says how many bytes the real thing needs.

#include <cstddef>
#include <cstdint>

namespace xs {

class Arena {
public:
    Arena(void* base, size_t bytes) : base_(static_cast<uint8_t*>(base)), cap_(bytes) {}
    // n objects of T, aligned for T; nullptr (and nothing taken) if they do
    // not fit, or when measuring.
    template <class T>
    T* take(size_t n) {
        size_t at = (used_ + alignof(T) - 1) & ~(alignof(T) - 1);
        size_t end = at + n * sizeof(T);
        if (n > (SIZE_MAX - at) / sizeof(T)) return nullptr;
        if (base_ && end > cap_) {
            short_ = true;
            return nullptr;
        }
        used_ = end;
        return base_ ? reinterpret_cast<T*>(base_ + at) : nullptr;
    }
    size_t used() const { return used_; }
    // Some take() did not fit.
    bool short_of_memory() const { return short_; }

private:
    uint8_t* base_;
    size_t cap_;
    size_t used_ = 0;
    bool short_ = false;
};

// The least power of two >= n (n >= 1).
constexpr uint32_t pow2_at_least(uint32_t n) {
    uint32_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

}  // namespace xs
