/* Exception and event entry for domains. The hypervisor delivers them Xen's
 * way: on the guest kernel stack {rcx, r11, [error code,] rip, cs, rflags,
 * rsp, ss}. Each stub restores rcx and r11, which leaves a hardware-like
 * frame; the common code saves the registers as an rt::TrapFrame, calls
 * C++, and returns through the iret hypercall (flags 0: restore everything). */

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
rt_trap_common:
    SAVE_GPRS
    cld
    mov     %rsp, %rdi
    call    rt_trap_dispatch
    RESTORE_GPRS
    add     $16, %rsp                   /* vector, error code */
    push    $0                          /* iret flags */
    jmp     hypercall_page + 23 * 32    /* HYPERVISOR_iret: never returns */

/* 256 stubs, 32 bytes apart from rt_trap_stubs. */
    .balign 32
    .globl rt_trap_stubs
rt_trap_stubs:
    .set vector, 0
    .rept 256
    .balign 32
    pop     %rcx
    pop     %r11
    .if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 13) || (vector == 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    push    $0
    .endif
    push    $vector
    jmp     rt_trap_common
    .set vector, vector + 1
    .endr

    .balign 32
    .globl rt_event_entry
rt_event_entry:
    pop     %rcx
    pop     %r11
    push    $0
    push    $0x100
    jmp     rt_trap_common
