#!/bin/sh
# mksyms.sh NM KERNEL_ELF OUT.S
# Writes the kernel's symbol table for in-kernel backtraces: a count, then
# (address, name offset) pairs sorted by address, then the names. Only code
# symbols are kept. See kernel/arch/x86_64/src/ksyms.cpp for the reader.
set -eu
nm=$1; elf=$2; out=$3
"$nm" -n -C --defined-only "$elf" | awk 'BEGIN { n = 0 }
$1 ~ /^[0-9a-fA-F]+$/ && $2 ~ /^[tTwW]$/ {
    name = $0; sub(/^[^ ]+ [^ ]+ /, "", name)
    gsub(/\\/, "\\\\", name); gsub(/"/, "\\\"", name)
    addr[n] = $1; names[n] = name; n++
}
END {
    print "    .section .ksyms, \"a\""
    print "    .balign 8"
    print "    .globl ksyms_table"
    print "ksyms_table:"
    printf "    .quad %d\n", n
    for (i = 0; i < n; i++) printf "    .quad 0x%s, .Lname%d - ksyms_table\n", addr[i], i
    for (i = 0; i < n; i++) printf ".Lname%d: .asciz \"%s\"\n", i, names[i]
}' > "$out.tmp"
mv "$out.tmp" "$out"
