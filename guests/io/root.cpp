// Gives io_user the COM1 ports, io_intruder nothing; revokes io_user's copy
// once it has used it.

#include "common.hpp"

using namespace io;
using rt::check;

void rt::main() {
    rt::events_init();
    long com1 = -1;
    for (long i = 0; i < 64 && com1 < 0; ++i) {
        abi::MoatCap c = rt::cap_inspect(uint32_t(i));
        if (c.type == uint32_t(abi::CapType::io_ports) && c.object == kCom1) com1 = i;
    }
    long ev_root = rt::cap_find(abi::CapType::event, kRoot);
    check(com1 >= 0 && ev_root >= 0, "io.root_holds_com1");
    // The port first: io_user binds as soon as it sees its Event capability.
    check(rt::alloc_unbound(kUser) == long(kRootPort), "io.root_port_offered");
    long r = rt::cap_install(kUser, uint32_t(com1), 0, abi::kCapRightUse) |
             rt::cap_install(kUser, uint32_t(ev_root), 1, abi::kCapRightBind);
    check(r == 0, "io.installed_com1_for_user", "rc %ld", r);
    rt::wait_port(kRootPort);   // io_user used the UART
    check(rt::cap_revoke(uint32_t(com1)) == 0, "io.revoked_user_com1");
    rt::notify(kRootPort);
    rt::wait_port(kRootPort);
    rt::printf("io_root: done, %u failed\n", rt::g_failed_checks);
}
