/* Every way into and out of the hypervisor.
 *
 * Guests run in ring 3. Whatever brings the CPU into ring 0 from a guest --
 * `syscall`, an exception, an interrupt -- builds one core::Regs frame at the
 * top of this CPU's stack (TSS.RSP0 for interrupts, loaded by hand for
 * syscall), so C++ sees the guest's state in one place. The way out is one
 * path, return_to_guest, which lets the scheduler put whichever vCPU should
 * run next into that frame and leaves through `sysretq` when the frame allows
 * it (rcx == rip and r11 == rflags, as a syscall leaves them, flat selectors,
 * canonical rip, neither TF nor RF) and through `iretq` otherwise; a rip that
 * is not canonical never reaches either (the guest gets a #GP instead), and a
 * fault of the exit `iretq` itself comes back as the guest's.
 *
 * %gs: while a guest runs, GS_BASE is the guest's and KERNEL_GS_BASE holds
 * our arch::Cpu; `swapgs` on every entry from and exit to ring 3 flips them.
 * NMI, #DF, #MC and #DB use IST stacks and can arrive anywhere (even between
 * `swapgs` and `sysretq`, or, for a #DB a guest's `mov %ss` held back, on the
 * first instruction of syscall_entry or an IDT stub), so in ring 0 they load
 * GS_BASE explicitly instead.
 *
 * The data segment registers hold the running vCPU's selectors throughout:
 * nothing here loads them (switch_to in entry_c.cpp swaps them per vCPU).
 */
#include <arch/asm_offsets.h>

.macro SAVE_GPRS
    push    %rdi
    push    %rsi
    push    %rdx
    push    %rcx
    push    %rax
    push    %r8
    push    %r9
    push    %r10
    push    %r11
    push    %rbx
    push    %rbp
    push    %r12
    push    %r13
    push    %r14
    push    %r15
.endm

.macro RESTORE_GPRS
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbp
    pop     %rbx
    pop     %r11
    pop     %r10
    pop     %r9
    pop     %r8
    pop     %rax
    pop     %rcx
    pop     %rdx
    pop     %rsi
    pop     %rdi
.endm

    .text

/* syscall from a guest: a hypercall (guest kernel mode) or a guest system
 * call to bounce to the guest kernel (guest user mode). IF is clear (SFMASK). */
    .globl syscall_entry
    .balign 16
syscall_entry:
    swapgs
    mov     %rsp, %gs:CPU_SCRATCH
    mov     %gs:CPU_STACK_TOP, %rsp
    push    $SEL_GUEST_DS               /* ss */
    push    %gs:CPU_SCRATCH             /* rsp */
    push    %r11                        /* rflags */
    push    $SEL_GUEST_CS64             /* cs */
    push    %rcx                        /* rip */
    push    $0                          /* error code */
    push    $VECTOR_SYSCALL
    SAVE_GPRS
    mov     %rsp, %rdi
    call    arch_syscall
    jmp     return_to_guest

/* syscall from 32-bit compatibility mode: not supported; C++ says so. */
    .globl syscall32_entry
    .balign 16
syscall32_entry:
    swapgs
    mov     %rsp, %gs:CPU_SCRATCH
    mov     %gs:CPU_STACK_TOP, %rsp
    push    $SEL_GUEST_DS
    push    %gs:CPU_SCRATCH
    push    %r11
    push    $SEL_GUEST_CS32
    push    %rcx
    push    $0
    push    $VECTOR_SYSCALL32
    SAVE_GPRS
    mov     %rsp, %rdi
    call    arch_syscall
    jmp     return_to_guest

/* Common path for exceptions and interrupts on the regular stacks. */
    .balign 16
intr_common:
    testb   $3, 24(%rsp)                /* CS, above vector and error code */
    jz      1f
    swapgs
    /* The CPU does not clear RFLAGS.AC on an interrupt or exception (syscall
     * does, by SFMASK): a guest that set it would otherwise turn SMAP off for
     * us until the next copy routine's clac. */
    testb   $1, arch_smap_enabled(%rip)
    jz      1f
    clac
