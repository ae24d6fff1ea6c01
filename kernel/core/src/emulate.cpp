// Privileged instructions of a PV guest kernel, emulated (core/emulate.hpp).

#include <core/callbacks.hpp>
#include <core/debugreg.hpp>
#include <core/emulate.hpp>
#include <core/guest_access.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/x86_insn.hpp>

#include <abi/hypercall.hpp>

namespace core {

namespace {

constexpr uint64_t kCr0Fixed = 0x80050033;   // PG | AM | WP | NE | ET | MP | PE
constexpr uint64_t kCr0Ts = 1u << 3;

// CR4 bits: the guest's own, and the host's it may see (Xen's
// PV_CR4_GUEST_MASK and PV_CR4_GUEST_VISIBLE_MASK, less what its CPUID hides:
// FSGSBASE, OSXSAVE).
constexpr uint64_t kCr4Tsd = 1u << 2, kCr4De = 1u << 3;
constexpr uint64_t kCr4GuestMask = kCr4Tsd | kCr4De;
constexpr uint64_t kCr4VisibleMask = (1u << 5) | (1u << 6) | (1u << 9) | (1u << 10);   // PAE MCE OSFXSR OSXMMEXCPT

void set_fpu_ts(Vcpu& v, bool on) {
    v.fpu_ts = on;
    platform::set_fpu_trap(on);
}

// Port I/O of `size` bytes the domain has no capability for (allowed ports
// never fault): reads see all ones, writes go nowhere.
void emulate_in(Regs& r, unsigned size) {
    uint64_t ones = size == 1 ? 0xFF : size == 2 ? 0xFFFF : 0xFFFFFFFF;
    x86::write_gpr(r, 0, size, ones);
}

}  // namespace

bool iopl_ok(const Vcpu& v) {
    // Xen: the guest kernel has CPL 1 for this (0 with architectural IOPL),
    // user mode CPL 3.
    unsigned cpl = v.kernel_mode ? ((v.domain->vm_assist >> unsigned(abi::VmAssistType::architectural_iopl)) & 1 ? 0 : 1)
                                 : 3;
    return v.iopl >= cpl;
}

uint64_t guest_cr0(const Vcpu& v) { return kCr0Fixed | (v.fpu_ts ? kCr0Ts : 0); }

uint64_t guest_cr4(const Vcpu& v) { return (v.cr4_guest & kCr4GuestMask) | (platform::host_cr4() & kCr4VisibleMask); }

// The debug registers proper live in hc_debugreg.cpp (core/debugreg.hpp);
// `mov %drN` takes the same checks as the hypercalls.
bool set_debugreg(Vcpu& v, unsigned reg, uint64_t value) { return debugreg_set(v, reg, value) == 0; }

bool get_debugreg(const Vcpu& v, unsigned reg, uint64_t* value) { return debugreg_get(v, reg, value) == 0; }

bool emulate_privileged(Vcpu& v, Regs& r) {
    uint8_t bytes[x86::kMaxInsnLen];
    size_t n = fetch_guest_insn(r.rip, bytes);
    // `sysenter`: the CPU refuses it (SYSENTER_CS is 0); Xen's sysenter
    // callback, if the guest registered one (core/callbacks.hpp).
    if (n >= 2 && bytes[0] == 0x0F && bytes[1] == 0x34) return guest_sysenter(v, r);
    x86::Insn in;
    if (n == 0 || !x86::decode(bytes, n, &in) || in.lock) return false;
    switch (in.opcode) {
    case 0x0F30: {   // wrmsr
        if (!v.kernel_mode) return false;
        uint64_t val = (r.rdx << 32) | (r.rax & 0xFFFFFFFF);
        if (!guest_wrmsr(v, uint32_t(r.rcx), val)) return false;
        break;
    }
    case 0x0F32: {   // rdmsr
        if (!v.kernel_mode) return false;
        uint64_t val;
        if (!guest_rdmsr(v, uint32_t(r.rcx), &val)) return false;
        r.rax = val & 0xFFFFFFFF;
        r.rdx = val >> 32;
        break;
    }
    case 0x0F20: {   // mov crN, reg
        if (!v.kernel_mode) return false;
        uint64_t val;
        switch (in.reg) {
        case 0: val = guest_cr0(v); break;
        case 2: val = v.info ? v.info->arch.cr2 : 0; break;
        case 3: val = v.guest_table << 12; break;
        case 4: val = guest_cr4(v); break;
        default: return false;
        }
        x86::gpr(r, in.rm) = val;
        break;
    }
    case 0x0F22: {   // mov reg, crN
        if (!v.kernel_mode) return false;
        uint64_t val = x86::gpr(r, in.rm);
        switch (in.reg) {
        case 0:
            // Only TS is the guest's (Xen's rule); anything else changing is refused.
            if ((val ^ guest_cr0(v)) & ~kCr0Ts) return false;
            set_fpu_ts(v, val & kCr0Ts);
            break;
        case 2:
            if (v.info) v.info->arch.cr2 = val;
            break;
        case 3: {   // as MMUEXT_NEW_BASEPTR, a budget at a time: when validating the
                    // new tables runs out, the instruction is left to fault again and
                    // goes on where it stopped
            Budget b{kHypercallBudget};
            MmCtx c{*v.domain, v, b};
            long rc = finish_cleanup(c);
            if (rc == 0) rc = new_baseptr(c, val >> 12, false);
            if (rc == kRestart) return true;
            if (rc != 0) return false;
            break;
        }
        case 4:
            // Xen takes any value and keeps the bits the guest controls.
            v.cr4_guest = val & kCr4GuestMask;
            break;
        default:
            return false;
        }
        break;
    }
    case 0x0F21: {   // mov drN, reg
        if (!v.kernel_mode) return false;
        uint64_t val;
        if (!get_debugreg(v, in.reg, &val)) return false;
        x86::gpr(r, in.rm) = val;
        break;
    }
    case 0x0F23:     // mov reg, drN
        if (!v.kernel_mode || !set_debugreg(v, in.reg, x86::gpr(r, in.rm))) return false;
        break;
    case 0x0F06:     // clts
        if (!v.kernel_mode) return false;
        set_fpu_ts(v, false);
        break;
    case 0x0F08:     // invd
    case 0x0F09:     // wbinvd: no cache to flush for an unprivileged domain (Xen ignores it too)
        if (!v.kernel_mode) return false;
        break;
    case 0xFA:       // cli / sti: the event mask, with IOPL
    case 0xFB:
        if (!iopl_ok(v) || !v.info) return false;
        v.info->evtchn_upcall_mask = in.opcode == 0xFA ? 1 : 0;
        break;
    case 0xE4: case 0xE5: case 0xEC: case 0xED: {   // in
        if (!iopl_ok(v)) return false;
        unsigned size = (in.opcode & 1) ? (in.opsize16 ? 2 : 4) : 1;
        emulate_in(r, size);
        break;
    }
    case 0xE6: case 0xE7: case 0xEE: case 0xEF:     // out: dropped
        if (!iopl_ok(v)) return false;
        break;
    default:
        return false;
    }
    r.rip += in.len;
    return true;
}

bool emulate_forced_cpuid(Vcpu& v, Regs& r) {
    // ud2a; .ascii "xen"; then the instruction to emulate.
    uint8_t bytes[x86::kMaxInsnLen];
    size_t n = fetch_guest_insn(r.rip, bytes);
    if (n < 7 || bytes[0] != 0x0F || bytes[1] != 0x0B || bytes[2] != 'x' || bytes[3] != 'e' || bytes[4] != 'n')
        return false;
    if (bytes[5] != 0x0F || bytes[6] != 0xA2) return false;   // only cpuid is emulated this way
    uint32_t out[4];
    guest_cpuid(*v.domain, uint32_t(r.rax), uint32_t(r.rcx), out);
    r.rax = out[0];
    r.rbx = out[1];
    r.rcx = out[2];
    r.rdx = out[3];
    r.rip += 7;
    return true;
}

size_t fetch_guest_insn(uint64_t rip, uint8_t* buf) {
    size_t first = 4096 - (rip & 4095);
    if (first > x86::kMaxInsnLen) first = x86::kMaxInsnLen;
    if (!platform::copy_from_guest(buf, rip, first)) return 0;
    if (first == x86::kMaxInsnLen) return first;
    size_t rest = x86::kMaxInsnLen - first;
    return platform::copy_from_guest(buf + first, rip + first, rest) ? x86::kMaxInsnLen : first;
}

}  // namespace core
