#pragma once
// printf-style formatting into a caller-supplied sink; used by the kernel log,
// the domain runtime's printf and host tests alike.
//
// Conversions: %d %i %u %x %X %o %p %s %c %%, with flags '-' '0' '#', a width
// (number or '*'), a precision for %s ('.N' or '.*'), and length modifiers
// hh h l ll z j t.

#include <cstdarg>
#include <cstddef>

namespace base {

// Receives formatted output in pieces; `n` bytes at `s`, not NUL-terminated.
using PutFn = void (*)(void* ctx, const char* s, size_t n);

size_t vformat(PutFn put, void* ctx, const char* fmt, va_list ap);
size_t format(PutFn put, void* ctx, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

// snprintf: always NUL-terminates when cap > 0; returns the full length.
size_t vsnformat(char* buf, size_t cap, const char* fmt, va_list ap);
size_t snformat(char* buf, size_t cap, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

}  // namespace base
