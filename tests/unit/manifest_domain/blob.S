/* The binary manifest of tests/manifests/good.textproto, written by
 * `moat compile` at build time (MANIFEST_FILE). */
    .section .rodata
    .balign 8
    .globl manifest_blob, manifest_blob_end
manifest_blob:
    .incbin MANIFEST_FILE
manifest_blob_end:
