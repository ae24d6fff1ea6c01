# Block I/O through the driver domain (issue: driver domains): blkback drives
# QEMU's virtio-blk at 00:05.0 and serves each guest a sector range of it
# (services/blkback, guests/blk). After QEMU exits, moat-diskcheck reads the
# raw image on the host (tools/diskcheck).
set(BLK_DOMAINS ${SERVICE_DOMAINS} blkback blk_test)
set(BLK_IMAGES ${CMAKE_BINARY_DIR}/tests/system/manifests)

set(blk_rw_checks connected disk_writable pattern_written_and_read_back flush barrier discard pattern_final
  write_beyond_end_refused read_beyond_end_refused read_across_end_refused read_wrapping_sector_refused closed)
set(blk_ro_checks connected disk_read_only reads reads_fill write_refused discard_refused barrier_without_data
  read_beyond_end_refused read_across_end_refused read_wrapping_sector_refused closed)
list(TRANSFORM blk_rw_checks PREPEND blk.rw.)
list(TRANSFORM blk_ro_checks PREPEND blk.ro.)

set(BLK_UNCONFINED "builder: WARNING: blkback drives 00:05.0 without an IOMMU: its device can DMA anywhere in memory")

# The pattern and the hostile front-end, whose sectors go through the disk's
# DMA both ways, run on both machines (CMakeLists.txt, moat_machine_variant):
# NAME on the PC, NAME_iommu on q35 with the IOMMU, where blkback's bounce
# pages and rings are reached through its I/O page table. Each has its own
# image (@DISK_NAME@.img: NAME.img), so they run side by side.
foreach(machine pc iommu)
  # The image is created fresh, every byte 0xA5; "rw" writes the pattern of
  # seed 4242 over its sectors 2048-6143; "ro" reads 8192-10239 (0xA5) and is
  # refused writes. The image must then hold exactly that pattern there and
  # 0xA5 everywhere else. "big" asks for sectors the device does not have and
  # is refused.
  moat_machine_variant(${machine} "${BLK_UNCONFINED}" system)
  moat_system_test(NAME system_blk_pattern${VARIANT}
    MANIFEST manifests/blk_pattern.textproto
    IOMMU ${VARIANT_IOMMU}
    DOMAINS ${BLK_DOMAINS}
    TIMEOUT 300
    FRESH_DISKS 165
    AFTER_EXIT $<TARGET_FILE:moat-diskcheck> ${BLK_IMAGES}/system_blk_pattern${VARIANT}.img --fill 0xa5 --size-mib 8
               --pattern 2048:4096:4242
    EXPECT_PASS ${blk_rw_checks} ${blk_ro_checks} blk.refused.not_connected
    EXPECT_LINE "blkback: virtio-blk 00:05.0: 16384 sectors" "rw: blk: checksum" "rw: done, 0 failed"
                "ro: done, 0 failed" "refused: sectors 16000+2048 do not fit the device (16384 sectors)"
                "big: done, 0 failed" ${VARIANT_EXPECT}
    FORBID_LINE "FAIL " ${VARIANT_FORBID}
    EXPECT_EXIT clean
    LABELS ${VARIANT_LABELS})
endforeach()

set(blk_hostile_checks connected read_zero_segments_refused read_12_segments_refused write_255_segments_refused
  first_after_last_refused last_sect_beyond_page_refused sector_200_of_a_page_refused read_beyond_disk_refused
  write_across_disk_end_refused wrapping_sector_refused read_into_ungranted_ref_refused
  write_from_ungranted_ref_refused write_from_huge_ref_refused reserved_op_refused indirect_op_refused
  unknown_op_refused huge_discard_refused served_after_bad_requests flood_answered garbage_index_disconnected
  closed_after_garbage reconnected served_after_reconnect
  # indirect descriptors (feature-max-indirect-segments)
  indirect_offered indirect_read_served indirect_write_served indirect_discard_refused indirect_nested_refused
  indirect_unknown_op_refused indirect_zero_segments_refused indirect_more_segments_than_offered_refused
  indirect_65535_segments_refused indirect_first_after_last_refused indirect_last_sect_beyond_page_refused
  indirect_sector_200_of_a_page_refused indirect_ungranted_segment_refused indirect_huge_segment_ref_refused
  indirect_across_disk_end_refused indirect_beyond_disk_refused indirect_wrapping_sector_refused
  indirect_ungranted_list_refused indirect_huge_list_ref_refused indirect_list_rewritten_answered
  indirect_flood_answered served_after_bad_indirect_requests
  # multi-page rings (max-ring-page-order)
  max_ring_page_order_offered ring_order_64_refused ring_order_above_max_refused ring_ref_missing_refused
  ring_ref_ungranted_refused refused_rings_not_mapped multi_page_ring_connected multi_page_ring_served
  multi_page_garbage_index_disconnected multi_page_ring_unmapped closed_for_multipage reconnected_after_multipage)
list(TRANSFORM blk_hostile_checks PREPEND blk.hostile.)

# A hostile front-end next to a good one: every bad request refused, the
# garbage ring index ends its connection (one line from blkback), it may
# connect again, and it vanishes with its ring full; blkback survives all
# of it and "good" is served throughout (its disk, checked on the host,
# holds its last pattern; evil's sectors are its own business).
foreach(machine pc iommu)
  moat_machine_variant(${machine} "${BLK_UNCONFINED}" "system;adversarial")
  moat_system_test(NAME system_blk_hostile${VARIANT}
    MANIFEST manifests/blk_hostile.textproto
    IOMMU ${VARIANT_IOMMU}
    DOMAINS ${BLK_DOMAINS}
    TIMEOUT 400
    FRESH_DISKS 165
    AFTER_EXIT $<TARGET_FILE:moat-diskcheck> ${BLK_IMAGES}/system_blk_hostile${VARIANT}.img --fill 0xa5 --size-mib 8
               --pattern 2048:2048:77 --skip 12288:2048
    EXPECT_PASS ${blk_hostile_checks} blk.rw.connected blk.rw.pattern_written_and_read_back blk.rw.pattern_final
                blk.rw.closed
    EXPECT_LINE "garbage request producer index" "evil: vanishing with 32 requests outstanding"
                "good: done, 0 failed" "evil: done, 0 failed" ${VARIANT_EXPECT}
    FORBID_LINE "FAIL " ${VARIANT_FORBID}
    EXPECT_EXIT clean
    LABELS ${VARIANT_LABELS})
endforeach()

# A front-end restarted by the builder (a new domain) connects again and is
# served as the first one was: both runs pass every check.
list(LENGTH blk_rw_checks blk_rw_count)
math(EXPR blk_restart_passes "2 * ${blk_rw_count}")
moat_system_test(NAME system_blk_restart
  MANIFEST manifests/blk_restart.textproto
  DOMAINS ${BLK_DOMAINS}
  TIMEOUT 300
  FRESH_DISKS 0
  AFTER_EXIT $<TARGET_FILE:moat-diskcheck> ${BLK_IMAGES}/blk_restart.img --fill 0 --size-mib 8
             --pattern 4096:2048:99
  EXPECT_PASS ${blk_rw_checks}
  MIN_PASS ${blk_restart_passes}
  EXPECT_LINE "builder: restarting rw (restart 1 of 1)" "builder: rw reached its restart limit (1): left down"
              "rw: done, 0 failed"
  FORBID_LINE "FAIL "
  EXPECT_EXIT clean
  LABELS system)
