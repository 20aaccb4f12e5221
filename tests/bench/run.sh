#!/bin/sh
# Runs every SyncWave benchmark side by side with GStreamer's RTP elements and
# Snapcast, prints a table and rewrites docs/benchmarks.md.
#   tests/bench/run.sh [BUILD_DIR] [--quick] [--only=paydepay,jitter,pulse,bandwidth,fanout] [--no-docs]
# BUILD_DIR defaults to ./build; it is brought up to date first (ninja -j2).
set -e
here=$(cd "$(dirname "$0")" && pwd)
build=build
for a in "$@"; do
  case "$a" in
    -*) ;;
    *) build=$a ;;
  esac
done
if [ -f "$build/build.ninja" ]; then
  ninja -C "$build" -j2 >/dev/null || echo "warning: ninja -C $build failed; running what is built" >&2
fi
exec python3 "$here/run.py" "$@"
