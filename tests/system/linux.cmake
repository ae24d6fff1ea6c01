# Linux guests (issue 11): Debian's stock kernel as it ships (MOAT_LINUX_IMAGE,
# a bzImage `moat` unpacks on the host) with the build's initramfs
# (MOAT_INITRAMFS, build/initramfs), whose scripted checks the kernel command
# line picks (moat.test=boot|net|blk|restart, build/initramfs/tests/*.sh: PASS
# and FAIL lines like every test guest's, then poweroff -f). Variables from
# build/cmake/Linux.cmake; manifests in manifests/linux_*.textproto.
#
# Each boots Linux to its initramfs in about 6 s of TCG time on one core, so
# one boot per check is affordable (the four together add under 30 s of
# test time to the suite). Every one forbids the front-ends' "timeout closing
# device" (a back-end that skips Closing makes Linux's poweroff wait 5 s per
# device); like every system test, none may leave frames behind.

if(NOT MOAT_LINUX)   # no Debian kernel (make deps fetches it)
  return()
endif()

find_program(MOAT_DEBUGFS debugfs PATHS /sbin /usr/sbin REQUIRED)
find_program(MOAT_E2FSCK e2fsck PATHS /sbin /usr/sbin REQUIRED)
set(LINUX_DISKS ${CMAKE_BINARY_DIR}/tests/system/manifests)   # @DISK_NAME@.img
set(LINUX_DISK_CHECK sh ${CMAKE_CURRENT_SOURCE_DIR}/linux_disk_check.sh ${MOAT_DEBUGFS} ${MOAT_E2FSCK})

# A fresh ext4 filesystem on a test's disk, made by the test itself before
# QEMU starts (FRESH_DISKS only fills an image with a byte), so every run --
# `ctest --repeat` included -- starts from an empty filesystem.
function(moat_linux_fresh_disk_cmd out test)
  set(${out} ${MOAT_MKFS_EXT4} -q -F -L moat-linux ${LINUX_DISKS}/${test}.img 64M PARENT_SCOPE)
endfunction()
moat_linux_fresh_disk_cmd(LINUX_MKFS_RESTART system_linux_restart)

# Booted to the initramfs: a Xen PV guest whose clock ticks, with a clean
# kernel log, powered off cleanly.
moat_system_test(NAME system_linux_boot
  MANIFEST manifests/linux_boot.textproto
  DOMAINS ${SERVICE_DOMAINS}
  TIMEOUT 600
  EXPECT_PASS linux.hypervisor_xen linux.modules_loaded linux.sleep_returns linux.dmesg_clean
  EXPECT_LINE "linux: moat-linux: initramfs ready" "linux: moat-linux: test boot: done, 0 failed"
  FORBID_LINE "FAIL " "crashed" "timeout closing device"
  EXPECT_EXIT clean
  LABELS system)

# The shell, as `make linux` gives it: typed input reaches Linux through
# the console domain (focus=linux) and hvc0, and `poweroff` typed there ends
# the domain cleanly.
moat_system_test(NAME system_linux_shell
  MANIFEST manifests/linux_shell.textproto
  DOMAINS ${SERVICE_DOMAINS}
  INPUT "uname -r\\rcat /sys/hypervisor/type\\recho moat-shell-\\x24((6*7))\\rpoweroff\\r"
  INPUT_AFTER "moat-linux: shell on hvc0"
  TIMEOUT 600
  EXPECT_LINE "console: input goes to linux" "linux: 6.1.0-" "linux: xen" "linux: moat-shell-42"
              "moat-linux: shutting down" "builder: linux (domain 3) powered off"
  FORBID_LINE "FAIL " "crashed" "timeout closing device"
  EXPECT_EXIT clean
  LABELS system)

