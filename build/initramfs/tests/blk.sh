# moat.test=blk: /dev/xvda (xen-blkfront through blkback; moat.disk= names
# another) holds the ext4 filesystem mkfs.ext4 made on the host; a file is
# written, synced and read back, the filesystem unmounted; then /init powers
# off and the host checks the file (debugfs) and the filesystem (e2fsck -n).
. /lib/moat/lib.sh

FILE=moat-linux-blk.txt
TEXT="written by Linux on Moat through xen-blkfront and blkback"

if ! wait_for 30 test -b "$MOAT_DISK"; then
    fail linux.xvda_present "no $MOAT_DISK after 30 s"
    finish blk
    exit 1
fi
pass linux.xvda_present "$MOAT_DISK, $(($(cat "/sys/class/block/${MOAT_DISK#/dev/}/size") / 2048)) MiB"

if ! mount -t ext4 "$MOAT_DISK" /mnt; then
    fail linux.xvda_mounted "mount -t ext4 $MOAT_DISK failed"
    finish blk
    exit 1
fi
pass linux.xvda_mounted

if echo "$TEXT" > /mnt/$FILE && sync; then pass linux.file_written; else fail linux.file_written; fi
# Read back from the disk, not the page cache.
echo 3 > /proc/sys/vm/drop_caches
if [ "$(cat /mnt/$FILE)" = "$TEXT" ]; then pass linux.file_read_back; else fail linux.file_read_back; fi

if umount /mnt; then pass linux.xvda_unmounted; else fail linux.xvda_unmounted; fi
finish blk
