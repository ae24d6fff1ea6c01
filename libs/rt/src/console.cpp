#include <rt/console.hpp>
#include <rt/hypercall.hpp>

#include <base/format.hpp>

namespace rt {

void printf(const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = base::vsnformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    console_write(buf, n < sizeof buf ? n : sizeof buf - 1);
}

}  // namespace rt
