// C++ halves of the entry points in entry.S: traps, syscalls, and the exit
// path that picks the vCPU to return to.

#include <arch/apic.hpp>
#include <arch/cpu.hpp>
#include <arch/panic.hpp>
#include <arch/percpu.hpp>

#include <core/callbacks.hpp>
#include <core/caps.hpp>
#include <core/debugreg.hpp>
#include <core/domain.hpp>
#include <core/hypercall.hpp>
#include <core/iommu.hpp>
#include <core/irq.hpp>
#include <core/log.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/timer.hpp>
#include <core/sched.hpp>
#include <core/traps.hpp>

extern "C" {
struct ExtableEntry {
    uint64_t fault, fixup;
};
extern const ExtableEntry __extable_start[], __extable_end[];
// entry.S, as addresses to compare with (declared as data, so that the
// compiler reaches them RIP-relative rather than through the GOT).
extern const uint8_t syscall_entry[], syscall32_entry[];
extern const uint8_t idt_stubs[];   // one 16-byte stub per IDT vector
}

static_assert(VECTOR_GENERAL_PROTECTION == core::vec::kGeneralProtection);

namespace arch {

namespace {

uint64_t fixup_for(uint64_t rip) {
    for (const ExtableEntry* e = __extable_start; e < __extable_end; ++e)
        if (e->fault == rip) return e->fixup;
    return 0;
}

// The CPU's DR6, reset for the next #DB (its status bits are sticky).
uint64_t take_dr6() {
    uint64_t dr6;
    asm volatile("mov %%dr6, %0" : "=r"(dr6));
    asm volatile("mov %0, %%dr6" : : "r"(core::kDr6Default));
    return dr6;
}

constexpr unsigned kStubSize = 16;   // entry.S: idt_stubs

// Where a guest's exception or `syscall` enters the hypervisor, before the
// `swapgs` of the entry path: the #DB a guest's `mov %ss` held back lands
// here (core/traps.hpp, deliver_held_debug_trap). Exception vectors only:
// the held #DB follows the guest's next instruction, never an interrupt.
bool at_guest_entry(uint64_t rip) {
    uint64_t stubs = reinterpret_cast<uint64_t>(idt_stubs);
    return rip == reinterpret_cast<uint64_t>(syscall_entry) || rip == reinterpret_cast<uint64_t>(syscall32_entry) ||
           rip - stubs < core::vec::kFirstIrq * kStubSize;
}

// A #DB in the hypervisor, on its own IST stack with the hypervisor's GS
// base whatever the guest's was (entry.S). Guest breakpoints are the only
// ones armed (core/debugreg.hpp: guest addresses, which the hypervisor
// reaches only in copy_{from,to}_guest), and both cases are traps:
//  - at an entry point before `swapgs`: a data breakpoint of the guest's
//    `mov %ss`, held back by the CPU until after the `syscall` or `int` that
//    followed it (XSA-260). The guest's: kept for the entry's C half to
//    deliver once that entry is done;
//  - anywhere else: a copy routine touched a watched guest buffer. As Xen,
//    note it and go on; the guest is not told.
// RF keeps an instruction breakpoint (impossible here) from looping, and TF
// (never set in the hypervisor) is dropped.
void debug_in_hypervisor(core::Regs& r) {
    uint64_t dr6 = take_dr6();
    r.rflags = (r.rflags | rflags::kRf) & ~rflags::kTf;
    Cpu& c = this_cpu();
    if (at_guest_entry(r.rip)) {
        c.held_dr6 |= dr6;
        return;
    }
    core::Vcpu* cur = c.current;
    if (cur && cur->domain)
        core::log_for(*cur->domain, "domain %u: #DB in the hypervisor at %#lx (dr6 %#lx): a breakpoint on a guest "
                      "address it copied, ignored", cur->domain->id, r.rip, dr6);
}

// The #DB held for the guest by debug_in_hypervisor, if any, taken.
uint64_t take_held_dr6(Cpu& c) {
    uint64_t dr6 = c.held_dr6;
    if (dr6) [[unlikely]] c.held_dr6 = 0;
    return dr6;
}

void fpu_save(core::Vcpu& v) { asm volatile("clts; fxsave64 %0" : "=m"(v.fpu_state)); }
void fpu_load(const core::Vcpu& v) { asm volatile("clts; fxrstor64 %0" : : "m"(v.fpu_state)); }

// load_<seg>(sel): loads `sel` into data segment register <seg>; false if
// the CPU refused it (#GP, #NP: its descriptor changed or went since it was
// saved), in which case the exception table's fixup has loaded the null
// selector instead, as Xen's load_segments does.
#define DEFINE_LOAD_SEGMENT(seg)                        \
    bool load_##seg(uint16_t sel) {                     \
        uint32_t s = sel;                               \
        bool ok = true;                                 \
        asm volatile("1: mov %k[s], %%" #seg "\n"       \
                     "2:\n"                             \
                     ".pushsection .text.fixup, \"ax\"\n" \
                     "3: xorl %k[s], %k[s]\n"           \
                     "mov %k[s], %%" #seg "\n"          \
                     "movb $0, %[ok]\n"                 \
                     "jmp 2b\n"                         \
                     ".popsection\n"                    \
                     ".pushsection .extable, \"a\"\n"   \
                     ".balign 8\n"                      \
                     ".quad 1b, 3b\n"                   \
                     ".popsection"                      \
                     : [s] "+r"(s), [ok] "+m"(ok)       \
                     :                                  \
                     : "memory");                       \
        return ok;                                      \
    }
DEFINE_LOAD_SEGMENT(ds)
DEFINE_LOAD_SEGMENT(es)
DEFINE_LOAD_SEGMENT(fs)
DEFINE_LOAD_SEGMENT(gs)
#undef DEFINE_LOAD_SEGMENT

// Data segment registers, in the order of core::Vcpu::data_sel.
enum DataSeg : unsigned { kDs, kEs, kFs, kGs };

// Replaces the data selectors the CPU has (`now`) with `want` (ds, es, fs,
// gs). A register null before and after is left alone (Xen's dirty-segment
// rule: nothing of anybody's is in it); any other is loaded, even with the
// same value, since the descriptor behind it may be another domain's.
// False if one was refused (it is null now). Loading a selector sets the
// register's base from its descriptor: the caller writes FS_BASE and
// KERNEL_GS_BASE afterwards, and GS_BASE, this CPU's block, is put back here.
bool load_data_selectors(Cpu& c, const uint16_t now[4], const uint16_t want[4]) {
    bool ok = true;
    if (now[kDs] | want[kDs]) ok &= load_ds(want[kDs]);
    if (now[kEs] | want[kEs]) ok &= load_es(want[kEs]);
    if (now[kFs] | want[kFs]) ok &= load_fs(want[kFs]);
    if (now[kGs] | want[kGs]) {
        ok &= load_gs(want[kGs]);
        wrmsr(msr::kGsBase, reinterpret_cast<uint64_t>(&c));
    }
    return ok;
}

// Puts `next` on this CPU: its registers into the frame, its FPU, data
// selectors, segment bases and address space into the CPU. `prev`'s state
// is saved first.
void switch_to(Cpu& c, core::Regs& frame, core::Vcpu* prev, core::Vcpu& next) {
    // The CPU's data selectors are prev's: nothing loads any on the way in
    // or out of the hypervisor, and the hypervisor (64-bit code with its own
    // GS base) uses none.
    uint16_t sel_now[4];
    platform::read_data_selectors(sel_now);
    if (prev && prev->state != core::VcpuState::down) {
        prev->regs = frame;
        fpu_save(*prev);
        for (unsigned i = 0; i < 4; ++i) prev->data_sel[i] = sel_now[i];
        prev->fs_base = rdmsr(msr::kFsBase);
        (prev->kernel_mode ? prev->gs_base_kernel : prev->gs_base_user) = rdmsr(msr::kKernelGsBase);
    }
    frame = next.regs;
    fpu_load(next);
    if (next.fpu_ts) write_cr0(read_cr0() | cr0::kTs);
    write_cr3((next.kernel_mode ? next.guest_table : next.guest_table_user) << 12);
    core::tlb_flushed();
    if (next.gdt_ents || c.gdt_guest_ents) platform::load_guest_gdt(next);
    platform::load_guest_ldt(next);           // its LDT, or none
    // Its selectors name descriptors of its GDT and LDT, loaded just now;
    // the bases after them (a selector load overwrites its register's base).
    bool selectors_loaded = load_data_selectors(c, sel_now, next.data_sel);
    wrmsr(msr::kFsBase, next.fs_base);
    wrmsr(msr::kKernelGsBase, next.kernel_mode ? next.gs_base_kernel : next.gs_base_user);
    platform::load_debug_registers(next);     // its breakpoints, or DR7 = 0
    core::refresh_time(next);
    core::vcpu_switched(prev, next);
    c.current = &next;
    c.upcall_info = next.info;
    if (!selectors_loaded) core::segments_refused(next, frame, next.data_sel);
}

// Nothing to run: wait for an interrupt (a timer tick may expire a guest
// timer, or a device line fire for a driver domain, either of which wakes a
// vCPU). With no guest timer armed and no line bound nothing can ever wake
// a blocked vCPU: say so and end the system rather than hang.
void idle(Cpu& c) {
    // Taking apart a domain nobody destroys explicitly is work to do when
    // idle too: a budget at a time, letting interrupts in between.
    core::Budget b{core::kHypercallBudget};
    if (!core::reap_dying(b)) {
        c.need_resched = true;
        asm volatile("sti; nop; cli" ::: "memory");
        return;
    }
    if (!core::timers_armed() && !core::irq_lines_bound()) {
        core::log("all %u remaining domain(s) are blocked and nothing can wake them; stopping",
                  core::domains_alive());
        qemu_exit(kExitClean);
    }
    c.need_resched = true;
    asm volatile("sti; hlt; cli" ::: "memory");
}

// Puts the domain's I/O bitmap in this CPU's TSS unless it is there already
// (same domain, no capability changed since). Domains without ports share
// the all-denying bitmap, which is only rewritten after a domain with ports.
void sync_io_bitmap(Cpu& c, core::Domain& d) {
    uint64_t gen = core::caps::generation();
    if (c.io_domain == &d && c.io_gen == gen) return;
    const uint8_t* bm = core::io_bitmap(d);
    if (!bm && !c.io_open) {   // closed, and the closed bitmap is loaded
        c.io_domain = &d;
        c.io_gen = gen;
        return;
    }
    if (bm) __builtin_memcpy(c.tss_block.iomap, bm, sizeof c.tss_block.iomap);
    else if (c.io_open) __builtin_memset(c.tss_block.iomap, 0xFF, sizeof c.tss_block.iomap);
    c.io_open = bm != nullptr;
    c.io_domain = &d;
    c.io_gen = gen;
}

}  // namespace

}  // namespace arch

