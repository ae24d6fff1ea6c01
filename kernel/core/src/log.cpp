#include <core/log.hpp>
#include <core/platform.hpp>

#include <base/format.hpp>

namespace core {

void vlog(const char* fmt, va_list ap) {
    // Format the whole line first, then write it in one go.
    char line[512];
    size_t n = base::snformat(line, sizeof line, "moat: ");
    va_list aq;
    va_copy(aq, ap);
    size_t m = base::vsnformat(line + n, sizeof line - n - 1, fmt, aq);
    va_end(aq);
    n += m < sizeof line - n - 1 ? m : sizeof line - n - 2;
    line[n++] = '\n';
    platform::log_write(line, n);
}

void log(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

}  // namespace core
