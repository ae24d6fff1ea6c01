#include <core/log.hpp>
#include <core/platform.hpp>
#include <core/traps.hpp>

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

bool bounce(Vcpu& v, Regs& r, uint64_t handler, bool has_error, uint64_t error_code, bool mask_events) {
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

    uint64_t frame[8];
    unsigned n = 0;
    frame[n++] = r.rcx;
    frame[n++] = r.r11;
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

void guest_exception(Vcpu& v, Regs& r, unsigned vector, uint64_t error_code, uint64_t cr2) {
    switch (vector) {
    case vec::kPageFault:
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

    case vec::kGeneralProtection:
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
        domain_crash(*v.domain, "syscall from guest user mode with no syscall callback registered");
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
