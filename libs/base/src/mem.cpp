// The C functions a freestanding compiler may emit calls to (and that Moat's
// own code uses for bulk copies). Hosted builds take them from libc instead.

#include <cstddef>
#include <cstdint>

extern "C" {

void* memcpy(void* __restrict dst, const void* __restrict src, size_t n) {
    // Eight bytes at a time, then the rest: register frames and pages are
    // whole quadwords.
    void* ret = dst;
    size_t q = n >> 3, r = n & 7;
    asm volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(q) : : "memory");
    asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(r) : : "memory");
    return ret;
}

void* memset(void* dst, int c, size_t n) {
    void* ret = dst;
    // Quadwords, then the tail: a page is 512 stores, not 4096 (each
    // iteration of a rep string instruction counts as one under -icount, and
    // zeroing every frame a domain gets is most of building it).
    uint64_t pattern = 0x0101010101010101ull * static_cast<unsigned char>(c);
    size_t q = n / 8, tail = n % 8;
    asm volatile("rep stosq" : "+D"(dst), "+c"(q) : "a"(pattern) : "memory");
    asm volatile("rep stosb" : "+D"(dst), "+c"(tail) : "a"(pattern) : "memory");
    return ret;
}

void* memmove(void* dst, const void* src, size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    auto* s = static_cast<const unsigned char*>(src);
    if (d == s || n == 0) return dst;
    if (d < s || d >= s + n) return memcpy(dst, src, n);
    while (n--) d[n] = s[n];
    return dst;
}

int memcmp(const void* a, const void* b, size_t n) {
    auto* x = static_cast<const unsigned char*>(a);
    auto* y = static_cast<const unsigned char*>(b);
    for (size_t i = 0; i < n; ++i)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char* s) {
    size_t n = 0;
    while (s[n]) ++n;
    return n;
}

int strcmp(const char* a, const char* b) {
    while (*a && *a == *b) { ++a; ++b; }
    return static_cast<unsigned char>(*a) - static_cast<unsigned char>(*b);
}

int strncmp(const char* a, const char* b, size_t n) {
    for (; n; --n, ++a, ++b) {
        if (*a != *b) return static_cast<unsigned char>(*a) - static_cast<unsigned char>(*b);
        if (!*a) return 0;
    }
    return 0;
}

}  // extern "C"
