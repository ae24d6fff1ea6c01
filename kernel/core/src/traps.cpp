#include <core/debugreg.hpp>
#include <core/emulate.hpp>
#include <core/log.hpp>
#include <core/ptwr.hpp>
#include <core/platform.hpp>
#include <core/traps.hpp>

#include <abi/hypercall.hpp>
#include <abi/x86_64.hpp>

namespace core {

namespace {

bool has_error_code(unsigned vector) {
    switch (vector) {
    case vec::kDoubleFault: case vec::kInvalidTss: case vec::kNoSegment: case vec::kStack:
    case vec::kGeneralProtection: case vec::kPageFault: case vec::kAlignment: case 21: case 29: case 30:
        return true;
    default:
        return false;
    }
}

const char* vector_name(unsigned v) {
    static const char* const names[] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
                                        "#DF", "#MF?", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
                                        "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"};
    return v < sizeof names / sizeof names[0] ? names[v] : "exception";
}

bool deliver(Vcpu& v, Regs& r, unsigned vector, bool has_error, uint64_t error_code) {
    const TrapHandler& h = v.traps[vector];
    if (!h.address) {
        domain_crash(*v.domain, "%s (vector %u) at rip %#lx, error code %#lx, with no handler registered",
                     vector_name(vector), vector, r.rip, error_code);
        return false;
    }
    return bounce(v, r, h.address, has_error, error_code, h.mask_events);
}

}  // namespace

void load_guest_mode(Vcpu& v) {
    platform::set_active_gs_base(v.kernel_mode ? v.gs_base_kernel : v.gs_base_user);
}

void toggle_guest_mode(Vcpu& v) {
    v.kernel_mode = !v.kernel_mode;
    load_guest_mode(v);
    platform::load_page_table(v.kernel_mode ? v.guest_table : v.guest_table_user);
}

namespace {
// The frame Xen builds on the guest kernel's stack; with `segs` (a failsafe
// bounce) the four data selectors go after rcx and r11.
bool bounce_frame(Vcpu& v, Regs& r, uint64_t handler, bool has_error, uint64_t error_code, bool mask_events,
                  const uint16_t* segs) {
    uint64_t frame_cs = r.cs;
    uint64_t sp;
    if (v.kernel_mode) {
        sp = r.rsp;
        frame_cs &= ~3ull;   // tell the guest kernel it interrupted itself
    } else {
        toggle_guest_mode(v);
        sp = v.kernel_sp;
    }
    sp &= ~0xFull;

    uint8_t saved_mask = v.info->evtchn_upcall_mask;
    if (mask_events) v.info->evtchn_upcall_mask = 1;

    uint64_t frame[12];
    unsigned n = 0;
    frame[n++] = r.rcx;
    frame[n++] = r.r11;
    if (segs)
        for (unsigned i = 0; i < 4; ++i) frame[n++] = segs[i];
    if (has_error) frame[n++] = error_code;
    frame[n++] = r.rip;
    frame[n++] = frame_cs | (uint64_t(saved_mask) << abi::kBounceCsUpcallMaskShift);
    frame[n++] = (r.rflags & ~(flags::kIf | flags::kIopl)) | (saved_mask ? 0 : flags::kIf);
    frame[n++] = r.rsp;
    frame[n++] = r.ss;

    sp -= n * sizeof(uint64_t);
    if (!is_canonical(handler) || !platform::copy_to_guest(sp, frame, n * sizeof(uint64_t))) {
        domain_crash(*v.domain, "cannot deliver an exception: frame at %#lx or handler %#lx unusable", sp,
                     handler);
        return false;
    }

    r.rip = handler;
    r.cs = sel::kGuestCs64;
    r.ss = sel::kGuestDs;
    r.rsp = sp;
    r.rflags = (r.rflags & ~(flags::kTf | flags::kVm | flags::kRf | flags::kNt | flags::kAc)) | flags::kIf;
    // rcx and r11 are saved in the frame, so the way back may use sysret.
    r.rcx = r.rip;
    r.r11 = r.rflags;
    return true;
}
}  // namespace

bool bounce(Vcpu& v, Regs& r, uint64_t handler, bool has_error, uint64_t error_code, bool mask_events) {
    return bounce_frame(v, r, handler, has_error, error_code, mask_events, nullptr);
}

bool bounce_failsafe(Vcpu& v, Regs& r) {
    uint16_t segs[4];
    platform::read_data_selectors(segs);
    return bounce_frame(v, r, v.failsafe_callback, false, 0, v.failsafe_masks_events, segs);
}

void segments_refused(Vcpu& v, Regs& r, const uint16_t wanted[4]) {
    if (!v.failsafe_callback) {
        log_for(*v.domain, "domain %u: data selectors ds %#x es %#x fs %#x gs %#x no longer load: the ones refused "
                "are null now (no failsafe callback)", v.domain->id, wanted[0], wanted[1], wanted[2], wanted[3]);
        return;
    }
    (void)bounce_frame(v, r, v.failsafe_callback, false, 0, v.failsafe_masks_events, wanted);
}

