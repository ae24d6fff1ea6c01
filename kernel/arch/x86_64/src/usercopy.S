/* Copies to and from guest memory. A fault inside the copy is caught through
 * the exception table (.extable: faulting rip, fixup rip) and turned into a
 * return value, so a bad guest pointer costs the guest -EFAULT, never a panic.
 * The caller has already checked that the range lies outside the hypervisor's
 * slots; these routines only survive the pages that are not there.
 *
 *   uint64_t arch_copy_guest(void* dst, const void* src, size_t n)
 *   returns 0 on success, non-zero if a fault stopped the copy.
 */
    .text
    .globl arch_copy_guest
    .balign 16
arch_copy_guest:
    testb   $1, arch_smap_enabled(%rip)
    jz      1f
    stac
    /* Eight bytes at a time, then the rest. */
1:  mov     %rdx, %rcx
    shr     $3, %rcx
.Lcopy8:
    rep movsq
    mov     %rdx, %rcx
    and     $7, %rcx
.Lcopy:
    rep movsb
    testb   $1, arch_smap_enabled(%rip)
    jz      2f
    clac
2:  xor     %eax, %eax
    ret
.Lcopy_fault:
    testb   $1, arch_smap_enabled(%rip)
    jz      3f
    clac
3:  mov     $1, %eax
    ret

    .section .extable, "a"
    .balign 8
    .quad   .Lcopy8, .Lcopy_fault
    .quad   .Lcopy, .Lcopy_fault
