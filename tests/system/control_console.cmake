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

# Typing into a console from the host: `moat console echo --send 'hello\r'`
# reaches echo (its `got "hello"` seen after the send, exit 0); a domain the
# toolstack does not control (xenstore) is refused with the reason (exit 1);
# nodes forged in the console service's input directory through the
# toolstack's XenStore access (`moat xenstore write` and rm, a path spelt
# with doubled slashes included) are refused by the toolstack: that
# directory is its own channel to the console, written only after it checked
# its Domain capability for the domain (the console service still checks
# every node it finds there: a domain it does not serve, a name that is no
# sequence number, a malformed value are dropped with a log line); input
# then still works, and "quit" typed from the host ends echo, and with it
# the system, cleanly.
moat_system_test(NAME system_control_console_input
  MANIFEST manifests/console_input.textproto
  DOMAINS ${SERVICE_DOMAINS} toolstack echo
  TIMEOUT 300
  CONTROL_AFTER "echo: ready for input"
  CONTROL
    "console echo --lines 0 --send hello\\r --until \"hello\" --timeout 60"
    "console xenstore --send x"
    "xenstore write /moat/console-input/900000 32000 hi"
    "xenstore write //moat//console-input/abc x"
    "xenstore rm /moat/console-input"
    "console echo --lines 0 --send again\\r --until \"again\" --timeout 60"
    "console echo --lines 0 --send quit\\r --until \"quit\" --timeout 60"
  EXPECT_LINE
    "control: [1] exit 0" "control: got \"hello\""
    "control: [2] exit 1"
    "control: moat console: --send to xenstore: refused: console input for \"xenstore\": the toolstack holds no Domain capability for it"
    "control: [3] exit 1" "control: [4] exit 1" "control: [5] exit 1"
    "control: moat xenstore: refused: xenstore write /moat/console-input/900000: the toolstack's own channel to the console"
    "control: moat xenstore: refused: xenstore write //moat//console-input/abc: the toolstack's own channel to the console"
    "control: moat xenstore: refused: xenstore rm /moat/console-input: the toolstack's own channel to the console"
    "control: [6] exit 0" "control: got \"again\""
    "control: [7] exit 0" "echo: got \"quit\""
  EXPECT_BETWEEN
    "control: [1] |control: [1] exit|control: got \"hello\""
    "control: [6] |control: [6] exit|control: got \"again\""
  FORBID_LINE "FAIL " "control: moat: " "echo: got \"x\"" "echo: got \"hi\"" "ignored:"
  EXPECT_EXIT clean
  LABELS system)
