// vcpu_op (core/vcpu.hpp).

#include <core/domain.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/sched.hpp>
#include <core/timer.hpp>
#include <core/vcpu.hpp>

#include <abi/errno.hpp>
#include <abi/hypercall.hpp>

namespace core {

namespace {

constexpr int64_t err(abi::Errno e) { return abi::neg(e); }

// Xen's bounds on a periodic timer: at least 1 ms, at most ~2^62 ns.
constexpr uint64_t kMinPeriodNs = 1'000'000;
constexpr uint64_t kMaxPeriodNs = 1ull << 62;

bool runstate_flag(const Vcpu& v) {
    return (v.domain->vm_assist >> unsigned(abi::VmAssistType::runstate_update_flag)) & 1;
}

// VCPUOP_register_vcpu_info: the vcpu_info moves into one of the domain's
// frames (which it keeps mapped and writable, as Xen's map_guest_area). Once.
int64_t register_vcpu_info(Vcpu& v, uint64_t arg) {
    abi::VcpuRegisterVcpuInfo a;
    if (!get_guest(a, arg)) return err(abi::Errno::efault);
    if (a.rsvd || a.offset > 4096 - sizeof(abi::VcpuInfo) || (a.offset & 7)) return err(abi::Errno::einval);
    if (v.info_mfn) return err(abi::Errno::einval);   // already moved
    Budget b = Budget::unlimited();                 // a writable type: nothing to validate
    MmCtx c{*v.domain, v, b};
    if (get_page_and_type(c, a.mfn, PageType::writable) != 0) return err(abi::Errno::einval);
    auto* now = reinterpret_cast<abi::VcpuInfo*>(frame_va<uint8_t>(a.mfn) + a.offset);
    // It carries on with what it had: copy, then let it rescan every word
    // (Xen sets every selector bit after the move).
    if (v.info) *now = *v.info;
    __atomic_store_n(&now->evtchn_pending_sel, ~0ull, __ATOMIC_SEQ_CST);
    __atomic_store_n(&now->evtchn_upcall_pending, 1, __ATOMIC_SEQ_CST);
    v.info_mfn = a.mfn;
    v.info = now;
    publish_time(v);
    if (platform::current_vcpu() == &v) platform::set_upcall_info(v.info);
    return 0;
}

int64_t register_runstate(Vcpu& v, uint64_t arg) {
    abi::VcpuRegisterArea a;
    if (!get_guest(a, arg)) return err(abi::Errno::efault);
    // 0: none. Otherwise the whole area must be guest address space (Xen's
    // guest_handle_okay: -EFAULT for the hypervisor's range or a
    // non-canonical one); whether it is mapped and writable is judged at
    // each copy, which is simply not made when the guest could not write it.
    if (a.addr && (!is_guest_address(a.addr) || !is_guest_address(a.addr + sizeof(abi::VcpuRunstateInfo) - 1) ||
                   a.addr + sizeof(abi::VcpuRunstateInfo) < a.addr))
        return err(abi::Errno::efault);
    v.runstate_va = a.addr;
    runstate_publish(v);
    return 0;
}

int64_t singleshot(Vcpu& v, uint64_t arg) {
    abi::VcpuSetSingleshotTimer t;
    if (!get_guest(t, arg)) return err(abi::Errno::efault);
    if (t.flags & ~abi::kVcpuSingleshotFuture) return err(abi::Errno::einval);
    uint64_t now = platform::now_ns();
    if ((t.flags & abi::kVcpuSingleshotFuture) && t.timeout_abs_ns < now) return err(abi::Errno::etime);
    set_oneshot_timer(v, t.timeout_abs_ns);
    return 0;
}

int64_t periodic(Vcpu& v, uint64_t arg) {
    abi::VcpuSetPeriodicTimer t;
    if (!get_guest(t, arg)) return err(abi::Errno::efault);
    if (t.period_ns < kMinPeriodNs || t.period_ns > kMaxPeriodNs) return err(abi::Errno::einval);
    v.periodic_period = t.period_ns;
    v.periodic_next = platform::now_ns() + t.period_ns;
    return 0;
}

}  // namespace

void runstate_change(Vcpu& v, abi::RunstateState state, uint64_t now) {
    abi::VcpuRunstateInfo& rs = v.runstate;
    uint64_t entry = rs.state_entry_time & ~abi::kRunstateUpdateFlag;
    if (rs.state >= 0 && rs.state < 4 && now > entry) rs.time[rs.state] += now - entry;
    rs.state = int32_t(state);
    rs.state_entry_time = now;
}

void runstate_publish(Vcpu& v) {
    if (!v.runstate_va) return;
    abi::VcpuRunstateInfo copy = v.runstate;
    if (runstate_flag(v)) {
        // XEN_RUNSTATE_UPDATE while the copy is being written, as Xen does.
        uint64_t flagged = copy.state_entry_time | abi::kRunstateUpdateFlag;
        if (!platform::copy_to_guest(v.runstate_va + offsetof(abi::VcpuRunstateInfo, state_entry_time), &flagged,
                                     sizeof flagged))
            return;
        __atomic_thread_fence(__ATOMIC_RELEASE);
        (void)platform::copy_to_guest(v.runstate_va, &copy, sizeof copy);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        (void)platform::copy_to_guest(v.runstate_va + offsetof(abi::VcpuRunstateInfo, state_entry_time),
                                      &copy.state_entry_time, sizeof copy.state_entry_time);
        return;
    }
    (void)platform::copy_to_guest(v.runstate_va, &copy, sizeof copy);
}

void vcpu_release(Vcpu& v) {
    if (!v.info_mfn) return;
    Budget b = Budget::unlimited();
    MmCtx c{*v.domain, v, b};
    put_page_and_type(c, v.info_mfn);
    v.info_mfn = 0;
    v.info = nullptr;
}

int64_t hc_vcpu_op(Vcpu& v, Regs& r) {
    auto cmd = static_cast<abi::VcpuOp>(r.rdi);
    uint64_t id = r.rsi, arg = r.rdx;
    // One vCPU per domain: the others do not exist.
    if (id != v.id) return err(abi::Errno::enoent);
    switch (cmd) {
    case abi::VcpuOp::is_up:
        return v.state != VcpuState::down ? 1 : 0;
    case abi::VcpuOp::up:
        return 0;   // it is (the one running this)
    case abi::VcpuOp::initialise:
        return err(abi::Errno::eexist);   // Xen: a vCPU that has run cannot be initialised again
    case abi::VcpuOp::down:
        return err(abi::Errno::einval);   // the last vCPU of a domain does not go down; it shuts down
    case abi::VcpuOp::get_runstate_info: {
        runstate_change(v, abi::RunstateState::running, platform::now_ns());
        return put_guest(arg, v.runstate) ? 0 : err(abi::Errno::efault);
    }
    case abi::VcpuOp::register_runstate_memory_area:
        return register_runstate(v, arg);
    case abi::VcpuOp::register_vcpu_info:
        return register_vcpu_info(v, arg);
    case abi::VcpuOp::set_periodic_timer:
        return periodic(v, arg);
    case abi::VcpuOp::stop_periodic_timer:
        v.periodic_period = 0;
        v.periodic_next = 0;
        return 0;
    case abi::VcpuOp::set_singleshot_timer:
        return singleshot(v, arg);
    case abi::VcpuOp::stop_singleshot_timer:
        v.timer_deadline = 0;
        return 0;
    default:
        // send_nmi, get_physid, the time and physical-address areas: not offered.
        return err(abi::Errno::enosys);
    }
}

}  // namespace core
