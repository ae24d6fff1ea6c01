# Block figures through the driver domain (services/blkback, guests/blk), in
# one run under -icount shift=0 (guest time counts instructions):
#   blk_direct_iops_4k  4 KiB reads blkback issues straight to virtio-blk;
#   blk_iops_4k         the same reads by a guest, through blkif and blkback
#                       (grant copy of each page), one at a time.
moat_bench_run(NAME blk
  MANIFEST manifests/blk.textproto
  DOMAINS builder console xenstore blkback blk_test
  FRESH_DISKS 0
  EXPECT_PASS blk.bench.connected blk.bench.reads
  EXPECT_LINE "BENCH blk_direct_iops_4k" "BENCH blk_iops_4k"
  TIMEOUT 600)

# The same run on q35 with the IOMMU on (blkback's DMA confined to its own
# frames): every figure again, named with _iommu (blk_iops_4k_iommu).
moat_bench_run(NAME blk_iommu
  MANIFEST manifests/blk.textproto
  DOMAINS builder console xenstore blkback blk_test
  IOMMU on BENCH_SUFFIX _iommu
  FRESH_DISKS 0
  EXPECT_PASS blk.bench.connected blk.bench.reads
  EXPECT_LINE "BENCH blk_direct_iops_4k" "BENCH blk_iops_4k" "dmar: 00:05.0 attached to domain"
  TIMEOUT 600)
