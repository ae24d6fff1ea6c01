# Linux guests (docs/system.md, "Linux guests"): Debian's stock kernel, as
# build/deps.sh fetches and unpacks it, and what the build makes for it.
#
#   MOAT_LINUX_DIR     the unpacked kernel package (/var/lib/moat/linux)
#   MOAT_LINUX_IMAGE   its bzImage as Debian ships it (MOAT_LINUX_DIR/vmlinuz,
#                      a link to boot/vmlinuz-<release>): a manifest's image
#   MOAT_INITRAMFS     the initramfs (build/initramfs): a manifest's ramdisk
#   MOAT_LINUX_DISK    out/linux-disk.img, the ext4 disk of examples/linux.textproto
#   MOAT_LINUX         ON when the kernel package is there (then the targets
#                      `initramfs` and `linux_disk` are part of the build)
#
# System-test manifests name the first two as @MOAT_LINUX_IMAGE@ and
# @MOAT_INITRAMFS@ (configure_file fills them in, as @DOMAINS@).

include_guard(GLOBAL)

set(MOAT_LINUX_DIR "/var/lib/moat/linux" CACHE PATH
  "Debian's kernel package, unpacked by build/deps.sh (boot/vmlinuz-*, lib/modules/*)")
set(MOAT_LINUX_IMAGE "${MOAT_LINUX_DIR}/vmlinuz")
set(MOAT_INITRAMFS "${CMAKE_BINARY_DIR}/linux/initramfs.cpio.gz")
set(MOAT_LINUX_DISK "${CMAKE_BINARY_DIR}/linux-disk.img")

if(NOT EXISTS "${MOAT_LINUX_IMAGE}" OR NOT EXISTS "${MOAT_LINUX_DIR}/VERSION")
  set(MOAT_LINUX OFF)
  message(STATUS "Linux guests: no ${MOAT_LINUX_IMAGE} (make deps fetches Debian's kernel): no initramfs")
  return()
endif()
set(MOAT_LINUX ON)
file(STRINGS "${MOAT_LINUX_DIR}/VERSION" _moat_linux_version LIMIT_COUNT 1)
message(STATUS "Linux guests: ${_moat_linux_version} in ${MOAT_LINUX_DIR}")

find_program(MOAT_BUSYBOX busybox REQUIRED)   # busybox-static (mkinitramfs.sh checks it is static)
find_program(MOAT_CPIO cpio REQUIRED)
find_program(MOAT_MKFS_EXT4 mkfs.ext4 PATHS /sbin /usr/sbin REQUIRED)

set(_moat_initramfs_src ${CMAKE_SOURCE_DIR}/build/initramfs)

# The initramfs's UDP echo server (busybox's nc has no UDP): static, for a
# system with no C library.
add_executable(moat-udp-echo ${_moat_initramfs_src}/udp-echo.c)
target_compile_options(moat-udp-echo PRIVATE -O2 ${MOAT_WARNINGS})
target_link_options(moat-udp-echo PRIVATE -static -s)
set_target_properties(moat-udp-echo PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/linux)
# /init's first line under moat.bench: the linux_boot_insns figure.
add_executable(moat-boot-insns ${_moat_initramfs_src}/boot-insns.c)
target_compile_options(moat-boot-insns PRIVATE -O2 ${MOAT_WARNINGS})
target_link_options(moat-boot-insns PRIVATE -static -s)
set_target_properties(moat-boot-insns PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/linux)

file(GLOB _moat_initramfs_tests CONFIGURE_DEPENDS ${_moat_initramfs_src}/tests/*.sh)
add_custom_command(OUTPUT ${MOAT_INITRAMFS}
  COMMAND sh ${_moat_initramfs_src}/mkinitramfs.sh ${MOAT_INITRAMFS} ${MOAT_LINUX_DIR}
          $<TARGET_FILE:moat-udp-echo> $<TARGET_FILE:moat-boot-insns> ${MOAT_BUSYBOX}
  DEPENDS ${_moat_initramfs_src}/mkinitramfs.sh ${_moat_initramfs_src}/init ${_moat_initramfs_src}/lib.sh
          ${_moat_initramfs_src}/inittab ${_moat_initramfs_src}/profile ${_moat_initramfs_src}/default.script
          ${_moat_initramfs_tests} moat-udp-echo moat-boot-insns ${MOAT_LINUX_DIR}/VERSION ${MOAT_BUSYBOX}
  COMMENT "Linux initramfs (busybox, the kernel package's Xen front-end and ext4 modules)"
  VERBATIM)
add_custom_target(initramfs ALL DEPENDS ${MOAT_INITRAMFS})

# examples/linux.textproto's disk: an ext4 filesystem, made when missing
# (and then kept: the guest counts its boots on it, as the demo's ping does).
add_custom_command(OUTPUT ${MOAT_LINUX_DISK}
  COMMAND ${MOAT_MKFS_EXT4} -q -F -L moat-linux ${MOAT_LINUX_DISK} 64M
  COMMENT "ext4 disk for examples/linux.textproto: ${MOAT_LINUX_DISK}"
  VERBATIM)
add_custom_target(linux_disk ALL DEPENDS ${MOAT_LINUX_DISK})
