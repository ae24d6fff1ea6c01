// Issue 11 in a real CPU (QEMU): hardware breakpoints and single-step through
// set_debugreg/get_debugreg, a data breakpoint the hypervisor trips over
// while copying a hypercall's buffer, the LDT (set up with MMUEXT_SET_LDT,
// loaded in user mode, used through iret, changed with update_descriptor),
// and 32-bit user code entering the kernel through the syscall32 and
// sysenter callbacks. One line per check: "PASS name" or "FAIL name: why".
//
// With `bystander` on its command line the image only writes, again and
// again, the variable the tester watches (same image, same address) while
// the tester has its breakpoint armed and yields: no #DB may reach it.

#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/traps.hpp>

#include <abi/errno.hpp>
#include <abi/memory.hpp>
#include <abi/x86_64.hpp>

extern "C" {
uint64_t pv_enter_user(uint64_t rip, uint64_t cs, uint64_t rsp, uint64_t ss);
[[noreturn]] void pv_back_to_kernel(uint64_t kind);
extern uint64_t pv_entry[8];   // kind, rax, rdi, rsi, rip, cs, rsp, ss
extern char pv_syscall64_entry[], pv_syscall32_entry[], pv_sysenter_entry[], pv_failsafe_entry[];
extern char pv_user_ldt_load[], pv_user_report_segments[];
extern char pv_user32_syscall[], pv_user32_syscall_insn[], pv_user32_after_syscall[];
extern char pv_user32_sysenter[], pv_user32_sysenter_insn[];
}

