#!/usr/bin/env bash
# The Debian packages, built and used as a user would:
#   1. dpkg-buildpackage -us -uc -b in a temporary copy of the tree (tests disabled)
#      and lintian on the result;
#   2. apt-get install ./syncwave_*.deb ./gstreamer1.0-syncwave_*.deb;
#   3. with no GStreamer variable set (a fresh HOME, so a fresh registry): the
#      binaries and the man page are where Debian puts them, gst-inspect-1.0 finds
#      every element, and a tone sent by /usr/bin/syncwave-launch plays through
#      `gst-launch-1.0 udpsrc ! syncwavesink` and through `syncwave-launch receive`
#      into a private PulseAudio null sink, judged by the RMS level its monitor
#      records (parec, 3 s each);
#   4. the launcher finds its plugin by itself when GStreamer's path misses it;
#   5. apt-get remove, so later tests use the build tree again.
# Needs root (or sudo) for apt-get; installs missing build dependencies with
# apt-get build-dep. Takes about two to three minutes on two cores.
# Last line: "N passed, N failed"; exits non-zero on any failure.
#
#   .ci/package-check.sh            KEEP=1 keeps the work directory
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/syncwave-package-check.XXXXXX)
PACKAGES=(syncwave gstreamer1.0-syncwave)
export DEBIAN_FRONTEND=noninteractive
passed=0
failed=0
installed_by_us=0
pulse_pid=""
start=$(date +%s)

ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
summary() {
  echo "package check took $(($(date +%s) - start)) s"
  [ "${KEEP:-0}" = 1 ] && echo "work directory kept: $WORK"
  echo "${passed} passed, ${failed} failed"
}

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    bad "root or sudo is needed to install the packages"
    summary
    exit 1
  fi
fi

