// C++ halves of the entry points in entry.S: traps, syscalls, and the exit
// path that picks the vCPU to return to.

#include <arch/apic.hpp>
#include <arch/cpu.hpp>
#include <arch/panic.hpp>
#include <arch/percpu.hpp>

#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/hypercall.hpp>
#include <core/irq.hpp>
#include <core/log.hpp>
#include <core/mm.hpp>
#include <core/timer.hpp>
#include <core/sched.hpp>
#include <core/traps.hpp>

extern "C" {
struct ExtableEntry {
    uint64_t fault, fixup;
};
extern const ExtableEntry __extable_start[], __extable_end[];
}

namespace arch {

namespace {

uint64_t fixup_for(uint64_t rip) {
    for (const ExtableEntry* e = __extable_start; e < __extable_end; ++e)
        if (e->fault == rip) return e->fixup;
    return 0;
}

void fpu_save(core::Vcpu& v) { asm volatile("clts; fxsave64 %0" : "=m"(v.fpu_state)); }
void fpu_load(const core::Vcpu& v) { asm volatile("clts; fxrstor64 %0" : : "m"(v.fpu_state)); }

// Puts `next` on this CPU: its registers into the frame, its FPU, segment
// bases and address space into the CPU. `prev`'s state is saved first.
void switch_to(Cpu& c, core::Regs& frame, core::Vcpu* prev, core::Vcpu& next) {
    if (prev && prev->state != core::VcpuState::down) {
        prev->regs = frame;
        fpu_save(*prev);
        prev->fs_base = rdmsr(msr::kFsBase);
        (prev->kernel_mode ? prev->gs_base_kernel : prev->gs_base_user) = rdmsr(msr::kKernelGsBase);
    }
    frame = next.regs;
    fpu_load(next);
    if (next.fpu_ts) write_cr0(read_cr0() | cr0::kTs);
    wrmsr(msr::kFsBase, next.fs_base);
    wrmsr(msr::kKernelGsBase, next.kernel_mode ? next.gs_base_kernel : next.gs_base_user);
    write_cr3((next.kernel_mode ? next.guest_table : next.guest_table_user) << 12);
    core::tlb_flushed();
    core::refresh_time(next);
    c.current = &next;
    c.upcall_info = next.info;
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
    uint64_t cr2 = v == core::vec::kPageFault ? read_cr2() : 0;

    if ((r->cs & 3) == 0) {
        if (v == core::vec::kNmi) return;
        if (uint64_t fix = fixup_for(r->rip)) {
            r->rip = fix;
            return;
        }
        panic_with_frame(*r, cr2, v == core::vec::kDoubleFault ? "double fault" : "unhandled exception in the hypervisor");
    }
    if (v == core::vec::kNmi) return;
    if (v == core::vec::kMachineCheck || v == core::vec::kDoubleFault) panic_with_frame(*r, cr2, "machine check");

    core::Vcpu* cur = this_cpu().current;
    core::guest_exception(*cur, *r, v, r->error_code, cr2);
}

extern "C" void arch_syscall(core::Regs* r) {
    core::Vcpu* v = this_cpu().current;
    if (r->vector == core::kVectorSyscall32) {
        core::domain_crash(*v->domain, "syscall from 32-bit code at %#lx: 32-bit guests are not supported", r->rip);
        return;
    }
    if (!v->kernel_mode) {
        core::guest_user_syscall(*v, *r);
        return;
    }
    uint64_t nr = r->rax, t0 = rdtsc();
    core::hypercall(*v, *r);
    uint64_t dt = rdtsc() - t0;
    if (dt > core::g_longest_hypercall_ticks) core::hypercall_record(dt, nr, v->domain->id);
}

extern "C" void arch_exit_to_guest(core::Regs* frame) {
    Cpu& c = this_cpu();
    // Domains the kernel is taking apart by itself (they shut down and nobody
    // holds them): a budget's worth on each pass through here, like the
    // work Xen defers to softirqs, until none is left.
    core::Budget reap{core::kHypercallBudget};
    bool reaping = !core::reap_dying(reap);
    for (;;) {
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
