# nanopb: protobuf decoding for code without a heap (the builder domain), and
# the same code hosted for tests and fuzzers.
#
# The runtime (pb_common.c, pb_decode.c, pb_encode.c) comes from Debian's
# nanopb source package, which build/deps.sh extracts into MOAT_NANOPB_SRC
# (Debian's libnanopb-dev is built for the host only); the generator is
# Debian's `nanopb` package (protoc-gen-nanopb), the same version.
#
# nanopb.<flavour>  the runtime, for flavours hosted, bench and domain.
#                   Compiled with the flavour's flags (domain: freestanding, no
#                   stack protector, no red zone); it calls only memcpy, memset
#                   and strlen, which libs/base provides to domains.
#
# moat_nanopb_generate(VAR PROTO [OPTIONS file])
#   Generates NAME.pb.c and NAME.pb.h from PROTO (with the nanopb options
#   file OPTIONS) in ${CMAKE_CURRENT_BINARY_DIR}/nanopb. Sets VAR to the .c
#   file, VAR_INCLUDE to that directory and VAR_TARGET to a target that
#   generates them (add it as a dependency of each library compiling VAR).

include_guard(GLOBAL)

set(MOAT_NANOPB_SRC "/var/lib/moat/nanopb" CACHE PATH
  "nanopb's sources (Debian's source package, extracted by build/deps.sh)")
find_program(MOAT_PROTOC_GEN_NANOPB protoc-gen-nanopb)
find_package(Protobuf REQUIRED)

foreach(f pb.h pb_common.h pb_common.c pb_decode.h pb_decode.c pb_encode.h pb_encode.c)
  if(NOT EXISTS "${MOAT_NANOPB_SRC}/${f}")
    message(FATAL_ERROR "nanopb: ${MOAT_NANOPB_SRC}/${f} is missing: run 'make deps' (build/deps.sh) as root")
  endif()
endforeach()
if(NOT MOAT_PROTOC_GEN_NANOPB)
  message(FATAL_ERROR "nanopb: protoc-gen-nanopb not found (Debian package 'nanopb'): run 'make deps' as root")
endif()

# The generated code must come from the runtime's version.
file(STRINGS "${MOAT_NANOPB_SRC}/pb.h" _moat_nanopb_version REGEX "^#define NANOPB_VERSION")
string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" _moat_nanopb_version "${_moat_nanopb_version}")
# Debian's protoc-gen-nanopb runs nanopb_generator.py, installed beside it.
get_filename_component(_moat_nanopb_bin "${MOAT_PROTOC_GEN_NANOPB}" DIRECTORY)
set(_moat_nanopb_gen_version "")
if(EXISTS "${_moat_nanopb_bin}/nanopb_generator.py")
  file(STRINGS "${_moat_nanopb_bin}/nanopb_generator.py" _moat_nanopb_gen_version REGEX "^nanopb_version = ")
endif()
string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" _moat_nanopb_gen_version "${_moat_nanopb_gen_version}")
if(_moat_nanopb_gen_version AND NOT _moat_nanopb_gen_version STREQUAL _moat_nanopb_version)
  message(FATAL_ERROR "nanopb: generator ${_moat_nanopb_gen_version} but runtime sources ${_moat_nanopb_version} "
    "in ${MOAT_NANOPB_SRC}: remove that directory and run 'make deps'")
endif()

set(MOAT_NANOPB_FLAVOURS hosted bench domain)
add_library(nanopb_headers INTERFACE)
target_include_directories(nanopb_headers SYSTEM INTERFACE "${MOAT_NANOPB_SRC}")
# Portable C, compiled like the rest of its flavour; its own warnings are not ours.
moat_library(nanopb FLAVOURS ${MOAT_NANOPB_FLAVOURS}
  SOURCES "${MOAT_NANOPB_SRC}/pb_common.c" "${MOAT_NANOPB_SRC}/pb_decode.c" "${MOAT_NANOPB_SRC}/pb_encode.c"
  INCLUDE "${MOAT_NANOPB_SRC}"
  INTERFACE_DEPS nanopb_headers)
foreach(f IN LISTS MOAT_NANOPB_FLAVOURS)
  target_compile_options(nanopb.${f} PRIVATE -w)
endforeach()
target_link_libraries(nanopb.domain PUBLIC base.domain)   # memcpy, memset, strlen

function(moat_nanopb_generate var proto)
  cmake_parse_arguments(A "" "OPTIONS" "" ${ARGN})
  get_filename_component(proto "${proto}" ABSOLUTE)
  get_filename_component(name "${proto}" NAME_WE)
  get_filename_component(dir "${proto}" DIRECTORY)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/nanopb")
  set(opts)
  set(deps "${proto}")
  if(A_OPTIONS)
    get_filename_component(A_OPTIONS "${A_OPTIONS}" ABSOLUTE)
    set(opts "--nanopb_opt=-f${A_OPTIONS}")
    list(APPEND deps "${A_OPTIONS}")
  endif()
  add_custom_command(OUTPUT "${out}/${name}.pb.c" "${out}/${name}.pb.h"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${out}"
    COMMAND ${Protobuf_PROTOC_EXECUTABLE} "--plugin=protoc-gen-nanopb=${MOAT_PROTOC_GEN_NANOPB}"
      -I "${dir}" "--nanopb_out=${out}" ${opts} "${proto}"
    DEPENDS ${deps}
    COMMENT "nanopb: ${name}.pb.c"
    VERBATIM)
  set(target "${var}_nanopb_generate")
  add_custom_target(${target} DEPENDS "${out}/${name}.pb.c" "${out}/${name}.pb.h")
  set(${var} "${out}/${name}.pb.c" PARENT_SCOPE)
  set(${var}_INCLUDE "${out}" PARENT_SCOPE)
  set(${var}_TARGET ${target} PARENT_SCOPE)
endfunction()
