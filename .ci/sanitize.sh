#!/bin/sh
# Runs the test suite under AddressSanitizer + UndefinedBehaviorSanitizer (with
# LeakSanitizer) in its own build directory. Called by .ci/run; takes about as long
# as the normal suite times the sanitizer slowdown (budget: 25 minutes on 2 cores).
#
#   .ci/sanitize.sh [BUILD_DIR]            (default: build-sanitize)
#
# Suites 'long' (soaks, long fuzz runs) and 'bench' are skipped as in the normal CI
# run. Ends with the line "N passed, N failed" like .ci/run; exits non-zero on any
# failure or sanitizer report.
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-sanitize}
JOBS=${SANITIZE_JOBS:-2}

if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" "$SRC" \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debugoptimized -Dbenchmarks=disabled -Dfuzz=disabled \
    -Dc_args=-fno-omit-frame-pointer -Dcpp_args=-fno-omit-frame-pointer
fi
ninja -C "$BUILD" -j"$JOBS"

# Sanitized code must not be loaded by the uninstrumented gst-plugin-scanner helper:
# scan in-process. GLib's slice allocator hides leaks and overflows from ASan.
export GST_REGISTRY_FORK=no
export G_SLICE=always-malloc
export G_DEBUG=gc-friendly
# fast_unwind_on_malloc=0: GLib and GStreamer have no frame pointers, so the fast
# unwinder stops at g_malloc and suppressions could not see who allocated.
export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:malloc_context_size=30:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0:symbolize=1:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$SRC/.ci/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$SRC/.ci/ubsan.supp:${UBSAN_OPTIONS:-}"

# Uninstrumented programs that tests start (gst-launch-1.0, python, pulseaudio) need
# the runtimes preloaded to load the sanitized plugin: see sanitize-wrapper.sh.
PRELOAD=""
for lib in libasan.so libubsan.so; do
  f=$(${CXX:-c++} -print-file-name=$lib 2>/dev/null || true)
  [ -n "$f" ] && [ -e "$f" ] && PRELOAD="$PRELOAD${PRELOAD:+:}$(readlink -f "$f")"
done
export SYNCWAVE_SANITIZER_PRELOAD="$PRELOAD"

set +e
meson test -C "$BUILD" --no-rebuild --print-errorlogs --num-processes "$JOBS" \
  --timeout-multiplier 3 --no-suite long --no-suite bench \
  --wrapper "$SRC/.ci/sanitize-wrapper.sh"
rc=$?
set -e

# With --wrapper, meson names the log after the wrapper: take the newest.
LOG=$(ls -t "$BUILD"/meson-logs/testlog*.json 2>/dev/null | head -n 1)
if [ -n "$LOG" ] && [ -f "$LOG" ]; then
  python3 - "$LOG" <<'EOF'
import json, sys
ok = bad = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL", "SKIP"):
        ok += 1
    else:
        bad += 1
print(f"{ok} passed, {bad} failed")
EOF
fi
exit $rc
