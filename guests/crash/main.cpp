// A domain that takes an exception without having registered any handler.
// The hypervisor must crash it, say why, and carry on with everyone else.

#include <rt/console.hpp>
#include <rt/rt.hpp>

void rt::main() {
    rt::printf("about to execute ud2 with no trap table\n");
    asm volatile("ud2");
    rt::printf("FAIL crash: still running after ud2\n");
}