1:  SAVE_GPRS
    cld
.Lintr_frame_saved:
    mov     %rsp, %rdi
    call    arch_trap
    testb   $3, REGS_CS(%rsp)
    jnz     return_to_guest
    RESTORE_GPRS
    add     $16, %rsp
    iretq

/* The only way back to a guest. %rsp points at the frame at the stack top;
 * interrupts are off (syscall masks IF, interrupt gates clear it). The common
 * case -- the same vCPU goes on and has no event to take -- is decided here
 * without a call; everything else goes through arch_exit_to_guest. */
    .globl return_to_guest
return_to_guest:
    cmpb    $0, %gs:CPU_NEED_RESCHED
    jne     .Lslow_exit
    mov     %gs:CPU_UPCALL_INFO, %rax
    cmpb    $0, (%rax)                  /* evtchn_upcall_pending */
    je      .Lexit
    cmpb    $0, 1(%rax)                 /* evtchn_upcall_mask */
    jne     .Lexit
.Lslow_exit:
    mov     %rsp, %rdi
    call    arch_exit_to_guest
.Lexit:

    mov     REGS_RIP(%rsp), %rcx
    cmp     REGS_RCX(%rsp), %rcx
    jne     .Lvia_iret
    mov     REGS_RFLAGS(%rsp), %r11
    cmp     REGS_R11(%rsp), %r11
    jne     .Lvia_iret
    /* A single-stepping guest (TF) or one resuming past a breakpoint (RF)
     * leaves through iretq: sysretq drops RF and, with TF, traps again at
     * once on the same instruction, for ever. */
    testl   $0x10100, REGS_RFLAGS(%rsp)
    jnz     .Lvia_iret
    cmpq    $SEL_GUEST_CS64, REGS_CS(%rsp)
    jne     .Lvia_iret
    cmpq    $SEL_GUEST_DS, REGS_SS(%rsp)
    jne     .Lvia_iret
    /* sysret to a non-canonical address faults in ring 0 on Intel with the
     * guest's stack already loaded: never let it happen. */
    mov     %rcx, %rax
    shl     $16, %rax
    sar     $16, %rax
    cmp     %rax, %rcx
    jne     .Lvia_iret

    RESTORE_GPRS
    swapgs
    mov     (REGS_RSP - REGS_VECTOR)(%rsp), %rsp
    sysretq

.Lvia_iret:
    /* iretq to a non-canonical rip faults in ring 0, after the swapgs:
     * instead the guest gets the #GP(0) its fetch there raises, and the exit
     * starts over with the frame that leaves (its #GP handler's, or another
     * vCPU's if that crashed its domain). */
    mov     REGS_RIP(%rsp), %rcx
    mov     %rcx, %rax
    shl     $16, %rax
    sar     $16, %rax
    cmp     %rax, %rcx
    jne     .Lnoncanonical_exit
    RESTORE_GPRS
    add     $16, %rsp
    swapgs
.Lexit_iretq:
    iretq

.Lnoncanonical_exit:
    mov     %rsp, %rdi
    call    arch_exit_noncanonical
    jmp     return_to_guest

/* The exit iretq faulted (a frame the CPU refuses despite the checks of the
 * iret hypercall and the exit path). The fault came in ring 0 on this stack,
 * with the guest's GS base, and the exception table brought us here, with
 * the guest's registers and %rsp back at the hardware frame of core::Regs:
 * rebuild the rest of it, as the #GP it most likely was, and let C++ hand it
 * to the guest (core/traps.hpp guest_frame_refused). */
.Lexit_iretq_fault:
    swapgs
    push    $0                          /* error code */
    push    $VECTOR_GENERAL_PROTECTION
    SAVE_GPRS
    cld
    mov     %rsp, %rdi
    call    arch_exit_refused
    jmp     return_to_guest

    .section .extable, "a"
    .balign 8
    .quad   .Lexit_iretq, .Lexit_iretq_fault
    .text

