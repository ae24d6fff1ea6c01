// physdev_op: Moat's mediated PCI config-space access (abi/moat.hpp). Every
// sub-op needs a PciDevice capability naming the function, checked before
// anything else, so a domain without one learns nothing (not even whether
// the function exists).

#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>
#include <core/iommu.hpp>
#include <core/log.hpp>
#include <core/mm.hpp>
#include <core/pci.hpp>
#include <core/platform.hpp>

#include <abi/errno.hpp>
#include <abi/moat.hpp>
#include <cap/ops.hpp>

namespace core {

namespace {
constexpr long err(abi::Errno e) { return abi::neg(e); }

bool held(Domain& d, uint32_t bdf, const char* what) {
    if (caps::allows(d, cap::Type::pci_device, bdf, cap::right::use)) return true;
    log_for(d, "domain %u: %s of PCI %02x:%02x.%u refused: no PciDevice capability for it", d.id, what, bdf >> 8,
        (bdf >> 3) & 31, bdf & 7);
    return false;
}

bool well_formed(const abi::MoatPciConfig& c) {
    return (c.size == 1 || c.size == 2 || c.size == 4) && c.offset % c.size == 0 && c.offset + c.size <= 256;
}
}  // namespace

int64_t hc_physdev_op(Vcpu& v, Regs& r) {
    Domain& d = *v.domain;
    uint64_t arg = r.rsi;
    switch (uint32_t(r.rdi)) {
    case abi::kPhysdevSetIopl: {
        // The vCPU's virtual IOPL (core/emulate.hpp: port I/O and cli/sti of
        // its kernel): its own business, as in Xen.
        abi::PhysdevSetIopl io;
        if (!get_guest(io, arg)) return err(abi::Errno::efault);
        if (io.iopl > 3) return err(abi::Errno::einval);
        v.iopl = uint8_t(io.iopl);
        return 0;
    }
    case abi::kPhysdevPciInfo: {
        abi::MoatPciInfo in;
        if (!get_guest(in, arg)) return err(abi::Errno::efault);
        if (!held(d, in.bdf, "info")) return err(abi::Errno::eperm);
        const PciFunction* f = pci_find(in.bdf);
        if (!f) return err(abi::Errno::enodev);
        return put_guest(arg, f->info) ? 0 : err(abi::Errno::efault);
    }
    case abi::kPhysdevPciConfigRead: {
        abi::MoatPciConfig c;
        if (!get_guest(c, arg)) return err(abi::Errno::efault);
        if (!held(d, c.bdf, "config read")) return err(abi::Errno::eperm);
        if (!pci_find(c.bdf)) return err(abi::Errno::enodev);
        if (!well_formed(c)) return err(abi::Errno::einval);
        c.value = platform::pci_read(c.bdf, c.offset, c.size);
        return put_guest(arg, c) ? 0 : err(abi::Errno::efault);
    }
    case abi::kPhysdevPciConfigWrite: {
        abi::MoatPciConfig c;
        if (!get_guest(c, arg)) return err(abi::Errno::efault);
        if (!held(d, c.bdf, "config write")) return err(abi::Errno::eperm);
        const PciFunction* f = pci_find(c.bdf);
        if (!f) return err(abi::Errno::enodev);
        if (!well_formed(c)) return err(abi::Errno::einval);
        if (const char* why; !pci_config_write_allowed(*f, c.offset, c.size, &why)) {
            log_for(d, "domain %u: config write at %#x of PCI %02x:%02x.%u refused: %s", d.id, c.offset, c.bdf >> 8,
                    (c.bdf >> 3) & 31, c.bdf & 7, why);
            return err(abi::Errno::eperm);
        }
        // Bus mastering on: from here the function's DMA goes through the
        // domain's I/O page table, attached before the device can start.
        if (c.offset == 4 && (c.value & 4)) {
            long rc = iommu_attach(d, c.bdf, v.work);
            if (rc == kRestart) return hypercall_continue(r);   // its table half built: go on
            if (rc != 0) {
                log_for(d, "domain %u: bus master enable of PCI %02x:%02x.%u refused: no I/O page table for it (%ld)",
                        d.id, c.bdf >> 8, (c.bdf >> 3) & 31, c.bdf & 7, rc);
                return rc;
            }
        }
        platform::pci_write(c.bdf, c.offset, c.size, c.value);
        return 0;
    }
    default:
        return err(abi::Errno::enosys);
    }
}

}  // namespace core
