#!/bin/sh
# Builds the libFuzzer targets (clang, ASan + UBSan, coverage into the core library
# and the plugin) and runs each one, one at a time, for N executions or T CPU-minutes,
# whichever comes first. Prints executions, time and findings per target; exits 1 if
# anything was found.
#
#   tests/fuzz/run.sh                         # every target, 10M runs or 30 min each
#   tests/fuzz/run.sh --runs 100000 --minutes 1 fuzz-wire-format
#   FUZZ_BUILD_DIR=build-fuzz tests/fuzz/run.sh --minutes 5 fuzz-depay
#
# A finding is written to $BUILD/fuzz-artifacts/<target>-crash-... ; replay it with
#   $BUILD/tests/fuzz/<target> <file>
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$SRC/build-fuzz}
RUNS=10000000
MINUTES=30
TARGETS=""

while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --minutes) MINUTES=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS="$TARGETS $1"; shift ;;
  esac
done
[ -n "$TARGETS" ] || TARGETS="fuzz-wire-format fuzz-secure-channel fuzz-control-auth fuzz-depay fuzz-jitter"

if [ ! -f "$BUILD/build.ninja" ]; then
  FLAGS="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  CC=clang CXX=clang++ meson setup "$BUILD" "$SRC" \
    -Dfuzz=enabled -Dtests=enabled -Dbenchmarks=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args="$FLAGS" -Dcpp_args="$FLAGS" >/dev/null
fi
for t in $TARGETS; do
  ninja -C "$BUILD" -j2 "tests/fuzz/$t" gst-plugin/libgstsyncwave.so >/dev/null
done

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$SRC/.ci/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export G_SLICE=always-malloc
export G_DEBUG=gc-friendly

mkdir -p "$BUILD/fuzz-artifacts" "$BUILD/fuzz-corpus"
SUMMARY=""
FOUND=0
for t in $TARGETS; do
  exe="$BUILD/tests/fuzz/$t"
  corpus="$BUILD/fuzz-corpus/$t"
  log="$BUILD/fuzz-artifacts/$t.log"
  mkdir -p "$corpus"
  # The committed seeds stay read-only; new inputs go to the build tree.
  if [ -d "$SRC/tests/fuzz/corpus/$t" ]; then
    cp -n "$SRC/tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  fi
  before=$(ls "$BUILD/fuzz-artifacts" | grep "^$t-" | grep -vc -- "-slow-unit-" || true)
  start=$(date +%s)
  set +e
  "$exe" "$corpus" -runs="$RUNS" -max_total_time=$((MINUTES * 60)) -timeout=25 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/$t-" \
    >"$log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  after=$(ls "$BUILD/fuzz-artifacts" | grep "^$t-" | grep -vc -- "-slow-unit-" || true)
  findings=$((after - before))
  [ "$rc" -eq 0 ] || [ "$findings" -gt 0 ] || findings=1  # crashed without an artifact
  [ "$findings" -eq 0 ] || FOUND=1
  line=$(printf '%-18s %12s execs %6ss  findings %s  (rc %s, log %s)' "$t" "${execs:-?}" "$secs" \
    "$findings" "$rc" "$log")
  echo "$line"
  SUMMARY="$SUMMARY$line
"
done
echo "---- fuzz summary (runs=$RUNS, minutes=$MINUTES) ----"
printf '%s' "$SUMMARY"
exit $FOUND
