#!/bin/sh
# Installs exactly what Moat needs to build and test, with apt-get, on Debian 12.
# A no-op when everything is already present. QEMU comes from bookworm-backports:
# Debian 12's own QEMU 7.2 mis-reports the #GP error code of a blocked `int $n`
# in 64-bit mode (QEMU issue #1382), which a PV hypervisor depends on.
set -eu

PKGS="cmake ninja-build make g++ clang lld llvm libgtest-dev libgmock-dev libbenchmark-dev libboost-dev libclang-rt-14-dev python3 protobuf-compiler libprotobuf-dev nanopb python3-protobuf dpkg-dev"
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

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

qemu_ok() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
    v=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
    [ -n "$v" ] && [ "$v" -ge "$QEMU_MIN_MAJOR" ]
}

if [ -z "$missing" ] && qemu_ok && nanopb_src_ok; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing:$missing ${QEMU_MIN_MAJOR}+ qemu; nanopb sources in $NANOPB_SRC; run 'make deps' as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ] || ! qemu_ok; then
    apt-get update
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
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && apt_src -o APT::Sandbox::User=root source nanopb) || { echo "deps: apt-get source nanopb failed" >&2; exit 1; }
    dir=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'nanopb-*' | head -n1)
    [ -n "$dir" ] && [ -f "$dir/pb_decode.c" ] || { echo "deps: no pb_decode.c in nanopb's source package" >&2; exit 1; }
    rm -rf "$NANOPB_SRC"
    mv "$dir" "$NANOPB_SRC"
    nanopb_src_ok || { echo "deps: nanopb sources still missing in $NANOPB_SRC" >&2; exit 1; }
fi