using namespace arch;

extern "C" void arch_trap(core::Regs* r) {
    unsigned v = static_cast<unsigned>(r->vector);
    if (v >= core::vec::kFirstIrq) {
        apic_interrupt(v);
        return;
    }
    // An exception vector in service at the LAPIC: an interrupt message a
    // device forged (the LAPIC refuses vectors below 16; entry.S), whatever
    // context it came in. Nothing to handle: acknowledged and dropped.
    if (v >= 16 && apic_in_service(v)) {
        apic_drop_forged(v);
        return;
    }
    uint64_t cr2 = v == core::vec::kPageFault ? read_cr2() : 0;

    if ((r->cs & 3) == 0) {
        if (v == core::vec::kNmi) return;
        if (v == core::vec::kDebug) {   // before the exception table: it is not a fault
            debug_in_hypervisor(*r);
            return;
        }
        if (uint64_t fix = fixup_for(r->rip)) {
            r->rip = fix;
            return;
        }
        panic_with_frame(*r, cr2, v == core::vec::kDoubleFault ? "double fault" : "unhandled exception in the hypervisor");
    }
    if (v == core::vec::kNmi) return;
    if (v == core::vec::kMachineCheck || v == core::vec::kDoubleFault) panic_with_frame(*r, cr2, "machine check");

    Cpu& c = this_cpu();
    core::Vcpu* cur = c.current;
    // A #DB: the CPU's DR6 becomes the guest's, for its handler to read.
    if (v == core::vec::kDebug) core::debugreg_guest_trap(*cur, take_dr6());
    core::guest_exception(*cur, *r, v, r->error_code, cr2);
    core::deliver_held_debug_trap(*cur, *r, take_held_dr6(c));
}

