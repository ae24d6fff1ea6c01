/* Every way into and out of the hypervisor.
 *
 * Guests run in ring 3. Whatever brings the CPU into ring 0 from a guest --
 * `syscall`, an exception, an interrupt -- builds one core::Regs frame at the
 * top of this CPU's stack (TSS.RSP0 for interrupts, loaded by hand for
 * syscall), so C++ sees the guest's state in one place. The way out is one
 * path, return_to_guest, which lets the scheduler put whichever vCPU should
 * run next into that frame and leaves through `sysretq` when the frame allows
 * it (rcx == rip and r11 == rflags, as a syscall leaves them, flat selectors,
 * canonical rip) and through `iretq` otherwise.
 *
 * %gs: while a guest runs, GS_BASE is the guest's and KERNEL_GS_BASE holds
 * our arch::Cpu; `swapgs` on every entry from and exit to ring 3 flips them.
 * NMI, #DF and #MC use IST stacks and can arrive anywhere (even between
 * `swapgs` and `sysretq`), so they load GS_BASE explicitly instead.
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
    RESTORE_GPRS
    add     $16, %rsp
    swapgs
    iretq

/* First entry into a guest on this CPU: the frame is already filled in. */
    .globl enter_first_guest
enter_first_guest:
    mov     %rdi, %rsp
    jmp     return_to_guest

/* IST entries (NMI, #DF, #MC). The IST stack's top quadword holds this CPU's
 * arch::Cpu pointer; load it into GS_BASE for the handler, put back what was
 * there on the way out. These never schedule. */
.macro IST_ENTRY name, vector, has_error
    .globl \name
    .balign 16
\name:
    .if \has_error == 0
    push    $0
    .endif
    push    $\vector
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

/* One stub per IDT vector, each exactly 16 bytes apart from idt_stubs, so the
 * IDT is filled with idt_stubs + 16 * vector. Vectors with a hardware error
 * code skip the dummy push. */
    .balign 16
    .globl idt_stubs
idt_stubs:
    .set vector, 0
    .rept 256
    .balign 16
    .if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 13) || (vector == 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    push    $0
    .endif
    push    $vector
    jmp     intr_common
    .set vector, vector + 1
    .endr
