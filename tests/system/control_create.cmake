# System tests of `moat create` (docs/control.md, "moat create").
#
# Run as a script (AFTER_EXIT of system_control_create, cmake -P this file
# -DLOG=...): the machine's free memory `moat list --free` printed before the
# first create and after its destroy must be the same, frame for frame.
if(CMAKE_SCRIPT_MODE_FILE)
  file(STRINGS "${LOG}" free REGEX "^control: free memory: [0-9]+ KiB$")
  list(LENGTH free n)
  if(n LESS 2)
    message(FATAL_ERROR "free memory printed ${n} times in ${LOG}, expected at least 2")
  endif()
  list(GET free 0 before)
  list(GET free 1 after)
  if(NOT before STREQUAL after)
    message(FATAL_ERROR "frames not back after the destroy: '${before}' before the create, '${after}' after")
  endif()
  message(STATUS "free memory as before the create: ${before}")
  return()
endif()

set(CREATE_DOMAINS ${SERVICE_DOMAINS} toolstack xs_bench)
set(CREATE_READY "ping: PASS xs_bench.connected")
# The fragments `moat create` reads, their images named as the test
# manifests name theirs.
set(DOMAINS ${CMAKE_BINARY_DIR}/domains)
set(CREATE_DIR ${CMAKE_BINARY_DIR}/tests/system/manifests)
foreach(f guest big nostore ping net_a net_c net_other net_mac blk_out blk_hold blk_w)
  configure_file(${CMAKE_CURRENT_SOURCE_DIR}/manifests/create_${f}.textproto ${CREATE_DIR}/create_${f}.textproto @ONLY)
endforeach()

# Create a guest, list it running, see its console line, destroy it, free
# memory exactly as before; create it again under the same name, destroy it
# again; shut down cleanly (every frame and domain id back).
moat_system_test(NAME system_control_create
  MANIFEST manifests/create.textproto
  DOMAINS ${CREATE_DOMAINS}
  TIMEOUT 400
  CONTROL_AFTER "${CREATE_READY}"
  CONTROL
    "list --free"
    "create ${CREATE_DIR}/create_guest.textproto"
    "extra: PASS xs_bench.connected|list extra"
    "destroy extra"
    "list --free"
    "create ${CREATE_DIR}/create_guest.textproto"
    "list extra"
    "destroy extra"
    "list extra"
    "shutdown"
  AFTER_EXIT ${CMAKE_COMMAND} -DLOG=${CMAKE_BINARY_DIR}/tests/system/logs/system_control_create.log
    -P ${CMAKE_CURRENT_LIST_FILE}
  EXPECT_LINE
    "control: [1] exit 0" "control: [2] exit 0" "control: extra created as domain"
    "builder: built extra (guest, created for the toolstack) as domain"
    "extra: PASS xs_bench.connected"
    "control: [3] exit 0" "control: [4] exit 0" "control: extra destroyed"
    "control: [5] exit 0" "control: [6] exit 0" "control: [7] exit 0" "control: [8] exit 0"
    "control: [9] exit 1" "control: [10] exit 0"
    "all frames back" "all domain ids back"
  EXPECT_BETWEEN
    "control: [3] |control: [3] exit|control: extra "
    "control: [3] |control: [3] exit|r-----"
    "control: [7] |control: [7] exit|control: extra "
    "control: [7] |control: [7] exit|r-----"
  FORBID_LINE "FAIL" "FRAMES NOT BACK")

# Creates outside the quota (one 8M guest, on the console only) are refused
# with the reason: by moat create's check (a name the system has), by the toolstack (too much
# memory, a back-end not given), and the same forged past it into
# /moat/create (which the toolstack's XenStore access allows) by the builder:
# a name that exists, a back-end not given, too much memory, staging frames
# that are not the toolstack's; each reason read back from its node.
moat_system_test(NAME system_control_create_refused
  MANIFEST manifests/create_refused.textproto
  DOMAINS ${CREATE_DOMAINS}
  TIMEOUT 300
  CONTROL_AFTER "${CREATE_READY}"
  CONTROL
    "create ${CREATE_DIR}/create_big.textproto"
    "create ${CREATE_DIR}/create_nostore.textproto"
    "create ${CREATE_DIR}/create_ping.textproto"
    "xenstore write /moat/create/ping create memory=8192 console=console xenstore=- size=100 crc=1 list=1,2 asked=0 cmdline="
    "builder: moat create ping: |xenstore read /moat/create/ping"
    "xenstore write /moat/create/nostore create memory=8192 console=console xenstore=xenstore size=100 crc=1 list=1,2 asked=0 cmdline="
    "builder: moat create nostore: |xenstore read /moat/create/nostore"
    "xenstore write /moat/create/big create memory=16384 console=console xenstore=- size=100 crc=1 list=1,2 asked=0 cmdline="
    "builder: moat create big: |xenstore read /moat/create/big"
    "xenstore write /moat/create/forged create memory=8192 console=console xenstore=- size=100 crc=1 list=1,2 asked=0 cmdline="
    "builder: moat create forged: |xenstore read /moat/create/forged"
    "list"
    "shutdown"
  EXPECT_LINE
    "control: [1] exit 1" "control: moat create: big: refused: create \"big\": 12288 KiB asked, 8192 KiB left of the create quota's 8192 KiB"
    "control: [2] exit 1" "control: moat create: nostore: refused: create \"nostore\": back-end \"xenstore\" is not in the toolstack's create quota"
    "control: [3] exit 1" "duplicate domain name \"ping\""
    "control: [5] exit 0" "control: refused: a domain called \"ping\" exists already"
    "control: [7] exit 0" "control: refused: back-end \"xenstore\" is not in the toolstack's create quota"
    "control: [9] exit 0" "control: refused: 16384 KiB asked, 8192 KiB left of the create quota's 8192 KiB"
    "control: [11] exit 0" "control: refused: the staging area's frames are not all the toolstack's"
    "control: [12] exit 0" "control: [13] exit 0"
    "all frames back"
  FORBID_LINE "FAIL" "built forged" "built big" "built nostore")

