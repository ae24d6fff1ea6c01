#!/bin/sh
# Installs exactly what Moat needs to build and test, with apt-get, on Debian 12.
# A no-op when everything is already present. QEMU comes from bookworm-backports:
# Debian 12's own QEMU 7.2 mis-reports the #GP error code of a blocked `int $n`
# in 64-bit mode (QEMU issue #1382), which a PV hypervisor depends on.
#
# Linux guests (docs/system.md, "Linux guests"): liblzma and zlib let `moat`
# unpack a bzImage; busybox-static, cpio and the kernel package's modules make
# the initramfs (kmod's depmod writes the modules.dep the package leaves to
# its postinst); e2fsprogs makes and checks the guests' ext4 disks. Debian's
# own kernel package is fetched as it is (apt-get download, never rebuilt) and
# unpacked into LINUX_DIR below.
#
# graphviz: its `dot` draws `moat graph`'s SVG (docs/capabilities.md).
set -eu

PKGS="cmake ninja-build make g++ clang lld llvm libgtest-dev libgmock-dev libbenchmark-dev libboost-dev libclang-rt-14-dev python3 protobuf-compiler libprotobuf-dev nanopb python3-protobuf dpkg-dev busybox-static e2fsprogs cpio xz-utils liblzma-dev zlib1g-dev kmod graphviz"
QEMU_MIN_MAJOR=8

# nanopb's runtime (pb_common.c, pb_decode.c, pb_encode.c and headers) for the
# domains, which need it compiled with their own flags: extracted from Debian's
# source package (the same version as the `nanopb` generator package) into
# NANOPB_SRC, outside the work tree. build/cmake/Nanopb.cmake reads it there.
MOAT_STATE=/var/lib/moat
NANOPB_SRC=$MOAT_STATE/nanopb
nanopb_src_ok() {
    for f in pb.h pb_common.h pb_common.c pb_decode.h pb_decode.c pb_encode.h pb_encode.c; do
        [ -f "$NANOPB_SRC/$f" ] || return 1
    done
}

# Debian's stock kernel for Linux guests: the package the machine's
# linux-image-amd64 metapackage depends on (e.g. linux-image-6.1.0-57-amd64),
# downloaded with apt-get and unpacked with dpkg-deb -x into LINUX_DIR
# (boot/vmlinuz-*, boot/config-*, lib/modules/*/), outside the work tree;
# then depmod writes lib/modules/*/modules.dep etc., as the package's postinst
# does when it is installed; LINUX_DIR/vmlinuz links to boot/vmlinuz-*.
# LINUX_DIR/VERSION records "PACKAGE VERSION".
# Fetched once: remove LINUX_DIR to take the metapackage's current kernel.
LINUX_DIR=$MOAT_STATE/linux
linux_ok() {
    [ -s "$LINUX_DIR/VERSION" ] && [ -f "$LINUX_DIR/vmlinuz" ] || return 1
    for f in "$LINUX_DIR"/boot/vmlinuz-*; do
        [ -f "$f" ] || return 1
        r=${f##*/vmlinuz-}
        [ -f "$LINUX_DIR/lib/modules/$r/modules.dep" ] || return 1
        return 0
    done
    return 1
}

# Temporary directories, removed however the script ends.
tmps=""
trap 'for d in $tmps; do rm -rf "$d"; done' EXIT

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

qemu_ok() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
    v=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
    [ -n "$v" ] && [ "$v" -ge "$QEMU_MIN_MAJOR" ]
}

if [ -z "$missing" ] && qemu_ok && nanopb_src_ok && linux_ok; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing:$missing ${QEMU_MIN_MAJOR}+ qemu; nanopb sources in $NANOPB_SRC; Debian's kernel in $LINUX_DIR; run 'make deps' as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
updated=""
if [ -n "$missing" ] || ! qemu_ok || ! linux_ok; then
    apt-get update
    updated=1
    [ -z "$missing" ] || apt-get install -y --no-install-recommends $missing
fi

if ! qemu_ok; then
    # Enable bookworm-backports by copying the machine's own Debian entry, so the
    # same mirror (or snapshot) is used, with the suite swapped.
    list=/etc/apt/sources.list.d/moat-backports.sources
    if [ ! -f "$list" ]; then
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then
            awk 'BEGIN{RS=""; ORS="\n\n"} /Suites:[^\n]*bookworm([ \n]|$)/ && !done {
                     sub(/Suites:[^\n]*/, "Suites: bookworm-backports"); print; done=1 }' \
                /etc/apt/sources.list.d/debian.sources > "$list"
        fi
        if [ ! -s "$list" ]; then
            rm -f "$list"
            line=$(grep -hE '^deb [^#]*debian/? bookworm( |$)' /etc/apt/sources.list 2>/dev/null | head -n1)
            [ -n "$line" ] || { echo "deps: no Debian bookworm apt source to copy for backports" >&2; exit 1; }
            echo "$line" | sed 's/ bookworm / bookworm-backports /; s/ bookworm$/ bookworm-backports/' \
                > /etc/apt/sources.list.d/moat-backports.list
        fi
        apt-get update
    fi
    apt-get install -y --no-install-recommends -t bookworm-backports qemu-system-x86
    qemu_ok || { echo "deps: qemu-system-x86_64 ${QEMU_MIN_MAJOR}+ still missing" >&2; exit 1; }
