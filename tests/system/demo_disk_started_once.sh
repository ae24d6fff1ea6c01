#!/bin/sh
# demo_disk_started_once.sh IMAGE: an 8 MiB demo disk as one start of the
# demo leaves it (guests/demo/netdisk.cpp: sector 0 holds the counter as
# text), for system_demo_restarted, which must then count its second start.
set -eu
img=$1
rm -f "$img"
truncate -s 8M "$img"
printf 'moat-demo-counter 1\n' | dd of="$img" conv=notrunc status=none
