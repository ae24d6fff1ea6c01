#pragma once
// The kernel log. Lines go out whole ("moat: ..."), so output from different
// sources never interleaves mid-line.

#include <cstdarg>
#include <cstddef>

namespace core {

void log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void vlog(const char* fmt, va_list ap);

}  // namespace core
