# System tests of `moat top` (docs/control.md, "moat top").
#
# Run as a script (AFTER_EXIT of system_control_top, cmake -P this file
# -DLOG=...): the output of `moat top -b -i 3 -d 1` (control step [2]) read
# table by table. Each of the 3 tables has its header, its column titles
# and exactly the rows its header counts, among them ping, pong and the
# toolstack, each running; ping, which talked to XenStore and its console
# (event-channel sends), shows EVENTS > 0 in every table; the first table
# has no rates ("-": nothing to compare with yet), the later ones have a
# number in every rate column.
if(CMAKE_SCRIPT_MODE_FILE)
  # One list element a line. A square bracket in a line (the console's) would
  # keep CMake from splitting the list there: brackets become parentheses.
  file(READ "${LOG}" log)
  string(REPLACE ";" "," log "${log}")
  string(REPLACE "[" "(" log "${log}")
  string(REPLACE "]" ")" log "${log}")
  string(REPLACE "\n" ";" lines "${log}")
  set(inside FALSE)
  set(tables 0)
  set(rows 0)
  set(want_rows 0)
  set(seen "")
  function(fail why)
    message(FATAL_ERROR "moat top's output in ${LOG}: ${why}")
  endfunction()
  macro(end_table)
    if(tables GREATER 0)
      if(NOT rows EQUAL want_rows)
        fail("table ${tables}: ${rows} rows under a header that counts ${want_rows} domains")
      endif()
      foreach(name ping pong toolstack)
        list(FIND seen ${name} at)
        if(at EQUAL -1)
          fail("table ${tables}: no row for ${name}")
        endif()
      endforeach()
    endif()
  endmacro()
  foreach(line IN LISTS lines)
    if(line MATCHES "^control: \\(2\\) exit ")
      if(NOT line STREQUAL "control: (2) exit 0")
        fail("${line}")
      endif()
      break()
    elseif(line MATCHES "^control: \\(2\\) ")
      set(inside TRUE)
      continue()
    elseif(NOT inside OR NOT line MATCHES "^control: (.*)$")
      continue()
    endif()
    set(text "${CMAKE_MATCH_1}")
    if(text MATCHES "^moat top - [0-9:]+  system system_control_top  ([0-9]+) domains?  free memory ([0-9]+ KiB|-)$")
      end_table()
      math(EXPR tables "${tables} + 1")
      set(want_rows ${CMAKE_MATCH_1})
      set(rows 0)
      set(seen "")
    elseif(text MATCHES "^ *NAME +ID +STATE +CPU\\(sec\\) +CPU\\(%\\) +MEM\\(k\\) +MAXMEM\\(k\\) +VCPUS +EVENTS +EVENTS/s +GRANTS +GRANTS/s +COPY\\(KB\\) +COPY\\(KB/s\\)$")
      # the titles
    elseif(text MATCHES "^ *[A-Za-z0-9_.-]+ +[0-9]+ ")
      string(REGEX MATCHALL "[^ ]+" w "${text}")
      list(LENGTH w n)
      if(NOT n EQUAL 14)
        fail("table ${tables}: a row of ${n} columns, not 14: '${text}'")
      endif()
      math(EXPR rows "${rows} + 1")
      list(GET w 0 name)
      list(GET w 2 state)
      list(GET w 8 events)
      list(APPEND seen ${name})
      if(name MATCHES "^(ping|pong|toolstack)$" AND NOT state STREQUAL "r-----")
        fail("table ${tables}: ${name} is '${state}', not running (r-----)")
      endif()
      if(name STREQUAL "ping" AND NOT events GREATER 0)
        fail("table ${tables}: ping sent ${events} events, though it talked to XenStore")
      endif()
      foreach(k 4 9 11 13)
        list(GET w ${k} rate)
        if(tables EQUAL 1 AND NOT rate STREQUAL "-")
          fail("table 1: a rate '${rate}' with nothing to compare with: '${text}'")
        elseif(tables GREATER 1 AND NOT rate MATCHES "^[0-9]+\\.[0-9]$")
          fail("table ${tables}: a rate '${rate}' that is not a number: '${text}'")
        endif()
      endforeach()
    elseif(NOT text STREQUAL "")
      fail("a line that is no part of a table: '${text}'")
    endif()
  endforeach()
  end_table()
  if(NOT tables EQUAL 3)
    fail("${tables} tables, not 3")
  endif()
  message(STATUS "moat top: 3 tables, every domain in each, ping's events counted")
  return()
endif()

set(TOP_DOMAINS ${SERVICE_DOMAINS} toolstack xs_bench)

# `moat top` in batch mode while ping and pong run (tests/system/control.cmake
# describes the manifest): 3 tables a second apart (checked by this file as a
# script, above), a clear usage error for a bad -i, then the system shut down
# cleanly. The toolstack holds both guests once pong is connected (`moat
# list` then); top waits for ping's connection too, so that ping has sent its
# first events.
moat_system_test(NAME system_control_top
  MANIFEST manifests/control.textproto
  DOMAINS ${TOP_DOMAINS}
  TIMEOUT 300
  CONTROL_AFTER "pong: PASS xs_bench.connected"
  CONTROL
    "list"
    "ping: PASS xs_bench.connected|top -b -i 3 -d 1"
    "top -b -i 0"
    "shutdown"
  AFTER_EXIT ${CMAKE_COMMAND} -DLOG=${CMAKE_BINARY_DIR}/tests/system/logs/system_control_top.log
    -P ${CMAKE_CURRENT_LIST_FILE}
  EXPECT_LINE
    "control: [1] exit 0" "control: [2] exit 0" "control: moat top - "
    "control: [3] exit 2" "control: moat top: -i needs a number of refreshes (1 to 1000000)"
    "control: [4] exit 0"
  EXPECT_BETWEEN
    "control: [2] |control: [2] exit|  system system_control_top  "
  FORBID_LINE "FAIL "
  EXPECT_EXIT clean
  LABELS system)
