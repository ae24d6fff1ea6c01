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

# Ctrl-] q on the system's own console (COM1) ends it (docs/control.md, "The
# live demo"): once ping and pong are up, Ctrl-] and q typed on COM1; the
# q is not delivered, the console service asks the toolstack in XenStore
# (it has no authority of its own), the toolstack shuts down every domain it
# controls as `moat shutdown` does, both guests power off and the system
# ends cleanly (every frame back).
moat_system_test(NAME system_control_console_quit
  MANIFEST manifests/control.textproto
  DOMAINS ${CONTROL_DOMAINS}
  TIMEOUT 300
  INPUT "\\x1dq"
  INPUT_AFTER "${CONTROL_READY}"
  # (No square bracket in these: CMake's lists would not split there.)
  EXPECT_LINE
    " moves it on, Ctrl-"
    "console: Ctrl-"
    "q: asking the toolstack to shut the system down"
    "toolstack: shutting the system down at the console's request (Ctrl-"
    "builder: ${CONTROL_GUEST} (domain 4) powered off" "builder: ${CONTROL_OTHER} (domain 5) powered off"
  FORBID_LINE "FAIL " "no toolstack takes requests" "was not written" "toolstack: shutdown: "
    "held something other than"
  EXPECT_EXIT clean
  LABELS system)

# Ctrl-] followed by another key only moves the focus, as before: Ctrl-], x
# and then q typed on COM1 (the x and the q go to the domain now in focus,
# the toolstack, which reads no input) ask nothing; the system goes on: a
# later `moat list` still answers with both guests running. The toolstack
# takes nothing but "shutdown" from the request node: something else
# written there (by the host, through the toolstack's own access) is
# ignored with a log line, and the guests stay up. Then `moat shutdown`
# ends the system cleanly.
moat_system_test(NAME system_control_console_escape
  MANIFEST manifests/control.textproto
  DOMAINS ${CONTROL_DOMAINS}
  TIMEOUT 300
  INPUT "\\x1dxq"
  INPUT_AFTER "${CONTROL_READY}"
  # Said only after the Ctrl-]: the focus starts on xenstore, the first served.
  CONTROL_AFTER "console: input goes to toolstack (domain 3)"
  CONTROL "list" "xenstore write /moat/console-request reboot" "list" "shutdown"
  EXPECT_LINE
    "control: [1] exit 0" "control: [2] exit 0"
    "toolstack: /moat/console-request held something other than \"shutdown\": ignored"
    "control: [3] exit 0" "control: [4] exit 0" "control: every controlled domain asked to power off"
    "builder: ${CONTROL_GUEST} (domain 4) powered off" "builder: ${CONTROL_OTHER} (domain 5) powered off"
  EXPECT_BETWEEN
    "control: [1] |control: [1] exit|control: ${CONTROL_GUEST} "
    "control: [1] |control: [1] exit|control: ${CONTROL_OTHER} "
    "control: [3] |control: [3] exit|control: ${CONTROL_GUEST} "
    "control: [3] |control: [3] exit|control: ${CONTROL_OTHER} "
  FORBID_LINE "FAIL " "asking the toolstack to shut the system down" "at the console's request"
  EXPECT_EXIT clean
  LABELS system)

# Ctrl-] q in a system without a toolstack (manifests/input.textproto: the
# services and echo): the console service asks, XenStore refuses its write
# (the request node is made only for a toolstack, and the console may make
# none), it says so and nothing else happens. The q is not delivered:
# echo, now in focus, gets "hello" (not "qhello"), then "quit" ends it.
moat_system_test(NAME system_console_quit_no_toolstack
  MANIFEST manifests/input.textproto
  DOMAINS ${SERVICE_DOMAINS} echo
  INPUT "\\x1dqhello\\rquit\\r" INPUT_AFTER "echo: ready for input"
  EXPECT_LINE
    "input goes to echo"
    "q: asking the toolstack to shut the system down"
    "q: no toolstack takes requests (xenstore write /moat/console-request: EACCES): nothing else happens"
    "echo: got \"hello\""
    "echo: got \"quit\""
  FORBID_LINE "FAIL " "qhello"
  EXPECT_EXIT clean
  LABELS system)
