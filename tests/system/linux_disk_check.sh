#!/bin/sh
# After a Linux system test (tests/system/linux.cmake): the guest's ext4 disk
# image, read on the host. The filesystem must be clean (e2fsck -n, forced),
# and each FILE=TEXT must be a file of its root holding exactly that line.
#
#   linux_disk_check.sh DEBUGFS E2FSCK IMAGE [FILE=TEXT]...
set -u
debugfs=$1 e2fsck=$2 image=$3
shift 3
[ -f "$image" ] || { echo "linux_disk_check: no $image" >&2; exit 1; }
if ! out=$("$e2fsck" -f -n "$image" 2>&1); then
    echo "linux_disk_check: e2fsck -n finds $image unclean:" >&2
    echo "$out" >&2
    exit 1
fi
echo "linux_disk_check: $image: e2fsck -n: clean"
for want in "$@"; do
    file=${want%%=*} text=${want#*=}
    got=$("$debugfs" -R "cat /$file" "$image" 2>/dev/null)
    if [ "$got" != "$text" ]; then
        echo "linux_disk_check: /$file on $image holds \"$got\", not \"$text\"" >&2
        exit 1
    fi
    echo "linux_disk_check: /$file holds \"$text\""
done