void guest_noncanonical_rip(Vcpu& v, Regs& r) { (void)deliver(v, r, vec::kGeneralProtection, true, 0); }

void guest_frame_refused(Vcpu& v, Regs& r) {
    if (!v.failsafe_callback) {
        domain_crash(*v.domain, "the CPU refused to return to rip %#lx cs %#lx rsp %#lx ss %#lx, and no failsafe "
                     "callback", r.rip, r.cs, r.rsp, r.ss);
        return;
    }
    (void)bounce_failsafe(v, r);
}

namespace {

constexpr uint64_t kDr6Bs = 1u << 14;   // DR6.BS: a single-step trap

// A #DB of the guest's with `dr6` merged into its DR6, unless the vCPU is
// gone (the hypercall shut its domain down).
void debug_trap(Vcpu& v, Regs& r, uint64_t dr6) {
    if (v.state == VcpuState::down || v.domain->state != DomainState::running) return;
    debugreg_guest_trap(v, dr6);
    (void)deliver(v, r, vec::kDebug, false, 0);
}

}  // namespace

void deliver_held_debug_trap(Vcpu& v, Regs& r, uint64_t held_dr6) {
    if (held_dr6) debug_trap(v, r, held_dr6);
}

void hypercall_debug_trap(Vcpu& v, Regs& r, uint64_t nr, uint64_t entry_rip, uint64_t entry_rflags,
                          uint64_t held_dr6) {
    uint64_t dr6 = held_dr6;
    // Completed: rip is still the instruction after the `syscall` (a
    // continuation moves it back onto it, iret and a failsafe bounce away).
    bool completed = r.rip == entry_rip && nr != static_cast<uint64_t>(abi::Hypercall::iret);
    if ((entry_rflags & flags::kTf) && completed) dr6 |= kDr6Default | kDr6Bs;
    if (dr6) debug_trap(v, r, dr6);
}

void guest_exception(Vcpu& v, Regs& r, unsigned vector, uint64_t error_code, uint64_t cr2) {
    switch (vector) {
    case vec::kPageFault:
        // A guest kernel's write to its own L1 through a read-only mapping
        // (present + write): writable page tables (core/ptwr.hpp).
        if (v.kernel_mode && (error_code & 3) == 3 && ptwr_emulate(v, r, cr2)) return;
        v.info->arch.cr2 = cr2;
        // The guest kernel runs in ring 3, so the CPU always reports a user
        // access: report what the guest would see natively.
        error_code &= ~4ull;
        if (!v.kernel_mode) error_code |= 4;
        deliver(v, r, vector, true, error_code);
        return;

    case vec::kNoDevice:
        // Only the guest's own (virtual) CR0.TS makes #NM reach us. Like Xen,
        // clear it when delivering, as hardware would on a task switch.
        platform::set_fpu_trap(false);
        if (v.fpu_ts) {
            v.fpu_ts = false;
            deliver(v, r, vector, false, 0);
        }
        return;

    case vec::kInvalidOp:
        // Xen's forced-emulation prefix before cpuid.
        if (emulate_forced_cpuid(v, r)) return;
        deliver(v, r, vector, false, 0);
        return;

    case vec::kGeneralProtection:
        // A privileged instruction of the guest kernel (core/emulate.hpp).
        if (error_code == 0 && emulate_privileged(v, r)) return;
        // `int $n` through a gate the guest may not use directly: bits 1 (IDT)
        // set, 0 (external) clear, n in bits 3+. Deliver it as a software
        // interrupt if the guest's own trap table lets this mode raise it.
        if ((error_code & 3) == 2) {
            unsigned n = static_cast<unsigned>(error_code >> 3) & 0xFF;
            const TrapHandler& h = v.traps[n];
            unsigned cpl = v.kernel_mode ? 1 : 3;
            if (h.address && h.dpl >= cpl) {
                r.rip += 2;   // past `int $n`
                (void)bounce(v, r, h.address, false, 0, h.mask_events);
                return;
            }
        }
        deliver(v, r, vector, true, error_code);
        return;

    default:
        deliver(v, r, vector, has_error_code(vector), error_code);
        return;
    }
}

void guest_user_syscall(Vcpu& v, Regs& r) {
    if (!v.syscall_callback) {
        // As Xen (since 4.14): #UD at the `syscall`, so that a user process
        // cannot take its kernel down; only a kernel without a #UD handler is
        // crashed.
        r.rip -= 2;
        (void)deliver(v, r, vec::kInvalidOp, false, 0);
        return;
    }
    // Xen's frame for a syscall bounce carries no error code and enters the
    // guest kernel with the user's rcx/r11 saved in it.
    (void)bounce(v, r, v.syscall_callback, false, 0, v.syscall_masks_events);
}

void deliver_events(Vcpu& v, Regs& r) {
    if (!v.info || !v.event_callback) return;
    if (!v.info->evtchn_upcall_pending || v.info->evtchn_upcall_mask) return;
    (void)bounce(v, r, v.event_callback, false, 0, true);
}

}  // namespace core
