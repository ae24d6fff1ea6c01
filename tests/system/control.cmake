# The live system controlled from the host (issue 14, docs/control.md): the
# toolstack domain answers `moat list`, `moat pause`, `moat unpause`,
# `moat shutdown` and `moat xenstore` on QEMU's COM2, which moat-systest makes the control socket
# of the run directory out/run/<test name> (as `moat run` does); each CONTROL
# runs the real `moat` CLI against it and its output lands in the log as
# "control: ..." lines (build/cmake/SystemTest.cmake).
#
# tests/system/manifests/control.textproto: the services, two guests that
# stay up until asked to power off (ping, pong: xs_bench role=idle), one that
# powers off by itself (loner), and a toolstack whose `controls` names ping
# and pong only.
set(CONTROL_MANIFEST ${CMAKE_CURRENT_SOURCE_DIR}/manifests/control.textproto)
if(NOT EXISTS ${CONTROL_MANIFEST})
  message(STATUS "system_control: ${CONTROL_MANIFEST} not written yet: tests not added")
  return()
endif()

set(CONTROL_DOMAINS ${SERVICE_DOMAINS} toolstack xs_bench)
set(CONTROL_GUEST ping)         # a guest the toolstack controls
set(CONTROL_OTHER pong)         # the other one
set(CONTROL_STRANGER xenstore)  # a domain it does not control (always up)
# The toolstack starts before the guests; once pong (built last of the two)
# is connected, both are built and the toolstack holds their capabilities.
set(CONTROL_READY "pong: PASS xs_bench.connected")
# xl's state flags (tools/moat/control_client.cpp): running, paused.
set(RUNNING "r-----")
set(PAUSED "--p---")

# List, pause, list, unpause, list; XenStore as the toolstack's own
# permissions allow: a node under its home written (a relative path: its
# home, as XenStore takes it), read back, listed, removed (then ENOENT), and
# nodes it has no permission for refused by XenStore with EACCES (domain 1's
# name: the builder's, readable by domain 1 and its console only; ping's
# data/up, ping's own; /local/domain itself, the builder's); then shut one guest down, then the
# whole system: every answer as asked, and the system ends cleanly (every
# frame back).
moat_system_test(NAME system_control
  MANIFEST manifests/control.textproto
  DOMAINS ${CONTROL_DOMAINS}
  TIMEOUT 300
  CONTROL_AFTER "${CONTROL_READY}"
  CONTROL
    "list"
    "pause ${CONTROL_GUEST}"
    "list ${CONTROL_GUEST}"
    "unpause ${CONTROL_GUEST}"
    "list ${CONTROL_GUEST}"
    "xenstore write data/probe hello-from-host"
    "xenstore read data/probe"
    "xenstore ls data"
    "xenstore read domid"
    "xenstore rm data/probe"
    "xenstore read data/probe"
    "xenstore read /local/domain/1/name"
    "xenstore read /local/domain/4/data/up"
    "xenstore ls /local/domain"
    "shutdown ${CONTROL_GUEST}"
    "${CONTROL_GUEST} (domain|shutdown"
  EXPECT_LINE
    "control: [1] exit 0" "control: Name                                        ID   Mem VCPUs"
    "control: [2] exit 0" "control: [3] exit 0" "control: [4] exit 0" "control: [5] exit 0"
    "control: [6] exit 0" "control: [7] exit 0" "control: hello-from-host" "control: [8] exit 0" "control: probe"
    "control: [9] exit 0" "control: [10] exit 0"
    "control: [11] exit 1" "control: moat xenstore: failed: ENOENT: xenstore read data/probe"
    "control: [12] exit 1" "control: moat xenstore: failed: EACCES: xenstore read /local/domain/1/name"
    "control: [13] exit 1" "control: moat xenstore: failed: EACCES: xenstore read /local/domain/4/data/up"
    "control: [14] exit 1" "control: moat xenstore: failed: EACCES: xenstore ls /local/domain"
    "control: [15] exit 0" "control: ${CONTROL_GUEST} asked to power off"
    "control: [16] exit 0" "control: every controlled domain asked to power off"
    "builder: ${CONTROL_GUEST} (domain"
  EXPECT_BETWEEN
    # Both guests and the toolstack listed, running.
    "control: [1] |control: [1] exit|control: ${CONTROL_GUEST} "
    "control: [1] |control: [1] exit|control: ${CONTROL_OTHER} "
    "control: [1] |control: [1] exit|control: toolstack "
    # ping is domain 4 (the manifest's order), whose data/up step [13] reads.
    "control: [1] |control: [1] exit|control: ping                                         4 "
    "control: [1] |control: [1] exit|${RUNNING}"
    "control: [3] |control: [3] exit|${PAUSED}"
    "control: [5] |control: [5] exit|${RUNNING}"
    # What was written is what is read back, and listed; gone once removed.
    "control: [7] |control: [7] exit|control: hello-from-host"
    "control: [8] |control: [8] exit|control: probe"
    # The guest asked powers off (the builder's line) before the system is asked.
    "control: [15] |control: [16] |) powered off"
  FORBID_LINE "FAIL " "refused"
  EXPECT_EXIT clean
  LABELS system)

# What the toolstack does not hold, it cannot touch: a pause, an unpause and
# a shutdown of a domain outside its `controls` are refused with the reason
# (exit 1, "refused: ..."). A name nobody has gets the same refusal: the
# toolstack knows only the domains it holds capabilities for, so it is no
# oracle of which others exist; `moat list NAME` of it says there is no such
# domain among those listed. The guests run on and the system still ends
# cleanly when asked.
moat_system_test(NAME system_control_refused
  MANIFEST manifests/control.textproto
  DOMAINS ${CONTROL_DOMAINS}
  TIMEOUT 300
  CONTROL_AFTER "${CONTROL_READY}"
  CONTROL
    "pause ${CONTROL_STRANGER}"
    "unpause ${CONTROL_STRANGER}"
    "shutdown ${CONTROL_STRANGER}"
    "pause nosuchdomain"
    "list nosuchdomain"
    "list ${CONTROL_GUEST}"
    "shutdown"
  EXPECT_LINE
    "control: [1] exit 1" "control: moat pause: refused: " "control: [2] exit 1" "control: moat unpause: refused: "
    "control: [3] exit 1" "control: moat shutdown: refused: "
    "control: [4] exit 1" "control: moat pause: refused: pause \"nosuchdomain\""
    "control: [5] exit 1" "control: moat list: no domain 'nosuchdomain' in system system_control_refused"
    "control: [6] exit 0" "control: [7] exit 0"
    "toolstack: refused: "
  EXPECT_BETWEEN
    # The reason names the domain and the capability the toolstack lacks.
    "control: [1] |control: [1] exit|control: moat pause: refused: pause \"${CONTROL_STRANGER}\": the toolstack holds no Domain capability"
    "control: [6] |control: [6] exit|${RUNNING}"
  FORBID_LINE "FAIL "
  EXPECT_EXIT clean
  LABELS system adversarial)
