# System tests of `moat console` (docs/control.md).
#
# moat-systest keeps the run's console log in its run directory
# (out/run/<test name>/console.log, as `moat run` does), so `moat console`
# can be run against the live system as a CONTROL step: ping's recent lines
# without their "ping: " and none of another's (no line of the kernel, the
# services or pong shows up, with or without its prefix); --until seeing a
# line ping printed; --until with --timeout giving up (exit 1, said so); a
# name the manifest does not have is a clear error listing the domains it
# has. Then `moat shutdown` ends the system cleanly.
if(NOT DEFINED CONTROL_READY)
  return()   # control.cmake found no manifest
endif()

moat_system_test(NAME system_control_console
  MANIFEST manifests/control.textproto
  DOMAINS ${CONTROL_DOMAINS}
  TIMEOUT 300
  CONTROL_AFTER "${CONTROL_READY}"
  CONTROL
    "console ${CONTROL_GUEST} --no-follow"
    "console ${CONTROL_GUEST} --until xs_bench.connected --timeout 60"
    "console nosuch --no-follow"
    "console ${CONTROL_GUEST} --lines 0 --until never-printed --timeout 3"
    "shutdown"
  EXPECT_LINE
    "control: [1] exit 0" "control: [2] exit 0"
    "control: [3] exit 1"
    "control: moat console: no domain 'nosuch' in system system_control_console (its domains: builder, console, xenstore, toolstack, ping, pong, loner)"
    "control: [4] exit 1" "control: moat console: 'never-printed' not seen in ping's lines in 3 s (--timeout)"
    "control: [5] exit 0"
  EXPECT_BETWEEN
    "control: [1] |control: [1] exit|control: PASS xs_bench.connected"
    "control: [2] |control: [2] exit|control: PASS xs_bench.connected"
  FORBID_LINE "FAIL " "control: moat: " "control: builder: " "control: console: " "control: xenstore: "
    "control: toolstack: " "control: pong: " "control: loner: " "control: ping: "
    # The toolstack's line, had its prefix been stripped.
    "control: control channel on COM2"
  EXPECT_EXIT clean
  LABELS system)
