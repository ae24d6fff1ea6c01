# System tests and benchmark runs: boot the kernel with domain images in QEMU
# under moat-systest (tools/systest) and judge its serial console.
#
# moat_system_test(NAME name
#                  MODULES "target_or_path [ARGS]" ...
#                  [EXPECT_PASS name ...] [EXPECT_LINE substr ...] [FORBID_LINE substr ...]
#                  [EXPECT_EXIT clean|panic] [MIN_PASS n]
#                  [LABELS system|adversarial ...] [TIMEOUT seconds (default 120)]
#                  [MANIFEST file DOMAINS target ...]   boot a manifest as `moat run` does
#                  [BENCH_SUFFIX s]   (moat_bench_run) each figure's name followed by s
#                  [BENCH_ONLY metric ...]   (moat_bench_run) merge only these figures
#                  [IOMMU on|off]   the machine: q35 with intel-iommu (on) or the PC (off),
#                       whatever the manifest's machine.iommu says (default: as it says; PC
#                       for MODULES)
#                  [QEMU_ARGS arg ...] [INPUT text INPUT_AFTER line]
#                  [UDP_ECHO n UDP_ECHO_AFTER line]   host UDP client through the NIC's forward
#                  [FRESH_DISKS byte]   recreate the manifest's disk images, filled with byte
#                  [DISK_NAME name]   what @DISK_NAME@ in the manifest stands for (default: NAME)
#                  [BEFORE_RUN command arg ...]   host command before QEMU starts; must exit 0
#                  [AFTER_EXIT command arg ...]   host command after QEMU ends; must exit 0
#                  [CONTROL_AFTER line] [CONTROL "[line|]command" ...]   moat commands against
#                       the running system (a MANIFEST with a TOOLSTACK domain): each CONTROL
#                       runs `moat command --system NAME` once a console line contains its
#                       line (before a '|'; default CONTROL_AFTER) and the one before it has
#                       ended, in order; output in the log as "control: ..." lines between
#                       "control: [K] <argv>" and "control: [K] exit STATUS" (K from 1)
#                  [ICOUNT] [MAX_HYPERCALL_US n])   guest time counts instructions; then no
#                       hypercall invocation may run longer than n us (default 1000) without
#                       a preemption point (the kernel's "longest hypercall invocation" line)
#   A CTest test `name` (labels default to `system`). Console log:
#   ${CMAKE_BINARY_DIR}/tests/system/logs/<name>.log
#
# moat_bench_run(NAME name <same arguments>)
#   Not a CTest test: a custom target bench_<name> (built by the `bench` target)
#   running with -icount shift=0 and merging each "BENCH <metric> <number>"
#   line into ${CMAKE_BINARY_DIR}/bench/results.json.
#
# MODULES entries: the first word is a path, or a CMake target whose file is
# used ($<TARGET_FILE:target>). A word is taken as a target if one of that name
# exists already, or if it is no existing file and looks like a target name
# (no '/'), so targets defined later in the tree work too. Relative paths are
# relative to CMAKE_CURRENT_SOURCE_DIR. The rest of the entry is the module's
# command line arguments.

include_guard(GLOBAL)

set(MOAT_KERNEL_IMAGE "${CMAKE_BINARY_DIR}/kernel/moat.bin" CACHE FILEPATH
  "Kernel image booted by system tests and benchmark runs")
set(MOAT_KERNEL_TARGET "moat_kernel" CACHE STRING
  "Target building MOAT_KERNEL_IMAGE (a dependency of benchmark runs when it exists)")
set(MOAT_BENCH_RESULTS "${CMAKE_BINARY_DIR}/bench/results.json" CACHE FILEPATH
  "Flat JSON object (metric -> number) that benchmark runs merge their figures into")

if(NOT TARGET bench)
  add_custom_target(bench COMMENT "Benchmark runs: figures in ${MOAT_BENCH_RESULTS}")
endif()