extern "C" void arch_syscall(core::Regs* r) {
    Cpu& c = this_cpu();
    core::Vcpu* v = c.current;
    uint64_t held_dr6 = take_held_dr6(c);
    if (r->vector == core::kVectorSyscall32) {   // from compatibility mode: the syscall32 callback
        core::guest_compat_syscall(*v, *r);
        core::deliver_held_debug_trap(*v, *r, held_dr6);
        return;
    }
    if (!v->kernel_mode) {
        core::guest_user_syscall(*v, *r);
        core::deliver_held_debug_trap(*v, *r, held_dr6);
        return;
    }
    // The frame as the `syscall` left it: rip after it, the guest's rflags.
    uint64_t nr = r->rax, rip = r->rip, rflags = r->rflags, t0 = rdtsc();
    core::hypercall(*v, *r);
    uint64_t dt = rdtsc() - t0;
    if (dt > core::g_longest_hypercall_ticks) core::hypercall_record(dt, nr, v->domain->id);
    // (Almost never: a guest single-stepping, or a #DB held on the entry.)
    if ((rflags & core::flags::kTf) | held_dr6) [[unlikely]]
        core::hypercall_debug_trap(*v, *r, nr, rip, rflags, held_dr6);
}

extern "C" void arch_exit_to_guest(core::Regs* frame) {
    Cpu& c = this_cpu();
    // Domains the kernel is taking apart by itself (they shut down and nobody
    // holds them): a budget's worth on each pass through here, like the
    // work Xen defers to softirqs, until none is left.
    core::Budget reap{core::kHypercallBudget};
    bool reaping = !core::reap_dying(reap);
    for (;;) {
        // DMA faults the unit reported meanwhile: logged, counted, and a
        // domain whose devices keep faulting stopped, before anyone is picked.
        core::iommu_process_faults();
        core::iommu_flush_pending();
        core::Vcpu* next = core::sched_pick(c.current, c.need_resched);
        c.need_resched = false;
        if (next) {
            if (next != c.current) switch_to(c, *frame, c.current, *next);
            break;
        }
        if (core::domains_alive() == 0) {
            core::Budget all = core::Budget::unlimited();
            (void)core::reap_dying(all);
            core::log("no domains left: the system ends");
            qemu_exit(kExitClean);
        }
        idle(c);
    }
    if (reaping) c.need_resched = true;   // back here after the next entry
    sync_io_bitmap(c, *c.current->domain);
    core::deliver_events(*c.current, *frame);
}

// entry.S, on the way out: the frame's rip is not canonical, and iretq to
// it would fault in the hypervisor (core/traps.hpp).
extern "C" void arch_exit_noncanonical(core::Regs* frame) {
    core::guest_noncanonical_rip(*this_cpu().current, *frame);
}

// entry.S: the exit iretq faulted, and its fixup rebuilt the frame with the
// guest's registers and the hypervisor's GS base (core/traps.hpp).
extern "C" void arch_exit_refused(core::Regs* frame) {
    core::guest_frame_refused(*this_cpu().current, *frame);
}
