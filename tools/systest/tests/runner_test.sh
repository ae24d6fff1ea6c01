#!/bin/sh
# Integration test of moat-systest against fake_qemu.sh: exit codes, verdict
# text, log file, timeout handling and the --bench-json merge.
# usage: runner_test.sh MOAT_SYSTEST FAKE_QEMU
set -u
SYSTEST=$1
export MOAT_QEMU=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
: > "$T/kernel"; : > "$T/d1.elf"; : > "$T/d2.elf"
failures=0

# check NAME WANT_STATUS WANT_GREP... -- runner args
check() {
  name=$1; want=$2; shift 2
  greps=""
  while [ "$1" != "--" ]; do greps="$greps
$1"; shift; done
  shift
  FAKE_ARGS="$T/args" "$SYSTEST" --kernel "$T/kernel" "$@" > "$T/out" 2>&1
  got=$?
  ok=1
  [ "$got" = "$want" ] || { echo "[$name] exit $got, want $want"; ok=0; }
  echo "$greps" | while IFS= read -r g; do
    [ -z "$g" ] && continue
    grep -qF -- "$g" "$T/out" || { echo "[$name] output lacks: $g"; exit 1; }
  done || ok=0
  if [ $ok = 0 ]; then
    echo "---- output of [$name]"; cat "$T/out"; echo "----"
    failures=$((failures + 1))
  else
    echo "ok: $name"
  fi
}

FAKE_SCENARIO=clean; export FAKE_SCENARIO
check clean 0 "d1: PASS alpha" "moat-systest: PASS clean (2 PASS line(s), 2 BENCH figure(s))" \
  "qemu stderr: fake qemu note" "moat: halting" "\\x01\\x1bjunk" -- \
  --name clean --module "$T/d1.elf a=1,b=2" --module "$T/d2.elf" --timeout 20 \
  --expect-pass alpha --expect-pass beta --expect-line "moat: booting" --forbid-line WARN \
  --min-pass 2 --icount --bench-json "$T/bench/results.json" --log "$T/clean.log"
grep -qxF -- "$T/d1.elf a=1,,b=2,$T/d2.elf" "$T/args" || { echo "[clean] bad -initrd: $(cat "$T/args")"; failures=$((failures + 1)); }
grep -qx -- "-icount" "$T/args" || { echo "[clean] no -icount"; failures=$((failures + 1)); }
grep -qx "tcg" "$T/args" || { echo "[clean] no -accel tcg"; failures=$((failures + 1)); }
grep -qF "d2: PASS beta (1 ms)" "$T/clean.log" || { echo "[clean] log incomplete"; failures=$((failures + 1)); }
expected='{
  "hypercall_ns": 123,
  "ipc_ns": 45.5
}'
[ "$(cat "$T/bench/results.json")" = "$expected" ] || { echo "[clean] bench json: $(cat "$T/bench/results.json")"; failures=$((failures + 1)); }
printf '{"other": 7, "ipc_ns": 1}' > "$T/bench/results.json"
check clean-merge 0 "moat-systest: PASS" -- --bench-json "$T/bench/results.json"
expected='{
  "hypercall_ns": 123,
  "ipc_ns": 45.5,
  "other": 7
}'
[ "$(cat "$T/bench/results.json")" = "$expected" ] || { echo "[clean-merge] bench json: $(cat "$T/bench/results.json")"; failures=$((failures + 1)); }

check missing-pass 1 'missing "PASS gamma"' "missing expected line containing \"nope\"" \
  "forbidden \"halting\"" "only 2 PASS line(s), expected at least 5" -- \
  --expect-pass gamma --expect-line nope --forbid-line halting --min-pass 5

FAKE_SCENARIO=fail
check fail 1 "domain reported failure: d1: FAIL beta: expected 1, got 2" -- --expect-pass alpha

FAKE_SCENARIO=panic
check panic-unexpected 1 "kernel panic: moat: PANIC: page fault at 0" "QEMU exited with 35 (kernel panic), expected 33" --
check panic-expected 0 "moat-systest: PASS" -- --expect-exit panic

FAKE_SCENARIO=triple
check triple 1 "QEMU exited with 0 (triple fault or reset under -no-reboot), expected 33" --

FAKE_SCENARIO=hang
start=$(date +%s)
check timeout 1 "TIMEOUT after 1.5 s" "moat: booting" -- --timeout 1.5
[ $(( $(date +%s) - start )) -lt 10 ] || { echo "[timeout] took too long"; failures=$((failures + 1)); }

FAKE_SCENARIO=clean
check no-kernel 1 "kernel image not found" -- --kernel "$T/nonexistent"
check no-module 1 "module image not found: $T/none.elf" -- --module "$T/none.elf x"
check unknown-arg 2 "unknown argument '--bogus'" -- --bogus
check bad-exit 2 "--expect-exit takes clean or panic" -- --expect-exit maybe
# --control: after a --control-after, and only against a system with a control socket.
check control-needs-after 2 "--control needs a --control-after before it" -- --control list
check control-needs-toolstack 2 "--control needs --manifest with a TOOLSTACK domain" -- \
  --module "$T/d1.elf" --control-after booting --control list
MOAT_QEMU=/nonexistent/qemu check no-qemu 1 "QEMU could not be started: /nonexistent/qemu: No such file" --

echo "runner_test: $failures failure(s)"
[ $failures = 0 ]
