# moat.test=echo: eth0 up (moat.ip, moat.gw), then UDP echo on port 7 until
# a peer sends "moat-udp-done" (or ten minutes pass): the Linux end of the
# linux_udp_rtt_insns benchmark (bench/linux.cmake), whose client is a Moat
# guest on netback's switch.
. /lib/moat/lib.sh

if wait_for 30 test -e /sys/class/net/eth0 && net_up eth0; then
    pass linux.eth0_up "$(ip -4 -o addr show eth0 | awk '{print $4}')"
    if moat-udp-echo 7 600; then pass linux.udp_echo; else fail linux.udp_echo "no moat-udp-done"; fi
else
    fail linux.eth0_up "no eth0, or no address (moat.ip=$MOAT_IP)"
fi
finish echo