cleanup() {
  [ -n "$pulse_pid" ] && kill "$pulse_pid" 2>/dev/null && wait "$pulse_pid" 2>/dev/null
  if [ "$installed_by_us" -eq 1 ]; then
    "${SUDO[@]}" apt-get remove -y -q "${PACKAGES[@]}" >"$WORK/remove.log" 2>&1
  fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

for p in "${PACKAGES[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    bad "$p is already installed: remove it first (this check removes what it installs)"
    summary
    exit 1
  fi
done

# --- 1. Build -------------------------------------------------------------------
mkdir -p "$WORK/src"
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # The working tree as it is (tracked and new files), without build directories.
  (cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
    tar --null -T - -cf -) | tar -xf - -C "$WORK/src"
else
  tar -C "$SRC" --exclude='./build*' --exclude='./obj-*' -cf - . | tar -xf - -C "$WORK/src"
fi
if ! (cd "$WORK/src" && dpkg-checkbuilddeps >/dev/null 2>&1); then
  echo "installing the build dependencies (apt-get build-dep)"
  "${SUDO[@]}" apt-get build-dep -y -q "$WORK/src" >"$WORK/build-dep.log" 2>&1 ||
    tail -n 20 "$WORK/build-dep.log"
fi
t0=$(date +%s)
if (cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
  dpkg-buildpackage -us -uc -b >"$WORK/build.log" 2>&1); then
  ok "dpkg-buildpackage -us -uc -b ($(($(date +%s) - t0)) s)"
else
  tail -n 40 "$WORK/build.log"
  bad "dpkg-buildpackage -us -uc -b"
  summary
  exit 1
fi
cd "$WORK" || exit 1
debs=(./syncwave_*.deb ./gstreamer1.0-syncwave_*.deb)
check "both packages built: ${debs[*]}" test -f "${debs[0]}" -a -f "${debs[1]}"
if command -v lintian >/dev/null 2>&1; then
  lintian --tag-display-limit 0 ./*.changes >lintian.log 2>&1
  if grep -qE '^[EW]: ' lintian.log; then
    grep -E '^[EW]: ' lintian.log
    bad "lintian: no errors or warnings"
  else
    ok "lintian: no errors or warnings"
  fi
fi

# --- 2. Install -----------------------------------------------------------------
if "${SUDO[@]}" apt-get install -y -q "${debs[@]}" >install.log 2>&1; then
  installed_by_us=1
  ok "apt-get install ${debs[*]}"
else
  installed_by_us=1 # half-installed: remove whatever made it
  tail -n 20 install.log
  bad "apt-get install ${debs[*]}"
  summary
  exit 1
fi

# --- 3. The installed system, with no GStreamer variable set ------------------------
mkdir -p home pulse
clean_env=(env -i PATH=/usr/bin:/bin HOME="$WORK/home" LANG=C.UTF-8)
pulse_env=("${clean_env[@]}" PULSE_SERVER="unix:$WORK/pulse/native")
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
plugin=/usr/lib/$triplet/gstreamer-1.0/libgstsyncwave.so

check "syncwave-launch on PATH is /usr/bin/syncwave-launch" \
  test "$("${clean_env[@]}" sh -c 'command -v syncwave-launch')" = /usr/bin/syncwave-launch
check "the plugin is in GStreamer's plugin directory ($plugin)" test -f "$plugin"
check "man syncwave-launch finds the installed page" \
  sh -c "\"\$@\" man -w syncwave-launch | grep -q '^/usr/share/man/man1/syncwave-launch.1'" sh \
  "${clean_env[@]}"
check "presets in /usr/share/syncwave, documentation in /usr/share/doc/syncwave" \
  sh -c 'test -f /usr/share/syncwave/wifi.preset && ls /usr/share/doc/syncwave/launcher.md* >/dev/null'
"${clean_env[@]}" gst-inspect-1.0 syncwave >inspect.log 2>&1
# GStreamer reports the path its library was loaded from: /lib/... on a merged /usr.
found=$(sed -n 's/^ *Filename *//p' inspect.log)
check "gst-inspect-1.0 syncwave finds $plugin" test "$(readlink -f "$found")" = "$(readlink -f "$plugin")"
for e in syncwavepay syncwavedepay syncwavejitter syncwavesink syncwavepulsesink; do
  check "gst-inspect-1.0 $e" sh -c '"$@" >/dev/null 2>&1' sh "${clean_env[@]}" gst-inspect-1.0 "$e"
done
"${clean_env[@]}" syncwave-launch presets --verbose >presets.log 2>&1
check "syncwave-launch presets lists the shipped presets from /usr/share/syncwave" \
  test "$(grep -c 'file: */usr/share/syncwave/.*\.preset' presets.log)" -ge 4
check "syncwave-launch send --print" \
  sh -c '"$@" 2>&1 | grep -q "^gst-launch-1.0 .*syncwavepay"' sh "${clean_env[@]}" \
  syncwave-launch send --source=test --target=127.0.0.1 --print

free_udp_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A private PulseAudio daemon with one null sink, as tests/common/pulse_daemon.cpp starts.
start_pulse() {
  env -i PATH=/usr/bin:/bin HOME="$WORK/pulse" XDG_RUNTIME_DIR="$WORK/pulse" \
    XDG_CONFIG_HOME="$WORK/pulse" PULSE_RUNTIME_PATH="$WORK/pulse" PULSE_STATE_PATH="$WORK/pulse" \
    pulseaudio -n --daemonize=no --exit-idle-time=-1 --use-pid-file=no --disallow-exit \
    --log-target=stderr \
    -L "module-native-protocol-unix auth-anonymous=1 socket=$WORK/pulse/native" \
    -L "module-null-sink sink_name=syncwave_null format=float32le rate=48000 channels=2" \
    >"$WORK/pulse/pulseaudio.log" 2>&1 &
  pulse_pid=$!
  for _ in $(seq 100); do
    "${pulse_env[@]}" pactl info >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -n 20 "$WORK/pulse/pulseaudio.log"
  return 1
}

# rms_dbfs FILE: RMS level of raw float32 samples, in dBFS (-200 for silence).
rms_dbfs() {
  python3 - "$1" <<'EOF'
import array, math, sys
a = array.array("f")
data = open(sys.argv[1], "rb").read()
a.frombytes(data[: len(data) // 4 * 4])
ms = sum(x * x for x in a) / len(a) if a else 0.0
print("%.1f" % (10 * math.log10(ms) if ms > 0 else -200.0))
EOF
}

# played RECEIVER_LABEL RECEIVER_COMMAND...: starts the receiver, sends a tone from the
# installed launcher, records the null sink's monitor for 3 s, and judges the level.
played() {
  local label=$1 port=$2
  shift 2
  "${pulse_env[@]}" "$@" >"rx-$port.log" 2>&1 &
  local rx=$!
  sleep 1
  "${clean_env[@]}" /usr/bin/syncwave-launch send --source=test --codec=opus \
    --target="127.0.0.1:$port" --clock-port="$clock_port" --duration=7 --quiet \
    >"tx-$port.log" 2>&1 &
  local tx=$!
  sleep 2.5 # the receiver syncs and starts playing
  "${pulse_env[@]}" timeout 3 parec -d syncwave_null.monitor --raw --format=float32le \
    --rate=48000 --channels=2 >"rec-$port.raw" 2>"parec-$port.log"
  wait "$tx"
  local tx_rc=$?
  kill -INT "$rx" 2>/dev/null
  wait "$rx"
  local level
  level=$(rms_dbfs "rec-$port.raw")
  check "installed sender (exit $tx_rc)" test "$tx_rc" -eq 0
  # The tone is a sine at amplitude 0.5: -9 dBFS RMS. Silence is below -100.
  if awk -v l="$level" 'BEGIN { exit !(l > -30) }'; then
    ok "$label plays the installed sender's tone: $level dBFS RMS at the null sink"
  else
    bad "$label plays the installed sender's tone: $level dBFS RMS at the null sink"
    tail -n 5 "rx-$port.log" "tx-$port.log" "parec-$port.log"
  fi
}

if command -v pulseaudio >/dev/null 2>&1 && command -v parec >/dev/null 2>&1; then
  if start_pulse; then
    ok "private PulseAudio daemon with a null sink"
    port=$(free_udp_port)
    clock_port=$(free_udp_port)
    played "gst-launch-1.0 udpsrc ! syncwavesink" "$port" \
      gst-launch-1.0 -q udpsrc port="$port" buffer-size=1048576 ! \
      syncwavesink latency=60 auto-clock-port="$clock_port"
    port=$(free_udp_port)
    played "syncwave-launch receive" "$port" \
      /usr/bin/syncwave-launch receive --port="$port" --clock-port="$clock_port" --quiet
  else
    bad "private PulseAudio daemon with a null sink"
  fi
else
  bad "pulseaudio and parec (pulseaudio-utils) are needed for the playback check"
fi

# --- 4. The launcher's own plugin directory ------------------------------------------
# A GStreamer path with every system plugin but SyncWave's: gst-inspect-1.0 no longer
# finds it, and syncwave-launch still runs (it scans the directory it was built for).
mkdir -p without
for f in /usr/lib/"$triplet"/gstreamer-1.0/*.so; do
  [ "$f" = "$plugin" ] || ln -s "$f" without/
done
partial_env=(env -i PATH=/usr/bin:/bin HOME="$WORK/home2" LANG=C.UTF-8
  GST_PLUGIN_SYSTEM_PATH_1_0="$WORK/without")
check "gst-inspect-1.0 misses syncwavepay on a path without the plugin" \
  sh -c '! "$@" >/dev/null 2>&1' sh "${partial_env[@]}" gst-inspect-1.0 syncwavepay
port=$(free_udp_port)
check "syncwave-launch send still finds its plugin there" \
  sh -c '"$@" >/dev/null 2>&1' sh "${partial_env[@]}" /usr/bin/syncwave-launch send \
  --source=test --codec=raw --target="127.0.0.1:$port" --clock-port=0 --duration=1 --quiet

# --- 5. Remove -------------------------------------------------------------------
[ -n "$pulse_pid" ] && kill "$pulse_pid" 2>/dev/null && wait "$pulse_pid" 2>/dev/null
pulse_pid=""
if "${SUDO[@]}" apt-get remove -y -q "${PACKAGES[@]}" >remove.log 2>&1; then
  installed_by_us=0
  ok "apt-get remove ${PACKAGES[*]}"
else
  bad "apt-get remove ${PACKAGES[*]}"
fi
check "nothing left: /usr/bin/syncwave-launch, $plugin, /usr/share/syncwave" \
  test ! -e /usr/bin/syncwave-launch -a ! -e "$plugin" -a ! -e /usr/share/syncwave

summary
[ "$failed" -eq 0 ]
