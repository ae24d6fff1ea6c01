// Exercises the Xen PV x86-64 ABI as Moat implements it: start-of-day state,
// every hypercall of the foundation, and exception and event delivery. One
// line per check: "PASS name" or "FAIL name: why". The system test reads them.

#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>
#include <rt/traps.hpp>

#include <abi/errno.hpp>
#include <abi/memory.hpp>
#include <abi/x86_64.hpp>
#include <base/format.hpp>

namespace {

using abi::Hypercall;

using rt::check;

constexpr long err(abi::Errno e) { return abi::neg(e); }

bool str_eq(const char* a, const char* b) {
    while (*a && *a == *b) { ++a; ++b; }
    return *a == *b;
}

bool contains(const char* hay, const char* needle) {
    for (; *hay; ++hay) {
        const char *h = hay, *n = needle;
        while (*n && *h == *n) { ++h; ++n; }
        if (!*n) return true;
    }
    return false;
}

// An address no domain ever has mapped: in the hypervisor's own slots.
constexpr uint64_t kHypervisorAddress = 0xFFFF830000001000ull;
// A lower-half address that is not mapped in this domain (page 0).
constexpr uint64_t kUnmappedAddress = 0x10;

// --- exceptions -----------------------------------------------------------

struct Seen {
    unsigned count;
    uint64_t vector, error_code, rip, cr2;
};
Seen g_seen;
uint64_t g_resume;   // where a handler continues after a deliberate fault

bool record_and_resume(rt::TrapFrame& f) {
    ++g_seen.count;
    g_seen.vector = f.vector;
    g_seen.error_code = f.error_code;
    g_seen.rip = f.rip;
    g_seen.cr2 = rt::vcpu_info().arch.cr2;
    if (g_resume) f.rip = g_resume;
    return true;
}

bool record_only(rt::TrapFrame& f) {
    ++g_seen.count;
    g_seen.vector = f.vector;
    g_seen.error_code = f.error_code;
    g_seen.rip = f.rip;
    return true;
}

// Runs `body` (inline asm with a label 2: to resume at) and returns what the
// handler saw.
#define FAULT_AT(label_addr_out, asm_body, ...)                                        \
    do {                                                                               \
        g_seen = Seen{};                                                               \
        asm volatile("lea 1f(%%rip), %%rax\n"                                          \
                     "mov %%rax, %[fault]\n"                                           \
                     "lea 2f(%%rip), %%rax\n"                                          \
                     "mov %%rax, %[resume]\n"                                          \
                     "1: " asm_body "\n"                                               \
                     "2:\n"                                                            \
                     : [fault] "=m"(label_addr_out), [resume] "=m"(g_resume)           \
                     : __VA_ARGS__                                                     \
                     : "rax", "memory");                                               \
        g_resume = 0;                                                                  \
    } while (0)

void test_start_info() {
    const abi::StartInfo& si = rt::start_info();
    check(str_eq(reinterpret_cast<const char*>(si.magic), "xen-3.0-x86_64"), "start_info.magic");
    check(si.nr_pages == 8u << 20 >> 12, "start_info.nr_pages", "nr_pages %ld, expected 2048 (mem=8M)", long(si.nr_pages));
    check(str_eq(reinterpret_cast<const char*>(si.cmd_line), "mem=8M abi-test"), "start_info.cmd_line",
          "got something else");
    check(si.shared_info != 0 && (si.shared_info & 4095) == 0, "start_info.shared_info");
    check(si.pt_base >= 0x400000 && (si.pt_base & 4095) == 0 && si.nr_pt_frames >= 4, "start_info.pt_base",
          "pt_base %#lx, %ld frames", long(si.pt_base), long(si.nr_pt_frames));
    // The bootstrap L4 maps our image: its entry for 4 MiB is present.
    const uint64_t* l4 = reinterpret_cast<const uint64_t*>(si.pt_base);
    check(l4[0] & 1, "start_info.pt_base_maps_image");

    const uint64_t* p2m = reinterpret_cast<const uint64_t*>(si.mfn_list);
    bool p2m_ok = si.mfn_list > 0x400000 && si.mfn_list < si.pt_base;
    for (uint64_t i = 0; p2m_ok && i < si.nr_pages; ++i) p2m_ok = p2m[i] != 0 && p2m[i] < (1ull << 40);
    check(p2m_ok, "start_info.mfn_list");

    // Order of the bootstrap region: P2M, start_info, page tables, stack.
    uint64_t si_va = reinterpret_cast<uint64_t>(&si);
    check(si.mfn_list + si.nr_pages * 8 <= si_va && si_va + 4096 == si.pt_base, "start_info.layout",
          "start_info at %#lx, pt_base %#lx", long(si_va), long(si.pt_base));
}

void test_shared_info() {
    // rt mapped the shared info page at start of day with update_va_mapping.
    check(rt::shared_info().arch.max_pfn == rt::start_info().nr_pages, "shared_info.mapped",
          "max_pfn %ld", long(rt::shared_info().arch.max_pfn));
    check(rt::vcpu_info().evtchn_upcall_mask == 1, "shared_info.events_masked_at_start");
}

void test_xen_version() {
    long v = rt::hypercall(Hypercall::xen_version, uint64_t(abi::XenVersion::version), 0);
    check(v == (4 << 16 | 21), "xen_version.version", "got %#lx", v);

    char extra[abi::kXenExtraversionLen] = {};
    long r = rt::hypercall(Hypercall::xen_version, uint64_t(abi::XenVersion::extraversion), rt::ptr(extra));
    check(r == 0 && str_eq(extra, "-moat"), "xen_version.extraversion", "rc %ld", r);

    static char caps[1024];
    r = rt::hypercall(Hypercall::xen_version, uint64_t(abi::XenVersion::capabilities), rt::ptr(caps));
    check(r == 0 && contains(caps, "xen-3.0-x86_64"), "xen_version.capabilities", "rc %ld", r);

    r = rt::hypercall(Hypercall::xen_version, 1000, 0);
    check(r == err(abi::Errno::enosys), "xen_version.unknown_subop_enosys", "rc %ld", r);
    r = rt::hypercall(Hypercall::xen_version, uint64_t(abi::XenVersion::extraversion), kHypervisorAddress);
    check(r == err(abi::Errno::efault), "xen_version.hypervisor_pointer_efault", "rc %ld", r);
    r = rt::hypercall(Hypercall::xen_version, uint64_t(abi::XenVersion::capabilities), kUnmappedAddress);
    check(r == err(abi::Errno::efault), "xen_version.unmapped_pointer_efault", "rc %ld", r);
}

void test_console_io() {
    static const char msg[] = "console_io write works\n";
    long r = rt::console_write(msg, sizeof msg - 1);
    check(r == 0, "console_io.write", "rc %ld", r);
    r = rt::hypercall(Hypercall::console_io, uint64_t(abi::ConsoleIo::write), 16, kHypervisorAddress);
    check(r == err(abi::Errno::efault), "console_io.bad_pointer_efault", "rc %ld", r);
    r = rt::hypercall(Hypercall::console_io, 77, 0, 0);
    check(r == err(abi::Errno::enosys), "console_io.unknown_subop_enosys", "rc %ld", r);
}

void test_unknown_hypercalls() {
    long r = rt::hypercall(Hypercall::xenoprof_op, 0, 0);
    check(r == err(abi::Errno::enosys), "hypercall.unimplemented_enosys", "rc %ld", r);
    r = rt::raw_hypercall(1000, 0, 0, 0);
    check(r == err(abi::Errno::enosys), "hypercall.out_of_range_enosys", "rc %ld", r);
    r = rt::raw_hypercall(~0ull, 0, 0, 0);
    check(r == err(abi::Errno::enosys), "hypercall.huge_number_enosys", "rc %ld", r);
}

void test_sched_op() {
    long r = rt::sched_op(abi::SchedOp::yield);
    check(r == 0, "sched_op.yield", "rc %ld", r);
    r = rt::sched_op(abi::SchedOp::shutdown, reinterpret_cast<void*>(kHypervisorAddress));
    check(r == err(abi::Errno::efault), "sched_op.shutdown_bad_pointer_efault", "rc %ld", r);
    abi::SchedShutdown bad{99};
    r = rt::sched_op(abi::SchedOp::shutdown, &bad);
    check(r == err(abi::Errno::einval), "sched_op.shutdown_bad_reason_einval", "rc %ld", r);
    r = rt::hypercall(Hypercall::sched_op, 1234, 0);
    check(r == err(abi::Errno::enosys), "sched_op.unknown_subop_enosys", "rc %ld", r);
}

void test_trap_table() {
    long r = rt::hypercall(Hypercall::set_trap_table, kHypervisorAddress);
    check(r == err(abi::Errno::efault), "set_trap_table.bad_pointer_efault", "rc %ld", r);

    // More entries than one call handles: the hypercall continues itself.
    static abi::TrapInfo big[150];
    for (unsigned i = 0; i < 149; ++i)
        big[i] = abi::TrapInfo{uint8_t(0x90 + (i % 16)), 0, abi::kFlatKernelCs, rt::trap_entry_address(0x90 + (i % 16))};
    big[149] = abi::TrapInfo{};
    r = rt::hypercall(Hypercall::set_trap_table, rt::ptr(big));
    check(r == 0, "set_trap_table.long_table_continues", "rc %ld", r);

    abi::TrapInfo bad[2] = {{6, 0, abi::kFlatKernelCs, 0xFFFF830000000000ull}, {}};
    r = rt::hypercall(Hypercall::set_trap_table, rt::ptr(bad));
    check(r == err(abi::Errno::einval), "set_trap_table.hypervisor_handler_einval", "rc %ld", r);
}

void test_exceptions() {
    uint64_t at = 0;

    check(rt::set_trap_handler(6, record_and_resume) == 0, "set_trap_table.register");
    FAULT_AT(at, "ud2", "i"(0));
    check(g_seen.count == 1 && g_seen.vector == 6 && g_seen.rip == at, "exception.ud_bounced",
          "count %ld, rip matches %ld", long(g_seen.count), long(g_seen.rip == at));

    rt::set_trap_handler(14, record_and_resume);
    const uint64_t pt = rt::start_info().pt_base;   // mapped read-only
    FAULT_AT(at, "movq $0, (%[p])", [p] "r"(pt));
    check(g_seen.count == 1 && g_seen.vector == 14 && g_seen.cr2 == pt, "exception.pf_cr2",
          "cr2 %#lx expected %#lx", long(g_seen.cr2), long(pt));
    // Present + write, reported as a kernel-mode access.
    check(g_seen.error_code == 3, "exception.pf_error_code", "error code %#lx", long(g_seen.error_code));

    FAULT_AT(at, "movq (%[p]), %%rax", [p] "r"(uint64_t(0x1000)));
    check(g_seen.count == 1 && g_seen.cr2 == 0x1000 && g_seen.error_code == 0, "exception.pf_not_present",
          "cr2 %#lx error %#lx", long(g_seen.cr2), long(g_seen.error_code));

    rt::set_trap_handler(0, record_and_resume);
    FAULT_AT(at, "divq %[z]", [z] "r"(uint64_t(0)));
    check(g_seen.count == 1 && g_seen.vector == 0 && g_seen.rip == at, "exception.de_bounced");

    rt::set_trap_handler(13, record_and_resume);
    FAULT_AT(at, "hlt", "i"(0));
    check(g_seen.count == 1 && g_seen.vector == 13 && g_seen.error_code == 0 && g_seen.rip == at,
          "exception.gp_bounced", "error code %#lx", long(g_seen.error_code));

    // int $0x80 through a trap-table entry with DPL 3: delivered as vector
    // 0x80, returning after the instruction.
    rt::set_trap_handler(0x80, record_only, 3);
    g_seen = Seen{};
    uint64_t after = 0;
    asm volatile("int $0x80\n1: lea 1b(%%rip), %%rax\n mov %%rax, %0" : "=m"(after) : : "rax", "memory");
    check(g_seen.count == 1 && g_seen.vector == 0x80 && g_seen.rip == after, "exception.int80_soft_interrupt",
          "count %ld vector %#lx", long(g_seen.count), long(g_seen.vector));

    // int $0x81 with a DPL-0 entry: the guest may not raise it, so it sees
    // #GP with the IDT error code 0x81 * 8 + 2.
    rt::set_trap_handler(0x81, record_only, 0);
    FAULT_AT(at, "int $0x81", "i"(0));
    check(g_seen.count == 1 && g_seen.vector == 13 && g_seen.error_code == 0x81 * 8 + 2, "exception.int_dpl0_gp",
          "vector %ld error %#lx", long(g_seen.vector), long(g_seen.error_code));
}

// --- events ----------------------------------------------------------------

unsigned g_events;
void on_event(rt::TrapFrame&) {
    ++g_events;
    rt::vcpu_info().evtchn_upcall_pending = 0;
}

void test_callbacks_and_block() {
    long r = rt::hypercall(Hypercall::set_callbacks, kHypervisorAddress, 0, 0);
    check(r == err(abi::Errno::einval), "set_callbacks.hypervisor_address_einval", "rc %ld", r);

    rt::set_event_handler(on_event);
    // Nothing can raise an event yet (event channels come later), so mark one
    // pending by hand: block must not sleep, and must unmask and deliver it.
    rt::vcpu_info().evtchn_upcall_mask = 1;
    rt::vcpu_info().evtchn_upcall_pending = 1;
    r = rt::sched_op(abi::SchedOp::block);
    check(r == 0 && g_events == 1, "sched_op.block_delivers_pending_event", "rc %ld, events %ld", r, long(g_events));
    check(rt::vcpu_info().evtchn_upcall_mask == 0, "iret.restores_event_mask");

    abi::CallbackRegister cb{uint16_t(abi::CallbackType::event), 0, rt::event_entry_address()};
    r = rt::hypercall(Hypercall::callback_op, uint64_t(abi::CallbackOp::register_), rt::ptr(&cb));
    check(r == 0, "callback_op.register_event", "rc %ld", r);
}

// --- segments, stacks, FPU ----------------------------------------------------

uint64_t g_fs_target = 0x1122334455667788ull;
uint64_t g_gs_target = 0x8877665544332211ull;

void test_segment_base() {
    long r = rt::hypercall(Hypercall::set_segment_base, uint64_t(abi::SegBase::fs), rt::ptr(&g_fs_target));
    uint64_t v = 0;
    asm volatile("mov %%fs:0, %0" : "=r"(v));
    check(r == 0 && v == g_fs_target, "set_segment_base.fs", "rc %ld", r);

    r = rt::hypercall(Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_kernel), rt::ptr(&g_gs_target));
    asm volatile("mov %%gs:0, %0" : "=r"(v));
    check(r == 0 && v == g_gs_target, "set_segment_base.gs_kernel", "rc %ld", r);

