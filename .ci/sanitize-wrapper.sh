#!/bin/sh
# meson test --wrapper for .ci/sanitize.sh: every process a test starts (gst-launch-1.0,
# python, pulseaudio, the launcher) may load the sanitized plugin, and an
# uninstrumented program can only do so with the sanitizer runtimes loaded first.
# Leaks of those foreign programs are suppressed by module name in .ci/lsan.supp;
# leaks in SyncWave's own code are still reported.
if [ -n "${SYNCWAVE_SANITIZER_PRELOAD:-}" ]; then
  LD_PRELOAD="$SYNCWAVE_SANITIZER_PRELOAD${LD_PRELOAD:+:$LD_PRELOAD}"
  export LD_PRELOAD
fi
exec "$@"
