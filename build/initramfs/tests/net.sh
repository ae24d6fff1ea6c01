# moat.test=net: eth0 (xen-netfront through netback) gets its address on
# QEMU's user network, pings the host side (10.0.2.2), then echoes UDP on
# port 7 for the host (the manifest's udp_forward) until the host sends
# "moat-udp-done" (or two minutes pass); then /init powers off.
. /lib/moat/lib.sh

if ! wait_for 30 test -e /sys/class/net/eth0; then
    fail linux.eth0_present "no eth0 after 30 s"
    finish net
    exit 1
fi
pass linux.eth0_present "mac $(cat /sys/class/net/eth0/address)"

if net_up eth0 && wait_for 10 sh -c 'ip -4 -o addr show eth0 | grep -q inet'; then
    pass linux.eth0_up "$(ip -4 -o addr show eth0 | awk '{print $4}')"
else
    fail linux.eth0_up "no IPv4 address (moat.ip=$MOAT_IP)"
fi

gw=$(ip route show default | awk '{print $3; exit}')
if ping -c 3 -W 5 "${gw:-10.0.2.2}" >/tmp/ping 2>&1; then
    pass linux.ping_gateway "$(grep -o '[0-9]* packets received' /tmp/ping)"
else
    fail linux.ping_gateway "$(tail -n 2 /tmp/ping | tr '\n' ' ')"
fi

# "moat-linux: udp echo ready on port 7" once bound: the host starts then.
if moat-udp-echo 7 120; then
    pass linux.udp_echo
else
    fail linux.udp_echo "no moat-udp-done from the host"
fi
finish net
