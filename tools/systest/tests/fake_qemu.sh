#!/bin/sh
# Stands in for qemu-system-x86_64 in runner_test.sh (via MOAT_QEMU).
# FAKE_SCENARIO picks the behaviour; the arguments are written to $FAKE_ARGS.
[ -n "$FAKE_ARGS" ] && printf '%s\n' "$@" > "$FAKE_ARGS"
case "$FAKE_SCENARIO" in
  clean)
    printf 'moat: booting\r\n'
    printf 'd1: PA'; sleep 0.1; printf 'SS alpha\r\n'
    printf '\001\033junk\377\n'
    printf 'd2: PASS beta (1 ms)\n'
    printf 'd1: BENCH hypercall_ns 123\nd2: BENCH ipc_ns 45.5\n'
    printf 'moat: halting'   # no final newline
    echo "fake qemu note" >&2
    exit 33 ;;
  fail)
    printf 'moat: booting\nd1: PASS alpha\nd1: FAIL beta: expected 1, got 2\n'
    exit 33 ;;
  panic)
    printf 'moat: booting\nmoat: PANIC: page fault at 0\n'
    exit 35 ;;
  triple)
    printf 'moat: booting\n'
    exit 0 ;;
  hang)
    printf 'moat: booting\n'
    sleep 30 &     # a child in the same process group must die too
    sleep 30
    exit 33 ;;
  *)
    echo "fake qemu: unknown scenario '$FAKE_SCENARIO'" >&2
    exit 1 ;;
esac
