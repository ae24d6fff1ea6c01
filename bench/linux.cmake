# Linux guest figures (issue 11), in one boot of Debian's kernel under
# -icount shift=0 (the TSC counts guest instructions):
#   linux_boot_insns     from the builder letting the domain run (the TSC it
#                        leaves in moat/start-tsc just before the unpause) to
#                        the first line of the initramfs's /init
#                        (moat-boot-insns, build/initramfs/boot-insns.c);
#   linux_udp_rtt_insns  the median of 200 UDP round trips of 64 bytes from a
#                        Moat guest (guests/net, udp-rtt) to Linux's echo
#                        (moat-udp-echo) through netback's switch: the client
#                        sits beside Linux, because a host client's round
#                        trip cannot be counted in guest instructions.
if(NOT MOAT_LINUX)   # no Debian kernel (make deps fetches it)
  return()
endif()
moat_bench_run(NAME linux
  MANIFEST manifests/linux.textproto
  DOMAINS builder console xenstore netback net_guest initramfs
  EXPECT_PASS linux.eth0_up linux.udp_echo net.udp_rtt
  EXPECT_LINE "BENCH linux_boot_insns" "BENCH linux_udp_rtt_insns" "test echo: done, 0 failed"
  TIMEOUT 900)
