# System test of `moat xenstore watch` (docs/control.md): the toolstack's own
# XenStore watch, polled by the host. A new watch fires once for its path
# (as XenStore does); --keep leaves it set, so that the changes made by the
# next commands are queued in the toolstack and a later watch of the same
# path takes them, in order; without --keep the watch is removed when its
# count is reached (a read of it then finds none: watch_read is not a
# command, so a fresh watch fires its path again, first). A watch on a path
# the toolstack may not read is set but never fires for it.
if(NOT DEFINED CONTROL_READY)
  return()   # control.cmake found no manifest
endif()

moat_system_test(NAME system_control_watch
  MANIFEST manifests/control.textproto
  DOMAINS ${CONTROL_DOMAINS}
  TIMEOUT 300
  CONTROL_AFTER "${CONTROL_READY}"
  CONTROL
    "xenstore write data/w start"
    "xenstore watch data --count 1 --keep"
    "xenstore write data/w one"
    "xenstore write data/x two"
    "xenstore rm data/x"
    "xenstore watch data --count 3"
    "xenstore watch data --count 1"
    "xenstore watch /local/domain/1/name --seconds 2"
    "xenstore watch bad^path --count 1"
    "shutdown"
  EXPECT_LINE
    "control: [1] exit 0" "control: [2] exit 0" "control: [3] exit 0" "control: [4] exit 0" "control: [5] exit 0"
    "control: [6] exit 0" "control: [7] exit 0" "control: [8] exit 0" "control: [9] exit 2" "control: [10] exit 0"
  EXPECT_BETWEEN
    # (start|end|what must come between them)
    "control: [2] |control: [2] exit|control: data"
    # The three changes made while no command watched, in order.
    "control: [6] |control: [6] exit|control: data/w"
    "control: data/w|control: [6] exit|control: data/x"
    "control: data/x|control: [6] exit|control: data/x"
    # The kept watch was removed at [6]: [7]'s is new and fires its path.
    "control: [7] |control: [7] exit|control: data"
  FORBID_LINE "FAIL " "control: /local/domain/1/name" "lapsed"
  EXPECT_EXIT clean
  LABELS system)
