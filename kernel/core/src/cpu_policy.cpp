// The CPU a PV guest sees: its CPUID leaves and its MSRs (core/emulate.hpp).
// After Xen's PV policy (xen/arch/x86/cpu-policy.c, msr.c): what a guest
// kernel in ring 3 cannot use, or what Moat does not save and restore per
// vCPU (XSAVE state beyond FXSAVE), is hidden, so the guest never relies on it.

#include <core/emulate.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>

#include <abi/hypercall_page.hpp>

namespace core {

namespace {

constexpr uint32_t bit(unsigned n) { return 1u << n; }

// Leaf 1, ECX: SSE3, PCLMULQDQ, SSSE3, CX16, SSE4.1, SSE4.2, MOVBE, POPCNT,
// AES, RDRAND. Hidden: monitoring, VMX/SMX, power management, FMA/F16C/AVX
// (YMM state), XSAVE/OSXSAVE, PCID, x2APIC, TSC deadline, debug store.
constexpr uint32_t kLeaf1Ecx = bit(0) | bit(1) | bit(9) | bit(13) | bit(19) | bit(20) | bit(22) | bit(23) | bit(25) |
                               bit(30);
constexpr uint32_t kHypervisor = bit(31);
// Leaf 1, EDX: FPU, DE, TSC, MSR, PAE, CX8, SEP, CMOV, PAT, CLFSH, MMX, FXSR,
// SSE, SSE2, SS. Hidden: VME, PSE/PSE36 (no superpages), MCE/MCA, APIC,
// MTRR, PGE (no global pages), PSN, DS, ACPI, HTT, TM, PBE.
constexpr uint32_t kLeaf1Edx = bit(0) | bit(2) | bit(4) | bit(5) | bit(6) | bit(8) | bit(11) | bit(15) | bit(16) |
                               bit(19) | bit(23) | bit(24) | bit(25) | bit(26) | bit(27);
// Leaf 7.0, EBX: BMI1, BMI2, ERMS, FDP_EXCPTN_ONLY, FPU CS/DS deprecation,
// RDSEED, ADX, CLFLUSHOPT, CLWB, SHA. Hidden: FSGSBASE, TSC_ADJUST, SGX,
// HLE/RTM, AVX2/AVX-512, SMEP/SMAP, INVPCID, MPX, resource monitoring, PT.
constexpr uint32_t kLeaf7Ebx = bit(3) | bit(6) | bit(8) | bit(9) | bit(13) | bit(18) | bit(19) | bit(23) | bit(24) |
                               bit(29);
// 0x80000001 ECX: LAHF, ABM, SSE4A, 3DNow prefetch, TBM; EDX: SYSCALL, NX,
// MMXEXT, FFXSR, LM. Hidden: SVM, 1 GiB pages, RDTSCP (TSC_AUX is not per vCPU), ...
constexpr uint32_t kExt1Ecx = bit(0) | bit(5) | bit(6) | bit(8) | bit(21);
constexpr uint32_t kExt1Edx = bit(11) | bit(20) | bit(22) | bit(25) | bit(29);

constexpr uint32_t kXenLeafBase = 0x40000000;
constexpr uint32_t kXenLeafMax = 0x40000004;
// "XenVMMXenVMM"
constexpr uint32_t kXenSigEbx = 0x566e6558, kXenSigEcx = 0x65584d4d, kXenSigEdx = 0x4d4d566e;
constexpr uint32_t kXenVersion = (4u << 16) | 21;
constexpr uint32_t kHypercallPageMsr = 0x40000000;
constexpr uint32_t kTscModeNeverEmulate = 2;

constexpr uint32_t kMsrTsc = 0x10, kMsrApicBase = 0x1B, kMsrMiscEnable = 0x1A0, kMsrPat = 0x277;
constexpr uint32_t kMsrEfer = 0xC0000080, kMsrFsBase = 0xC0000100, kMsrGsBase = 0xC0000101,
                   kMsrShadowGsBase = 0xC0000102;
// MISC_ENABLE as Xen shows it: fast strings, and no branch trace or PEBS.
constexpr uint64_t kMiscEnable = bit(0) | bit(11) | bit(12);

uint64_t guest_efer() {
    uint32_t r[4];
    platform::cpuid(0x80000001, 0, r);
    return 1u | (1u << 8) | (1u << 10) | ((r[3] & bit(20)) ? (1u << 11) : 0);   // SCE LME LMA [NXE]
}

// Writes the hypercall page (the MSR at 0x40000000 names one of the guest's
// frames, as under Xen for PV guests without the ELF note).
bool write_hypercall_page_msr(Vcpu& v, uint64_t value) {
    if (value & 0xFFF) return false;   // page 0 of one page, no flags
    Mfn m = value >> 12;
    Budget b{kHypercallBudget};
    MmCtx c{*v.domain, v, b};
    if (get_page_and_type(c, m, PageType::writable) != 0) return false;
    abi::write_hypercall_page(frame_va<uint8_t>(m));
    put_page_and_type(c, m);
    return true;
}

}  // namespace

void guest_cpuid(const Domain& d, uint32_t leaf, uint32_t sub, uint32_t out[4]) {
    (void)d;
    out[0] = out[1] = out[2] = out[3] = 0;
    if (leaf >= kXenLeafBase && leaf <= kXenLeafMax) {
        switch (leaf - kXenLeafBase) {
        case 0:
            out[0] = kXenLeafMax;
            out[1] = kXenSigEbx;
            out[2] = kXenSigEcx;
            out[3] = kXenSigEdx;
            break;
        case 1: out[0] = kXenVersion; break;
        case 2: out[0] = 1; out[1] = kHypercallPageMsr; break;   // one hypercall page, by this MSR
        case 3:   // time: TSC never emulated, its rate
            out[1] = kTscModeNeverEmulate;
            out[2] = uint32_t(platform::tsc_khz());
            break;
        default: break;   // HVM features: none
        }
        return;
    }
    uint32_t max_basic[4], max_ext[4];
    platform::cpuid(0, 0, max_basic);
    platform::cpuid(0x80000000, 0, max_ext);
    uint32_t basic_max = max_basic[0] < 0xD ? max_basic[0] : 0xD;
    uint32_t ext_max = max_ext[0] < 0x80000008 ? max_ext[0] : 0x80000008;
    if (leaf < 0x80000000 ? leaf > basic_max : leaf > ext_max) return;
    uint32_t h[4];
    platform::cpuid(leaf, sub, h);
    switch (leaf) {
    case 0:
        out[0] = basic_max;
        out[1] = h[1];
        out[2] = h[2];
        out[3] = h[3];
        break;
    case 1:
        out[0] = h[0];
        out[1] = (h[1] & 0x0000FFFF) | (1u << 16);   // one logical CPU, APIC id 0
        out[2] = (h[2] & kLeaf1Ecx) | kHypervisor;
        out[3] = h[3] & kLeaf1Edx;
        break;
    case 2:
        out[0] = h[0]; out[1] = h[1]; out[2] = h[2]; out[3] = h[3];
        break;
    case 4:   // cache parameters: one core per package
        out[0] = h[0] & 0x03FFFFFF & ~(0xFFFu << 14);
        out[1] = h[1]; out[2] = h[2]; out[3] = h[3];
        break;
    case 7:
        if (sub == 0) out[1] = h[1] & kLeaf7Ebx;   // max subleaf 0; ECX, EDX (speculation controls): none
        break;
    case 0x80000000:
        out[0] = ext_max;
        out[1] = h[1]; out[2] = h[2]; out[3] = h[3];
        break;
    case 0x80000001:
        out[0] = h[0];
        out[2] = h[2] & kExt1Ecx;
        out[3] = h[3] & kExt1Edx;
        break;
    case 0x80000002: case 0x80000003: case 0x80000004:   // brand string
    case 0x80000005: case 0x80000006:                    // caches
        out[0] = h[0]; out[1] = h[1]; out[2] = h[2]; out[3] = h[3];
        break;
    case 0x80000007:
        out[3] = h[3] & bit(8);   // invariant TSC
        break;
    case 0x80000008:
        out[0] = h[0] & 0xFFFF;   // address sizes; no AMD speculation features, one core
        break;
    default:
        break;   // monitor, power, performance counters, topology, XSAVE: none
    }
}

bool guest_rdmsr(Vcpu& v, uint32_t msr, uint64_t* value) {
    switch (msr) {
    case kMsrFsBase: *value = platform::read_fs_base(); return true;
    case kMsrGsBase: *value = v.kernel_mode ? v.gs_base_kernel : v.gs_base_user; return true;
    case kMsrShadowGsBase: *value = v.kernel_mode ? v.gs_base_user : v.gs_base_kernel; return true;
    case kMsrEfer: *value = guest_efer(); return true;
    case kMsrPat: *value = kXenPat; return true;
    case kMsrMiscEnable: *value = kMiscEnable; return true;
    case kMsrTsc: *value = platform::tsc(); return true;
    default: return false;
    }
}

bool guest_wrmsr(Vcpu& v, uint32_t msr, uint64_t value) {
    switch (msr) {
    case kMsrFsBase:
        if (!is_canonical(value)) return false;
        v.fs_base = value;
        platform::set_fs_base(value);
        return true;
    case kMsrGsBase:   // the active one
    case kMsrShadowGsBase: {
        if (!is_canonical(value)) return false;
        bool active = msr == kMsrGsBase;
        bool kernel = active == v.kernel_mode;
        (kernel ? v.gs_base_kernel : v.gs_base_user) = value;
        if (active) platform::set_active_gs_base(value);
        return true;
    }
    case kMsrEfer: return value == guest_efer();   // nothing a PV guest may change
    case kMsrPat: return value == kXenPat;
    case kMsrMiscEnable: return value == kMiscEnable;
    case kHypercallPageMsr: return write_hypercall_page_msr(v, value);
    case kMsrApicBase:
    default:
        return false;
    }
}

}  // namespace core
