// The hypercalls that set up how a guest takes exceptions and events, and
// how it returns from them: set_trap_table, set_callbacks, callback_op, iret,
// stack_switch, set_segment_base, fpu_taskswitch; and the entries from 32-bit
// user code that use the callbacks (core/callbacks.hpp).

#include <core/callbacks.hpp>
#include <core/descriptors.hpp>
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

constexpr uint64_t kDf = 1u << 10;   // RFLAGS.DF
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

namespace {

// Registers callback `type` at `address` (already checked: 0 or a guest
// address). Xen's register_guest_callback for a 64-bit PV guest, including
// syscall32 and sysenter (for its 32-bit user processes) and nmi (kept in
// trap-table slot 2, as Xen does: Moat forwards no NMI to a guest, so it is
// stored and never entered).
int64_t register_callback(Vcpu& v, uint16_t type, uint64_t address, bool mask) {
    switch (static_cast<abi::CallbackType>(type)) {
    case abi::CallbackType::event: v.event_callback = address; return 0;
    case abi::CallbackType::failsafe:
        v.failsafe_callback = address;
        v.failsafe_masks_events = mask;
        return 0;
    case abi::CallbackType::syscall:
        v.syscall_callback = address;
        v.syscall_masks_events = mask;
        return 0;
    case abi::CallbackType::syscall32:
        v.syscall32_callback = address;
        v.syscall32_masks_events = mask;
        return 0;
    case abi::CallbackType::sysenter:
        v.sysenter_callback = address;
        v.sysenter_masks_events = mask;
        return 0;
    case abi::CallbackType::nmi:
        // The event mask is always set on entry (Xen: TI_SET_IF).
        v.traps[vec::kNmi] = TrapHandler{address, 0, true};
        return 0;
    default:
        return err(abi::Errno::enosys);
    }
}

}  // namespace

int64_t hc_callback_op(Vcpu& v, Regs& r) {
    switch (static_cast<abi::CallbackOp>(r.rdi)) {
    case abi::CallbackOp::register_: {
        abi::CallbackRegister cb;
        if (!get_guest(cb, r.rsi)) return err(abi::Errno::efault);
        if (cb.address && !is_guest_address(cb.address)) return err(abi::Errno::einval);
        return register_callback(v, cb.type, cb.address, cb.flags & abi::kCallbackFlagMaskEvents);
    }
    case abi::CallbackOp::unregister: {
        abi::CallbackUnregister cb;
        if (!get_guest(cb, r.rsi)) return err(abi::Errno::efault);
        switch (static_cast<abi::CallbackType>(cb.type)) {
        case abi::CallbackType::event:
        case abi::CallbackType::failsafe:
        case abi::CallbackType::syscall:
        case abi::CallbackType::syscall32:
        case abi::CallbackType::sysenter:
            return err(abi::Errno::einval);   // as Xen: these stay (register 0 to drop one)
        case abi::CallbackType::nmi:
            v.traps[vec::kNmi] = TrapHandler{};
            return 0;
        default: return err(abi::Errno::enosys);
        }
    }
    default:
        return err(abi::Errno::enosys);
    }
}

void guest_compat_syscall(Vcpu& v, Regs& r) {
    // Xen (entry.S, switch_to_kernel): a 64-bit PV guest's `syscall` from
    // compatibility mode goes to its syscall32 callback, from user or kernel
    // mode alike, with DF cleared (the PV ABI's fixed SYSCALL_MASK); with none
    // registered the guest gets #UD at the instruction instead.
    if (v.syscall32_callback) {
        if (bounce(v, r, v.syscall32_callback, false, 0, v.syscall32_masks_events)) {
            r.rflags &= ~kDf;
            r.r11 = r.rflags;   // still eligible for sysret
        }
        return;
    }
    r.rip -= 2;   // back onto the `syscall`
    const TrapHandler& ud = v.traps[vec::kInvalidOp];
    if (!ud.address) {
        domain_crash(*v.domain, "syscall from 32-bit code at %#lx with no syscall32 callback and no #UD handler",
                     r.rip);
        return;
    }
    (void)bounce(v, r, ud.address, false, 0, ud.mask_events);
}

bool guest_sysenter(Vcpu& v, Regs& r) {
    // Xen (entry.S, sysenter_entry): the CPU saves neither rip nor rsp, so
    // the frame carries 0 for both and the null ring-3 CS; the guest kernel
    // knows where its user code returns to. From guest kernel mode there is
    // no stack to put that frame on (Xen would crash the domain): leave the
    // fault to be delivered.
    if (!v.sysenter_callback || v.kernel_mode) return false;
    r.rip = 0;
    r.cs = 3;
    r.rsp = 0;
    r.ss = sel::kGuestDs;
    (void)bounce(v, r, v.sysenter_callback, false, 0, v.sysenter_masks_events);   // or the domain crashed
    return true;
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
    // A frame the CPU would refuse (selectors that are not the guest's
    // usable code and stack segments, a non-canonical address) goes to the
    // guest kernel's failsafe callback, as the faulting iretq does under Xen;
    // only a guest without one is crashed.
    if (!guest_selector_ok(v, uint16_t(cs), true) || !guest_selector_ok(v, uint16_t(ss), false) ||
        !is_canonical(c.rip) || !is_canonical(c.rsp)) {
        if (!v.failsafe_callback) {
            domain_crash(*v.domain, "iret: bad frame (rip %#lx cs %#lx rsp %#lx ss %#lx) and no failsafe callback",
                         c.rip, c.cs, c.rsp, c.ss);
            return 0;
        }
        (void)bounce_failsafe(v, r);
        return static_cast<int64_t>(r.rax);
    }
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
        // Loading a selector sets the user GS base from its descriptor: the
        // null one, the flat one, or a data segment of the guest's GDT.
        uint16_t s = static_cast<uint16_t>(base);
        if (s != 0 && !guest_selector_ok(v, uint16_t(s | 3), false)) return err(abi::Errno::einval);
        uint16_t load = s == 0 ? 0 : uint16_t(s | 3);
        platform::load_guest_gs_selector(load);
        v.gs_base_user = load ? guest_selector_base(v, load) : 0;
        if (!v.kernel_mode) platform::set_active_gs_base(v.gs_base_user);
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
