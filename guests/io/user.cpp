// Drives COM1 directly through the I/O ports its capability allows.

#include "common.hpp"

using namespace io;
using rt::check;

namespace {
void uart_write(const char* s) {
    for (; *s; ++s) {
        for (unsigned spins = 0; spins < 100000 && !(inb(kCom1 + 5) & 0x20); ++spins) {
        }
        outb(kCom1, static_cast<uint8_t>(*s));
    }
}
}  // namespace

void rt::main() {
    rt::events_init();
    while (rt::cap_inspect(1).type != uint32_t(abi::CapType::event)) rt::sched_op(abi::SchedOp::yield);
    long port = rt::bind_interdomain(kRoot, kRootPort);
    check(port == long(kRootPort), "io.user_bound_to_root", "port %ld", port);
    rt::wait_port(kRootPort);   // a new binding starts pending

    check(!port_denied(kCom1 + 5), "io.com1_allowed_with_capability");
    uart_write("io_user: this line went straight to COM1\n");
    check((inb(kCom1 + 5) & 0x60) != 0, "io.com1_status_readable");
    check(port_denied(0x2F8 + 5), "io.other_ports_still_denied");
    check(port_denied(0x60), "io.keyboard_controller_denied");

    rt::notify(kRootPort);
    rt::wait_port(kRootPort);   // the root revoked it
    check(port_denied(kCom1 + 5), "io.com1_denied_after_revoke");
    rt::notify(kRootPort);
    rt::printf("io_user: done, %u failed\n", rt::g_failed_checks);
}
