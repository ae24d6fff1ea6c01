// The block test guest: connects to its first vbd through rt::Blkfront and
// runs the role its command line names (common.hpp).

#include "common.hpp"

#include <rt/events.hpp>
#include <rt/xenbus.hpp>

namespace blkguest {

rt::Blkfront g_disk;
rt::Blkfront& disk() { return g_disk; }

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