/* First entry into a guest on this CPU: the frame is already filled in. */
    .globl enter_first_guest
enter_first_guest:
    mov     %rdi, %rsp
    jmp     return_to_guest

/* IST entries (NMI, #DF, #MC, and #DB from ring 0). The IST stack's top
 * quadword holds this CPU's arch::Cpu pointer; load it into GS_BASE for the
 * handler, put back what was there on the way out. These never schedule.
 * IST_HANDLE is the body, once the error code and vector are pushed. */
.macro IST_ENTRY name, vector, has_error
    .globl \name
    .balign 16
\name:
    .if \has_error == 0
    push    $0
    .endif
    push    $\vector
    IST_HANDLE
.endm

.macro IST_HANDLE
    SAVE_GPRS
    cld
    mov     $0xC0000101, %ecx           /* GS_BASE */
    rdmsr
    push    %rdx
    push    %rax
    lea     REGS_SIZE+16(%rsp), %rax    /* the hardware frame ends at the IST top minus 16 */
    and     $~0xF, %rax
    mov     8(%rax), %rax               /* top quadword: arch::Cpu* */
    mov     %rax, %rdx
    shr     $32, %rdx
    wrmsr
    lea     16(%rsp), %rdi
    call    arch_trap
    pop     %rax
    pop     %rdx
    mov     $0xC0000101, %ecx
    wrmsr
    RESTORE_GPRS
    add     $16, %rsp
    iretq
.endm

IST_ENTRY nmi_entry, 2, 0
IST_ENTRY double_fault_entry, 8, 1
IST_ENTRY machine_check_entry, 18, 0

/* #DB (vector 1), on its IST stack. From ring 0 it is the hypervisor's or a
 * guest's #DB held back onto an entry point (entry_c.cpp
 * debug_in_hypervisor): handled there, as the other IST vectors. From a
 * guest it is an exception like any other, whose frame must end up at the
 * top of the regular stack, where the exit path and the scheduler expect
 * every guest's: it moves there (the IST stack is free again for a #DB
 * the handling may raise, from a breakpoint on a buffer it copies) and goes
 * on as intr_common. */
    .globl debug_entry
    .balign 16
debug_entry:
    push    $0                          /* error code */
    push    $1                          /* vector: #DB */
    testb   $3, 24(%rsp)                /* CS */
    jnz     1f
    IST_HANDLE
1:  swapgs
    testb   $1, arch_smap_enabled(%rip) /* as intr_common */
    jz      2f
    clac
2:  SAVE_GPRS
    cld
    mov     %rsp, %rsi
    mov     %gs:CPU_STACK_TOP, %rdi
    sub     $REGS_SIZE, %rdi
    mov     %rdi, %rsp
    mov     $REGS_SIZE / 8, %ecx
    rep movsq
    jmp     .Lintr_frame_saved

/* One stub per IDT vector, each exactly 16 bytes apart from idt_stubs, so the
 * IDT is filled with idt_stubs + 16 * vector. Vectors with a hardware error
 * code skip the dummy push. #AC (17), #CP (21), #VC (29) and #SX (30) would
 * push one too, but the CPU never raises them here (CR0.AM clear, no CET,
 * no SEV or SVM: cpu.cpp); what arrives on those vectors is an interrupt
 * message a device forged (an MSI naming an exception vector, which only
 * interrupt remapping stops, and QEMU's lets compatibility-format ones
 * through), which pushes no error code: arch_trap sees it in service at the
 * LAPIC and drops it. */
    .balign 16
    .globl idt_stubs
idt_stubs:
    .set vector, 0
    .rept 256
    .balign 16
    .if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 13) || (vector == 14)
    .else
    push    $0
    .endif
    push    $vector
    jmp     intr_common
    .set vector, vector + 1
    .endr
