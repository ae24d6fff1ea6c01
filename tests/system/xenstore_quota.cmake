# Issue 10, finding 4: one guest exhausted XenStore for everyone. The store's
# shared byte pool was smaller than one domain's quota; a filler got ENOMEM
# at node ~908, after which every other domain's writes failed with ENOMEM,
# and a domain restarted meanwhile never got its console.
#
# Now every pool a domain can make the store consume is accounted per domain
# (services/xenstore/include/xenstore/config.hpp): each domain has a reserve
# nobody else can take and draws from a shared remainder beyond it, up to its
# quotas. Four fillers (guests/xsattack/fill.cpp) take nodes, transactions
# and their records, queued events, watches with long paths and tokens and
# bytes until each is refused with EQUOTA (never ENOMEM), and together they
# use up the shared remainder; then they hold it all for a while. Meanwhile
# the victim (guests/victim) writes and reads its node every 100 ticks and must
# be served every time, and a guest that crashes is restarted twice by the
# builder (guests/xsattack/restart.cpp): after each restart its console
# lines must appear again (it has no debug console: they come through the
# console domain), it must get its reserve's worth of nodes, and no more.
# The builder never sees a XenStore error, and once every domain is gone
# every frame is back.
#
# Guest time (-icount): the fillers are full after about 0.45 s and hold it
# all for XS_QUOTA_HOLD_MS; the three starts of the restarted guest come in
# the first tenth of that; the victim (its XenStore heartbeat every ~200 ms
# under this load) runs until the middle of it, the ballast a little longer.
# The manifest's @XS_QUOTA_...@ stand for these.
set(XS_QUOTA_HOLD_MS 3000)
set(XS_QUOTA_VICTIM_MS 2500)
set(XS_QUOTA_BALLAST_MS 3000)
moat_system_test(NAME attack_xenstore_quota
  MANIFEST manifests/xs_quota.textproto
  DOMAINS builder console xenstore victim xsfill xsrestart xsballast
  ICOUNT
  EXPECT_PASS victim.canary_intact victim.live victim.xenstore_served
    xsfill.connected xsfill.state_node xsfill.nodes_equota xsfill.transactions_equota xsfill.tx_records_equota
    xsfill.event_flood_served xsfill.watches_equota xsfill.bytes_equota xsfill.refusals_changed_nothing
    xsfill.full xsfill.served_after_release
    xsrestart.connected xsrestart.store_full xsrestart.reserve_served xsrestart.refused_beyond_reserve
  EXPECT_LINE
    "xsfill1: done, 0 failed" "xsfill2: done, 0 failed" "xsfill3: done, 0 failed" "xsfill4: done, 0 failed"
    "short of its quota: the shared remainder was gone"
    "xsrestart: up (first start)"
    "builder: restarting xsrestart (restart 1 of 2)"
    "builder: restarting xsrestart (restart 2 of 2)"
    "builder: xsrestart reached its restart limit (2): left down"
    "victim: done, 0 failed" "ballast: done, 0 failed"
    "builder: all frames back"
  EXPECT_BETWEEN
    "restarting xsrestart (restart 1 of 2)|restarting xsrestart (restart 2 of 2)|xsrestart: up (restarted)"
    "restarting xsrestart (restart 1 of 2)|restarting xsrestart (restart 2 of 2)|xsrestart: done, 0 failed"
    "restarting xsrestart (restart 2 of 2)|xsrestart reached its restart limit|xsrestart: up (restarted)"
    "restarting xsrestart (restart 2 of 2)|xsrestart reached its restart limit|xsrestart: done, 0 failed"
  FORBID_LINE "FAIL " "ENOMEM" "PANIC" "builder: xenstore " "did not map its rings" "LEFT BEHIND"
    "FRAMES NOT BACK"
  EXPECT_EXIT clean
  TIMEOUT 300
  LABELS adversarial)
