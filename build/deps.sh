#!/bin/sh
# Installs exactly what Moat needs to build and test, with apt-get, on Debian 12.
# A no-op when everything is already present. QEMU comes from bookworm-backports:
# Debian 12's own QEMU 7.2 mis-reports the #GP error code of a blocked `int $n`
# in 64-bit mode (QEMU issue #1382), which a PV hypervisor depends on.
set -eu

PKGS="cmake ninja-build make g++ clang lld llvm libgtest-dev libgmock-dev libbenchmark-dev libboost-dev libclang-rt-14-dev python3 protobuf-compiler libprotobuf-dev"
QEMU_MIN_MAJOR=8

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

qemu_ok() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
    v=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
    [ -n "$v" ] && [ "$v" -ge "$QEMU_MIN_MAJOR" ]
}

if [ -z "$missing" ] && qemu_ok; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing:$missing ${QEMU_MIN_MAJOR}+ qemu; run 'make deps' as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
[ -z "$missing" ] || apt-get install -y --no-install-recommends $missing

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
