# Build flavours and helpers shared by every CMakeLists.txt in the tree.
#
# Portable code (kernel/core, libs/) is compiled once per flavour that uses it;
# a library `foo` built for flavour `kernel` is the target `foo.kernel`.

if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "Moat builds with clang (use the 'default' preset): found ${CMAKE_CXX_COMPILER_ID}")
endif()

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)

find_program(MOAT_QEMU qemu-system-x86_64 REQUIRED)
find_program(MOAT_NM NAMES llvm-nm llvm-nm-14 REQUIRED)
find_program(MOAT_OBJCOPY NAMES llvm-objcopy llvm-objcopy-14 REQUIRED)

set(MOAT_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wimplicit-fallthrough)

# Code shared by kernel and domains: no exceptions, no RTTI, no libc, no stack
# protector, no red zone (interrupts and exception bounces write below %rsp).
set(MOAT_FREESTANDING_FLAGS
  -ffreestanding -fno-exceptions -fno-rtti -fno-threadsafe-statics
  -fno-stack-protector -mno-red-zone -fno-omit-frame-pointer
  -fno-asynchronous-unwind-tables -fno-unwind-tables -g -O2 -DMOAT_FREESTANDING=1)

# The kernel lives in the L4 slots Xen reserves for the hypervisor
# (0xffff8000'00000000-0xffff87ff'ffffffff), not in the top 2 GiB: PV guests
# such as Linux put themselves there. -mcmodel=kernel cannot address that, so
# the kernel is compiled position-independent (every reference RIP-relative)
# and linked at a fixed address. No SSE/x87 in the kernel: guest FPU state is
# never touched by kernel code.
set(MOAT_KERNEL_FLAGS ${MOAT_FREESTANDING_FLAGS}
  -mgeneral-regs-only -fpie -fno-plt -fdirect-access-external-data
  -mno-omit-leaf-frame-pointer -DMOAT_KERNEL=1)

# Domains are static ring-3 images linked at their Xen VIRT_BASE.
set(MOAT_DOMAIN_FLAGS ${MOAT_FREESTANDING_FLAGS}
  -fno-pic -fno-pie -mcmodel=small -DMOAT_DOMAIN=1)

set(MOAT_HOSTED_FLAGS -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined
  -fno-omit-frame-pointer -fsanitize=fuzzer-no-link -DMOAT_HOSTED=1)
set(MOAT_HOSTED_LINK -fsanitize=address,undefined)

set(MOAT_BENCH_FLAGS -O2 -g -DMOAT_HOSTED=1 -DNDEBUG)

add_library(moat_flags.hosted INTERFACE)
target_compile_options(moat_flags.hosted INTERFACE $<$<COMPILE_LANGUAGE:CXX,C>:${MOAT_WARNINGS};${MOAT_HOSTED_FLAGS}>)
target_link_options(moat_flags.hosted INTERFACE ${MOAT_HOSTED_LINK})

add_library(moat_flags.bench INTERFACE)
target_compile_options(moat_flags.bench INTERFACE $<$<COMPILE_LANGUAGE:CXX,C>:${MOAT_WARNINGS};${MOAT_BENCH_FLAGS}>)

add_library(moat_flags.kernel INTERFACE)
target_compile_options(moat_flags.kernel INTERFACE $<$<COMPILE_LANGUAGE:CXX,C>:${MOAT_WARNINGS};${MOAT_KERNEL_FLAGS}>)

add_library(moat_flags.domain INTERFACE)
target_compile_options(moat_flags.domain INTERFACE $<$<COMPILE_LANGUAGE:CXX,C>:${MOAT_WARNINGS};${MOAT_DOMAIN_FLAGS}>)

set(MOAT_FLAVOURS hosted bench kernel domain)

