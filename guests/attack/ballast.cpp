// Not an attacker: keeps the CPU from going idle while the victim measures
// its gaps. Under -icount QEMU counts instructions as time while a CPU runs,
// but while every domain sleeps (the hypervisor halts) it lets guest time
// follow the host's clock, so a busy host could show up as a late timer tick
// of the victim. With this domain always runnable (yielding in a loop, at
// the lowest weight) the CPU never halts and guest time stays instructions.
// Command line: ms=N (guest time; default 3500).

#include "common.hpp"

using namespace attack;

void rt::main() {
    const uint64_t end = rt::now_ns() + rt::cmdline_number("ms", 3500) * kMs;
    uint64_t yields = 0;
    while (rt::now_ns() < end) {
        rt::sched_op(abi::SchedOp::yield);
        ++yields;
    }
    rt::printf("kept the CPU busy: %lu yields\n", yields);
    done();
}
