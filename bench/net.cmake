# Network figures through the driver domain (issue: driver domains), in QEMU
# under -icount shift=0, per second of guest time (the virtual clock advances
# 1 ns per instruction): net_direct_pps (64-byte frames netback sends
# straight to the NIC) and net_guest_to_guest_pps (the same frames from one
# guest to another through netback), in the same run.
moat_bench_run(NAME net
  MANIFEST manifests/net.textproto
  DOMAINS builder console xenstore netback net_guest
  EXPECT_PASS net.bench_frames_sent net.bench_frames_received
  EXPECT_LINE "BENCH net_direct_pps" "BENCH net_guest_to_guest_pps" "rx: done, 0 failed" "tx: done, 0 failed"
  TIMEOUT 600)

# The same run on q35 with the IOMMU on (netback's DMA confined to its own
# frames): every figure again, named with _iommu (net_guest_to_guest_pps_iommu).
moat_bench_run(NAME net_iommu
  MANIFEST manifests/net.textproto
  DOMAINS builder console xenstore netback net_guest
  IOMMU on BENCH_SUFFIX _iommu
  EXPECT_PASS net.bench_frames_sent net.bench_frames_received
  EXPECT_LINE "BENCH net_direct_pps" "BENCH net_guest_to_guest_pps" "rx: done, 0 failed" "tx: done, 0 failed"
    "dmar: 00:04.0 attached to domain"
  TIMEOUT 600)
