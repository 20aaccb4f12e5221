#!/usr/bin/env bash
# SyncWave set-up: installs what is missing, builds, then runs the demo or the tests.
#
#   ./bootstrap.sh demo    capture this machine's sound (or a test tone when no audio
#                          server runs), stream it over UDP to a receiver on the same
#                          machine, and report what arrived
#   ./bootstrap.sh test    run every test (meson test) and print "N passed, N failed"
#   ./bootstrap.sh build   only install and build
#   ./bootstrap.sh install build, then install SyncWave itself (meson install; prefix
#                          /usr/local, the plugin in GStreamer's plugin directory);
#                          `ninja -C build uninstall` removes it again
#
# On Debian/Ubuntu run as root (or with sudo available) and it installs the packages
# itself. Elsewhere install the equivalents of DEBIAN_PACKAGES below, plus meson >= 1.0.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
BUILD_DIR=${BUILD_DIR:-build}

DEBIAN_PACKAGES=(
  build-essential meson ninja-build pkg-config python3
  libglib2.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-pulseaudio
  pulseaudio pulseaudio-utils libpulse-dev
  libavahi-client-dev libavahi-glib-dev avahi-daemon avahi-utils
  pipewire pipewire-bin pipewire-pulse wireplumber dbus dbus-bin
  iproute2 systemd
  libsoup-3.0-dev chromium
  libgtest-dev libgmock-dev
  libsodium-dev
  debhelper dpkg-dev lintian
)

log() { printf '==> %s\n' "$*" >&2; }

install_deps() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    log "Not a Debian system: install meson (>= 1.0), ninja, a C++17 compiler, GStreamer 1.22+"
    log "development files with plugins base/good/bad, PulseAudio and GoogleTest yourself."
    return 0
  fi
  local missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "Run as root to install: ${missing[*]}"; exit 1; }
    sudo=(sudo)
  fi
  log "Installing: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
}

build() {
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    log "Configuring $BUILD_DIR"
    meson setup "$BUILD_DIR" "$@" >/dev/null
  fi
  log "Building"
  ninja -C "$BUILD_DIR" >/dev/null
}

run_tests() {
  log "Running tests"
  local rc=0
  meson test -C "$BUILD_DIR" --print-errorlogs --num-processes "${TEST_JOBS:-2}" \
    --no-suite long "$@" || rc=$?
  # Count from meson's machine-readable log: one line per test.
  python3 - "$BUILD_DIR/meson-logs/testlog.json" <<'EOF'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        skipped += 1
    else:
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
EOF
  return $rc
}

free_udp_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The local demo: one sender, one silent receiver on 127.0.0.1, then what arrived.
demo() {
  local launch="$BUILD_DIR/launcher/syncwave-launch" port source seconds=${DEMO_SECONDS:-5}
  export GST_PLUGIN_PATH="$PWD/$BUILD_DIR/gst-plugin"
  export GST_REGISTRY_1_0="$PWD/$BUILD_DIR/registry.bin"
  export SYNCWAVE_PIPELINES_DIR="$PWD/pipelines"
  port=$(free_udp_port)
  if pactl info >/dev/null 2>&1; then
    source=loopback
    log "Audio server found: streaming what this machine plays (its default sink's monitor)"
  else
    source=test
    log "No audio server running: streaming a test tone instead of the system sound"
  fi
  log "Receiver on 127.0.0.1:$port, sender for ${seconds}s"
  "$launch" receive --silent --port="$port" --clock=system --duration=$((seconds + 2)) &
  local rx=$!
  sleep 0.5
  "$launch" send --source="$source" --codec=opus --target="127.0.0.1:$port" --clock-port=0 \
    --duration="$seconds" --quiet
  wait "$rx"
}

# meson install: syncwave-launch on PATH, the plugin where GStreamer looks, presets, man
# page and docs under the prefix (README.md, Install).
install_syncwave() {
  local sudo=()
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo=(sudo)
  log "Installing (meson install)"
  "${sudo[@]}" meson install -C "$BUILD_DIR" --no-rebuild --quiet
  log "Installed: $(command -v syncwave-launch || echo "syncwave-launch (not on PATH?)");" \
    "check with: gst-inspect-1.0 syncwave; remove with: ninja -C $BUILD_DIR uninstall"
}

case "${1:-}" in
  demo)
    install_deps
    build
    demo
    ;;
  test)
    shift
    install_deps
    build
    run_tests "$@"
    ;;
  build)
    install_deps
    build
    ;;
  install)
    install_deps
    build
    install_syncwave
    ;;
  *)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
