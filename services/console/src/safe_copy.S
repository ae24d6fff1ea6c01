/* Access to another domain's ring page that survives the page going away:
 * the hypervisor removes our mapping of a domain's page when that domain is
 * destroyed, which may happen between any two of our instructions. Each
 * function below touches the page with one instruction; if it faults, the
 * page-fault handler (safe_copy.cpp) resumes at safe_copy_fault, which
 * returns -1. No function here changes %rsp before its faulting instruction.
 *
 *   long safe_copy(void* dst, const void* src, size_t n)       0 or -1
 *   long safe_load32(const uint32_t* p, uint32_t* out)         0 or -1
 *   long safe_store32(uint32_t* p, uint32_t v)                 0 or -1
 */
    .text
    .globl safe_copy, safe_load32, safe_store32
    .globl safe_copy_insn, safe_load32_insn, safe_store32_insn, safe_copy_fault

safe_copy:
    mov     %rdx, %rcx
safe_copy_insn:
    rep movsb
    xor     %eax, %eax
    ret

safe_load32:
safe_load32_insn:
    mov     (%rdi), %eax
    mov     %eax, (%rsi)
    xor     %eax, %eax
    ret

safe_store32:
safe_store32_insn:
    mov     %esi, (%rdi)
    xor     %eax, %eax
    ret

safe_copy_fault:
    mov     $-1, %rax
    ret

    .section .note.GNU-stack, "", @progbits
