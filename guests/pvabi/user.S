/* Guest user mode for the pvabi tests: entering it through the iret
 * hypercall, the kernel entry points user code comes back through (syscall,
 * syscall32, sysenter and failsafe callbacks), and the user code itself, in
 * 64-bit and 32-bit (compatibility) mode.
 *
 * pv_enter_user(rip, cs, rsp, ss) saves the callee-saved registers and the
 * stack pointer, then irets to user mode (IF set: events unmasked). Whatever
 * brings the vCPU back into guest kernel mode records what it saw in
 * pv_entry {kind, rax, rdi, rsi, rip, cs, rsp, ss} and calls
 * pv_back_to_kernel(kind), which makes pv_enter_user return kind. */

    .text

    .globl pv_enter_user
pv_enter_user:
    push    %rbp
    push    %rbx
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, pv_kernel_rsp(%rip)
    push    %rcx                        /* ss */
    push    %rdx                        /* rsp */
    pushq   $0x202                      /* rflags: IF */
    push    %rsi                        /* cs */
    push    %rdi                        /* rip */
    pushq   $0                          /* flags: restore everything */
    jmp     hypercall_page + 23 * 32    /* HYPERVISOR_iret */

    .globl pv_back_to_kernel
pv_back_to_kernel:
    mov     %rdi, %rax
    mov     pv_kernel_rsp(%rip), %rsp
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbx
    pop     %rbp
    ret

/* A callback entered with Xen's syscall frame {rcx, r11, rip, cs, rflags,
 * rsp, ss} at %rsp (`frame` is where rip is). */
.macro CALLBACK name, kind, frame
    .globl \name
\name:
    mov     %rax, pv_entry+8(%rip)
    mov     %rdi, pv_entry+16(%rip)
    mov     %rsi, pv_entry+24(%rip)
    mov     \frame(%rsp), %rax
    mov     %rax, pv_entry+32(%rip)     /* rip */
    mov     \frame+8(%rsp), %rax
    mov     %rax, pv_entry+40(%rip)     /* cs, with the saved event mask above bit 32 */
    mov     \frame+24(%rsp), %rax
    mov     %rax, pv_entry+48(%rip)     /* rsp */
    mov     \frame+32(%rsp), %rax
    mov     %rax, pv_entry+56(%rip)     /* ss */
    movq    $\kind, pv_entry(%rip)
    mov     $\kind, %edi
    jmp     pv_back_to_kernel
.endm

CALLBACK pv_syscall64_entry, 1, 16
CALLBACK pv_syscall32_entry, 2, 16
CALLBACK pv_sysenter_entry, 3, 16
/* The failsafe frame has the four data selectors after rcx and r11. */
CALLBACK pv_failsafe_entry, 5, 48

/* ---- user code, 64-bit ---------------------------------------------------- */

/* Loads %ds, %es and %fs with LDT selector 0x07 (entry 0, a data segment
 * with a base) and reads 8 bytes at %fs:0 into %rdi; %ds into %rsi. */
    .globl pv_user_ldt_load
pv_user_ldt_load:
    mov     $0x07, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %fs
    mov     %fs:0, %rdi
    xor     %esi, %esi
    mov     %ds, %esi
    mov     $0x64, %eax
    syscall
    ud2

/* Reports the segments it runs with: %cs in %rdi, %ss in %rsi. */
    .globl pv_user_report_segments
pv_user_report_segments:
    xor     %edi, %edi
    xor     %esi, %esi
    mov     %cs, %edi
    mov     %ss, %esi
    mov     $0x65, %eax
    syscall
    ud2

/* ---- user code, 32-bit (compatibility mode) -------------------------------- */

    .code32
    .globl pv_user32_syscall
pv_user32_syscall:
    mov     $0x77, %eax
    mov     %cs, %edi
    mov     %ss, %esi
    .globl pv_user32_syscall_insn
pv_user32_syscall_insn:
    syscall
    .globl pv_user32_after_syscall
pv_user32_after_syscall:
    ud2

    .globl pv_user32_sysenter
pv_user32_sysenter:
    mov     $0x88, %eax
    .globl pv_user32_sysenter_insn
pv_user32_sysenter_insn:
    sysenter
    ud2
    .code64

    .bss
    .balign 16
pv_kernel_rsp:
    .skip   16
    .globl pv_entry
pv_entry:                               /* an array: 16-byte aligned, as the ABI has it */
    .skip   64