# A manifest without a quota: every create refused by the toolstack.
moat_system_test(NAME system_control_create_noquota
  MANIFEST manifests/control.textproto
  DOMAINS ${CREATE_DOMAINS}
  TIMEOUT 300
  CONTROL_AFTER "pong: PASS xs_bench.connected"
  CONTROL
    "create ${CREATE_DIR}/create_guest.textproto"
    "xenstore write /moat/create/extra create"
    "shutdown"
  EXPECT_LINE
    "control: [1] exit 1"
    "control: moat create: extra: refused: create \"extra\": the manifest gives the toolstack no create quota"
    "control: [2] exit 1"
    "control: [3] exit 0"
    "all frames back"
  FORBID_LINE "FAIL" "built extra")

# A created guest with a network device: a VIF to netback, next to the
# manifest's guest b (net_ping's pair). Refused first: a vif with a mac of
# its own and a second vif (by moat create), a vif on netback2, a NETBACK
# the quota does not give (by the toolstack), and the same forged past it
# (by the builder), with a CONSOLE domain as the vif's back-end too. Then c
# is created, its vif up, and destroyed while netback serves it: the free
# memory before its create and after its destroy the same, frame for frame
# (b waits for pings meanwhile: no other domain comes or goes). Then a is
# created in c's free entry (the same MAC, 00:16:3e:01:00:00), pings b
# through netback 20 times and powers off (taken apart, not restarted), b is
# done; shut down cleanly.
moat_system_test(NAME system_control_create_net
  MANIFEST manifests/create_net.textproto
  DOMAINS ${CREATE_DOMAINS} netback net_guest
  TIMEOUT 900
  CONTROL_AFTER "b: vif 0 up"
  CONTROL
    "list"
    "create ${CREATE_DIR}/create_net_mac.textproto"
    "create ${CREATE_DIR}/create_net_other.textproto"
    "xenstore write /moat/create/forged create memory=8192 console=console xenstore=xenstore net=netback2 size=100 crc=1 list=1,2 asked=0 cmdline="
    "builder: moat create forged: |xenstore read /moat/create/forged"
    "xenstore write /moat/create/forged2 create memory=8192 console=console xenstore=xenstore net=console size=100 crc=1 list=1,2 asked=0 cmdline="
    "builder: moat create forged2: |xenstore read /moat/create/forged2"
    "list --free"
    "create ${CREATE_DIR}/create_net_c.textproto"
    "c: vif 0 up|list c"
    "destroy c"
    "list --free"
    "create ${CREATE_DIR}/create_net_a.textproto"
    "a created guest, not restarted|list"
    "b: done, 0 failed|list"
    "shutdown"
  AFTER_EXIT ${CMAKE_COMMAND} -DLOG=${CMAKE_BINARY_DIR}/tests/system/logs/system_control_create_net.log
    -P ${CMAKE_CURRENT_LIST_FILE}
  EXPECT_LINE
    "control: [1] exit 0"
    "control: [2] exit 1" "mac: a live create cannot do that yet" "a second VIF: a live create makes one per guest"
    "control: [3] exit 1"
    "control: moat create: d: refused: create \"d\": back-end \"netback2\" is not in the toolstack's create quota"
    "control: [4] exit 0" "control: [5] exit 0"
    "control: refused: back-end \"netback2\" is not in the toolstack's create quota"
    "control: [6] exit 0" "control: [7] exit 0" "control: refused: back-end \"console\" is no NETBACK domain"
    "control: [8] exit 0" "control: [9] exit 0" "control: c created as domain"
    "c: vif 0 up: mac 00:16:3e:01:00:00"
    "control: [10] exit 0" "control: [11] exit 0" "control: c destroyed" "control: [12] exit 0"
    "control: [13] exit 0" "control: a created as domain"
    "builder: built a (guest, created for the toolstack) as domain"
    "a: vif 0 up: mac 00:16:3e:01:00:00"
    "a: ping: 20 of 20 replies (20 sent)" "a: done, 0 failed" "b: done, 0 failed"
    "a created guest, not restarted"
    "control: [14] exit 0" "control: [15] exit 0" "control: [16] exit 0"
    "all frames back" "all domain ids back"
  EXPECT_BETWEEN
    "control: [10] |control: [10] exit|control: c "
  FORBID_LINE "FAIL" "built d" "built e" "built forged" "FRAMES NOT BACK")

