# Isolation (issue 10): an adversarial test per finding, each an attacker
# guest (guests/attack) beside the victim (guests/victim: a canary, its
# liveness as the longest gap between its 1 ms timer ticks, a XenStore
# heartbeat). Every test runs under -icount and asserts the hypervisor's
# fixed behaviour: the attack is refused or contained, the canary is intact,
# the victim's longest gap stays under 20 ms of guest time, every other
# domain keeps working, and every domain is taken apart cleanly afterwards
# (the kernel's "taken apart ... nothing left behind" line for each attacker,
# and the builder's "all frames back" once every domain is gone).
#
# Each manifest also runs guests/attack/ballast.cpp, which keeps the CPU from
# halting while the victim measures: under -icount QEMU lets guest time
# follow the host's clock while the CPU is halted, so on a busy host an idle
# moment could otherwise show up as a late tick of the victim (seen: 27 ms).

set(ATTACK_DOMAINS builder console xenstore victim attack_ballast)
set(ATTACK_VICTIM_PASS victim.canary_intact victim.live victim.xenstore_served)
set(ATTACK_VICTIM_LINES "victim: done, 0 failed" "ballast: done, 0 failed" "builder: all frames back")
set(ATTACK_FORBID "PANIC" "FAIL " "LEFT BEHIND" "crashed" "FRAMES NOT BACK")

# --- Finding 1: a grant mapped into the hypervisor's address range ------------
# map_grant_ref at hypervisor addresses (the direct map, the kernel image's
# alias of it, the M2P, the top of the range, non-canonical ones), unmap_grant_ref
# named by such addresses, the contains_pte path at frames that are not the
# attacker's validated L1s (every frame of the machine that is not its own,
# the victim's among them), update_va_mapping at hypervisor addresses: every
# one refused with GNTST_bad_virt_addr / -EINVAL, nothing written (the
# attacker watches the 2 MiB aligned frame of its own it aims at, and the M2P
# pages).
moat_system_test(NAME attack_grant_va
  MANIFEST manifests/attack_grant_va.textproto
  DOMAINS ${ATTACK_DOMAINS} attack_granter attack_grant_va
  ICOUNT
  EXPECT_PASS ${ATTACK_VICTIM_PASS}
    attack.grant_va.legit_map attack.grant_va.own_2m_aligned_frame
    attack.grant_va.directmap_refused attack.grant_va.directmap_readonly_refused
    attack.grant_va.kernel_image_alias_refused attack.grant_va.kernel_image_refused
    attack.grant_va.m2p_refused attack.grant_va.m2p_writable_refused attack.grant_va.hypervisor_top_refused
    attack.grant_va.noncanonical_low_refused attack.grant_va.noncanonical_high_refused
    attack.grant_va.noncanonical_top_bit_refused
    attack.grant_va.contains_pte_own_plain_frame_refused attack.grant_va.contains_pte_own_data_page_refused
    attack.grant_va.contains_pte_own_l2_refused attack.grant_va.contains_pte_granted_frame_refused
    attack.grant_va.contains_pte_frame_0_refused attack.grant_va.contains_pte_targets_unchanged
    attack.grant_va.contains_pte_foreign_frames_refused attack.grant_va.contains_pte_own_l1_allowed
    attack.grant_va.unmap_hypervisor_va_refused attack.grant_va.legit_unmap
    attack.grant_va.update_va_mapping_hypervisor_refused attack.grant_va.watched_memory_unchanged
    attack.grant_va.granter_closed
    attack.grant_va.granter_published attack.grant_va.granter_saw_attacker_close
    attack.grant_va.granter_grants_ended attack.grant_va.granter_readonly_page_intact
  EXPECT_LINE ${ATTACK_VICTIM_LINES}
    "grant_va: done, 0 failed" "granter: done, 0 failed"
    "(grant_va) taken apart: " "(granter) taken apart: "
  FORBID_LINE ${ATTACK_FORBID} "evidence:"
  EXPECT_EXIT clean
  TIMEOUT 300
  LABELS adversarial)

