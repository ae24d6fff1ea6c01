/* The Xen ELF notes that make a domain image loadable by a Xen-style builder.
 * Domain images are linked at 4 MiB (build/domain.ld) so that page 0 stays
 * unmapped. A test-only build flag produces deliberately contradictory notes. */

.macro XEN_NOTE_BEGIN type
    .balign 4
    .long   4
    .long   2f - 1f
    .long   \type
    .asciz  "Xen"
    .balign 4
1:
.endm
.macro XEN_NOTE_END
2:  .balign 4
.endm
.macro XEN_NOTE_STR type, str
    XEN_NOTE_BEGIN \type
    .asciz  "\str"
    XEN_NOTE_END
.endm
.macro XEN_NOTE_QUAD type, value
    XEN_NOTE_BEGIN \type
    .quad   \value
    XEN_NOTE_END
.endm

    .section .note.Xen, "a", @note
    XEN_NOTE_STR  6, Moat                       /* GUEST_OS */
    XEN_NOTE_STR  7, 1                          /* GUEST_VERSION */
    XEN_NOTE_STR  5, xen-3.0                    /* XEN_VERSION */
    XEN_NOTE_STR  8, generic                    /* LOADER */
    XEN_NOTE_QUAD 3, 0x400000                   /* VIRT_BASE */
    /* Xen places segments at p_paddr + VIRT_BASE - PADDR_OFFSET, with
     * PADDR_OFFSET 0 when absent; the linker writes p_paddr = p_vaddr, so
     * this puts every segment at its p_vaddr. */
    XEN_NOTE_QUAD 4, 0x400000                   /* PADDR_OFFSET */
#ifdef MOAT_TEST_BAD_ENTRY
    XEN_NOTE_QUAD 1, 0x10                       /* ENTRY outside the image */
#else
    XEN_NOTE_QUAD 1, _start                     /* ENTRY */
#endif
    XEN_NOTE_QUAD 2, hypercall_page             /* HYPERCALL_PAGE */
