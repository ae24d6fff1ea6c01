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

# moat destroy (as xl destroy): the toolstack asks the builder, which takes
# pong apart as it takes a stopped domain apart (released from XenStore, its
# back-ends let go, every frame back: the kernel's "taken apart ... nothing
# left behind" line) and does not restart it, although pong's policy
# restarts it on a crash. pong is then gone from `moat list`, and a second
# destroy of it finds no such domain. A destroy of a domain outside the
# toolstack's `controls` is refused with the reason (the builder would refuse
# it too: it checks the `controls` itself). ping runs on, and the system
# still ends cleanly, every frame back, when asked.
moat_system_test(NAME system_control_destroy
  MANIFEST manifests/control.textproto
  DOMAINS ${CONTROL_DOMAINS}
  TIMEOUT 300
  CONTROL_AFTER "${CONTROL_READY}"
  CONTROL
    "list ${CONTROL_OTHER}"
    "destroy ${CONTROL_OTHER} --timeout 60"
    "list ${CONTROL_OTHER}"
    "destroy ${CONTROL_OTHER}"
    "destroy ${CONTROL_STRANGER}"
    # The request forged past the toolstack's own check, through its XenStore
    # access: the builder checks the toolstack's controls itself, refuses,
    # and says why in the toolstack's node.
    "xenstore write /moat/destroy/${CONTROL_STRANGER} destroy"
    "builder: moat destroy ${CONTROL_STRANGER}: refused|xenstore read /moat/destroy/${CONTROL_STRANGER}"
    "list ${CONTROL_GUEST}"
    "shutdown"
  EXPECT_LINE
    "control: [1] exit 0" "control: [2] exit 0" "control: ${CONTROL_OTHER} destroyed"
    "builder: ${CONTROL_OTHER} (domain" "destroyed for the toolstack (moat destroy): not restarted"
    "(${CONTROL_OTHER}) taken apart: "
    "control: [3] exit 1"
    "control: moat list: no domain '${CONTROL_OTHER}' in system system_control_destroy (that the toolstack controls)"
    "control: [4] exit 1" "control: moat destroy: no domain '${CONTROL_OTHER}'"
    "control: [5] exit 1"
    "control: moat destroy: refused: destroy \"${CONTROL_STRANGER}\": the toolstack holds no Domain capability"
    "control: [6] exit 0"
    "builder: moat destroy ${CONTROL_STRANGER}: refused: \"${CONTROL_STRANGER}\" is not in the toolstack's controls"
    "control: [7] exit 0" "control: refused: \"${CONTROL_STRANGER}\" is not in the toolstack's controls"
    "control: [8] exit 0" "control: [9] exit 0"
    "builder: ${CONTROL_GUEST} (domain" "all frames back" "all domain ids back"
  EXPECT_BETWEEN
    "control: [1] |control: [1] exit|${RUNNING}"
    # Taken apart by the destroy (the kernel's line, long before the final
    # shutdown; the console service prints the kernel's log on its own tick,
    # so the line may come just after the answer); nothing left behind
    # (FORBID_LINE).
    "control: [2] |control: [9] |(${CONTROL_OTHER}) taken apart: "
    "control: [8] |control: [8] exit|${RUNNING}"
  # Nor is the stranger ever taken down (the builder's line for it).
  FORBID_LINE "FAIL " "restarting ${CONTROL_OTHER}" "LEFT BEHIND" "NOT BACK"
    "builder: ${CONTROL_STRANGER} (domain"
  EXPECT_EXIT clean
  LABELS system adversarial)

# `make demo` as a live system (examples/demo.textproto itself, its images
# and disk made the test's own: the copy is generated from the example, so
# what is tested is what `make demo` runs). Nobody types anything until ping
# says what to try; then the test does what those lines say, as a person
# would: `moat list`, `moat xenstore read name`, `moat shutdown`; before the
# shutdown, `moat graph --system` draws the running system's manifest (as DOT
# on stdout: no Graphviz needed). ping and pong
# (`stay`) are up until then, and power off when asked; loner (not the
# toolstack's) has ended by itself; the system ends cleanly and nothing
# printed FAIL. (The UDP echo of the CI's demo is system_demo's; here it would
# race the shutdown.)
set(DEMO_EXAMPLE ${PROJECT_SOURCE_DIR}/examples/demo.textproto)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${DEMO_EXAMPLE})
file(READ ${DEMO_EXAMPLE} demo_live)
string(REPLACE "../out/domains/" "@DOMAINS@/" demo_live "${demo_live}")
string(REPLACE "../out/demo-disk.img" "@DISK_NAME@.img" demo_live "${demo_live}")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/demo_live.textproto.in "${demo_live}")
set(DEMO_LIVE_READY "ping: to end it: out/bin/moat shutdown")
moat_system_test(NAME system_demo_live
  MANIFEST ${CMAKE_CURRENT_BINARY_DIR}/demo_live.textproto.in
  DOMAINS ${SERVICE_DOMAINS} netback blkback toolstack demo_front demo_back demo_loner
  FRESH_DISKS 0
  TIMEOUT 300
  CONTROL_AFTER "${DEMO_LIVE_READY}"
  CONTROL
    "list"
    "xenstore read name"
    "graph -o -"
    "shutdown"
  EXPECT_LINE
    "builder: manifest: 9 domains, 18 connections"
    "ping: done, 0 failed"
    "ping: the system is up. From another terminal, try: out/bin/moat list; out/bin/moat xenstore read name"
    "ping: pong echoes UDP from the host: echo hello | nc -u -w1 127.0.0.1 5555"
    "loner: done, 0 failed"
    "control: [1] exit 0" "control: Name                                        ID   Mem VCPUs"
    "control: [2] exit 0" "control: toolstack"
    "control: [3] exit 0"
    "control: [4] exit 0" "control: every controlled domain asked to power off"
    "ping: asked to power off (control/shutdown)" "pong: asked to power off (control/shutdown)"
    "pong: net: 10 pings answered" "pong: done, 0 failed"
    "builder: every guest is down: stopping the services"
  EXPECT_BETWEEN
    # Up and running until asked: both guests and the toolstack listed.
    "control: [1] |control: [1] exit|control: ping "
    "control: [1] |control: [1] exit|control: pong "
    "control: [1] |control: [1] exit|control: toolstack "
    # The manifest the run directory names: this test's copy, with the
    # toolstack's controls drawn.
    "control: [3] |control: [3] exit|system_demo_live.textproto: who may talk to whom"
    "control: [3] |control: [3] exit|control:   \"toolstack\" -> \"pong\""
    # The guests waited: they power off only once asked (and the system
    # ends only then).
    "control: [4] |builder: every guest is down|ping: asked to power off"
    "control: [4] |builder: every guest is down|pong: asked to power off"
  FORBID_LINE "FAIL " "udp echo on port 7 (from the host: the manifest's udp_forward) for"
  EXPECT_EXIT clean
  LABELS system)