# moat_library(NAME [FLAVOURS f...] SOURCES s... [<FLAVOUR>_SOURCES s...]
#              [INCLUDE dir] [DEPS lib...] [INTERFACE_DEPS lib...])
# Builds NAME.<flavour> for each flavour (all four by default). DEPS are other
# moat libraries (linked flavour by flavour); INTERFACE_DEPS plain targets.
function(moat_library name)
  cmake_parse_arguments(A "" "INCLUDE"
    "FLAVOURS;SOURCES;HOSTED_SOURCES;BENCH_SOURCES;KERNEL_SOURCES;DOMAIN_SOURCES;DEPS;INTERFACE_DEPS" ${ARGN})
  if(NOT A_FLAVOURS)
    set(A_FLAVOURS ${MOAT_FLAVOURS})
  endif()
  if(NOT A_INCLUDE)
    set(A_INCLUDE ${CMAKE_CURRENT_SOURCE_DIR}/include)
  endif()
  foreach(f IN LISTS A_FLAVOURS)
    string(TOUPPER ${f} F)
    add_library(${name}.${f} STATIC ${A_SOURCES} ${A_${F}_SOURCES})
    target_include_directories(${name}.${f} PUBLIC ${A_INCLUDE})
    target_link_libraries(${name}.${f} PUBLIC moat_flags.${f} ${A_INTERFACE_DEPS})
    foreach(d IN LISTS A_DEPS)
      target_link_libraries(${name}.${f} PUBLIC ${d}.${f})
    endforeach()
  endforeach()
endfunction()

# moat_unit_test(NAME SOURCES s... DEPS lib...)  GoogleTest, hosted flavour, label `unit`.
find_package(GTest REQUIRED)
function(moat_unit_test name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE moat_flags.hosted GTest::gtest GTest::gtest_main)
  foreach(d IN LISTS A_DEPS)
    target_link_libraries(${name} PRIVATE ${d}.hosted)
  endforeach()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 300)
endfunction()

# moat_fuzz_test(NAME SOURCES s... DEPS lib... [RUNS n])  libFuzzer, label `fuzz`:
# the suite runs a short, fixed number of iterations from a fixed seed.
function(moat_fuzz_test name)
  cmake_parse_arguments(A "" "RUNS" "SOURCES;DEPS" ${ARGN})
  if(NOT A_RUNS)
    set(A_RUNS 200000)
  endif()
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE moat_flags.hosted)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  foreach(d IN LISTS A_DEPS)
    target_link_libraries(${name} PRIVATE ${d}.hosted)
  endforeach()
  add_test(NAME ${name} COMMAND ${name} -runs=${A_RUNS} -seed=1 -max_len=8192)
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 600)
endfunction()

# moat_domain(NAME SOURCES s... [DEFINES d...] [DEPS lib...])
# A ring-3 domain image: static ELF at VIRT_BASE 4 MiB with Xen's ELF notes,
# linked with the domain runtime (libs/rt). Output: out/domains/NAME.
function(moat_domain name)
  cmake_parse_arguments(A "" "" "SOURCES;DEFINES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES} ${CMAKE_SOURCE_DIR}/libs/rt/src/notes.S)
  target_compile_definitions(${name} PRIVATE ${A_DEFINES})
  target_link_libraries(${name} PRIVATE moat_flags.domain)
  set(libs rt ${A_DEPS} base)
  set(group)
  foreach(d IN LISTS libs)
    list(APPEND group ${d}.domain)
  endforeach()
  target_link_libraries(${name} PRIVATE -Wl,--start-group ${group} -Wl,--end-group abi)
  target_link_options(${name} PRIVATE -nostdlib -static -fuse-ld=lld
    -Wl,-T,${CMAKE_SOURCE_DIR}/build/domain.ld -Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,--no-undefined)
  set_target_properties(${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/domains
    LINK_DEPENDS ${CMAKE_SOURCE_DIR}/build/domain.ld)
endfunction()

include(SystemTest)
include(Linux)   # Debian's kernel, the initramfs and the disk of Linux guests
