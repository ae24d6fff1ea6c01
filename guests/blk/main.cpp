// The block test guest: connects to its first vbd through rt::Blkfront and
// runs the role its command line names (common.hpp).

#include "common.hpp"

#include <rt/events.hpp>
#include <rt/xenbus.hpp>

namespace blkguest {

rt::Blkfront g_disk;
rt::Blkfront& disk() { return g_disk; }

unsigned arg(const char* key, unsigned def) {
    const char* s = reinterpret_cast<const char*>(rt::start_info().cmd_line);
    size_t n = __builtin_strlen(key);
    for (const char* p = s; *p; ++p)
        if ((p == s || p[-1] == ' ') && __builtin_memcmp(p, key, n) == 0 && p[n] == '=') {
            unsigned v = 0;
            for (p += n + 1; *p >= '0' && *p <= '9'; ++p) v = v * 10 + unsigned(*p - '0');
            return v;
        }
    return def;
}

}  // namespace blkguest

void rt::main() {
    using namespace blkguest;
    rt::events_init();
    check(bool(rt::xs_init()), "blk.xenstore_connected");
    if (rt::has_arg("role=hostile")) hostile_test();
    else if (rt::has_arg("role=bench")) bench();
    else pattern_test();
    rt::printf("done, %u failed\n", rt::g_failed_checks);
}
