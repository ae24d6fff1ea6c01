/* Leaving and re-entering the attacker's kernel context (guests/attack_pv/env.hpp).
 *
 * pv_user_call and pv_iret_try save the callee-saved registers and the stack
 * pointer in g_kctx and leave through the iret hypercall; whatever comes back
 * (a syscall from user mode, the failsafe callback, a landing, a fault that
 * resumes at pv_resume_kctx) returns from them by pv_resume_kctx. */

    .bss
    .balign 16
    .globl g_kctx, g_resume, g_failsafe_frame, g_failsafe_hits, g_landing, g_landing_hits, g_gate_called
g_kctx:             .quad 0
g_resume:           .quad 0
g_failsafe_frame:   .skip 11 * 8
g_failsafe_hits:    .quad 0
g_landing:          .skip 3 * 8
g_landing_hits:     .quad 0
g_gate_called:      .quad 0

    .text

.macro SAVE_KCTX
    push    %rbx
    push    %rbp
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, g_kctx(%rip)
.endm

/* void pv_resume_kctx(): back into the context SAVE_KCTX saved. */
    .globl pv_resume_kctx
pv_resume_kctx:
    mov     g_kctx(%rip), %rsp
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbp
    pop     %rbx
    ret

/* void pv_user_call(void (*fn)(), uint64_t user_rsp): fn in guest user mode. */
    .globl pv_user_call
pv_user_call:
    SAVE_KCTX
    pushq   $0xe02b                     /* ss */
    push    %rsi                        /* rsp */
    pushq   $0x202                      /* rflags: IF */
    pushq   $0xe033                     /* cs, RPL 3: user mode */
    lea     pv_user_trampoline(%rip), %rax
    push    %rax                        /* rip */
    pushq   $0                          /* flags */
    jmp     hypercall_page + 23 * 32

pv_user_trampoline:                     /* user mode, fn in %rdi */
    call    *%rdi
    movabs  $0x5553455245584954, %rax   /* "USEREXIT": not a hypercall number */
    syscall                             /* bounced to pv_syscall_entry */
    ud2

/* The syscall callback: only our way back from user mode. */
    .globl pv_syscall_entry
pv_syscall_entry:
    jmp     pv_resume_kctx

/* void pv_iret_try(const uint64_t frame[6]): iret with {flags, rip, cs,
 * rflags, rsp, ss}. Comes back through the failsafe callback, a landing or
 * a fault resuming at pv_resume_kctx. */
    .globl pv_iret_try
pv_iret_try:
    SAVE_KCTX
    pushq   40(%rdi)                    /* ss */
    pushq   32(%rdi)                    /* rsp */
    pushq   24(%rdi)                    /* rflags */
    pushq   16(%rdi)                    /* cs */
    pushq   8(%rdi)                     /* rip */
    pushq   0(%rdi)                     /* flags */
    jmp     hypercall_page + 23 * 32

/* void pv_yield_holding(uint64_t yields): yields the CPU `yields` times,
 * holding the data selectors it was called with. Comes back through
 * pv_resume_kctx: at the end, or from the failsafe callback (a selector the
 * hypervisor could not load again when it put us back on the CPU). */
    .globl pv_yield_holding
pv_yield_holding:
    SAVE_KCTX
    mov     %rdi, %r12                  /* callee-saved: survives the hypercalls */
1:  test    %r12, %r12
    jz      2f
    xor     %edi, %edi                  /* SCHEDOP_yield */
    call    hypercall_page + 29 * 32    /* sched_op */
    dec     %r12
    jmp     1b
2:  jmp     pv_resume_kctx

/* The failsafe callback: {rcx, r11, ds, es, fs, gs, rip, cs, rflags, rsp, ss}
 * at %rsp. Recorded, then back to the kernel context. */
    .globl pv_failsafe_entry
pv_failsafe_entry:
    lea     g_failsafe_frame(%rip), %rdi
    mov     %rsp, %rsi
    mov     $11, %ecx
    rep movsq
    incq    g_failsafe_hits(%rip)
    jmp     pv_resume_kctx

/* Where a legitimate iret lands (guest kernel mode): what the CPU runs with. */
    .globl pv_iret_landing
pv_iret_landing:
    pushfq
    popq    g_landing(%rip)
    mov     %cs, %rax
    mov     %rax, g_landing + 8(%rip)
    mov     %ss, %rax
    mov     %rax, g_landing + 16(%rip)
    incq    g_landing_hits(%rip)
    jmp     pv_resume_kctx

/* The same in user mode: back to the kernel context by a syscall. */
    .globl pv_iret_landing_user
pv_iret_landing_user:
    pushfq
    popq    g_landing(%rip)
    mov     %cs, %rax
    mov     %rax, g_landing + 8(%rip)
    mov     %ss, %rax
    mov     %rax, g_landing + 16(%rip)
    incq    g_landing_hits(%rip)
    movabs  $0x5553455245584954, %rax
    syscall
    ud2

/* Where a call gate would lead (guests/attack_pv/gdt.cpp): if a call through
 * one ever gets here, it counts and returns. */
    .globl pv_gate_target
pv_gate_target:
    incq    g_gate_called(%rip)
    lretq
