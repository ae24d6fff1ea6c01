# Shared by /init and the tests (/lib/moat/tests/*.sh) of Moat's Linux
# initramfs. Results are lines the system tests read (tools/systest):
# "PASS name" and "FAIL name: why", as every test guest prints them.

say() { echo "moat-linux: $*"; }

failed=0
pass() { echo "PASS $1${2:+ ($2)}"; }
fail() {
    echo "FAIL $1${2:+: $2}"
    failed=$((failed + 1))
}
# check NAME COMMAND...: PASS if the command succeeds.
check() {
    name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name" "$*"; fi
}
# The last line of a test.
finish() { say "test $1: done, $failed failed"; }

# wait_for SECONDS COMMAND...: until the command succeeds, polling every
# 0.1 s; false if it never does.
wait_for() {
    n=$(($1 * 10))
    shift
    until "$@"; do
        [ "$n" -gt 0 ] || return 1
        n=$((n - 1))
        sleep 0.1
    done
}

# The console device this system writes to (hvc0 on Xen and Moat).
console_name() {
    c=$(cat /sys/class/tty/console/active 2>/dev/null)
    echo "${c##* }"
}

# net_up IFACE: address and route from moat.ip / moat.gw (or DHCP).
net_up() {
    ip link set "$1" up || return 1
    if [ "$MOAT_IP" = dhcp ]; then
        udhcpc -i "$1" -n -q -t 5 -T 2 -s /usr/share/udhcpc/default.script >/dev/null 2>&1
    else
        ip addr add "$MOAT_IP" dev "$1" && ip route add default via "$MOAT_GW" dev "$1"
    fi
}