    // Still there after a trip through the scheduler.
    rt::sched_op(abi::SchedOp::yield);
    asm volatile("mov %%gs:0, %0" : "=r"(v));
    check(v == g_gs_target, "set_segment_base.survives_yield");

    r = rt::hypercall(Hypercall::set_segment_base, uint64_t(abi::SegBase::fs), 0x0000800000000000ull);
    check(r == err(abi::Errno::einval), "set_segment_base.noncanonical_einval", "rc %ld", r);
    r = rt::hypercall(Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_user_sel), 0x1234);
    check(r == err(abi::Errno::einval), "set_segment_base.bad_selector_einval", "rc %ld", r);
    r = rt::hypercall(Hypercall::set_segment_base, uint64_t(abi::SegBase::gs_user), 0x7000);
    check(r == 0, "set_segment_base.gs_user", "rc %ld", r);
    r = rt::hypercall(Hypercall::set_segment_base, 9, 0);
    check(r == err(abi::Errno::einval), "set_segment_base.unknown_einval", "rc %ld", r);
}

void test_stack_switch() {
    static uint8_t kstack[4096];
    long r = rt::hypercall(Hypercall::stack_switch, abi::kFlatKernelSs, rt::ptr(kstack + sizeof kstack));
    check(r == 0, "stack_switch", "rc %ld", r);
}

