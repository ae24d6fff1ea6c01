# Issue 10: the hypercall fuzzer (guests/hcfuzz, docs/hcfuzz.md). Two fuzzers
# with their own seeds beside the victim (canary, timer-tick liveness,
# XenStore service) and the demo's services (tests/system/manifests/
# hcfuzz.textproto); every call the hypervisor accepts that it must refuse
# is a "FAIL hcfuzz.<what>" line, every broken invariant of the fuzzers' own
# state one too. Four tests of 2 x 125,000 calls: 10^6 calls with 8 seeds.
# `make fuzz-long SEED=N` runs 10^7 (target fuzz_long below).
set(HCFUZZ_DOMAINS ${SERVICE_DOMAINS} netback blkback victim hcfuzz)

# What every run must show: both fuzzers made all their calls with nothing
# accepted that must be refused and their own state intact, the victim
# intact and live, every frame back once every domain is gone, no panic.
set(HCFUZZ_EXPECT_PASS
  hcfuzz.invariants_held hcfuzz.refusals_held
  victim.canary_intact victim.live victim.xenstore_served)
set(HCFUZZ_EXPECT_LINE
  "hcfuzz_a: PASS hcfuzz.calls_made" "hcfuzz_b: PASS hcfuzz.calls_made"
  "hcfuzz_a: hcfuzz: done, 0 failed" "hcfuzz_b: hcfuzz: done, 0 failed"
  "victim: victim: done, 0 failed"
  "builder: all frames back")
set(HCFUZZ_FORBID_LINE "PANIC" "FAIL " "LEFT BEHIND" "FRAMES NOT BACK" "crashed")

# Guest time counts instructions (-icount), and idle time passes at once
# (sleep=off): a stall of QEMU on a loaded host cannot show up as a gap in
# the victim's timer ticks, only work the hypervisor does without giving up
# the CPU can. moat_system_test does this for every ICOUNT test; the long
# run below is not one, so it says so itself.
set(HCFUZZ_QEMU_ARGS -icount shift=0,sleep=off)

# Per run: a seed for each fuzzer, calls each, and how long the victim runs
# (guest time; a bit longer than the fuzzers take).
set(HCFUZZ_CALLS 125000)
set(HCFUZZ_VICTIM_MS 3500)
foreach(run 1 2 3 4)
  math(EXPR HCFUZZ_SEED_A "2 * ${run} - 1")
  math(EXPR HCFUZZ_SEED_B "2 * ${run}")
  moat_system_test(NAME adversarial_hcfuzz_${run}
    MANIFEST manifests/hcfuzz.textproto
    DOMAINS ${HCFUZZ_DOMAINS}
    DISK_NAME hcfuzz FRESH_DISKS 0
    ICOUNT
    TIMEOUT 240
    EXPECT_PASS ${HCFUZZ_EXPECT_PASS}
    EXPECT_LINE ${HCFUZZ_EXPECT_LINE}
    FORBID_LINE ${HCFUZZ_FORBID_LINE}
    EXPECT_EXIT clean
    LABELS adversarial)
  # One disk image for all of them (blkback serves nobody here): one at a time.
  set_tests_properties(adversarial_hcfuzz_${run} PROPERTIES RESOURCE_LOCK hcfuzz_disk)
endforeach()

# `make fuzz-long SEED=N` (before releases): 10^7 calls, 5 x 10^6 per fuzzer,
# seeds SEED and SEED + 1, same checks. Not a CTest test: a target that
# writes the manifest with the seed from the environment (HCFUZZ_SEED) when
# it runs.
set(HCFUZZ_SEED_A "HCFUZZ_LONG_SEED_A")
set(HCFUZZ_SEED_B "HCFUZZ_LONG_SEED_B")
set(HCFUZZ_CALLS 5000000)
set(HCFUZZ_VICTIM_MS 100000)
_moat_systest_parse(HCFUZZ_LONG fuzz_long
  NAME hcfuzz_long
  MANIFEST manifests/hcfuzz.textproto
  DOMAINS ${HCFUZZ_DOMAINS}
  DISK_NAME hcfuzz_long FRESH_DISKS 0
  ICOUNT QEMU_ARGS ${HCFUZZ_QEMU_ARGS}
  MAX_HYPERCALL_US 1000
  TIMEOUT 7200
  EXPECT_PASS ${HCFUZZ_EXPECT_PASS}
  EXPECT_LINE ${HCFUZZ_EXPECT_LINE}
  FORBID_LINE ${HCFUZZ_FORBID_LINE}
  EXPECT_EXIT clean)
set(HCFUZZ_LONG_TEMPLATE ${CMAKE_BINARY_DIR}/tests/system/manifests/hcfuzz_long.textproto)
set(HCFUZZ_LONG_MANIFEST ${CMAKE_BINARY_DIR}/tests/system/manifests/hcfuzz_long.seeded.textproto)
list(TRANSFORM HCFUZZ_LONG_ARGS REPLACE "^${HCFUZZ_LONG_TEMPLATE}$" "${HCFUZZ_LONG_MANIFEST}")
set(qemu qemu-system-x86_64)
if(MOAT_QEMU)
  set(qemu ${MOAT_QEMU})
endif()
add_custom_target(fuzz_long
  COMMAND ${CMAKE_COMMAND} -DTEMPLATE=${HCFUZZ_LONG_TEMPLATE} -DOUT=${HCFUZZ_LONG_MANIFEST}
          -P ${CMAKE_CURRENT_SOURCE_DIR}/hcfuzz_seed.cmake
  COMMAND ${CMAKE_COMMAND} -E env "MOAT_QEMU=${qemu}" $<TARGET_FILE:moat-systest> ${HCFUZZ_LONG_ARGS}
  COMMENT "Hypercall fuzzer, 10^7 calls (log: ${CMAKE_BINARY_DIR}/tests/system/logs/hcfuzz_long.log)"
  USES_TERMINAL VERBATIM)
add_dependencies(fuzz_long moat-systest builder moat ${HCFUZZ_DOMAINS})
if(MOAT_KERNEL_TARGET AND TARGET ${MOAT_KERNEL_TARGET})
  add_dependencies(fuzz_long ${MOAT_KERNEL_TARGET})
endif()