namespace {

using abi::Hypercall;
using rt::check;

constexpr long err(abi::Errno e) { return abi::neg(e); }

constexpr uint64_t kHypervisorAddress = 0xFFFF830000001000ull;
constexpr uint64_t kRf = 1u << 16, kTf = 1u << 8;
constexpr uint64_t kDr6Default = 0xFFFF0FF0;
constexpr uint64_t kDr6Bs = 1u << 14;

enum Kind : uint64_t { kSyscall64 = 1, kSyscall32 = 2, kSysenter = 3, kTrap = 4, kFailsafe = 5 };

long setdr(uint64_t reg, uint64_t value) { return rt::hypercall(Hypercall::set_debugreg, reg, value); }
long getdr(uint64_t reg) { return rt::hypercall(Hypercall::get_debugreg, reg); }
template <typename T>
uint64_t addr(T* p) { return reinterpret_cast<uint64_t>(p); }

// ---- #DB --------------------------------------------------------------------------

struct DbSeen {
    unsigned count;
    uint64_t rip[8], dr6[8];
};
volatile DbSeen g_db;
bool g_db_set_rf;   // resume over an instruction breakpoint
bool g_db_stop_after_syscall;
uint64_t g_db_stopped_at;
uint64_t g_db_stopped_dr6;
bool g_db_one_more;          // after that stop, one more step
uint64_t g_db_next_at;

bool on_db(rt::TrapFrame& f) {
    unsigned i = g_db.count;
    g_db.count = i + 1;
    uint64_t dr6 = uint64_t(getdr(6));
    if (i < 8) {
        g_db.rip[i] = f.rip;
        g_db.dr6[i] = dr6;
    }
    (void)setdr(6, 0);   // the guest clears DR6 itself, as on hardware
    if (g_db_set_rf) f.rflags |= kRf;
    // Stepping through a hypercall: the step reported right after the
    // `syscall` (in the hypercall page) is noted, and stepping goes on from
    // that very frame (TF still set: the hypervisor returns through iretq,
    // as sysretq would trap again at once): the next step, after the
    // entry's `ret`, ends it.
    const uint8_t* at = reinterpret_cast<const uint8_t*>(f.rip);
    if (g_db_one_more) {
        g_db_one_more = false;
        g_db_next_at = f.rip;
        f.rflags &= ~kTf;
    } else if (g_db_stop_after_syscall && f.rip - uint64_t(hypercall_page) - 2 < 4094 && at[-2] == 0x0F &&
               at[-1] == 0x05) {
        g_db_stop_after_syscall = false;
        g_db_stopped_at = f.rip;
        g_db_stopped_dr6 = dr6;
        g_db_one_more = true;
    }
    return true;
}

void db_reset() {
    g_db.count = 0;
    for (unsigned i = 0; i < 8; ++i) {
        g_db.rip[i] = 0;
        g_db.dr6[i] = 0;
    }
}

// What the tester watches, and what the bystander keeps writing.
volatile uint32_t g_watch;
alignas(16) char g_buf[64];

[[gnu::noinline]] void bp_target() { asm volatile("nop"); }

// DR7 for breakpoint `i`: local enable, R/W, LEN.
constexpr uint64_t dr7(unsigned i, unsigned rw, unsigned len) {
    return (1ull << (2 * i)) | (uint64_t(rw) << (16 + 4 * i)) | (uint64_t(len) << (18 + 4 * i));
}
constexpr unsigned kRwExec = 0, kRwWrite = 1, kRwIo = 2, kRwReadWrite = 3;
constexpr unsigned kLen1 = 0, kLen4 = 3, kLen8 = 2;

void test_debugreg_hypercalls() {
    long r = setdr(0, addr(&g_watch));
    check(r == 0 && uint64_t(getdr(0)) == addr(&g_watch), "debugreg.set_get_dr0", "rc %ld", r);
    r = setdr(1, kHypervisorAddress);
    check(r == err(abi::Errno::eperm), "debugreg.hypervisor_address_eperm", "rc %ld", r);
    r = setdr(2, 0x0000800000000000ull);
    check(r == err(abi::Errno::eperm), "debugreg.noncanonical_eperm", "rc %ld", r);
    r = setdr(7, 1u << 13);
    check(r == err(abi::Errno::eperm), "debugreg.general_detect_eperm", "rc %ld", r);
    r = setdr(7, dr7(0, kRwIo, kLen1));
    check(r == err(abi::Errno::eperm), "debugreg.io_breakpoint_eperm", "rc %ld", r);
    r = setdr(7, 1ull << 32);
    check(r == err(abi::Errno::einval), "debugreg.dr7_high_bits_einval", "rc %ld", r);
    r = setdr(8, 0);
    long g = getdr(8);
    check(r == err(abi::Errno::enodev) && g == err(abi::Errno::enodev), "debugreg.bad_register_enodev",
          "set %ld get %ld", r, g);
    check(getdr(7) == 0x400, "debugreg.dr7_unchanged", "dr7 %#lx", getdr(7));
    // The guest kernel's own `mov %drN`, emulated with the same checks.
    uint64_t in = addr(&g_buf), out = 0;
    asm volatile("mov %1, %%dr2\n mov %%dr2, %0" : "=r"(out) : "r"(in));
    check(out == in && uint64_t(getdr(2)) == in, "debugreg.mov_dr_emulated", "read %#lx", out);
    setdr(0, 0);
    setdr(2, 0);
}

void test_breakpoints() {
    rt::set_trap_handler(1, on_db);

    // An instruction breakpoint: a fault at the instruction, B0 in DR6; the
    // handler resumes with RF so it does not fire again at once.
    db_reset();
    g_db_set_rf = true;
    long r = setdr(0, addr(&bp_target));
    r |= setdr(7, dr7(0, kRwExec, kLen1));
    bp_target();
    bp_target();
    setdr(7, 0);
    g_db_set_rf = false;
    check(r == 0 && g_db.count == 2 && g_db.rip[0] == addr(&bp_target) && (g_db.dr6[0] & 1) &&
              (g_db.dr6[0] | 0xF) == (kDr6Default | 0xF),
          "debugreg.instruction_breakpoint", "rc %ld count %u rip %#lx dr6 %#lx", r, g_db.count, g_db.rip[0],
          g_db.dr6[0]);

    // A data breakpoint on writes: a trap after the write, B1.
    db_reset();
    r = setdr(1, addr(&g_watch)) | setdr(7, dr7(1, kRwWrite, kLen4));
    uint64_t after = 0;
    asm volatile("movl $5, %1\n1: lea 1b(%%rip), %0" : "=r"(after), "=m"(g_watch) : : "memory");
    uint32_t read = g_watch;   // a read: not watched
    (void)read;
    check(r == 0 && g_db.count == 1 && g_db.rip[0] == after && (g_db.dr6[0] & 2), "debugreg.data_breakpoint_write",
          "rc %ld count %u rip %#lx (expected %#lx) dr6 %#lx", r, g_db.count, g_db.rip[0], after, g_db.dr6[0]);
    // DR6 is readable with the emulated `mov %dr6` too, and cleared by the guest.
    uint64_t dr6 = 0;
    setdr(6, 2);
    asm volatile("mov %%dr6, %0" : "=r"(dr6));
    setdr(6, 0);
    check(dr6 == (kDr6Default | 2) && getdr(6) == long(kDr6Default), "debugreg.dr6_mov_and_clear", "dr6 %#lx", dr6);

    // Reads and writes.
    db_reset();
    r = setdr(7, dr7(1, kRwReadWrite, kLen4));
    read = g_watch;
    check(r == 0 && g_db.count == 1 && (g_db.dr6[0] & 2), "debugreg.data_breakpoint_read", "count %u", g_db.count);

    // The hypervisor copying the watched buffer trips the breakpoint in
    // itself: tolerated there (Xen's rule), the hypercall works, and the
    // guest hears nothing of it: no #DB, nothing in its DR6.
    const char line[] = "watched\n";
    for (unsigned i = 0; i < 8; ++i) g_buf[i] = line[i];
    db_reset();
    setdr(6, 0);
    r = setdr(2, addr(&g_buf)) | setdr(7, dr7(2, kRwReadWrite, kLen8));
    long c = rt::hypercall(Hypercall::console_io, uint64_t(abi::ConsoleIo::write), 8, addr(&g_buf));
    unsigned seen_read = g_db.count;
    long dr6_read = getdr(6);
    long w = rt::hypercall(Hypercall::xen_version, uint64_t(abi::XenVersion::extraversion), addr(&g_buf));
    unsigned seen_write = g_db.count;
    setdr(7, 0);
    check(r == 0 && c == 0 && seen_read == 0 && dr6_read == long(kDr6Default), "debugreg.hypervisor_read_tolerated",
          "rc %ld console %ld #DB %u dr6 %#lx", r, c, seen_read, dr6_read);
    check(w == 0 && g_buf[0] == '-' && g_buf[1] == 'm' && seen_write == 0 && getdr(6) == long(kDr6Default),
          "debugreg.hypervisor_write_tolerated", "version %ld #DB %u dr6 %#lx", w, seen_write, getdr(6));
}

// First of all, while the bystander runs: a breakpoint armed across trips
// through the scheduler stays ours (the bystander, running meanwhile at the
// same addresses, must never see it) and still fires when we are back.
constexpr uint64_t kArmedNs = 100'000'000;

void test_breakpoint_across_domains() {
    rt::set_trap_handler(1, on_db);
    db_reset();
    long r = setdr(1, addr(&g_watch)) | setdr(7, dr7(1, kRwWrite, kLen4));
    uint64_t start = rt::now_ns();
    unsigned yields = 0;
    while (rt::now_ns() - start < kArmedNs || yields < 100) {
        rt::sched_op(abi::SchedOp::yield);
        ++yields;
    }
    g_watch = 7;
    setdr(7, 0);
    setdr(1, 0);
    check(r == 0 && g_db.count == 1 && (g_db.dr6[0] & 2), "debugreg.survives_context_switches",
          "count %u after %u yields", g_db.count, yields);
}

void test_single_step() {
    db_reset();
    uint64_t l1 = 0, l2 = 0, l3 = 0;
    asm volatile(
        "lea 1f(%%rip), %0\n"
        "lea 2f(%%rip), %1\n"
        "lea 3f(%%rip), %2\n"
        "pushfq\n orq $0x100, (%%rsp)\n popfq\n"
        "nop\n"
        "1: nop\n"
        "2: nop\n"
        "3: pushfq\n andq $~0x100, (%%rsp)\n popfq\n"
        : "=&r"(l1), "=&r"(l2), "=&r"(l3)
        :
        : "memory", "cc");
    bool bs = true;
    for (unsigned i = 0; i < 3 && i < g_db.count; ++i) bs = bs && (g_db.dr6[i] & kDr6Bs);
    check(g_db.count >= 3 && g_db.rip[0] == l1 && g_db.rip[1] == l2 && g_db.rip[2] == l3 && bs,
          "singlestep.each_instruction", "count %u rips %#lx %#lx %#lx dr6 %#lx", g_db.count, g_db.rip[0],
          g_db.rip[1], g_db.rip[2], g_db.dr6[0]);
    uint64_t fl = 0;
    asm volatile("pushfq\n pop %0" : "=r"(fl));
    check(!(fl & kTf), "singlestep.off_again");

    // A hypercall made while single-stepping: the instructions up to the
    // `syscall` step, the hypervisor runs with TF clear, and the next step is
    // reported right after the `syscall`, once it has completed (DR6.BS);
    // stepping on from there goes one instruction further (the stub's
    // `pop %r11`, two bytes), not round the same one again.
    db_reset();
    g_db_stop_after_syscall = true;
    g_db_stopped_at = 0;
    g_db_stopped_dr6 = 0;
    g_db_next_at = 0;
    long v = 0;
    asm volatile("pushfq\n orq $0x100, (%%rsp)\n popfq\n" ::: "memory", "cc");
    v = rt::hypercall(Hypercall::xen_version, uint64_t(abi::XenVersion::version), 0);
    asm volatile("pushfq\n andq $~0x100, (%%rsp)\n popfq\n" ::: "memory", "cc");
    g_db_stop_after_syscall = false;
    const uint8_t* after = reinterpret_cast<const uint8_t*>(g_db_stopped_at);
    bool after_syscall = after && after[-2] == 0x0F && after[-1] == 0x05;
    check(v == (4 << 16 | 21) && g_db.count >= 2 && after_syscall, "singlestep.across_hypercall",
          "version %#lx steps %u stopped at %#lx", v, g_db.count, g_db_stopped_at);
    constexpr uint64_t kPopR11 = 2;
    check(after_syscall && (g_db_stopped_dr6 & kDr6Bs) && g_db_next_at == g_db_stopped_at + kPopR11,
          "singlestep.steps_on_after_hypercall", "dr6 %#lx at the stop after the syscall (%#lx), next step at %#lx",
          g_db_stopped_dr6, g_db_stopped_at, g_db_next_at);
}

// ---- user mode -----------------------------------------------------------------------

alignas(16) uint8_t g_kstack[16384];
alignas(16) uint8_t g_ustack[8192];
uint64_t g_trap_vector, g_trap_rip, g_trap_cs;

// A trap from user code we provoked: note it and go back to the kernel
// context pv_enter_user left (abandoning the frame).
bool back_from_trap(rt::TrapFrame& f) {
    if ((f.cs & 3) != 3) return false;   // not from user mode: a real problem
    g_trap_vector = f.vector;
    g_trap_rip = f.rip;
    g_trap_cs = f.cs;
    pv_back_to_kernel(kTrap);
}

uint64_t user_stack() { return addr(g_ustack) + sizeof g_ustack - 64; }

// Runs user code at `rip`; what brought the vCPU back (Kind).
uint64_t run_user(void* rip, uint64_t cs, uint64_t ss) {
    g_trap_vector = g_trap_rip = g_trap_cs = ~0ull;
    for (auto& e : pv_entry) e = 0;
    uint64_t kind = pv_enter_user(addr(rip), cs, user_stack(), ss);
    return kind;
}

bool setup_user_mode() {
    long r = rt::hypercall(Hypercall::stack_switch, abi::kFlatKernelSs, addr(g_kstack) + sizeof g_kstack);
    // Its user page tables are its kernel ones: everything is its own here.
    uint64_t l4 = rt::mfn_of_pfn((rt::start_info().pt_base - rt::kVirtBase) >> 12);
    r |= rt::mmuext(abi::MmuextCmd::new_user_baseptr, l4);
    abi::CallbackRegister cb{uint16_t(abi::CallbackType::syscall), 0, addr(pv_syscall64_entry)};
    r |= rt::hypercall(Hypercall::callback_op, uint64_t(abi::CallbackOp::register_), addr(&cb));
    cb = {uint16_t(abi::CallbackType::failsafe), 0, addr(pv_failsafe_entry)};
    r |= rt::hypercall(Hypercall::callback_op, uint64_t(abi::CallbackOp::register_), addr(&cb));
    rt::set_trap_handler(6, back_from_trap);
    rt::set_trap_handler(13, back_from_trap);
    rt::set_trap_handler(14, back_from_trap);
    check(r == 0, "user.setup", "rc %ld", r);
    // Plain 64-bit user code and back.
    uint64_t k = run_user(pv_user_report_segments, abi::kFlatUserCs64, abi::kFlatUserSs64);
    check(k == kSyscall64 && pv_entry[2] == abi::kFlatUserCs64, "user.syscall_round_trip", "kind %lu cs %#lx", k,
          pv_entry[2]);
    return r == 0 && k == kSyscall64;
}

// ---- the LDT -------------------------------------------------------------------------

alignas(4096) uint64_t g_ldt[512];
alignas(4096) uint64_t g_ldt2[512];
volatile uint64_t g_ldt_target = 0x1122334455667788ull;
volatile uint64_t g_ldt_target2 = 0x99AABBCCDDEEFF00ull;

// A DPL 3 data segment based at `base` (below 4 GiB), 4 GiB limit.
constexpr uint64_t data_desc(uint64_t base) {
    return 0xFFFF | ((base & 0xFFFFFF) << 16) | (0xF3ull << 40) | (0xCFull << 48) | (((base >> 24) & 0xFF) << 56);
}
constexpr uint64_t kCode32 = 0x00CFFB000000FFFFull, kCode64 = 0x00AFFB000000FFFFull;
constexpr uint64_t kFlatData = 0x00CFF3000000FFFFull, kKernelCode = 0x00AF9B000000FFFFull;
constexpr uint64_t kGateToHypervisor = 0x0000EC00E0080000ull;   // call gate to 0xe008

// LDT selectors (TI set, RPL 3) of entries 0..3.
constexpr uint16_t kSelBased = 0x07, kSelCode32 = 0x0F, kSelCode64 = 0x17, kSelFlat = 0x1F;

uint64_t mfn_of(const void* p) { return rt::mfn_of_pfn((addr(p) - rt::kVirtBase) >> 12); }
long map_page(const void* p, bool writable) {
    uint64_t flags = rt::kPteP | rt::kPteA | (writable ? rt::kPteRw | rt::kPteD : 0);
    return rt::update_va_mapping(addr(p), (mfn_of(p) << 12) | flags);
}
long set_ldt(uint64_t base, uint64_t ents) {
    abi::MmuextOp op{};
    op.cmd = uint32_t(abi::MmuextCmd::set_ldt);
    op.arg1.linear_addr = base;
    op.arg2.nr_ents = uint32_t(ents);
    return rt::hypercall(Hypercall::mmuext_op, addr(&op), 1, 0, abi::kDomidSelf);
}
uint64_t read_fs0(uint16_t sel) {
    uint64_t v;
    asm volatile("mov %1, %%fs\n mov %%fs:0, %0" : "=r"(v) : "r"(uint32_t(sel)) : "memory");
    return v;
}
void null_data_segments() {
    asm volatile("mov %0, %%ds\n mov %0, %%es\n mov %0, %%fs" : : "r"(0u) : "memory");
    (void)rt::hypercall(Hypercall::set_segment_base, uint64_t(abi::SegBase::fs), 0);
}

void test_ldt(bool user_ok) {
    g_ldt[0] = data_desc(addr(&g_ldt_target));
    g_ldt[1] = kCode32;
    g_ldt[2] = kCode64;
    g_ldt[3] = kFlatData;
    g_ldt[4] = kKernelCode;
    g_ldt[6] = kGateToHypervisor;

    long r = set_ldt(addr(g_ldt), 8);
    check(r == err(abi::Errno::einval), "ldt.writable_page_refused", "rc %ld", r);
    r = set_ldt(kHypervisorAddress & ~0xFFFull, 8);
    long r2 = set_ldt(addr(g_ldt) + 8, 8);
    long r3 = set_ldt(addr(g_ldt), 8193);
    check(r == err(abi::Errno::einval) && r2 == err(abi::Errno::einval) && r3 == err(abi::Errno::einval),
          "ldt.bad_address_or_size_refused", "hypervisor %ld misaligned %ld 8193 %ld", r, r2, r3);

    r = map_page(g_ldt, false);
    r2 = set_ldt(addr(g_ldt), 8);
    check(r == 0 && r2 == err(abi::Errno::einval), "ldt.call_gate_to_hypervisor_refused", "map %ld set %ld", r, r2);
    // Not in use: writable again, mend it, read-only, in.
    r = map_page(g_ldt, true);
    g_ldt[6] = 0;
    r |= map_page(g_ldt, false);
    r2 = set_ldt(addr(g_ldt), 8);
    check(r == 0 && r2 == 0, "ldt.set", "map %ld set %ld", r, r2);
    check(((g_ldt[4] >> 45) & 3) == 3, "ldt.dpl0_code_made_dpl3", "desc %#lx", g_ldt[4]);
    r = map_page(g_ldt, true);
    check(r == err(abi::Errno::einval), "ldt.writable_mapping_refused_in_use", "rc %ld", r);

    // Its selectors, loaded in guest kernel mode.
    uint64_t v = read_fs0(kSelBased);
    check(v == g_ldt_target, "ldt.segment_load_kernel", "read %#lx", v);

    // update_descriptor on the LDT page: checked, and the CPU's copy follows.
    uint64_t ma = (mfn_of(g_ldt) << 12) + 0;
    r = rt::hypercall(Hypercall::update_descriptor, ma + 48, kGateToHypervisor);
    r2 = rt::hypercall(Hypercall::update_descriptor, ma, data_desc(addr(&g_ldt_target2)));
    v = read_fs0(kSelBased);
    check(r == err(abi::Errno::einval) && r2 == 0 && v == g_ldt_target2, "ldt.update_descriptor",
          "gate %ld update %ld read %#lx", r, r2, v);
    r2 = rt::hypercall(Hypercall::update_descriptor, ma, data_desc(addr(&g_ldt_target)));
    null_data_segments();

    if (user_ok) {
        // Loaded by user code.
        uint64_t k = run_user(pv_user_ldt_load, abi::kFlatUserCs64, abi::kFlatUserSs64);
        check(k == kSyscall64 && pv_entry[2] == g_ldt_target && (pv_entry[3] & 0xFFFF) == kSelBased,
              "ldt.segment_load_user", "kind %lu read %#lx ds %#lx", k, pv_entry[2], pv_entry[3]);
        null_data_segments();
        // iret to an LDT code segment and stack.
        k = run_user(pv_user_report_segments, kSelCode64, kSelFlat);
        check(k == kSyscall64 && pv_entry[2] == kSelCode64 && pv_entry[3] == kSelFlat, "ldt.iret_code_and_stack",
              "kind %lu cs %#lx ss %#lx", k, pv_entry[2], pv_entry[3]);
        // Past its 8 entries: the failsafe callback, as a faulting iret.
        k = run_user(pv_user_report_segments, 0x47, kSelFlat);
        check(k == kFailsafe, "ldt.iret_past_limit_failsafe", "kind %lu", k);
    }

    // Another LDT replaces it; then none, and its pages are ordinary memory.
    g_ldt2[0] = kFlatData;
    r = map_page(g_ldt2, false) | set_ldt(addr(g_ldt2), 1);
    r2 = map_page(g_ldt, true);
    check(r == 0 && r2 == 0, "ldt.replaced_releases_old", "set %ld map %ld", r, r2);
    r = set_ldt(0, 0);
    r2 = map_page(g_ldt2, true);
    check(r == 0 && r2 == 0, "ldt.cleared", "set %ld map %ld", r, r2);
}

// ---- 32-bit user code -----------------------------------------------------------------

long register_cb(abi::CallbackType t, uint64_t a, bool mask) {
    abi::CallbackRegister cb{uint16_t(t), uint16_t(mask ? abi::kCallbackFlagMaskEvents : 0), a};
    return rt::hypercall(Hypercall::callback_op, uint64_t(abi::CallbackOp::register_), addr(&cb));
}

void test_callback_registration() {
    long r = register_cb(abi::CallbackType::syscall32, kHypervisorAddress, false);
    long r2 = register_cb(abi::CallbackType::sysenter, kHypervisorAddress, false);
    long r3 = register_cb(abi::CallbackType::nmi, kHypervisorAddress, false);
    check(r == err(abi::Errno::einval) && r2 == r && r3 == r, "callbacks.hypervisor_address_einval",
          "syscall32 %ld sysenter %ld nmi %ld", r, r2, r3);
    r = register_cb(abi::CallbackType::nmi, addr(pv_failsafe_entry), false);
    abi::CallbackUnregister u{uint16_t(abi::CallbackType::nmi), 0};
    r2 = rt::hypercall(Hypercall::callback_op, uint64_t(abi::CallbackOp::unregister), addr(&u));
    check(r == 0 && r2 == 0, "callbacks.nmi_stored", "register %ld unregister %ld", r, r2);
    r = register_cb(abi::CallbackType(6), addr(pv_failsafe_entry), false);
    check(r == err(abi::Errno::enosys), "callbacks.unknown_type_enosys", "rc %ld", r);
}

void test_compat(bool user_ok) {
    if (!user_ok) return;
    // With a syscall32 callback that masks events.
    long r = register_cb(abi::CallbackType::syscall32, addr(pv_syscall32_entry), true);
    uint64_t k = run_user(pv_user32_syscall, abi::kFlatUserCs32, abi::kFlatUserSs32);
    uint8_t mask = rt::vcpu_info().evtchn_upcall_mask;
    uint64_t cs = pv_entry[5] & 0xFFFF;   // the frame's: the flat 32-bit user CS
    check(r == 0 && k == kSyscall32 && (pv_entry[1] & 0xFFFFFFFF) == 0x77 &&
              pv_entry[4] == addr(pv_user32_after_syscall) && cs == abi::kFlatUserCs32 && (pv_entry[2] & 0xFFFF) == abi::kFlatUserCs32 && mask == 1,
          "compat.syscall32_bounce", "rc %ld kind %lu rax %#lx rip %#lx cs %#lx mask %u", r, k, pv_entry[1],
          pv_entry[4], cs, mask);
    // Without the mask flag; from an LDT 32-bit code segment.
    r = register_cb(abi::CallbackType::syscall32, addr(pv_syscall32_entry), false);
    r |= map_page(g_ldt, true);
    g_ldt[0] = kFlatData;
    g_ldt[1] = kCode32;
    r |= map_page(g_ldt, false) | set_ldt(addr(g_ldt), 2);
    k = run_user(pv_user32_syscall, kSelCode32, kSelBased);
    mask = rt::vcpu_info().evtchn_upcall_mask;
    check(r == 0 && k == kSyscall32 && (pv_entry[2] & 0xFFFF) == kSelCode32 && (pv_entry[3] & 0xFFFF) == kSelBased &&
              mask == 0,
          "compat.syscall32_from_ldt_code", "rc %ld kind %lu cs %#lx ss %#lx mask %u", r, k, pv_entry[2],
          pv_entry[3], mask);
    set_ldt(0, 0);
    map_page(g_ldt, true);
    // No callback: #UD at the syscall, to its own handler; the domain lives.
    r = register_cb(abi::CallbackType::syscall32, 0, false);
    k = run_user(pv_user32_syscall, abi::kFlatUserCs32, abi::kFlatUserSs32);
    check(r == 0 && k == kTrap && g_trap_vector == 6 && g_trap_rip == addr(pv_user32_syscall_insn),
          "compat.no_callback_ud", "kind %lu vector %ld rip %#lx", k, long(g_trap_vector), g_trap_rip);
    // sysenter: the callback on an Intel CPU; #UD on an AMD one (QEMU's TCG
    // "max" CPU says AuthenticAMD), delivered as under Xen.
    r = register_cb(abi::CallbackType::sysenter, addr(pv_sysenter_entry), false);
    k = run_user(pv_user32_sysenter, abi::kFlatUserCs32, abi::kFlatUserSs32);
    bool callback = k == kSysenter && (pv_entry[1] & 0xFFFFFFFF) == 0x88 && pv_entry[4] == 0 && pv_entry[6] == 0;
    bool ud = k == kTrap && g_trap_vector == 6 && g_trap_rip == addr(pv_user32_sysenter_insn);
    check(r == 0 && (callback || ud), "compat.sysenter_handled", "kind %lu vector %ld rip %#lx", k,
          long(g_trap_vector), g_trap_rip);
    rt::printf("pvabi: sysenter went to the %s\n", callback ? "sysenter callback" : "#UD handler");
}

// ---- the bystander ------------------------------------------------------------------------

void bystander() {
    // Writes the watched variable while the tester keeps its breakpoint
    // armed (its first kArmedNs), and for as long again.
    rt::set_trap_handler(1, on_db);
    db_reset();
    uint64_t start = rt::now_ns();
    unsigned during = 0;
    for (unsigned i = 0;; ++i) {
        uint64_t t = rt::now_ns() - start;
        if (t >= 2 * kArmedNs && i >= 200) break;
        g_watch = i;
        during += t < kArmedNs;
        rt::sched_op(abi::SchedOp::yield);
    }
    check(g_db.count == 0 && getdr(7) == 0x400 && during >= 50, "debugreg.bystander_saw_no_breakpoint",
          "#DB %u dr7 %#lx writes while the tester was armed %u", g_db.count, getdr(7), during);
}

}  // namespace

void rt::main() {
    if (rt::has_arg("bystander")) {
        rt::printf("pvabi bystander: starting\n");
        bystander();
        rt::printf("pvabi bystander: done, %u failed\n", rt::g_failed_checks);
        return;
    }
    rt::printf("pvabi: starting\n");
    test_breakpoint_across_domains();
    test_debugreg_hypercalls();
    test_breakpoints();
    test_single_step();
    test_callback_registration();
    bool user_ok = setup_user_mode();
    test_ldt(user_ok);
    test_compat(user_ok);
    rt::vcpu_info().evtchn_upcall_mask = 1;
    rt::printf("pvabi: done, %u failed\n", rt::g_failed_checks);
}
