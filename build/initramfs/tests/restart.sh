# moat.test=restart: counts this domain's boots in /moat-boots on /dev/xvda
# (a fresh ext4 filesystem). The first boot reboots (SHUTDOWN_reboot: the
# builder restarts the domain by its policy); the second says it was
# restarted and /init powers off.
. /lib/moat/lib.sh

if ! wait_for 30 test -b "$MOAT_DISK" || ! mount -t ext4 "$MOAT_DISK" /mnt; then
    fail linux.boot_counted "cannot mount $MOAT_DISK"
    finish restart
    exit 1
fi
n=$(($(cat /mnt/moat-boots 2>/dev/null || echo 0) + 1))
echo "$n" > /mnt/moat-boots
sync
umount /mnt
pass linux.boot_counted "boot $n"

if [ "$n" -eq 1 ]; then
    pass linux.first_boot
    finish restart
    say "rebooting"
    reboot -f
    sleep 5
    fail linux.rebooted "still running after reboot -f"
else
    pass linux.restarted "boot $n of this disk"
    finish restart
fi
