/* Start of day for a Moat/Xen PV domain: the hypervisor enters here in ring 3
 * with %rsi = start_info and %rsp at the top of the one-page bootstrap stack.
 * The runtime moves to its own, larger stack and goes to C++. */
    .section .text.start, "ax"
    .globl _start
_start:
    cld
    lea     rt_stack_top(%rip), %rsp
    xor     %ebp, %ebp
    mov     %rsi, %rdi
    call    rt_start
    ud2

/* Filled in by the hypervisor (XEN_ELFNOTE_HYPERCALL_PAGE names it). */
    .section .text.hypercall_page, "ax"
    .balign 4096
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0xcc

    .bss
    .balign 16
rt_stack:
    .skip 65536
rt_stack_top:
