# `moat list` over several pages (docs/control.md, "The host side"): 32
# controlled guests and the toolstack do not fit one 1,032-byte answer, so
# the host asks for the rest from where each page ended. Every guest is
# listed once, running; `moat list guest32` finds the last one (on a later
# page), and so does `moat top`; `moat shutdown` then powers all 32 off and the
# system ends cleanly.
if(NOT DEFINED CONTROL_READY)
  return()   # control.cmake found no manifest
endif()

set(expect_many "")
foreach(i RANGE 1 32)
  if(i LESS 10)
    set(n "guest0${i}")
  else()
    set(n "guest${i}")
  endif()
  list(APPEND expect_many "control: [1] |control: [1] exit|control: ${n} ")
endforeach()

moat_system_test(NAME system_control_list_pages
  MANIFEST manifests/control_many.textproto
  DOMAINS ${CONTROL_DOMAINS}
  TIMEOUT 400
  CONTROL_AFTER "guest32: PASS xs_bench.connected"
  CONTROL
    "list"
    "list guest32"
    "list --free"
    "top -b -i 1"
    "shutdown"
  EXPECT_LINE
    "control: [1] exit 0" "control: [2] exit 0" "control: [3] exit 0" "control: free memory: "
    "control: [4] exit 0" "control: [5] exit 0" "control: every controlled domain asked to power off"
    "builder: all frames back"
  EXPECT_BETWEEN
    ${expect_many}
    "control: [1] |control: [1] exit|control: toolstack "
    "control: [2] |control: [2] exit|control: guest32 "
    # moat top lists every page too.
    "control: [4] |control: [4] exit|guest32"
  FORBID_LINE "FAIL " "note:" "malformed"
  EXPECT_EXIT clean
  LABELS system)
