/* Offsets shared between assembly and C++; each is static_assert-ed in C++
 * (core/regs.hpp for the frame, arch/percpu.hpp for the per-CPU block). */
#pragma once

/* core::Regs, the frame at the top of the per-CPU stack. */
#define REGS_R11     48
#define REGS_RCX     88
#define REGS_VECTOR  120
#define REGS_RIP     136
#define REGS_CS      144
#define REGS_RFLAGS  152
#define REGS_RSP     160
#define REGS_SS      168
#define REGS_SIZE    176

/* arch::Cpu, reached through %gs while in the hypervisor. */
#define CPU_SELF       0
#define CPU_STACK_TOP  8
#define CPU_SCRATCH    16
#define CPU_UPCALL_INFO 24
#define CPU_NEED_RESCHED 32

/* Selectors in the hypervisor part of the GDT, at Xen's values. */
#define SEL_HYP_CS     0xe008
#define SEL_HYP_DS     0xe010
#define SEL_GUEST_CS32 0xe023
#define SEL_GUEST_DS   0xe02b
#define SEL_GUEST_CS64 0xe033
#define SEL_TSS        0xe040

/* Exception vectors the entry code names itself. */
#define VECTOR_GENERAL_PROTECTION 13

/* Pseudo-vectors for entries that are not IDT vectors. */
#define VECTOR_SYSCALL   0x100
#define VECTOR_SYSCALL32 0x101
