# System tests of `moat trace` (docs/control.md, "moat trace"): the kernel's
# per-CPU trace buffers read through the toolstack (its Trace capability,
# copied by the builder) while the system runs, written as a Perfetto trace
# and decoded by an independent reader (perfetto_check.py: its own protobuf
# wire decoder).
set(CONTROL_TRACE_MANIFEST ${CMAKE_CURRENT_SOURCE_DIR}/manifests/control.textproto)
if(NOT EXISTS ${CONTROL_TRACE_MANIFEST})
  message(STATUS "system_control_trace: ${CONTROL_TRACE_MANIFEST} not written yet: test not added")
  return()
endif()
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(STATUS "system_control_trace: no python3: test not added")
  return()
endif()

# A second of tracing while ping and pong run, then `moat list` (an answer
# after the trace's carries none of its fields) and `moat shutdown`; the
# trace must decode, with a CPU track that has scheduling slices, a track per
# domain seen, balanced slices and at least one hypercall slice. The
# toolstack says when it starts and stops recording.
set(trace_file ${CMAKE_CURRENT_BINARY_DIR}/logs/system_control_trace.perfetto-trace)
moat_system_test(NAME system_control_trace
  MANIFEST manifests/control.textproto
  DOMAINS ${SERVICE_DOMAINS} toolstack xs_bench
  TIMEOUT 400
  BEFORE_RUN ${CMAKE_COMMAND} -E rm -f ${trace_file} ${trace_file}.sched
  CONTROL_AFTER "pong: PASS xs_bench.connected"
  CONTROL
    "trace --seconds 1 -o ${trace_file}"
    "list"
    "trace --seconds 1 --only sched -o ${trace_file}.sched"
    "trace --seconds 1 --only nosuch -o ${trace_file}.x"
    "shutdown"
  EXPECT_LINE
    "toolstack: trace started (1 cpu buffers)" "toolstack: trace stopped"
    "control: [1] exit 0" "control: moat trace: " " records from 1 cpu(s), "
    "control: [2] exit 0" "control: [3] exit 0"
    # Scheduling only: few enough records that none is lost.
    "control: moat trace: " " records from 1 cpu(s), 0 lost"
    "control: [4] exit 2" "control: [5] exit 0"
  EXPECT_BETWEEN
    "control: [2] |control: [2] exit|control: toolstack "
  FORBID_LINE "FAIL " "refused"
  EXPECT_EXIT clean
  # Both traces through the independent reader; the second must hold
  # scheduling slices and nothing else.
  AFTER_EXIT sh -c "${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/perfetto_check.py ${trace_file} --cpus 1 && ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/perfetto_check.py ${trace_file}.sched --cpus 1 --sched-only"
  LABELS system)
