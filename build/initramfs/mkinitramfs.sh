#!/bin/sh
# Makes Moat's Linux initramfs (docs/system.md, "Linux guests"): a newc cpio,
# gzip-compressed (Debian's kernel has CONFIG_RD_GZIP), holding
#   busybox (busybox-static) and its applet links,
#   /init, /etc/inittab, /lib/moat/{lib.sh,tests/*.sh} from this directory,
#   moat-udp-echo and moat-boot-insns (the linux_boot_insns benchmark),
#   the kernel package's modules /init loads (/etc/moat/modules: xen-netfront,
#   xen-blkfront, ext4, crc32c_generic; and crc32c-intel) with what
#   modules.dep says they need,
#   exactly those .ko files, and modules.dep, modules.alias, modules.softdep,
#   modules.order cut down to them (modules.builtin* whole) for modprobe.
#
#   mkinitramfs.sh OUT LINUX_DIR UDP_ECHO BOOT_INSNS [BUSYBOX]
# LINUX_DIR is the unpacked kernel package (build/deps.sh: /var/lib/moat/linux).
# Nothing of the package is changed: its files are copied as they are.
#
# MOAT_INITRAMFS_EXTRA_MODULES (environment): more modules /init loads, for
# trying the initramfs outside Moat, e.g. "virtio_pci virtio_blk virtio_net"
# under plain QEMU (with moat.disk=/dev/vda). The build adds none.
set -eu

out=$1 linux=$2 udp_echo=$3 boot_insns=$4 busybox=${5:-/bin/busybox}
src=$(cd "$(dirname "$0")" && pwd)
# Absolute paths: the work below happens in a directory of its own.
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
out=$(abs "$out") linux=$(abs "$linux") udp_echo=$(abs "$udp_echo") boot_insns=$(abs "$boot_insns") busybox=$(abs "$busybox")
# What /init loads, in order (crc32c-intel as well, quietly: it needs SSE4.2).
load="crc32c_generic ext4 xen-blkfront xen-netfront ${MOAT_INITRAMFS_EXTRA_MODULES:-}"
modules="crc32c-intel $load"

release=$(basename "$(readlink "$linux/vmlinuz")")
release=${release#vmlinuz-}
moddir=$linux/lib/modules/$release
[ -n "$release" ] && [ -f "$moddir/modules.dep" ] || {
    echo "mkinitramfs: no $linux/vmlinuz with its modules.dep (run make deps)" >&2
    exit 1
}
[ -x "$busybox" ] || { echo "mkinitramfs: no $busybox (busybox-static: run make deps)" >&2; exit 1; }
# A static busybox: the initramfs has no C library.
if ldd "$busybox" 2>/dev/null | grep -q '=>'; then
    echo "mkinitramfs: $busybox is not linked statically (install busybox-static)" >&2
    exit 1
fi

root=$out.d
rm -rf "$root"
mkdir -p "$root"
cd "$root"
mkdir -p bin sbin usr/bin usr/sbin proc sys dev run tmp mnt root etc lib/moat/tests usr/share/udhcpc "lib/modules/$release"

cp "$busybox" bin/busybox
"$busybox" --list-full | while read -r applet; do
    [ "$applet" = bin/busybox ] || [ -e "$applet" ] || ln -s /bin/busybox "$applet"
done
cp "$udp_echo" bin/moat-udp-echo
cp "$boot_insns" bin/moat-boot-insns
install -m 0755 "$src/init" init
install -m 0644 "$src/lib.sh" lib/moat/lib.sh
install -m 0644 "$src"/tests/*.sh lib/moat/tests/
install -m 0644 "$src/inittab" etc/inittab
install -m 0644 "$src/profile" etc/profile
install -m 0755 "$src/default.script" usr/share/udhcpc/default.script
echo moat-linux > etc/hostname
mkdir -p etc/moat
# shellcheck disable=SC2086 # one line, single spaces
echo $load > etc/moat/modules
echo 'root:x:0:0:root:/root:/bin/sh' > etc/passwd
echo 'root:x:0:' > etc/group

# The modules and everything they need (modules.dep lists the whole chain),
# by name as modprobe spells them (- and _ alike).
awk -v want="$modules" '
    function name(path) { sub(".*/", "", path); sub("\\.ko(\\.[a-z]+)?$", "", path); gsub("-", "_", path); return path }
    BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) { x = w[i]; gsub("-", "_", x); wanted[x] = 1 } }
    { m = $1; sub(":$", "", m); if (name(m) in wanted) { print m; for (i = 2; i <= NF; i++) print $i } }
' "$moddir/modules.dep" | sort -u > "$out.modules"
for m in $modules; do
    grep -q "/$(echo "$m" | sed 's/[-_]/[-_]/g')\.ko" "$out.modules" || { echo "mkinitramfs: $m is not in $moddir/modules.dep" >&2; exit 1; }
done
while read -r ko; do
    mkdir -p "lib/modules/$release/$(dirname "$ko")"
    cp "$moddir/$ko" "lib/modules/$release/$ko"
done < "$out.modules"
# modules.* cut down to those (a module's line, its aliases, its softdeps).
awk 'NR == FNR { have[$1] = 1; next } { m = $1; sub(":$", "", m); if (m in have) print }' \
    "$out.modules" "$moddir/modules.dep" > "lib/modules/$release/modules.dep"
awk 'NR == FNR { have[$1] = 1; next } $1 in have' "$out.modules" "$moddir/modules.order" > "lib/modules/$release/modules.order"
names=$(sed 's|.*/||; s|\.ko.*||; s|-|_|g' "$out.modules" | tr '\n' ' ')
awk -v names="$names" 'BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) have[a[i]] = 1 }
    ($1 == "alias" && ($3 in have)) || ($1 == "softdep" && ($2 in have))' \
    "$moddir/modules.alias" > "lib/modules/$release/modules.alias"
awk -v names="$names" 'BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) have[a[i]] = 1 }
    $1 == "softdep" && ($2 in have)' "$moddir/modules.softdep" > "lib/modules/$release/modules.softdep"
cp "$moddir/modules.builtin" "$moddir/modules.builtin.modinfo" "lib/modules/$release/"
rm -f "$out.modules"

# Reproducible: every file dated the kernel package's build, owned by root,
# in a fixed order.
date=$(stat -c %Y "$linux/boot/config-$release")
find . -exec touch -h -d "@$date" {} +
find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet | gzip -9n > "$out.tmp"
mv "$out.tmp" "$out"
cd ..
rm -rf "$root"
echo "mkinitramfs: $out: $(wc -c < "$out") bytes, Linux $release, modules: $(echo "$names" | sed 's/ $//')"
