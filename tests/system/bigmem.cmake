# RAM above 4 GiB (issue 16). The machine has 4.5 GiB, 1.5 GiB of it above
# 4 GiB (manifests/bigmem.textproto): the kernel's boot lines must count all
# of it, the direct map, frame table and M2P must cover it, and two 1000 MiB
# guests (guests/bigmem) must get frames there: "first" only frames above
# 4 GiB (the allocator serves those first), "second" frames on both sides
# (there is not enough above for both). Each checks the M2P and memory_op
# limits reach its frames and that a sample of them is zero when given and
# then holds what it writes. Once both are done and the services stopped,
# the builder must find every frame back.
moat_system_test(NAME system_bigmem
  MANIFEST manifests/bigmem.textproto
  DOMAINS builder console xenstore bigmem
  EXPECT_LINE
    "MiB of RAM in 3 ranges up to 0x160000000, 1536 MiB above 4 GiB"
    "first: done, 0 failed" "second: done, 0 failed"
  EXPECT_PASS
    bigmem.all_frames_above_4g bigmem.frames_on_both_sides_of_4g bigmem.m2p_maps_every_frame_back
    bigmem.maximum_ram_page_covers_its_frames bigmem.m2p_mapping_covers_its_frames bigmem.window_restored
    bigmem.frames_mappable bigmem.frames_zero_when_given bigmem.frames_hold_what_was_written
    bigmem.frames_above_4g_sampled
  FORBID_LINE "FAIL " "crashed" "is not used"
  EXPECT_EXIT clean
  TIMEOUT 240
  LABELS system)
