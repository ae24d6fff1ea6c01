// Sets up the IPC benchmark: gives bench_a and bench_b Grant and Event
// capabilities naming each other, then leaves (their copies stay).

#include "common.hpp"

using namespace ipc;

void rt::main() {
    constexpr uint16_t kA = 1, kB = 2;
    long ga = rt::cap_find(abi::CapType::grant, kA), gb = rt::cap_find(abi::CapType::grant, kB);
    long ea = rt::cap_find(abi::CapType::event, kA), eb = rt::cap_find(abi::CapType::event, kB);
    uint32_t all = abi::kCapRightMapRo | abi::kCapRightMapRw | abi::kCapRightCopy;
    long r = rt::cap_install(kA, uint32_t(gb), 0, all) | rt::cap_install(kA, uint32_t(eb), 1, abi::kCapRightBind) |
             rt::cap_install(kB, uint32_t(ga), 0, all) | rt::cap_install(kB, uint32_t(ea), 1, abi::kCapRightBind);
    check(ga >= 0 && gb >= 0 && ea >= 0 && eb >= 0 && r == 0, "ipc_bench.capabilities_installed", "rc %ld", r);
    // `pci=BDF` (the I/O-page-table run): bench_a drives that function too,
    // so that its grant maps also map the frame for its device.
    if (uint64_t bdf = rt::cmdline_number("pci", 0)) {
        long p = rt::cap_find(abi::CapType::pci_device, bdf);
        long rp = p < 0 ? p : rt::cap_install(kA, uint32_t(p), 2, abi::kCapRightUse);
        check(rp == 0, "ipc_bench.pci_installed", "function %#lx: rc %ld", bdf, rp);
    }
}
