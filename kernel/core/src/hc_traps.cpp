// The hypercalls that set up how a guest takes exceptions and events, and
// how it returns from them: set_trap_table, set_callbacks, callback_op, iret,
// stack_switch, set_segment_base, fpu_taskswitch.

#include <core/domain.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>
#include <core/log.hpp>
#include <core/platform.hpp>
#include <core/traps.hpp>

#include <abi/errno.hpp>
#include <abi/hypercall.hpp>
#include <abi/x86_64.hpp>

namespace core {

namespace {
constexpr int64_t err(abi::Errno e) { return abi::neg(e); }


// Trap-table entries read per call before it continues.
constexpr unsigned kTrapBatch = 64;
}  // namespace

int64_t hc_set_trap_table(Vcpu& v, Regs& r) {
    uint64_t table = r.rdi;
    if (table == 0) {   // a null table clears every handler
        for (auto& t : v.traps) t = TrapHandler{};
        return 0;
    }
    for (unsigned i = 0; i < kTrapBatch && v.work.spend(cost::kEntry); ++i) {
        abi::TrapInfo ti;
        if (!get_guest(ti, table)) return err(abi::Errno::efault);
        if (ti.address == 0) return 0;   // the terminating entry
        if (!is_guest_address(ti.address)) return err(abi::Errno::einval);
        v.traps[ti.vector] = TrapHandler{ti.address, static_cast<uint8_t>(abi::trap_info_dpl(ti)),
                                         abi::trap_info_masks_events(ti)};
        table += sizeof ti;
    }
    r.rdi = table;
    return hypercall_continue(r);
}

int64_t hc_set_callbacks(Vcpu& v, Regs& r) {
    // x86-64: event, failsafe and syscall entry points.
    if ((r.rdi && !is_guest_address(r.rdi)) || (r.rsi && !is_guest_address(r.rsi)) ||
        (r.rdx && !is_guest_address(r.rdx)))
        return err(abi::Errno::einval);
    v.event_callback = r.rdi;
    v.failsafe_callback = r.rsi;
    v.syscall_callback = r.rdx;
    return 0;
}

int64_t hc_callback_op(Vcpu& v, Regs& r) {
    switch (static_cast<abi::CallbackOp>(r.rdi)) {
    case abi::CallbackOp::register_: {
        abi::CallbackRegister cb;
        if (!get_guest(cb, r.rsi)) return err(abi::Errno::efault);
        if (cb.address && !is_guest_address(cb.address)) return err(abi::Errno::einval);
        bool mask = cb.flags & abi::kCallbackFlagMaskEvents;
        switch (static_cast<abi::CallbackType>(cb.type)) {
        case abi::CallbackType::event: v.event_callback = cb.address; return 0;
        case abi::CallbackType::failsafe: v.failsafe_callback = cb.address; return 0;
        case abi::CallbackType::syscall:
            v.syscall_callback = cb.address;
            v.syscall_masks_events = mask;
            return 0;
        default: return err(abi::Errno::einval);
        }
    }
    case abi::CallbackOp::unregister: {
        abi::CallbackUnregister cb;
        if (!get_guest(cb, r.rsi)) return err(abi::Errno::efault);
        switch (static_cast<abi::CallbackType>(cb.type)) {
        case abi::CallbackType::event: v.event_callback = 0; return 0;
        case abi::CallbackType::failsafe: v.failsafe_callback = 0; return 0;
        case abi::CallbackType::syscall: v.syscall_callback = 0; return 0;
        default: return err(abi::Errno::einval);
        }
    }
    default:
        return err(abi::Errno::enosys);
    }
}

int64_t hc_iret(Vcpu& v, Regs& r) {
    // The hypercall page's iret entry pushed rcx, r11 and rax on top of the
    // guest's {flags, rip, cs, rflags, rsp, ss}: together an IretContext at rsp.
    abi::IretContext c;
    if (!get_guest(c, r.rsp)) {
        domain_crash(*v.domain, "iret: cannot read the frame at %#lx", r.rsp);
        return 0;
    }
    // Only the selector counts: a bounce frame's CS also carries the saved
    // upcall mask in bits 32-39, which the guest hands back unchanged.
    uint64_t cs = (c.cs & 0xFFFF) | 3, ss = (c.ss & 0xFFFF) | 3;
    if ((cs != sel::kGuestCs64 && cs != sel::kGuestCs32) || ss != sel::kGuestDs || !is_canonical(c.rip) ||
        !is_canonical(c.rsp)) {
        domain_crash(*v.domain, "iret: bad frame (rip %#lx cs %#lx rsp %#lx ss %#lx)", c.rip, c.cs, c.rsp, c.ss);
        return 0;
    }
    if ((c.cs & 3) == 3 && v.kernel_mode) {   // back to guest user mode
        if (!v.guest_table_user) {
            domain_crash(*v.domain, "iret to user mode without user page tables");
            return 0;
        }
        toggle_guest_mode(v);
    }
    r.rip = c.rip;
    r.cs = cs;
    r.rflags = sanitize_rflags(c.rflags);
    r.rsp = c.rsp;
    r.ss = ss;
    if (!(c.flags & abi::kVgcfInSyscall)) {
        r.r11 = c.r11;
        r.rcx = c.rcx;
    }
    // The guest's IF is its event mask.
    v.info->evtchn_upcall_mask = (c.rflags & flags::kIf) ? 0 : 1;
    return static_cast<int64_t>(c.rax);
}

int64_t hc_stack_switch(Vcpu& v, Regs& r) {
    v.kernel_ss = r.rdi | 3;
    v.kernel_sp = r.rsi;
    return 0;
}

int64_t hc_set_segment_base(Vcpu& v, Regs& r) {
    uint64_t base = r.rsi;
    switch (static_cast<abi::SegBase>(r.rdi)) {
    case abi::SegBase::fs:
        if (!is_canonical(base)) return err(abi::Errno::einval);
        v.fs_base = base;
        platform::set_fs_base(base);
        return 0;
    case abi::SegBase::gs_kernel:
        if (!is_canonical(base)) return err(abi::Errno::einval);
        v.gs_base_kernel = base;
        if (v.kernel_mode) platform::set_active_gs_base(base);
        return 0;
    case abi::SegBase::gs_user:
        if (!is_canonical(base)) return err(abi::Errno::einval);
        v.gs_base_user = base;
        if (!v.kernel_mode) platform::set_active_gs_base(base);
        return 0;
    case abi::SegBase::gs_user_sel: {
        // Loading a selector sets the user GS base from its descriptor; only
        // the null and flat selectors exist until guests have their own GDT.
        uint16_t s = static_cast<uint16_t>(base);
        if (s != 0 && (s | 3) != sel::kGuestDs) return err(abi::Errno::einval);
        platform::load_guest_gs_selector(s == 0 ? 0 : static_cast<uint16_t>(sel::kGuestDs));
        v.gs_base_user = 0;
        if (!v.kernel_mode) platform::set_active_gs_base(0);
        return 0;
    }
    }
    return err(abi::Errno::einval);
}

int64_t hc_fpu_taskswitch(Vcpu& v, Regs& r) {
    v.fpu_ts = r.rdi != 0;
    platform::set_fpu_trap(v.fpu_ts);
    return 0;
}

}  // namespace core
