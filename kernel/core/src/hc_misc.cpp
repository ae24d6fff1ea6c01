// console_io, sched_op and xen_version.

#include <core/domain.hpp>
#include <core/evtchn.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>
#include <core/log.hpp>
#include <core/platform.hpp>
#include <core/sched.hpp>

#include <abi/errno.hpp>
#include <abi/elfnote.hpp>
#include <abi/hypercall.hpp>
#include <abi/x86_64.hpp>

namespace core {

namespace {
constexpr int64_t err(abi::Errno e) { return abi::neg(e); }

// What Moat reports through xen_version: the Xen interface it implements.
constexpr uint32_t kVersionMajor = 4, kVersionMinor = 21;
constexpr char kExtraversion[] = "-moat";
constexpr char kCapabilities[] = "xen-3.0-x86_64";
// XENVER_get_features, submap 0: what Moat offers for real, as Xen reports
// it to a 64-bit PV guest. Not writable_page_tables: that one says page
// tables need no write protection (translated guests); a PV guest's are
// read-only, its direct writes to its L1 tables emulated (core/ptwr.hpp).
// pae_pgdir_above_4gb once it enabled vm_assist pae_extended_cr3, as in Xen.
constexpr uint32_t kFeatures = abi::xen_feature_bit(abi::XenFeature::mmu_pt_update_preserve_ad) |
                               abi::xen_feature_bit(abi::XenFeature::gnttab_map_avail_bits);
uint32_t features_of(const Domain& d) {
    bool pae_ext = (d.vm_assist >> unsigned(abi::VmAssistType::pae_extended_cr3)) & 1;
    return kFeatures | (pae_ext ? abi::xen_feature_bit(abi::XenFeature::pae_pgdir_above_4gb) : 0);
}

// Bytes of console output copied per hypercall before it continues.
constexpr uint64_t kConsoleChunk = 4096;
// The most one CONSOLEIO_read returns (the reader asks again for more).
constexpr uint64_t kConsoleReadMax = 16384;
constexpr uint16_t kCom1 = 0x3F8;

// May `d` drive COM1 itself (IoPorts for all of 0x3F8..0x3FF, one byte of
// its I/O bitmap)? Then its first read hands it the UART.
bool drives_com1(Domain& d) {
    const uint8_t* bitmap = io_bitmap(d);
    return bitmap && bitmap[kCom1 / 8] == 0;
}

// CONSOLEIO_read: up to `count` unread bytes of the kernel log into `buf`;
// how many (0: nothing unread). Needs DebugConsole. While a console domain
// drives the UART, only it reads (another reader would take lines from the
// operator's terminal).
int64_t console_read(Vcpu& v, uint64_t count, uint64_t buf) {
    Domain& d = *v.domain;
    if (!caps::holds_type(d, cap::Type::debug_console, cap::right::use)) return err(abi::Errno::eperm);
    int owner = log_uart_owner();
    if (owner >= 0 && owner != int(d.id)) return err(abi::Errno::ebusy);
    if (owner < 0 && drives_com1(d)) {
        log("console handed over to domain %u (%s)", d.id, d.name);
        log_hand_over(d.id);
    }
    uint64_t done = 0;
    while (done < count && done < kConsoleReadMax && v.work.spend(cost::kConsoleChunk)) {
        char tmp[256];
        LogRing::Cursor after;
        size_t n = log_peek(tmp, count - done < sizeof tmp ? size_t(count - done) : sizeof tmp, after);
        if (n == 0) break;
        // Consumed only once delivered: a bad buffer loses nothing.
        if (!platform::copy_to_guest(buf + done, tmp, n)) return done ? int64_t(done) : err(abi::Errno::efault);
        log_commit(after);
        done += n;
    }
    return int64_t(done);
}
}  // namespace

int64_t hc_console_io(Vcpu& v, Regs& r) {
    auto cmd = static_cast<abi::ConsoleIo>(r.rdi);
    uint64_t count = r.rsi, buf = r.rdx;
    switch (cmd) {
    case abi::ConsoleIo::write: {
        uint64_t done = 0;
        while (done < count && done < kConsoleChunk && v.work.spend(cost::kConsoleChunk)) {
            char tmp[128];
            uint64_t n = count - done < sizeof tmp ? count - done : sizeof tmp;
            if (!platform::copy_from_guest(tmp, buf + done, n)) return err(abi::Errno::efault);
            v.work.charge(domain_console_write(*v.domain, tmp, n) * cost::kLogLine);
            done += n;
        }
        if (done < count) {
            r.rsi = count - done;
            r.rdx = buf + done;
            return hypercall_continue(r);
        }
        return 0;
    }
    case abi::ConsoleIo::read:
        // At least one piece per invocation, or 0 would read as "nothing unread".
        if (v.work.left < cost::kConsoleChunk) return hypercall_continue(r);
        return console_read(v, count, buf);
    }
    return err(abi::Errno::enosys);
}

int64_t hc_sched_op(Vcpu& v, Regs& r) {
    switch (static_cast<abi::SchedOp>(r.rdi)) {
    case abi::SchedOp::yield:
        vcpu_yield(v);
        return 0;
    case abi::SchedOp::block:
        // Enable event delivery, then wait for an event unless one is
        // already pending: never sleep through an event that arrived first.
        v.info->evtchn_upcall_mask = 0;
        if (!v.info->evtchn_upcall_pending) vcpu_block(v);
        return 0;
    case abi::SchedOp::poll: {
        // Wait, with events left as they are, until one of the ports is
        // pending or the timeout (absolute system time, 0 = none) passes.
        abi::SchedPoll p;
        if (!get_guest(p, r.rsi)) return err(abi::Errno::efault);
        if (p.nr_ports > Vcpu::kMaxPollPorts) return err(abi::Errno::einval);
        uint32_t ports[Vcpu::kMaxPollPorts];
        if (!platform::copy_from_guest(ports, p.ports, p.nr_ports * sizeof(uint32_t))) return err(abi::Errno::efault);
        for (unsigned i = 0; i < p.nr_ports; ++i) {
            if (ports[i] >= kMaxEvtchnPorts) return err(abi::Errno::einval);
            if (evtchn_is_pending(*v.domain, ports[i])) return 0;   // already pending (2-level or FIFO)
        }
        if (p.timeout && p.timeout <= platform::now_ns()) return 0;
        for (unsigned i = 0; i < p.nr_ports; ++i) v.poll_ports[i] = ports[i];
        v.npoll = p.nr_ports;
        v.poll_deadline = p.timeout;
        vcpu_block(v);
        return 0;
    }
    case abi::SchedOp::shutdown: {
        abi::SchedShutdown s;
        if (!get_guest(s, r.rsi)) return err(abi::Errno::efault);
        if (s.reason > uint32_t(abi::ShutdownReason::soft_reset)) return err(abi::Errno::einval);
        domain_shutdown(*v.domain, static_cast<abi::ShutdownReason>(s.reason));
        platform::request_reschedule();
        return 0;
    }
    default:
        return err(abi::Errno::enosys);
    }
}

int64_t hc_vm_assist(Vcpu& v, Regs& r) {
    auto cmd = static_cast<abi::VmAssistCmd>(r.rdi);
    uint64_t type = r.rsi;
    // The 64-bit PV assists Xen knows; the 4 GiB segment ones are 32-bit only.
    constexpr uint64_t kValid = (1ull << unsigned(abi::VmAssistType::writable_pagetables)) |
                                (1ull << unsigned(abi::VmAssistType::pae_extended_cr3)) |
                                (1ull << unsigned(abi::VmAssistType::architectural_iopl)) |
                                (1ull << unsigned(abi::VmAssistType::runstate_update_flag)) |
                                (1ull << unsigned(abi::VmAssistType::m2p_strict));
    if (type >= 64 || !((kValid >> type) & 1)) return err(abi::Errno::einval);
    switch (cmd) {
    case abi::VmAssistCmd::enable: v.domain->vm_assist |= 1ull << type; return 0;
    case abi::VmAssistCmd::disable: v.domain->vm_assist &= ~(1ull << type); return 0;
    }
    return err(abi::Errno::enosys);
}

int64_t hc_xen_version(Vcpu& v, Regs& r) {
    uint64_t arg = r.rsi;
    switch (static_cast<abi::XenVersion>(r.rdi)) {
    case abi::XenVersion::version:
        return int64_t(kVersionMajor << 16 | kVersionMinor);
    case abi::XenVersion::extraversion: {
        char buf[abi::kXenExtraversionLen] = {};
        __builtin_memcpy(buf, kExtraversion, sizeof kExtraversion);
        return put_guest(arg, buf) ? 0 : err(abi::Errno::efault);
    }
    case abi::XenVersion::capabilities: {
        // The guest's buffer is kXenCapabilitiesLen bytes; the string and its
        // NUL are all that is written.
        return platform::copy_to_guest(arg, kCapabilities, sizeof kCapabilities) ? 0
                                                                                 : err(abi::Errno::efault);
    }
    case abi::XenVersion::get_features: {
        abi::XenFeatureInfo fi;
        if (!get_guest(fi, arg)) return err(abi::Errno::efault);
        fi.submap = fi.submap_idx == 0 ? features_of(*v.domain) : 0;
        return put_guest(arg, fi) ? 0 : err(abi::Errno::efault);
    }
    case abi::XenVersion::pagesize:
        return 4096;
    case abi::XenVersion::compile_info: {
        abi::XenCompileInfo ci{};
        __builtin_memcpy(ci.compiler, "clang", 6);
        __builtin_memcpy(ci.compile_by, "moat", 5);
        __builtin_memcpy(ci.compile_domain, "moat", 5);
        return put_guest(arg, ci) ? 0 : err(abi::Errno::efault);
    }
    case abi::XenVersion::changeset: {
        char cs[abi::kXenChangesetLen] = "moat";
        return put_guest(arg, cs) ? 0 : err(abi::Errno::efault);
    }
    case abi::XenVersion::platform_parameters: {
        // Where the hypervisor's part of the address space starts.
        abi::XenPlatformParameters pp{abi::kHypervisorVirtStart};
        return put_guest(arg, pp) ? 0 : err(abi::Errno::efault);
    }
    case abi::XenVersion::guest_handle: {
        uint8_t handle[abi::kXenDomainHandleLen] = {};   // no toolstack handle
        return put_guest(arg, handle) ? 0 : err(abi::Errno::efault);
    }
    case abi::XenVersion::commandline:
    case abi::XenVersion::build_id:
        return err(abi::Errno::eperm);   // the hypervisor's own: none of a guest's business (as Xen)
    default:
        return err(abi::Errno::enosys);
    }
}

}  // namespace core
