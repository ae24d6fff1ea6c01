#pragma once
// Per-CPU state. Everything a CPU needs for itself lives in one arch::Cpu,
// reached through %gs while in the hypervisor (`this_cpu()`), so nothing in
// the kernel assumes there is only one CPU. Today only CPU 0 is brought up.

#include <cstddef>
#include <cstdint>

#include <arch/asm_offsets.h>

namespace core {
struct Vcpu;
}

namespace arch {

constexpr unsigned kMaxCpus = 8;
constexpr size_t kStackSize = 32 * 1024;
constexpr size_t kIstStackSize = 8 * 1024;

// The hypervisor's GDT entries sit where Xen puts them: the first 14 pages of
// the GDT belong to the guest (set_gdt, later), page 14 onwards to us.
constexpr unsigned kFirstReservedGdtEntry = 14 * 512;
constexpr unsigned kReservedGdtEntries = 16;
constexpr unsigned kGdtEntries = kFirstReservedGdtEntry + kReservedGdtEntries;

struct [[gnu::packed]] Tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};
static_assert(sizeof(Tss) == 104);

// The TSS followed by its I/O permission bitmap (a set bit denies the port)
// and the terminating byte the CPU reads past the last port.
struct [[gnu::packed]] TssBlock {
    Tss tss;
    uint8_t iomap[8192];
    uint8_t iomap_end;
};

struct Cpu {
    Cpu* self;             // %gs:0
    uint64_t stack_top;    // %gs:8, top of the stack guests enter on
    uint64_t scratch;      // %gs:16, the guest's %rsp during syscall entry
    // The running vCPU's vcpu_info, so the exit path can see a pending upcall
    // without a call; valid whenever need_resched is clear.
    const void* upcall_info;   // %gs:24
    // Set whenever the vCPU in the frame may not simply be resumed: a tick,
    // a yield or block, a domain that died. Forces the slow exit path.
    bool need_resched;         // %gs:32
    unsigned id;
    core::Vcpu* current;   // the vCPU whose state is (or was last) in the frame
    // Whose I/O bitmap is in tss_block.iomap, as of which capability generation.
    const void* io_domain;
    uint64_t io_gen;
    bool io_open;          // some port is allowed in the loaded bitmap
    unsigned gdt_guest_ents;   // descriptors of a guest's GDT in this CPU's GDT now
    // A #DB of the guest's that the CPU raised at an entry point, before
    // `swapgs` (its DR6; 0: none), for that entry's C half to deliver
    // (entry_c.cpp debug_in_hypervisor, core/traps.hpp).
    uint64_t held_dr6;
    alignas(16) TssBlock tss_block;
};
static_assert(offsetof(Cpu, self) == CPU_SELF);
static_assert(offsetof(Cpu, stack_top) == CPU_STACK_TOP);
static_assert(offsetof(Cpu, scratch) == CPU_SCRATCH);
static_assert(offsetof(Cpu, upcall_info) == CPU_UPCALL_INFO);
static_assert(offsetof(Cpu, need_resched) == CPU_NEED_RESCHED);

inline Cpu& this_cpu() {
    Cpu* c;
    asm volatile("mov %%gs:0, %0" : "=r"(c));
    return *c;
}

// Brings up the calling CPU: GDT, TSS, IDT, %gs, syscall MSRs, CR0/CR4.
void cpu_init(unsigned id);

// CPU `id`'s GDT: the guest part is entries [0, kFirstReservedGdtEntry).
uint64_t* gdt_of(unsigned id);

// The frame guests enter and leave through, at the top of this CPU's stack.
struct Regs;

}  // namespace arch
