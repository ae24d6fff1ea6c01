# Many domains at once (issue 16): 256 small guests (build/cmake/Census.cmake)
# built, started and up together. Each must be
#  - up in XenStore (the census counts data/up for every one) and running;
#  - registered with the console domain: its first line (PASS xs_bench.connected)
#    has no debug console, so it reaches the log only through the console
#    domain's back-end, hence at least 256 PASS lines;
#  - asked to power off through control/shutdown and obey;
# and once all are destroyed every frame and every domain id is back as
# before the first was built.
include(${PROJECT_SOURCE_DIR}/build/cmake/Census.cmake)
moat_census_manifest(${CMAKE_CURRENT_BINARY_DIR}/manifests/scale_256.textproto.in GUESTS 256 MEMORY_MIB 1536)
moat_system_test(NAME system_scale_256
  MANIFEST ${CMAKE_CURRENT_BINARY_DIR}/manifests/scale_256.textproto.in
  DOMAINS builder console xenstore xs_bench
  ICOUNT
  MIN_PASS 256
  EXPECT_LINE "census: 256 guests started, 256 up in XenStore, 256 running at once"
    "census: 256 asked to power off, 256 did"
    "all frames back:" "all domain ids back:"
  TIMEOUT 900)
