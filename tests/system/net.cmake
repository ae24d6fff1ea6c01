# Network through the driver domain (issue: driver domains): netback drives
# QEMU's virtio-net at 00:04.0 and switches frames between the guests' vifs
# and the NIC (services/netback, guests/net).
set(NET_DOMAINS ${SERVICE_DOMAINS} netback net_guest net_hostile)
set(NET_UNCONFINED "builder: WARNING: netback drives 00:04.0 without an IOMMU: its device can DMA anywhere in memory")

# The two tests whose frames go through the NIC's DMA both ways run on both
# machines (CMakeLists.txt, moat_machine_variant): NAME on the PC, NAME_iommu on
# q35 with the IOMMU, where netback's RX buffers and TX frames are reached
# through its I/O page table.
foreach(machine pc iommu)
  moat_machine_variant(${machine} "${NET_UNCONFINED}" system)

  # Guest a pings guest b through netback: every echo answered.
  moat_system_test(NAME system_net_ping${VARIANT}
    MANIFEST manifests/net_ping.textproto
    IOMMU ${VARIANT_IOMMU}
    DOMAINS ${NET_DOMAINS}
    TIMEOUT 300
    EXPECT_PASS net.connected net.gateway_resolved net.peer_resolved net.ping_replies net.answered_pings net.flushed
    EXPECT_LINE "netback: NIC 00:04.0: virtio-net" "a: ping: 20 of 20 replies (20 sent)" "a: done, 0 failed" "b: done, 0 failed"
                ${VARIANT_EXPECT}
    FORBID_LINE "FAIL " ${VARIANT_FORBID}
    EXPECT_EXIT clean
    LABELS ${VARIANT_LABELS})

  # The host's network stack sends 50 UDP datagrams (4 to 1472 bytes) into
  # QEMU's user network; guest "echo" answers each through netback, and the
  # host checks every echo byte for byte (the runner fails the test otherwise).
  moat_system_test(NAME system_net_udp_host${VARIANT}
    MANIFEST manifests/net_udp.textproto
    IOMMU ${VARIANT_IOMMU}
    DOMAINS ${NET_DOMAINS}
    UDP_ECHO 50 UDP_ECHO_AFTER "echo: udp echo ready on port 7"
    TIMEOUT 300
    EXPECT_PASS net.connected net.gateway_resolved net.udp_echoed net.flushed
    EXPECT_LINE "echo: udp echo ready on port 7" "echo: done, 0 failed" ${VARIANT_EXPECT}
    FORBID_LINE "FAIL " ${VARIANT_FORBID}
    EXPECT_EXIT clean
    LABELS ${VARIANT_LABELS})
endforeach()

# A hostile front-end does its worst to netback while a pings b through it:
# every bad TX request answered with an error (a's MAC as its source too),
# RX buffers it never granted
# answered with errors, the flood answered, a garbage TX or RX ring index
# disconnects it (and it may connect again), its vanishing with requests
# outstanding is survived; a's pings all come back, before and after.
moat_system_test(NAME system_net_hostile
  MANIFEST manifests/net_hostile.textproto
  DOMAINS ${NET_DOMAINS}
  TIMEOUT 400
  EXPECT_PASS
    net.hostile_connected net.hostile_offset_beyond_page net.hostile_size_zero net.hostile_size_65535
    net.hostile_size_under_header net.hostile_size_over_mtu net.hostile_more_data_flag net.hostile_ungranted_ref
    net.hostile_ref_beyond_table net.hostile_good_request_after net.hostile_spoofed_source_refused
    net.hostile_flood_answered
    net.hostile_garbage_index_disconnected net.hostile_reconnected net.hostile_served_after_reconnect
    net.hostile_rx_ungranted_refs_refused net.hostile_rx_real_buffers_filled
    net.hostile_rx_garbage_index_disconnected net.hostile_rx_reconnected net.hostile_rx_served_after_reconnect
    net.ping_replies net.ping_after net.answered_pings
  EXPECT_LINE "garbage TX ring producer index" "garbage RX ring producer index" "evil: vanishing with"
    "a: done, 0 failed"
    "b: done, 0 failed" "evil: done, 0 failed"
  FORBID_LINE "FAIL " "netback (domain" "crashed"
  EXPECT_EXIT clean
  LABELS system adversarial)

# A front-end that crashes is restarted by the builder (another domain id):
# netback drops the old vif (and its directory) and serves the new one, and
# the switch learns the guest's MAC on its new port.
moat_system_test(NAME system_net_restart
  MANIFEST manifests/net_restart.textproto
  DOMAINS ${NET_DOMAINS}
  TIMEOUT 300
  EXPECT_PASS net.ping_replies net.answered_pings
  EXPECT_LINE "b: crashing on purpose after 5 answers" "disconnected (front-end domain gone)" "a: ping: 15 of 15 replies"
    "a: done, 0 failed" "b: done, 0 failed"
  FORBID_LINE "FAIL "
  EXPECT_EXIT clean
  LABELS system)
