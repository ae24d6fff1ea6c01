// A guest's debug registers: set_debugreg and get_debugreg (core/debugreg.hpp).

#include <core/debugreg.hpp>
#include <core/platform.hpp>

#include <abi/errno.hpp>

namespace core {

namespace {

constexpr long err(abi::Errno e) { return abi::neg(e); }

constexpr uint64_t kCr4De = 1u << 3;
constexpr uint64_t kDr6Status = 0xE00F;      // B0-3, BD, BS, BT: what a guest may set in DR6
constexpr uint64_t kDr7Gd = 1u << 13;
constexpr uint64_t kDr7Zeros = 0xD800;       // bits 11 (RTM: not offered), 12, 14, 15
constexpr unsigned kDr7RwShift = 16;         // R/W0 at 16-17, LEN0 at 18-19, then every 4 bits
constexpr uint64_t kDr7RwIo = 2;             // R/W = 10b: an I/O breakpoint

// DR4 and DR5 name DR6 and DR7 unless the guest set CR4.DE (then #UD, as on hardware).
bool alias_ok(const Vcpu& v) { return !(v.cr4_guest & kCr4De); }

// The CPU follows the running vCPU's breakpoints at once.
void sync(const Vcpu& v) {
    if (platform::current_vcpu() == &v) platform::load_debug_registers(v);
}

}  // namespace

long debugreg_set(Vcpu& v, uint64_t reg, uint64_t value) {
    switch (reg) {
    case 0: case 1: case 2: case 3:
        // A breakpoint on the hypervisor's addresses would fire in it.
        if (!is_guest_address(value)) return err(abi::Errno::eperm);
        v.dr[reg] = value;
        if (debugreg_active(v)) sync(v);
        return 0;
    case 4:
        if (!alias_ok(v)) return err(abi::Errno::enodev);
        [[fallthrough]];
    case 6:
        if (value >> 32) return err(abi::Errno::einval);
        v.dr[6] = (value & kDr6Status) | kDr6Default;
        return 0;
    case 5:
        if (!alias_ok(v)) return err(abi::Errno::enodev);
        [[fallthrough]];
    case 7: {
        if (value >> 32) return err(abi::Errno::einval);
        if (value & kDr7Gd) return err(abi::Errno::eperm);
        for (unsigned i = 0; i < 4; ++i)
            if (((value >> (kDr7RwShift + 4 * i)) & 3) == kDr7RwIo) return err(abi::Errno::eperm);
        bool was_active = debugreg_active(v);
        v.dr[7] = (value & ~kDr7Zeros) | kDr7Default;
        if (was_active || debugreg_active(v)) sync(v);
        return 0;
    }
    default:
        return err(abi::Errno::enodev);
    }
}

long debugreg_get(const Vcpu& v, uint64_t reg, uint64_t* value) {
    switch (reg) {
    case 0: case 1: case 2: case 3: case 6: case 7:
        *value = v.dr[reg];
        return 0;
    case 4: case 5:
        if (!alias_ok(v)) return err(abi::Errno::enodev);
        *value = v.dr[reg + 2];
        return 0;
    default:
        return err(abi::Errno::enodev);
    }
}

void debugreg_guest_trap(Vcpu& v, uint64_t hw_dr6) {
    // Status bits accumulate until the guest clears them; bits that read as
    // one when clear (RTM) follow the CPU. Xen's merge.
    v.dr[6] |= hw_dr6 & kDr6Status;
    v.dr[6] &= hw_dr6 | ~kDr6Default;
    v.dr[6] &= 0xFFFFFFFF;
}

int64_t hc_set_debugreg(Vcpu& v, Regs& r) { return debugreg_set(v, r.rdi, r.rsi); }

int64_t hc_get_debugreg(Vcpu& v, Regs& r) {
    uint64_t value;
    long rc = debugreg_get(v, r.rdi, &value);
    // The value itself is the result (a breakpoint address in the upper half
    // reads as negative, as under Xen).
    return rc != 0 ? rc : static_cast<int64_t>(value);
}

}  // namespace core