fi

if ! nanopb_src_ok; then
    # `apt-get source nanopb` with a private sources list (a deb-src line for
    # the machine's own Debian mirror, suite bookworm) and private package
    # lists, so the machine's apt configuration is left as it is.
    apt_dir=$MOAT_STATE/apt
    mkdir -p "$apt_dir/lists/partial"
    if [ ! -s "$apt_dir/sources.list" ]; then
        uri="" signed=""
        # deb822 files, Debian's own first: the first stanza whose suites
        # include bookworm itself.
        sources=$(ls /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '!seen[$0]++')
        if [ -n "$sources" ]; then
            field() {
                # shellcheck disable=SC2086 # one file name per word
                awk -v f="$1" 'BEGIN{RS=""} /Suites:[^\n]*[ \t]bookworm([ \t\n]|$)/ {
                    n = split($0, l, "\n")
                    for (i = 1; i <= n; i++) if (index(l[i], f ":") == 1) { split(substr(l[i], length(f) + 2), v, " "); print v[1]; exit }
                    exit }' $sources
            }
            uri=$(field URIs)
            signed=$(field Signed-By)
        fi
        if [ -z "$uri" ]; then
            uri=$(grep -hE '^deb (\[[^]]*\] )?[^ ]+ bookworm( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                  head -n1 | sed -E 's/^deb (\[[^]]*\] )?([^ ]+) .*/\2/')
        fi
        [ -n "$uri" ] || { echo "deps: no Debian bookworm apt source to take nanopb's source package from" >&2; exit 1; }
        opts=""
        case "$signed" in /*) opts="[signed-by=$signed] " ;; esac
        echo "deb-src ${opts}$uri bookworm main" > "$apt_dir/sources.list"
    fi
    apt_src() {
        apt-get -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
            -o Dir::State::Lists="$apt_dir/lists" "$@"
    }
    apt_src update
    tmp=$(mktemp -d "$MOAT_STATE/nanopb-src.XXXXXX")
    tmps="$tmps $tmp"
    (cd "$tmp" && apt_src -o APT::Sandbox::User=root source nanopb) || { echo "deps: apt-get source nanopb failed" >&2; exit 1; }
    dir=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'nanopb-*' | head -n1)
    [ -n "$dir" ] && [ -f "$dir/pb_decode.c" ] || { echo "deps: no pb_decode.c in nanopb's source package" >&2; exit 1; }
    rm -rf "$NANOPB_SRC"
    mv "$dir" "$NANOPB_SRC"
    nanopb_src_ok || { echo "deps: nanopb sources still missing in $NANOPB_SRC" >&2; exit 1; }
fi

if ! linux_ok; then
    # The candidate of linux-image-amd64 in the machine's apt configuration
    # (bookworm, with its security updates) names the kernel package itself.
    [ -n "$updated" ] || apt-get update
    pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: *\(linux-image-[0-9][^ ]*\) *$/\1/p' | head -n1)
    [ -n "$pkg" ] || { echo "deps: linux-image-amd64 depends on no linux-image-<version> package" >&2; exit 1; }
    mkdir -p "$MOAT_STATE"
    dl=$(mktemp -d "$MOAT_STATE/linux-dl.XXXXXX")
    tmps="$tmps $dl"
    (cd "$dl" && apt-get -o APT::Sandbox::User=root download "$pkg") || { echo "deps: apt-get download $pkg failed" >&2; exit 1; }
    deb=$(find "$dl" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)
    [ -n "$deb" ] || { echo "deps: apt-get download $pkg left no .deb" >&2; exit 1; }
    mkdir "$dl/root"
    dpkg-deb -x "$deb" "$dl/root"
    for f in "$dl/root"/boot/vmlinuz-*; do
        r=${f##*/vmlinuz-}
        [ -f "$f" ] && [ -d "$dl/root/lib/modules/$r" ] || { echo "deps: $pkg has no boot/vmlinuz-* with its lib/modules" >&2; exit 1; }
        /sbin/depmod -b "$dl/root" "$r"
        # A name that does not change with the kernel's ABI, for manifests
        # (examples/linux.textproto), as Debian's own /vmlinuz link.
        ln -s "boot/vmlinuz-$r" "$dl/root/vmlinuz"
    done
    echo "$pkg $(dpkg-deb -f "$deb" Version)" > "$dl/root/VERSION"
    rm -rf "$LINUX_DIR"
    mv "$dl/root" "$LINUX_DIR"
    linux_ok || { echo "deps: $pkg has no boot/vmlinuz-* with its lib/modules/*/modules.dep" >&2; exit 1; }
    echo "deps: $(cat "$LINUX_DIR/VERSION") in $LINUX_DIR"
fi
