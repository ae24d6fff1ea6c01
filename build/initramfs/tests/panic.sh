# moat.test=panic: the kernel panics on purpose (sysrq c). On Xen and Moat a
# PV Linux that panics shuts its domain down as crashed (SCHEDOP_shutdown,
# SHUTDOWN_crash), and the builder's restart policy for crashes applies.
. /lib/moat/lib.sh

say "panicking on purpose (sysrq c)"
echo c >/proc/sysrq-trigger
fail linux.panicked "still running after sysrq c"
finish panic