unsigned g_nm;
bool on_nm(rt::TrapFrame& f) {
    ++g_nm;
    g_seen.rip = f.rip;
    return true;   // the hypervisor cleared TS: the instruction now runs
}

void test_fpu_taskswitch() {
    rt::set_trap_handler(7, on_nm);
    long r = rt::hypercall(Hypercall::fpu_taskswitch, 1);
    uint16_t cw = 0;
    asm volatile("fninit\n fnstcw %0" : "=m"(cw));
    check(r == 0 && g_nm == 1 && cw == 0x37F, "fpu_taskswitch.set_traps_nm", "rc %ld, #NM count %ld", r, long(g_nm));
    asm volatile("fninit");
    check(g_nm == 1, "fpu_taskswitch.nm_clears_ts", "#NM count %ld", long(g_nm));
    rt::hypercall(Hypercall::fpu_taskswitch, 1);
    rt::hypercall(Hypercall::fpu_taskswitch, 0);
    asm volatile("fninit");
    check(g_nm == 1, "fpu_taskswitch.clear", "#NM count %ld", long(g_nm));
}

// --- memory (the part of update_va_mapping that start of day needs) ----------

void test_update_va_mapping() {
    const abi::StartInfo& si = rt::start_info();
    const uint64_t* p2m = reinterpret_cast<const uint64_t*>(si.mfn_list);
    uint64_t l4_pfn = (si.pt_base - 0x400000) >> 12;
    static uint8_t scratch[8192];
    uint64_t va = (rt::ptr(scratch) + 4095) & ~4095ull;
    uint64_t va_pfn = (va - 0x400000) >> 12;

    long r = rt::hypercall(Hypercall::update_va_mapping, va, (p2m[l4_pfn] << 12) | 0x67, abi::kUvmfInvlpg);
    check(r == err(abi::Errno::einval), "update_va_mapping.page_table_writable_refused", "rc %ld", r);
    r = rt::hypercall(Hypercall::update_va_mapping, va, (1ull << 12) | 0x67, abi::kUvmfInvlpg);
    check(r == err(abi::Errno::einval), "update_va_mapping.foreign_frame_refused", "rc %ld", r);
    r = rt::hypercall(Hypercall::update_va_mapping, kHypervisorAddress, (p2m[va_pfn] << 12) | 0x67, 0);
    check(r == err(abi::Errno::einval), "update_va_mapping.hypervisor_va_refused", "rc %ld", r);

    // A read-only alias of a page table is allowed, and reads the table.
    r = rt::hypercall(Hypercall::update_va_mapping, va, (p2m[l4_pfn] << 12) | 0x25, abi::kUvmfInvlpg);
    check(r == 0 && *reinterpret_cast<volatile uint64_t*>(va) == *reinterpret_cast<const uint64_t*>(si.pt_base),
          "update_va_mapping.page_table_readonly_alias", "rc %ld", r);
    // Put the page back.
    r = rt::hypercall(Hypercall::update_va_mapping, va, (p2m[va_pfn] << 12) | 0x67, abi::kUvmfInvlpg);
    scratch[va - rt::ptr(scratch)] = 1;
    check(r == 0, "update_va_mapping.restore", "rc %ld", r);
}

}  // namespace

void rt::main() {
    rt::printf("abi_test: starting\n");
    test_start_info();
    test_shared_info();
    test_xen_version();
    test_console_io();
    test_unknown_hypercalls();
    test_sched_op();
    test_trap_table();
    test_exceptions();
    test_callbacks_and_block();
    test_segment_base();
    test_stack_switch();
    test_fpu_taskswitch();
    test_update_va_mapping();
    rt::printf("abi_test: done, %u failed\n", rt::g_failed_checks);
}
