# moat.test=boot: the kernel runs as a Xen PV guest, its clock ticks, and its
# log is clean; then /init powers off.
. /lib/moat/lib.sh

t=$(cat /sys/hypervisor/type 2>/dev/null)
if [ "$t" = xen ]; then pass linux.hypervisor_xen; else fail linux.hypervisor_xen "/sys/hypervisor/type reads \"$t\""; fi

not=
for m in ext4 xen_blkfront xen_netfront; do grep -q "^$m " /proc/modules || not="$not $m"; done
if [ -z "$not" ]; then pass linux.modules_loaded; else fail linux.modules_loaded "not loaded:$not"; fi

# The timer keeps firing: sleep returns, and about a second passed.
before=$(cut -d' ' -f1 /proc/uptime)
if sleep 1; then
    after=$(cut -d' ' -f1 /proc/uptime)
    pass linux.sleep_returns "$before s to $after s"
else
    fail linux.sleep_returns "sleep 1 failed"
fi

# Last, so that it also sees what the checks above caused.
bad=$(dmesg | grep -wE 'BUG|WARNING|Oops|panic')
if [ -z "$bad" ]; then
    pass linux.dmesg_clean
else
    fail linux.dmesg_clean "$(echo "$bad" | wc -l) lines of the kernel log:"
    echo "$bad" | sed 's/^/moat-linux: dmesg: /'
fi
finish boot
