// The demo's loner: the manifest connects it to nobody. It writes the same
// kind of XenStore entries a front-end writes (in its own home, where it
// may), then tries what a front-end or back-end would do with every other
// domain: read their ring nodes, write into their directories, map the ring
// reference a front-end grants, bind a port. XenStore refuses the reads and
// writes (permissions), the hypervisor refuses the map and the bind
// (capabilities): the domain id alone gets it nothing.

#include "common.hpp"

#include <rt/pci.hpp>

using namespace demo;

void rt::main() {
    rt::events_init();
    check(bool(rt::xs_init()), "demo.loner_xenstore_connected");
    long self = read_number("domid");
    bool wrote = rt::xs_write("device/ring/0/ring-ref", "8") && rt::xs_write("device/ring/0/event-channel", "3") &&
                 rt::xs_write("device/ring/0/state", "3");
    check(wrote, "demo.loner_writes_its_own_nodes");

    unsigned tried = 0, store_refused = 0, map_refused = 0, bind_tried = 0, bind_refused = 0, got_in = 0;
    char path[96], buf[64];
    unsigned peers = arg("peers", 8);
    for (unsigned d = 0; d < peers; ++d) {
        if (long(d) == self) continue;
        ++tried;
        // Its ring nodes (front-end side), and a write into its back-end directory.
        base::snformat(path, sizeof path, "/local/domain/%u/device/ring/0/ring-ref", d);
        auto r = rt::xs_read(path, buf, sizeof buf);
        base::snformat(path, sizeof path, "/local/domain/%u/backend/ring/%ld/0/state", d, self);
        auto w = rt::xs_write(path, "4");
        bool denied = (!r && (r.error() == rt::XsError::acces || r.error() == rt::XsError::noent)) &&
                      (!w && (w.error() == rt::XsError::acces || w.error() == rt::XsError::noent));
        store_refused += denied;
        // The reference a front-end grants its ring as, and a port. The
        // kernel checks the capability before it looks for the domain or
        // the grant: each is refused for want of one, whichever domain is
        // still there.
        long err = 0;
        void* page = rt::map_grant(uint16_t(d), kRingRef, false, &err);
        if (page) {
            ++got_in;
            (void)rt::unmap_grant(page);
        } else {
            map_refused += err == long(abi::GntStatus::permission_denied) || err == abi::neg(abi::Errno::eperm);
        }
        // Its console and store back-ends it may bind to (its connections):
        // those are not the point here.
        if (rt::cap_find(abi::CapType::event, d) >= 0) continue;
        ++bind_tried;
        long b = rt::bind_interdomain(uint16_t(d), 2);
        if (b > 0) ++got_in;
        else bind_refused += b == abi::neg(abi::Errno::eperm);
    }
    // Nor may it take a device's interrupt (COM1's line is the console's).
    abi::EvtchnBindPirq bp{4, 0, 0};
    long irq = rt::evtchn_op(abi::EvtchnOp::bind_pirq, &bp);
    check(irq == abi::neg(abi::Errno::eperm), "demo.loner_irq_refused", "rc %ld", irq);
    // Nor any PCI function (the NIC and the disk are the driver domains'):
    // not even whether one exists.
    unsigned pci_refused = 0;
    for (uint32_t dev = 0; dev < 32; ++dev) {
        abi::MoatPciInfo info{};
        long r = rt::pci_info(dev << 3, &info);
        pci_refused += r == abi::neg(abi::Errno::eperm);
    }
    check(pci_refused == 32, "demo.loner_pci_refused", "%u of 32 refused", pci_refused);
    check(got_in == 0, "demo.loner_reached_nobody", "%u successes", got_in);
    check(store_refused == tried, "demo.loner_store_refused", "%u of %u refused", store_refused, tried);
    check(map_refused == tried, "demo.loner_grant_map_refused", "%u of %u refused", map_refused, tried);
    check(bind_tried >= 3 && bind_refused == bind_tried, "demo.loner_bind_refused", "%u of %u refused", bind_refused,
          bind_tried);
    rt::printf("done, %u failed\n", rt::g_failed_checks);
}