# --- Finding 2: a grant mapping outlives the granter's memory ------------------
# The granter's 248 pages stay mapped by a stopped mapper while the builder
# destroys and restarts the granter; the mapper is destroyed after. The
# restarted granter must find every frame of its own untouched: none it
# cannot map, none it maps writable that it can pin or link as an L1 (and
# so no hypervisor frame read through one). Both are taken apart cleanly
# (the kernel's teardown report counts mappings of a domain's grants left
# behind).
moat_system_test(NAME attack_stale_grant
  MANIFEST manifests/attack_stale_grant.textproto
  DOMAINS ${ATTACK_DOMAINS} attack_stale_granter attack_stale_mapper
  ICOUNT
  EXPECT_PASS ${ATTACK_VICTIM_PASS}
    attack.stale_grant.found_mapper attack.stale_grant.granted attack.stale_grant.mapped_by_mapper
    attack.stale_grant.mapper_found_granter attack.stale_grant.mapper_mapped_all
    attack.stale_grant.mapper_saw_granter_stop attack.stale_grant.mapper_stops_holding_mappings
    attack.stale_grant.restarted_found_mapper attack.stale_grant.mapper_destroyed
    attack.stale_grant.own_frames_untouched attack.stale_grant.probed
    attack.stale_grant.pin_writable_mapped_refused attack.stale_grant.link_writable_mapped_refused
    attack.stale_grant.no_foreign_frame_reached
  EXPECT_LINE ${ATTACK_VICTIM_LINES}
    "builder: restarting granter (restart 1 of 1)" "builder: granter reached its restart limit (1)"
    "granter: second life: " "granter: done, 0 failed" "mapper: done, 0 failed"
    "(granter) taken apart: " "(mapper) taken apart: "
  FORBID_LINE ${ATTACK_FORBID} "evidence:"
  EXPECT_EXIT clean
  TIMEOUT 300
  LABELS adversarial)

# --- Finding 3: a multicall keeps the CPU ---------------------------------------
# One test per batch (guests/attack/multicall.cpp says what each is); the
# victim's longest gap is the verdict (victim.live, max_gap_us=20000).
foreach(ATTACK_VARIANT copy_page clear_page grant_copy console_io memory_op max_entries)
  moat_system_test(NAME attack_multicall_${ATTACK_VARIANT}
    MANIFEST manifests/attack_multicall.textproto
    DOMAINS ${ATTACK_DOMAINS} attack_multicall
    ICOUNT
    EXPECT_PASS ${ATTACK_VICTIM_PASS} attack.multicall.${ATTACK_VARIANT}_completed
    EXPECT_LINE ${ATTACK_VICTIM_LINES} "multicall: done, 0 failed" "(multicall) taken apart: "
    FORBID_LINE ${ATTACK_FORBID}
    EXPECT_EXIT clean
    TIMEOUT 300
    LABELS adversarial)
endforeach()

# --- Finding 5: one domain floods the hypervisor's log ----------------------------
# console_io writes and provoked refusals (bind_interdomain and grant maps
# with no capability) for 1.5 s; the witness's 40 lines must all come
# through, nothing overflows, and the hypervisor says how many of the
# attacker's lines it dropped.
set(ATTACK_WITNESS_LINES)
foreach(i RANGE 1 40)
  string(LENGTH "${i}" len)
  if(len EQUAL 1)
    set(i "0${i}")
  endif()
  list(APPEND ATTACK_WITNESS_LINES "witness: kline ${i} of 40")
endforeach()
moat_system_test(NAME attack_log_flood
  MANIFEST manifests/attack_log_flood.textproto
  DOMAINS ${ATTACK_DOMAINS} attack_logflood attack_logwitness
  ICOUNT
  EXPECT_PASS ${ATTACK_VICTIM_PASS} attack.logflood.refusals_refused attack.logflood.witness_wrote
  EXPECT_LINE ${ATTACK_VICTIM_LINES} ${ATTACK_WITNESS_LINES}
    "logflood: done, 0 failed" "witness: done, 0 failed" "log lines dropped"
    "(logflood) taken apart: " "(witness) taken apart: "
  FORBID_LINE ${ATTACK_FORBID} "console log overflowed"
  EXPECT_EXIT clean
  TIMEOUT 300
  LABELS adversarial)

# --- Finding 6: event channels ------------------------------------------------------
# A send on a VIRQ port is -EINVAL and fakes no event; a port closed while
# its peer is stopped, then reused for a channel with another domain, keeps
# that channel (status, and a send that reaches the new peer) when the
# stopped peer is destroyed.
moat_system_test(NAME attack_evtchn
  MANIFEST manifests/attack_evtchn.textproto
  DOMAINS ${ATTACK_DOMAINS} attack_evtchn attack_evtchn_peer
  ICOUNT
  EXPECT_PASS ${ATTACK_VICTIM_PASS}
    attack.evtchn.bound_timer attack.evtchn.virq_send_refused attack.evtchn.virq_not_faked
    attack.evtchn.found_peers attack.evtchn.bound_to_stopper attack.evtchn.port_reused_while_peer_stopped
    attack.evtchn.stopper_destroyed attack.evtchn.channel_survives_peer_destroy attack.evtchn.send_reaches_peer
    attack.evtchn.stopper_offered_port attack.evtchn.stopper_got_event
    attack.evtchn.stayer_offered_port attack.evtchn.peer_received
  EXPECT_LINE ${ATTACK_VICTIM_LINES}
    "evtchn: done, 0 failed" "stopper: done, 0 failed" "stayer: done, 0 failed"
    "(evtchn) taken apart: " "(stopper) taken apart: " "(stayer) taken apart: "
  FORBID_LINE ${ATTACK_FORBID}
  EXPECT_EXIT clean
  TIMEOUT 300
  LABELS adversarial)
