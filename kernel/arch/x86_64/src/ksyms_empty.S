/* First link pass: an empty symbol table (see build/mksyms.sh). */
    .section .ksyms, "a"
    .balign 8
    .globl ksyms_table
ksyms_table:
    .quad 0