# Linux's net and blk front-ends through the driver domains run on both
# machines (CMakeLists.txt, moat_machine_variant): NAME on the PC, NAME_iommu
# on q35 with the IOMMU (a Linux boot each, about 6 s of TCG time).
foreach(machine pc iommu)
  # eth0 through netback: its address, a ping to 10.0.2.2, and 50 UDP datagrams
  # from the host echoed byte for byte.
  moat_machine_variant(${machine}
    "builder: WARNING: netback drives 00:04.0 without an IOMMU: its device can DMA anywhere in memory" system)
  moat_system_test(NAME system_linux_net${VARIANT}
    MANIFEST manifests/linux_net.textproto
    IOMMU ${VARIANT_IOMMU}
    DOMAINS ${SERVICE_DOMAINS} netback
    UDP_ECHO 50 UDP_ECHO_AFTER "moat-linux: udp echo ready on port 7"
    TIMEOUT 600
    EXPECT_PASS linux.eth0_present linux.eth0_up linux.ping_gateway linux.udp_echo
    EXPECT_LINE "linux: moat-linux: test net: done, 0 failed" ${VARIANT_EXPECT}
    FORBID_LINE "FAIL " "crashed" "timeout closing device" ${VARIANT_FORBID}
    EXPECT_EXIT clean
    LABELS ${VARIANT_LABELS})

  # /dev/xvda through blkback: the host finds the guest's file and a clean
  # filesystem.
  moat_machine_variant(${machine}
    "builder: WARNING: blkback drives 00:05.0 without an IOMMU: its device can DMA anywhere in memory" system)
  moat_linux_fresh_disk_cmd(mkfs system_linux_blk${VARIANT})
  moat_system_test(NAME system_linux_blk${VARIANT}
    MANIFEST manifests/linux_blk.textproto
    IOMMU ${VARIANT_IOMMU}
    DOMAINS ${SERVICE_DOMAINS} blkback
    TIMEOUT 600
    BEFORE_RUN ${mkfs}
    AFTER_EXIT ${LINUX_DISK_CHECK} ${LINUX_DISKS}/system_linux_blk${VARIANT}.img
               "'moat-linux-blk.txt=written by Linux on Moat through xen-blkfront and blkback'"
    EXPECT_PASS linux.xvda_present linux.xvda_mounted linux.file_written linux.file_read_back linux.xvda_unmounted
    EXPECT_LINE "linux: moat-linux: test blk: done, 0 failed" "indirect descriptors: enabled" ${VARIANT_EXPECT}
    FORBID_LINE "FAIL " "crashed" "timeout closing device" ${VARIANT_FORBID}
    EXPECT_EXIT clean
    LABELS ${VARIANT_LABELS})
endforeach()

# reboot: the builder restarts the domain (policy ALWAYS, once), which counts
# its second boot on its disk and powers off.
moat_system_test(NAME system_linux_restart
  MANIFEST manifests/linux_restart.textproto
  DOMAINS ${SERVICE_DOMAINS} blkback
  TIMEOUT 900
  BEFORE_RUN ${LINUX_MKFS_RESTART}
  AFTER_EXIT ${LINUX_DISK_CHECK} ${LINUX_DISKS}/system_linux_restart.img moat-boots=2
  EXPECT_PASS linux.boot_counted linux.first_boot linux.restarted
  EXPECT_LINE "builder: restarting linux (restart 1 of 1)" "linux: moat-linux: rebooting"
              "linux: moat-linux: test restart: done, 0 failed"
  FORBID_LINE "FAIL " "crashed" "timeout closing device"
  EXPECT_EXIT clean
  LABELS system)

# panic: reported as crashed, restarted once (policy ON_CRASH), crashed
# again and left down; the system ends cleanly all the same.
moat_system_test(NAME system_linux_panic
  MANIFEST manifests/linux_panic.textproto
  DOMAINS ${SERVICE_DOMAINS}
  TIMEOUT 600
  EXPECT_LINE "linux: moat-linux: panicking on purpose" "Kernel panic - not syncing: sysrq triggered crash"
              "shut down: crash" "builder: linux (domain 3) crashed" "builder: restarting linux (restart 1 of 1)"
              "builder: linux reached its restart limit (1): left down"
  FORBID_LINE "FAIL " "still running after" "powered off"
  EXPECT_EXIT clean
  LABELS system)
