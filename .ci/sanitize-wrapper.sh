#!/bin/sh
# meson test --wrapper for .ci/sanitize.sh: every process a test starts (gst-launch-1.0,
# python, the launcher) may load the sanitized plugin, and an uninstrumented program
# can only do so with the sanitizer runtimes loaded first. Leaks of those foreign
# programs are suppressed by module name in .ci/lsan.supp; leaks in SyncWave's own
# code are still reported. The PulseAudio daemon and its tools, and chromium (the
# control page test's browser), never load the
# plugin and do not start under the preloaded runtimes: shims on PATH run them
# without it.
# Tests in Python judge real-time bounds by this (tests/integration/test_control.py).
export SYNCWAVE_SANITIZED=1
if [ -n "${SYNCWAVE_SANITIZER_PRELOAD:-}" ]; then
  shims=$(mktemp -d "${TMPDIR:-/tmp}/syncwave-sanitize-shims.XXXXXX")
  for prog in pulseaudio pactl pacmd paplay parec chromium; do
    real=$(command -v "$prog" 2>/dev/null) || continue
    printf '#!/bin/sh\nunset LD_PRELOAD\nexec "%s" "$@"\n' "$real" >"$shims/$prog"
    chmod +x "$shims/$prog"
  done
  PATH="$shims:$PATH"
  LD_PRELOAD="$SYNCWAVE_SANITIZER_PRELOAD${LD_PRELOAD:+:$LD_PRELOAD}"
  export PATH LD_PRELOAD
  # Not exec: the shim directory is removed when the test ends.
  "$@"
  rc=$?
  rm -rf "$shims"
  exit $rc
fi
exec "$@"
