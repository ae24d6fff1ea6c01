// Holds no IoPorts capability: every port access raises #GP.

#include "common.hpp"

using namespace io;
using rt::check;

void rt::main() {
    check(port_denied(kCom1 + 5), "io.com1_denied_without_capability");
    check(port_denied(0x20), "io.pic_denied");
    check(port_denied(0xF4), "io.debug_exit_denied");
    rt::printf("io_intruder: done, %u failed\n", rt::g_failed_checks);
}