# Turns the arguments of moat_system_test/moat_bench_run into the runner's
# argument list (${prefix}_ARGS), the targets it needs (${prefix}_DEPS) and the
# parsed options (${prefix}_NAME, ${prefix}_TIMEOUT, ${prefix}_LABELS).
function(_moat_systest_parse prefix function_name)
  cmake_parse_arguments(A "ICOUNT" "NAME;EXPECT_EXIT;MIN_PASS;MAX_HYPERCALL_US;TIMEOUT;KERNEL_ARGS;MANIFEST;MANIFEST_DAMAGE;INPUT;INPUT_AFTER;UDP_ECHO;UDP_ECHO_AFTER;FRESH_DISKS;DISK_NAME;IOMMU;BENCH_SUFFIX;CONTROL_AFTER"
    "MODULES;DOMAINS;QEMU_ARGS;EXPECT_PASS;EXPECT_LINE;FORBID_LINE;EXPECT_BETWEEN;EXPECT_SHARES;LABELS;BEFORE_RUN;AFTER_EXIT;CONTROL;BENCH_ONLY" ${ARGN})
  if(A_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${function_name}: unknown arguments: ${A_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT A_NAME)
    message(FATAL_ERROR "${function_name}: NAME is required")
  endif()
  if(NOT A_MODULES AND NOT A_MANIFEST)
    message(FATAL_ERROR "${function_name}(${A_NAME}): MODULES or MANIFEST is required")
  endif()
  if(A_MODULES AND A_MANIFEST)
    message(FATAL_ERROR "${function_name}(${A_NAME}): MODULES and MANIFEST exclude each other")
  endif()
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 120)
  endif()
  if(NOT A_TIMEOUT MATCHES "^[0-9]+$" OR A_TIMEOUT EQUAL 0)
    message(FATAL_ERROR "${function_name}(${A_NAME}): TIMEOUT must be a positive whole number of seconds")
  endif()
  if(A_EXPECT_EXIT AND NOT A_EXPECT_EXIT MATCHES "^(clean|panic)$")
    message(FATAL_ERROR "${function_name}(${A_NAME}): EXPECT_EXIT must be clean or panic")
  endif()
  if(DEFINED A_MIN_PASS AND NOT A_MIN_PASS MATCHES "^[0-9]+$")
    message(FATAL_ERROR "${function_name}(${A_NAME}): MIN_PASS must be a number")
  endif()
  if(DEFINED A_IOMMU AND NOT A_IOMMU MATCHES "^(on|off)$")
    message(FATAL_ERROR "${function_name}(${A_NAME}): IOMMU must be on or off")
  endif()

  set(args --name ${A_NAME} --kernel ${MOAT_KERNEL_IMAGE} --timeout ${A_TIMEOUT}
    --log ${CMAKE_BINARY_DIR}/tests/system/logs/${A_NAME}.log)
  set(deps moat-systest)
  if(MOAT_KERNEL_TARGET)
    list(APPEND deps ${MOAT_KERNEL_TARGET})  # checked for existence when added
  endif()
  foreach(module IN LISTS A_MODULES)
    string(STRIP "${module}" module)
    string(REGEX MATCH "^[^ \t]+" first "${module}")
    string(LENGTH "${first}" first_len)
    string(SUBSTRING "${module}" ${first_len} -1 rest)
    if(first STREQUAL "")
      message(FATAL_ERROR "${function_name}(${A_NAME}): empty MODULES entry")
    endif()
    if(IS_ABSOLUTE "${first}")
      set(path "${first}")
    else()
      set(path "${CMAKE_CURRENT_SOURCE_DIR}/${first}")
    endif()
    if(TARGET ${first} OR (NOT EXISTS "${path}" AND first MATCHES "^[A-Za-z0-9_.+-]+$"))
      set(path "$<TARGET_FILE:${first}>")
      list(APPEND deps ${first})
    endif()
    list(APPEND args --module "${path}${rest}")
  endforeach()
  if(A_MANIFEST)
    # A system manifest, booted as `moat run` does (the kernel starts the
    # builder, the builder the rest). Its images are named @DOMAINS@/NAME,
    # filled in here; DOMAINS lists the image targets it needs.
    set(DOMAINS ${CMAKE_BINARY_DIR}/domains)
    # @DISK_NAME@: a disk image name of the test's own, or one it shares
    # (DISK_NAME: tests that run one after the other on one image).
    if(A_DISK_NAME)
      set(DISK_NAME ${A_DISK_NAME})
    else()
      set(DISK_NAME ${A_NAME})
    endif()
    set(generated ${CMAKE_BINARY_DIR}/tests/system/manifests/${A_NAME}.textproto)
    if(IS_ABSOLUTE "${A_MANIFEST}")
      set(source "${A_MANIFEST}")
    else()
      set(source "${CMAKE_CURRENT_SOURCE_DIR}/${A_MANIFEST}")
    endif()
    configure_file(${source} ${generated} @ONLY)
    list(APPEND args --manifest ${generated})
    list(APPEND deps builder ${A_DOMAINS} moat)
    if(A_MANIFEST_DAMAGE)
      list(APPEND args --manifest-damage ${A_MANIFEST_DAMAGE})
    endif()
    if(A_KERNEL_ARGS)
      list(APPEND args --append "${A_KERNEL_ARGS}")
    endif()
  else()
    # A list of modules: the kernel builds each as a domain (boot=all), the
    # core's own tests.
    string(STRIP "boot=all ${A_KERNEL_ARGS}" kernel_args)
    list(APPEND args --append "${kernel_args}")
  endif()
  if(DEFINED A_IOMMU)
    list(APPEND args --iommu ${A_IOMMU})
  endif()
  if(A_BENCH_SUFFIX)
    list(APPEND args --bench-suffix ${A_BENCH_SUFFIX})
  endif()
  foreach(metric IN LISTS A_BENCH_ONLY)
    list(APPEND args --bench-only ${metric})
  endforeach()
  foreach(x IN LISTS A_QEMU_ARGS)
    list(APPEND args --qemu-arg "${x}")
  endforeach()
  if(A_INPUT)
    # Typed on the serial console once a line contains INPUT_AFTER.
    list(APPEND args --input "${A_INPUT}" --input-after "${A_INPUT_AFTER}")
  endif()
  if(A_UDP_ECHO)
    list(APPEND args --udp-echo ${A_UDP_ECHO} --udp-echo-after "${A_UDP_ECHO_AFTER}")
  endif()
  if(DEFINED A_FRESH_DISKS)
    list(APPEND args --fresh-disks ${A_FRESH_DISKS})
  endif()
  if(A_BEFORE_RUN)
    list(JOIN A_BEFORE_RUN " " before_run)
    list(APPEND args --before-run "${before_run}")
  endif()
  if(A_AFTER_EXIT)
    list(JOIN A_AFTER_EXIT " " after_exit)
    list(APPEND args --after-exit "${after_exit}")
  endif()
  if(A_CONTROL AND NOT A_MANIFEST)
    message(FATAL_ERROR "${function_name}(${A_NAME}): CONTROL needs a MANIFEST with a TOOLSTACK domain")
  endif()
  foreach(x IN LISTS A_CONTROL)
    # "LINE|COMMAND" or "COMMAND" (after CONTROL_AFTER); commands hold no '|'.
    string(FIND "${x}" "|" bar REVERSE)
    if(bar EQUAL -1)
      set(after "${A_CONTROL_AFTER}")
      set(command "${x}")
    else()
      string(SUBSTRING "${x}" 0 ${bar} after)
      math(EXPR bar "${bar} + 1")
      string(SUBSTRING "${x}" ${bar} -1 command)
    endif()
    if(after STREQUAL "" OR command STREQUAL "")
      message(FATAL_ERROR "${function_name}(${A_NAME}): CONTROL '${x}' needs a line to wait for (CONTROL_AFTER or LINE|) and a command")
    endif()
    list(APPEND args --control-after "${after}" --control "${command}")
  endforeach()
  if(A_ICOUNT)
    # Guest time counts instructions: results independent of host load.
    list(APPEND args --icount)
    # ... and a hypercall's duration is its instructions: no guest may make
    # one run long without a preemption point (docs/security.md).
    if(function_name STREQUAL "moat_system_test")
      if(NOT A_MAX_HYPERCALL_US)
        set(A_MAX_HYPERCALL_US 1000)
      endif()
      # Tests, not benchmark runs: idle time passes at once (sleep=off, after
      # the runner's own -icount, which it amends), so a stall of QEMU on a
      # loaded host can never look like guest time.
      list(APPEND args --qemu-arg -icount --qemu-arg shift=0,sleep=off)
    endif()
  endif()
  if(A_MAX_HYPERCALL_US)
    list(APPEND args --max-hypercall-us ${A_MAX_HYPERCALL_US})
  endif()
  if(A_EXPECT_EXIT)
    list(APPEND args --expect-exit ${A_EXPECT_EXIT})
  endif()
  if(DEFINED A_MIN_PASS)
    list(APPEND args --min-pass ${A_MIN_PASS})
  endif()
  foreach(x IN LISTS A_EXPECT_PASS)
    list(APPEND args --expect-pass "${x}")
  endforeach()
  foreach(x IN LISTS A_EXPECT_LINE)
    list(APPEND args --expect-line "${x}")
  endforeach()
  foreach(x IN LISTS A_FORBID_LINE)
    list(APPEND args --forbid-line "${x}")
  endforeach()
  # Every test: no domain may be taken apart with something of it left
  # behind, and a system the builder ran to its end must have every frame
  # back (docs/security.md: taking a domain apart).
  list(APPEND args --forbid-line "LEFT BEHIND" --forbid-line "FRAMES NOT BACK")
  if(A_MANIFEST AND NOT A_MANIFEST_DAMAGE AND A_EXPECT_EXIT STREQUAL "clean")
    list(APPEND args --expect-line "builder: all frames back")
  endif()
  foreach(x IN LISTS A_EXPECT_BETWEEN)
    list(APPEND args --expect-between "${x}")
  endforeach()
  foreach(x IN LISTS A_EXPECT_SHARES)
    list(APPEND args --expect-shares "${x}")
  endforeach()

  set(${prefix}_NAME ${A_NAME} PARENT_SCOPE)
  set(${prefix}_TIMEOUT ${A_TIMEOUT} PARENT_SCOPE)
  set(${prefix}_LABELS ${A_LABELS} PARENT_SCOPE)
  set(${prefix}_ARGS ${args} PARENT_SCOPE)
  set(${prefix}_DEPS ${deps} PARENT_SCOPE)
