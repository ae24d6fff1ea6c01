#include <base/format.hpp>

#include <cstdint>

namespace base {
namespace {

struct Out {
    PutFn put;
    void* ctx;
    size_t count;

    void emit(const char* s, size_t n) {
        if (n) put(ctx, s, n);
        count += n;
    }
    void pad(char c, long n) {
        char buf[16];
        for (auto& b : buf) b = c;
        while (n > 0) {
            long k = n < 16 ? n : 16;
            emit(buf, static_cast<size_t>(k));
            n -= k;
        }
    }
};

size_t strnlen_(const char* s, size_t max) {
    size_t n = 0;
    while (n < max && s[n]) ++n;
    return n;
}

}  // namespace

size_t vformat(PutFn put, void* ctx, const char* fmt, va_list ap) {
    Out out{put, ctx, 0};
    while (*fmt) {
        const char* lit = fmt;
        while (*fmt && *fmt != '%') ++fmt;
        out.emit(lit, static_cast<size_t>(fmt - lit));
        if (!*fmt) break;
        ++fmt;  // '%'

        bool left = false, zero = false, alt = false;
        for (;; ++fmt) {
            if (*fmt == '-') left = true;
            else if (*fmt == '0') zero = true;
            else if (*fmt == '#') alt = true;
            else break;
        }
        long width = 0;
        if (*fmt == '*') {
            width = va_arg(ap, int);
            if (width < 0) { left = true; width = -width; }
            ++fmt;
        } else {
            while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        }
        long prec = -1;
        if (*fmt == '.') {
            ++fmt;
            prec = 0;
            if (*fmt == '*') { prec = va_arg(ap, int); ++fmt; }
            else while (*fmt >= '0' && *fmt <= '9') prec = prec * 10 + (*fmt++ - '0');
        }
        int len = 0;  // 0 int, 1 long, 2 long long
        for (;; ++fmt) {
            if (*fmt == 'l') ++len;
            else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't') len = 2;
            else if (*fmt == 'h') {}
            else break;
        }

        char conv = *fmt ? *fmt++ : '\0';
        char buf[24];
        const char* s = buf;
        size_t n = 0;
        bool negative = false;
        const char* prefix = "";
        switch (conv) {
        case '%': buf[0] = '%'; n = 1; break;
        case 'c': buf[0] = static_cast<char>(va_arg(ap, int)); n = 1; break;
        case 's':
            s = va_arg(ap, const char*);
            if (!s) s = "(null)";
            n = strnlen_(s, prec < 0 ? SIZE_MAX : static_cast<size_t>(prec));
            zero = false;
            break;
        case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': case 'p': {
            uint64_t v;
            if (conv == 'p') {
                v = reinterpret_cast<uintptr_t>(va_arg(ap, void*));
            } else if (conv == 'd' || conv == 'i') {
                int64_t sv = len == 0 ? va_arg(ap, int) : len == 1 ? va_arg(ap, long) : va_arg(ap, long long);
                negative = sv < 0;
                v = negative ? 0 - static_cast<uint64_t>(sv) : static_cast<uint64_t>(sv);
            } else {
                v = len == 0 ? va_arg(ap, unsigned) : len == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned long long);
            }
            unsigned base = (conv == 'x' || conv == 'X' || conv == 'p') ? 16 : conv == 'o' ? 8 : 10;
            const char* digits = conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
            char* end = buf + sizeof buf;
            char* p = end;
            do { *--p = digits[v % base]; v /= base; } while (v);
            if (conv == 'p' || (alt && (conv == 'x' || conv == 'X'))) prefix = "0x";
            s = p;
            n = static_cast<size_t>(end - p);
            break;
        }
        default:  // Unknown conversion: print it literally.
            buf[0] = '%'; buf[1] = conv; n = conv ? 2 : 1; break;
        }

        if (negative) prefix = "-";
        size_t plen = __builtin_strlen(prefix);
        long fill = width - static_cast<long>(n) - static_cast<long>(plen);
        if (!left && !zero) out.pad(' ', fill);
        out.emit(prefix, plen);
        if (!left && zero) out.pad('0', fill);
        out.emit(s, n);
        if (left) out.pad(' ', fill);
    }
    return out.count;
}

size_t format(PutFn put, void* ctx, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n = vformat(put, ctx, fmt, ap);
    va_end(ap);
    return n;
}

namespace {
struct BufSink {
    char* buf;
    size_t cap;
    size_t used;
};
void buf_put(void* ctx, const char* s, size_t n) {
    auto* b = static_cast<BufSink*>(ctx);
    for (size_t i = 0; i < n; ++i) {
        if (b->used + 1 < b->cap) b->buf[b->used++] = s[i];
    }
}
}  // namespace

size_t vsnformat(char* buf, size_t cap, const char* fmt, va_list ap) {
    BufSink sink{buf, cap, 0};
    size_t n = vformat(buf_put, &sink, fmt, ap);
    if (cap) buf[sink.used] = '\0';
    return n;
}

size_t snformat(char* buf, size_t cap, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n = vsnformat(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

}  // namespace base