# Created guests with a disk: blkback serves the manifest's m sectors 0-2047
# and created guests parts of the quota's 4096-8191. Refused first: a disk
# at 2048-3071 (by moat create, and forged past it, by the builder). Then h
# holds 4096-5119 read-write (the toolstack cannot rewrite the sectors in
# its vbd's back-end nodes: they are blkback's); w asking for 4608-5631 is
# refused by the builder (they overlap); h is destroyed and w is created in its place,
# writes its pattern over its disk, reads it back and powers off. After
# QEMU exits the image holds m's pattern at 0-2047, w's at 4608-5631 and
# the fill byte 0xA5 everywhere else: nothing written outside a guest's
# sectors.
moat_system_test(NAME system_control_create_blk
  MANIFEST manifests/create_blk.textproto
  DOMAINS ${CREATE_DOMAINS} blkback blk_test
  TIMEOUT 600
  FRESH_DISKS 165
  CONTROL_AFTER "${CREATE_READY}"
  CONTROL
    "create ${CREATE_DIR}/create_blk_out.textproto"
    "xenstore write /moat/create/forged create memory=8192 console=console xenstore=xenstore blk=blkback disk=2048,1024,w size=100 crc=1 list=1,2 asked=0 cmdline="
    "builder: moat create forged: |xenstore read /moat/create/forged"
    "create ${CREATE_DIR}/create_blk_hold.textproto"
    "xenstore write /local/domain/3/backend/vbd/7/51712/moat-first-sector 0"
    "create ${CREATE_DIR}/create_blk_w.textproto"
    "destroy h"
    "create ${CREATE_DIR}/create_blk_w.textproto"
    "w: done, 0 failed|list"
    "m: done, 0 failed|shutdown"
  AFTER_EXIT $<TARGET_FILE:moat-diskcheck> ${CREATE_DIR}/system_control_create_blk.img --fill 0xa5 --size-mib 8
             --pattern 0:2048:4242 --pattern 4608:1024:777
  EXPECT_LINE
    "control: [1] exit 1"
    "connection VBD from \"o\": sectors 2048+1024 are not within the create quota's 4096+4096"
    "control: [2] exit 0" "control: [3] exit 0"
    "control: refused: sectors 2048+1024 of \"blkback\" are not within the create quota's 4096+4096"
    "control: [4] exit 0" "control: h created as domain 7"
    "control: moat xenstore: failed: EACCES: xenstore write /local/domain/3/backend/vbd/7/51712/moat-first-sector"
    "control: [5] exit 1"
    "control: [6] exit 1"
    "control: moat create: w: refused: create \"w\": the builder refused: sectors 4608+1024 of \"blkback\" overlap the disk of \"h\" (4096+1024), and one of them is writable"
    "control: [7] exit 0" "control: h destroyed"
    "control: [8] exit 0" "control: w created as domain"
    "blkback: domain 8 vbd 51712 connected: sectors 4608+1024"
    "w: PASS blk.rw.pattern_final" "w: done, 0 failed" "m: done, 0 failed"
    "control: [9] exit 0" "control: [10] exit 0"
    "all frames back" "all domain ids back"
  FORBID_LINE "FAIL" "built o" "built forged" "FRAMES NOT BACK")

# The toolstack crashes just after answering a create (its command line's
# crash-after-create, a test's hook) and the builder restarts it (ON_CRASH):
# the restarted one holds the Domain capability of the guest its previous
# self created (it starts "controlling 2 domains": ping and extra), lists
# it and destroys it, every frame back; shut down cleanly.
moat_system_test(NAME system_control_toolstack_restart
  MANIFEST manifests/create_restart.textproto
  DOMAINS ${CREATE_DOMAINS}
  TIMEOUT 200
  CONTROL_AFTER "${CREATE_READY}"
  CONTROL
    "create ${CREATE_DIR}/create_guest.textproto"
    "toolstack: control channel on COM2, controlling 2 domains|list"
    "destroy extra"
    "list"
    "shutdown"
  EXPECT_LINE
    "toolstack: control channel on COM2, controlling 1 domains"
    "control: [1] exit 0" "control: extra created as domain 5"
    "toolstack: crash-after-create: crashing, as the command line asks"
    "builder: restarting toolstack"
    "control: [2] exit 0" "control: [3] exit 0" "control: extra destroyed"
    "control: [4] exit 0" "control: [5] exit 0"
    "all frames back" "all domain ids back"
  EXPECT_BETWEEN
    "control: [2] |control: [2] exit|control: extra "
    "control: [4] |control: [4] exit|control: ping "
  FORBID_LINE "FAIL" "FRAMES NOT BACK" "cannot get its Domain capability back")
