#!/bin/sh
# Runs every SyncWave benchmark side by side with GStreamer's RTP elements and
# Snapcast, prints a table and rewrites docs/benchmarks.md.
#   tests/bench/run.sh [BUILD_DIR] [--quick] [--only=paydepay,jitter,pulse,bandwidth,fanout] [--no-docs]
#   tests/bench/run.sh --check-stale [--warn-only] [--docs=PATH]
# BUILD_DIR defaults to ./build; it is brought up to date first (ninja -j2).
# --check-stale builds and runs nothing: it lists the sections of docs/benchmarks.md
# measured on code older than the last change to gst-plugin/core or gst-plugin/elements
# (exit 1 when one is, 0 with --warn-only; tests/bench/bench_stale.py).
set -e
here=$(cd "$(dirname "$0")" && pwd)
case " $* " in
  *" --check-stale "*)
    for a; do  # the other options go to bench_stale.py; a build directory is not needed
      shift
      case "$a" in --check-stale) ;; -*) set -- "$@" "$a" ;; esac
    done
    exec python3 "$here/bench_stale.py" "$@" ;;
esac
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
