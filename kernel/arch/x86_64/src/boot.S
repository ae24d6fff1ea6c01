/* Multiboot entry: 32-bit protected mode → long mode → the higher half.
 *
 * The loader leaves us in flat 32-bit protected mode with paging off, EAX the
 * multiboot magic and EBX the physical address of the multiboot information.
 * We build just enough page tables to run the kernel at its link address:
 *   - identity map of the first 4 GiB (only until kmain has taken what it
 *     needs from low memory; kmain removes it),
 *   - the direct map of the same 4 GiB at DIRECTMAP_VIRT (L4 slot 262;
 *     memory_init extends it over RAM above 4 GiB, in this same PDPT),
 *   - the kernel image at KERNEL_VIRT (L4 slot 261) → physical 0.
 * All with 2 MiB pages, none user-accessible.
 */
#include <arch/layout.h>

#define MB_MAGIC      0x1BADB002
#define MB_FLAGS      0x00010003   /* page-align modules, memory map, a.out kludge */
#define MB_BOOT_MAGIC 0x2BADB002

    .section .multiboot, "a"
    .align 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long mb_header
    .long __load_start
    .long __load_end_phys
    .long __bss_end_phys
    .long mb_entry

    .section .boot.text, "ax"
    .code32
    .globl mb_entry
mb_entry:
    cli
    cld
    mov     $boot32_stack_top, %esp
    mov     %eax, %edi                  /* kmain(magic, mbi) after the switch */
    mov     %ebx, %esi

    cmp     $MB_BOOT_MAGIC, %eax
    jne     .Lno_multiboot

    /* Long mode available? */
    mov     $0x80000000, %eax
    cpuid
    cmp     $0x80000001, %eax
    jb      .Lno_long_mode
    mov     $0x80000001, %eax
    cpuid
    test    $(1 << 29), %edx
    jz      .Lno_long_mode
    mov     %edx, %ebp                  /* keep for NX below */

    /* Page directories: 4 x 512 entries of 2 MiB covering 4 GiB. */
    mov     $boot_pd, %ebx
    xor     %ecx, %ecx
1:  mov     %ecx, %eax
    shl     $21, %eax
    or      $0x83, %eax                 /* present, writable, 2 MiB */
    mov     %eax, (%ebx,%ecx,8)
    mov     %ecx, %eax
    shr     $11, %eax                   /* high dword: bits 32+ of the address */
    mov     %eax, 4(%ebx,%ecx,8)
    inc     %ecx
    cmp     $2048, %ecx
    jne     1b

    /* PDPT for low memory / direct map: 4 directories. */
    mov     $boot_pdpt, %ebx
    mov     $boot_pd, %eax
    or      $3, %eax
    mov     %eax, 0(%ebx)
    add     $0x1000, %eax
    mov     %eax, 8(%ebx)
    add     $0x1000, %eax
    mov     %eax, 16(%ebx)
    add     $0x1000, %eax
    mov     %eax, 24(%ebx)

    /* PDPT for the kernel slot: the first directory (physical 0..1 GiB). */
    mov     $boot_pdpt_kernel, %ebx
    mov     $boot_pd, %eax
    or      $3, %eax
    mov     %eax, (KERNEL_VIRT_L3_INDEX * 8)(%ebx)

    mov     $boot_pml4, %ebx
    mov     $boot_pdpt, %eax
    or      $3, %eax
    mov     %eax, 0(%ebx)
    mov     %eax, (DIRECTMAP_L4_INDEX * 8)(%ebx)
    mov     $boot_pdpt_kernel, %eax
    or      $3, %eax
    mov     %eax, (KERNEL_VIRT_L4_INDEX * 8)(%ebx)

    /* CR4.PAE, CR3, EFER.LME (+NXE when the CPU has it), CR0.PG|WP. */
    mov     %cr4, %eax
    or      $(1 << 5), %eax
    mov     %eax, %cr4
    mov     $boot_pml4, %eax
    mov     %eax, %cr3
    mov     $0xC0000080, %ecx
    rdmsr
    or      $(1 << 8), %eax
    test    $(1 << 20), %ebp
    jz      2f
    or      $(1 << 11), %eax
2:  wrmsr
    mov     %cr0, %eax
    or      $0x80010001, %eax
    mov     %eax, %cr0

    lgdt    boot_gdt_ptr
    ljmp    $0x08, $long_entry

.Lno_multiboot:
    mov     $msg_no_mb, %esi
    jmp     .Lfail32
.Lno_long_mode:
    mov     $msg_no_lm, %esi
.Lfail32:
    /* Print to COM1 without initialising it (QEMU's UART works as is). */
    mov     $0x3F8, %dx
1:  lodsb
    test    %al, %al
    jz      2f
    out     %al, %dx
    jmp     1b
2:  mov     $0xF4, %dx                  /* isa-debug-exit: panic code */
    mov     $0x11, %eax
    out     %eax, %dx
3:  hlt
    jmp     3b

    .code64
long_entry:
    mov     $0x10, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    xor     %eax, %eax
    mov     %eax, %fs
    mov     %eax, %gs
    movabs  $higher_half_entry, %rax
    jmp     *%rax

msg_no_mb: .asciz "moat: PANIC: not started by a multiboot loader\n"
msg_no_lm: .asciz "moat: PANIC: this CPU has no long mode\n"

    .section .boot.data, "aw"
    .align 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF            /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF            /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .align 4096
    .globl boot_pml4
boot_pml4:        .fill 512, 8, 0
boot_pdpt:        .fill 512, 8, 0
boot_pdpt_kernel: .fill 512, 8, 0
boot_pd:          .fill 2048, 8, 0
boot32_stack:     .fill 1024, 1, 0
boot32_stack_top:

    .section .text.entry, "ax"
    .code64
higher_half_entry:
    lea     boot_stack_top(%rip), %rsp
    xor     %ebp, %ebp
    call    kmain                       /* (magic in %edi, mbi in %esi) */
1:  cli
    hlt
    jmp     1b

    .section .bss
    .align 4096
boot_stack:
    .skip BOOT_STACK_SIZE
boot_stack_top:

/* The boot L4's physical address, for 64-bit code (which cannot reach the
 * low, physically linked symbol RIP-relatively). It stays the hypervisor's
 * own ("idle") page table after boot. */
    .section .rodata
    .balign 8
    .globl boot_pml4_pa
boot_pml4_pa:
    .quad boot_pml4