endfunction()

# Deferred to the end of the top-level CMakeLists.txt, when every target exists.
function(_moat_add_existing_dependencies target)
  foreach(dep IN LISTS ARGN)
    if(TARGET ${dep})
      add_dependencies(${target} ${dep})
    endif()
  endforeach()
endfunction()

function(moat_system_test)
  _moat_systest_parse(T moat_system_test ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS system)
  endif()
  file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/tests/system/logs)
  add_test(NAME ${T_NAME} COMMAND moat-systest ${T_ARGS})
  # CTest's own limit is a backstop: the runner times out first and reports.
  math(EXPR ctest_timeout "${T_TIMEOUT} + 30")
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${ctest_timeout})
  if(MOAT_QEMU)  # the QEMU Moat.cmake found
    set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "MOAT_QEMU=${MOAT_QEMU}")
  endif()
endfunction()

function(moat_bench_run)
  _moat_systest_parse(B moat_bench_run ${ARGN})
  file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/tests/system/logs)
  get_filename_component(results_dir ${MOAT_BENCH_RESULTS} DIRECTORY)
  file(MAKE_DIRECTORY ${results_dir})
  set(qemu qemu-system-x86_64)
  if(MOAT_QEMU)  # the QEMU Moat.cmake found
    set(qemu ${MOAT_QEMU})
  endif()
  add_custom_target(bench_${B_NAME}
    COMMAND ${CMAKE_COMMAND} -E env "MOAT_QEMU=${qemu}"
            $<TARGET_FILE:moat-systest> ${B_ARGS} --icount --bench-json ${MOAT_BENCH_RESULTS}
    COMMENT "Benchmark ${B_NAME} (QEMU TCG, -icount shift=0)"
    USES_TERMINAL VERBATIM)
  add_dependencies(bench bench_${B_NAME})
  # DEFER evaluates variable references when the call runs: spell the values out.
  set(call "_moat_add_existing_dependencies bench_${B_NAME}")
  foreach(dep IN LISTS B_DEPS)
    string(APPEND call " [==[${dep}]==]")
  endforeach()
  cmake_language(EVAL CODE "cmake_language(DEFER DIRECTORY [==[${CMAKE_SOURCE_DIR}]==] CALL ${call})")
endfunction()
