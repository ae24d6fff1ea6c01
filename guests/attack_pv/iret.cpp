// The iret hypercall (kernel/core/src/hc_traps.cpp hc_iret) with frames the
// CPU would refuse.
//
// What must hold: the hypervisor never executes an iretq the CPU refuses (a
// fault there is a fault in the hypervisor). A frame naming the
// hypervisor's selectors, a null, LDT or out-of-range one, a data segment as
// CS or code as SS, a 16-bit, not-present or read-only segment of the
// guest's own GDT, or a non-canonical rip goes to the guest's failsafe
// callback (as the faulting iretq does under Xen), in kernel or user mode;
// rflags come back with IOPL 0 and without NT, VM, VIF, VIP, and IF set (the
// guest's IF is its event mask only); a canonical rip in the hypervisor's
// range is a page fault of the guest's own. Frames the hypervisor cannot
// read, or a failsafe frame it cannot write (a non-canonical or read-only
// stack), or no failsafe callback, or user mode without user page tables,
// crash the domain -- that is role=iret_crash, one domain per way, each
// expected to end with its own "crashed:" line and be taken apart cleanly.

#include "env.hpp"

namespace pv {

namespace {

alignas(16) uint8_t g_alt[16384];
uint64_t alt_top() { return rt::ptr(g_alt + sizeof g_alt); }

constexpr uint64_t kIf = 0x200, kIopl = 0x3000, kNt = 0x4000, kVm = 0x20000, kVif = 0x80000, kVip = 0x100000,
                   kId = 0x200000;

struct Outcome {
    uint64_t failsafe, landing, faults;
    uint8_t mask;   // our event mask as the iret left it
};

Outcome try_frame(uint64_t rip, uint64_t cs, uint64_t rflags, uint64_t rsp, uint64_t ss, uint64_t flags = 0,
                  bool resume_on_fault = false) {
    uint64_t f[6] = {flags, rip, cs, rflags, rsp, ss};
    uint64_t fs0 = g_failsafe_hits, l0 = g_landing_hits;
    arm();
    if (resume_on_fault) g_resume = rt::ptr(&pv_resume_kctx);
    pv_iret_try(f);
    g_resume = 0;
    // Events: the frame's IF was the event mask.
    uint8_t mask = rt::vcpu_info().evtchn_upcall_mask;
    rt::vcpu_info().evtchn_upcall_mask = 0;
    return Outcome{g_failsafe_hits - fs0, g_landing_hits - l0, g_caught.count, mask};
}

uint64_t g_gdt;
// Entry 8 of our GDT: 32-bit code, limit 4 KiB (byte granular).
constexpr uint64_t kSmallCompatCs = 0x43;
constexpr uint64_t kSmallLimit = 0xFFF;

void legit() {
    Outcome a = try_frame(rt::ptr(&pv_iret_landing), kKernelCs, kIf | 2, alt_top(), kFlatDs);
    bool flat = a.landing == 1 && a.failsafe == 0 && g_landing[1] == kFlatCs64 && g_landing[2] == kFlatDs;
    Outcome b = try_frame(rt::ptr(&pv_iret_landing), 0x08, kIf | 2, alt_top(), 0x10);
    bool own = b.landing == 1 && b.failsafe == 0 && g_landing[1] == 0x0b && g_landing[2] == 0x13;
    (void)rt::hypercall(abi::Hypercall::xen_version, 0);   // back on the flat selectors (sysret)
    Outcome c = try_frame(rt::ptr(&pv_iret_landing_user), kFlatCs64, kIf | 2, alt_top(), kFlatDs);
    bool user = c.landing == 1 && c.failsafe == 0 && g_landing[1] == kFlatCs64;
    Outcome d = try_frame(rt::ptr(&pv_iret_landing), kKernelCs, kIf | 2, alt_top(), kFlatDs, abi::kVgcfInSyscall);
    bool in_syscall = d.landing == 1 && d.failsafe == 0;
    check(flat && own && user && in_syscall, "attack.pv.iret.legit_frames_land",
          "flat %d, own GDT selectors %d (cs %#lx ss %#lx), user mode %d, VGCF_in_syscall %d", flat, own, g_landing[1],
          g_landing[2], user, in_syscall);
}

void bad_frames() {
    const uint64_t land = rt::ptr(&pv_iret_landing), top = alt_top();
    struct {
        const char* what;
        uint64_t rip, cs, ss;
    } cases[] = {
        {"the hypervisor's code selector", land, kHypCs, kFlatDs},
        {"the hypervisor's TSS", land, kHypTss, kFlatDs},
        {"the flat data selector as CS", land, kFlatDs & ~3, kFlatDs},
        {"a reserved hypervisor slot", land, 0xe018, kFlatDs},
        {"the hypervisor's data selector as SS", land, kKernelCs, kHypDs},
        {"the flat code selector as SS", land, kKernelCs, kFlatCs64},
        {"a null CS", land, 0, kFlatDs},
        {"a null SS", land, kKernelCs, 0},
        {"a CS past the GDT", land, 0xfff8, kFlatDs},
        {"an LDT selector", land, 0x0c, kFlatDs},
        {"our 16-bit code segment", land, 0x18, kFlatDs},
        {"our not-present code segment", land, 0x20, kFlatDs},
        {"our data segment as CS", land, 0x10, kFlatDs},
        {"our code segment as SS", land, kKernelCs, 0x08},
        {"our read-only data segment as SS", land, kKernelCs, 0x28},
        {"our not-present data segment as SS", land, kKernelCs, 0x38},
        {"a non-canonical rip", 0x0000800000000000ull, kKernelCs, kFlatDs},
        {"a non-canonical rip (top bit)", 0x8000000000000000ull, kKernelCs, kFlatDs},
        {"a non-canonical rip (below the upper half)", 0xFFFF7FFFFFFFF000ull, kKernelCs, kFlatDs},
    };
    unsigned ok = 0, n = 0;
    for (auto& c : cases) {
        ++n;
        Outcome o = try_frame(c.rip, c.cs, kIf | 2, top, c.ss);
        bool good = o.failsafe == 1 && o.landing == 0 && g_failsafe_frame[6] == c.rip;
        ok += good;
        if (!good)
            rt::printf("evidence: iret with %s: failsafe %lu, landed %lu, faults %lu (failsafe rip %#lx)\n", c.what,
                       o.failsafe, o.landing, o.faults, g_failsafe_frame[6]);
    }
    check(ok == n, "attack.pv.iret.bad_kernel_frames_to_failsafe", "%u of %u went to the failsafe callback", ok, n);

    // The same towards user mode (RPL 3): toggled, then back to the kernel's failsafe.
    struct {
        const char* what;
        uint64_t rip, cs, ss;
    } user[] = {
        {"the hypervisor's code selector", rt::ptr(&pv_iret_landing_user), kHypCs | 3, kFlatDs},
        {"the flat data selector as CS", rt::ptr(&pv_iret_landing_user), kFlatDs, kFlatDs},
        {"the hypervisor's data selector as SS", rt::ptr(&pv_iret_landing_user), kFlatCs64, kHypDs | 3},
        {"a non-canonical rip", 0x0000800000000000ull, kFlatCs64, kFlatDs},
    };
    unsigned uok = 0, un = 0;
    for (auto& c : user) {
        ++un;
        Outcome o = try_frame(c.rip, c.cs, kIf | 2, top, c.ss);
        bool good = o.failsafe == 1 && o.landing == 0 && g_failsafe_frame[6] == c.rip;
        uok += good;
        if (!good)
            rt::printf("evidence: iret to user mode with %s: failsafe %lu, landed %lu, faults %lu\n", c.what, o.failsafe,
                       o.landing, o.faults);
    }
    check(uok == un, "attack.pv.iret.bad_user_frames_to_failsafe", "%u of %u went to the failsafe callback", uok, un);
}

void rflags() {
    const uint64_t land = rt::ptr(&pv_iret_landing), top = alt_top();
    Outcome a = try_frame(land, kKernelCs, kIf | 2 | kIopl | kNt | kVm | kVif | kVip | kId, top, kFlatDs);
    uint64_t f = g_landing[0];
    bool clean = a.landing == 1 && !(f & (kIopl | kNt | kVm | kVif | kVip)) && (f & kIf);
    // With IOPL really 0 (and no virtual IOPL), port I/O is the #GP it causes.
    arm();
    uint8_t v = 0;
    asm volatile(PV_PROBE_BEGIN "inb $0x64, %%al" PV_PROBE_END : "+a"(v) : : "r11", "memory");
    bool gp = g_caught.count == 1 && g_caught.vector == 13;
    check(clean && gp, "attack.pv.iret.rflags_sanitized", "landed %lu with rflags %#lx; port I/O faulted %d", a.landing, f,
          gp);

    // IF clear: the guest's events are masked, the CPU's interrupts are not.
    Outcome b = try_frame(land, kKernelCs, 2, top, kFlatDs);
    uint64_t f2 = g_landing[0];
    check(b.landing == 1 && (f2 & kIf) && b.mask == 1, "attack.pv.iret.if_clear_masks_events_only",
          "landed %lu with rflags %#lx, event mask %u", b.landing, f2, b.mask);
    if (rt::vcpu_info().evtchn_upcall_pending) (void)rt::hypercall(abi::Hypercall::xen_version, 0);
}

// A canonical rip in the hypervisor's range, or one nothing maps: accepted,
// and the fetch is a page fault of ours.
void hypervisor_rip() {
    const uint64_t rips[] = {attack::kKernelVirt, attack::kDirectMapVirt + 0x100000, attack::kHypervisorTop,
                             0x0000100000000000ull};
    unsigned ok = 0, n = 0;
    for (uint64_t rip : rips) {
        ++n;
        Outcome o = try_frame(rip, kKernelCs, kIf | 2, alt_top(), kFlatDs, 0, true);
        bool good = o.faults == 1 && g_caught.vector == 14 && g_caught.rip == rip && o.failsafe == 0;
        ok += good;
        if (!good)
            rt::printf("evidence: iret to %#lx: faults %lu (vector %lu at %#lx), failsafe %lu\n", rip, o.faults,
                       g_caught.vector, g_caught.rip, o.failsafe);
    }
    check(ok == n, "attack.pv.iret.hypervisor_rip_faults_in_guest", "%u of %u were a page fault of ours", ok, n);
}

// A compat code segment of ours whose limit ends below the frame's rip:
// the iret hypercall takes the selector (present, DPL 3, 32-bit code), and
// a real CPU refuses the exit iretq itself (#GP(0): rip past the CS limit),
// in the hypervisor. That fault must come back as ours: the failsafe
// callback, as under Xen, whose exit iretq has the same fixup. (QEMU's TCG
// checks no code segment limit in long mode: there the iretq goes through
// and the fetch at that rip, where nothing is mapped, is our page fault.)
void compat_rip_past_limit() {
    constexpr uint64_t kRip = 0x2000;   // past the segment's 4 KiB; nothing mapped there
    Outcome o = try_frame(kRip, kSmallCompatCs, kIf | 2, alt_top(), kFlatDs, 0, true);
    bool refused = o.failsafe == 1 && o.faults == 0 && g_failsafe_frame[6] == kRip &&
                   (g_failsafe_frame[7] & 0xFFFF) == kSmallCompatCs;
    bool fetched = o.failsafe == 0 && o.faults == 1 && g_caught.rip == kRip;
    if (fetched) rt::printf("note: the CPU took the iretq past the code segment's limit (QEMU)\n");
    check(o.landing == 0 && (refused || fetched), "attack.pv.iret.compat_rip_past_limit_contained",
          "failsafe %lu (frame rip %#lx cs %#lx), landed %lu, faults %lu (vector %lu at %#lx)", o.failsafe,
          g_failsafe_frame[6], g_failsafe_frame[7], o.landing, o.faults, g_caught.vector, g_caught.rip);
}

void in_multicall() {
    abi::MulticallEntry e[2] = {};
    e[0].op = uint64_t(abi::Hypercall::iret);
    e[0].result = 0x1234;
    e[1].op = uint64_t(abi::Hypercall::xen_version);
    e[1].result = 0x1234;
    long r = rt::hypercall(abi::Hypercall::multicall, rt::ptr(e), 2);
    check(r == 0 && long(e[0].result) == kEinval && long(e[1].result) > 0, "attack.pv.iret.multicall_refused",
          "multicall %ld, iret entry %ld, next %ld", r, long(e[0].result), long(e[1].result));
}

}  // namespace

void scenario_iret() {
    if (!setup_modes()) return;
    // Our GDT: 1 64-bit code (0x0b), 2 data (0x13), 3 16-bit code, 4 64-bit
    // code not present, 5 read-only data, 6 compat code, 7 data not present,
    // 8 compat code with a 4 KiB limit.
    g_gdt = spare_frame();
    uint64_t d[9] = {0,
                     code64(3),
                     data(3),
                     kLimitFlat | kDescP | kDescS | desc_dpl(3) | desc_type(0xA),
                     code64(3) & ~kDescP,
                     kLimitFlat | kDescG | kDescDb | kDescP | kDescS | desc_dpl(3) | desc_type(0x0),
                     code32(3),
                     data(3) & ~kDescP,
                     kSmallLimit | kDescDb | kDescP | kDescS | desc_dpl(3) | desc_type(0xA)};
    bool filled = fill_frame(g_gdt, d, 9);
    uint64_t fl[1] = {g_gdt};
    long r = set_gdt(fl, 9);
    check(filled && r == 0, "attack.pv.iret.gdt", "set_gdt %ld", r);
    legit();
    bad_frames();
    rflags();
    hypervisor_rip();
    compat_rip_past_limit();
    in_multicall();
    (void)rt::hypercall(abi::Hypercall::xen_version, 0);
}

// One way to crash ourselves per domain (how=...): each must end this
// domain with the hypervisor's "crashed:" line, never return here.
void scenario_iret_crash(const char* how) {
    auto is = [&](const char* s) {
        size_t i = 0;
        for (; s[i] && how[i] == s[i]; ++i) {
        }
        return s[i] == 0 && how[i] == 0;
    };
    if (!setup_modes()) return;
    rt::printf("iret_crash: %s: about to\n", how);
    uint64_t top = alt_top();
    if (is("frame_hv") || is("frame_unmapped")) {
        uint64_t bad = is("frame_hv") ? attack::kDirectMapVirt : 0x0000100000000000ull;
        asm volatile("movq %0, %%rsp\n\tmovl $23, %%eax\n\tsyscall\n\tud2" : : "r"(bad) : "memory", "rax", "rcx", "r11");
    } else if (is("no_failsafe")) {
        (void)rt::hypercall(abi::Hypercall::set_callbacks, rt::event_entry_address(), 0, rt::ptr(&pv_syscall_entry));
        uint64_t f[6] = {0, rt::ptr(&pv_iret_landing), kHypCs, kIf | 2, top, kFlatDs};
        pv_iret_try(f);
    } else if (is("bad_stack")) {
        uint64_t f[6] = {0, rt::ptr(&pv_iret_landing), kHypCs, kIf | 2, 0x8000000000000000ull, kFlatDs};
        pv_iret_try(f);
    } else if (is("frame_readonly")) {
        // The failsafe frame would go onto our L4 (mapped read-only): the
        // hypervisor cannot write it there, and must not.
        Tables t = own_tables();
        uint64_t f[6] = {0, rt::ptr(&pv_iret_landing), kHypCs, kIf | 2, rt::ptr(t.ro[4]) + 4096, kFlatDs};
        pv_iret_try(f);
        rt::printf("evidence: the failsafe callback ran on a stack in our L4: the hypervisor wrote its frame into a page "
                   "table (L4 words 500-511 now %#lx %#lx)\n",
                   t.ro[4][501], t.ro[4][502]);
    } else if (is("user_no_tables")) {
        long r = mmuext1(abi::MmuextCmd::new_user_baseptr, 0);
        rt::printf("iret_crash: no user page tables (%ld)\n", r);
        uint64_t f[6] = {0, rt::ptr(&pv_iret_landing_user), kFlatCs64, kIf | 2, top, kFlatDs};
        pv_iret_try(f);
    } else {
        check(false, "attack.pv.iret_crash.how", "unknown way '%s'", how);
        return;
    }
    check(false, "attack.pv.iret_crash.survived", "%s: the domain was not crashed", how);
}

}  // namespace pv
