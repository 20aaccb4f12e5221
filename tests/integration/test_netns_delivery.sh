#!/bin/sh
# Broadcast and multicast end to end, in network namespaces this test creates: nothing
# touches the machine's real interfaces.
#
#   netns S (sender)                         netns R1, R2 (receivers)
#   lo, br0 10.77.0.1/24 --+-- veth --- eth0 10.77.0.11/24 (R1)
#                          +-- veth --- eth0 10.77.0.12/24 (R2)
#
# The sender is `syncwave-launch send --source=test` with --broadcast (to 10.77.0.255,
# the broadcast address of its one interface) or --multicast=239.77.0.1; each receiver
# is `syncwave-launch receive --silent --stats-json`, in its own namespace, and must
# get the stream: packets, no loss, state "synced" on the sender's clock.
#
# Usage: test_netns_delivery.sh SYNCWAVE_LAUNCH. Needs root (ip netns, veth, bridge):
# exits 77 (meson: skipped) with a message when that is not permitted.
set -u
LAUNCH=${1:?usage: $0 path/to/syncwave-launch}
SKIP=77
P=swnd$$
NS_S=$P-s
NS_R1=$P-r1
NS_R2=$P-r2
WORK=$(mktemp -d /tmp/syncwave-netns-XXXXXX)
SECONDS_RUN=${NETNS_SECONDS:-4}

cleanup() {
  for pid in $(cat "$WORK"/pids 2>/dev/null); do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  for ns in $NS_S $NS_R1 $NS_R2; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if ! command -v ip >/dev/null 2>&1; then
  echo "SKIP: no 'ip' command (Debian: iproute2)"
  exit $SKIP
fi
if ! ip netns add "$NS_S" 2>"$WORK/err"; then
  echo "SKIP: cannot create a network namespace (needs root): $(cat "$WORK/err")"
  exit $SKIP
fi
if ! ip netns exec "$NS_S" ip link add br0 type bridge 2>"$WORK/err"; then
  echo "SKIP: cannot create a bridge in a network namespace: $(cat "$WORK/err")"
  exit $SKIP
fi

fail() {
  echo "FAIL: $*"
  exit 1
}
in_ns() {
  ip netns exec "$@"
}

# The sender's namespace: a bridge with the subnet's first address, multicast routed
# onto it.
in_ns $NS_S ip link set lo up || fail "lo up"
in_ns $NS_S ip addr add 10.77.0.1/24 brd + dev br0 || fail "address on br0"
in_ns $NS_S ip link set br0 up || fail "br0 up"
in_ns $NS_S ip route add 224.0.0.0/4 dev br0 || fail "multicast route"
n=10
for ns in $NS_R1 $NS_R2; do
  n=$((n + 1))
  ip netns add "$ns" || fail "netns add $ns"
  ip link add "$P-h$n" type veth peer name "$P-p$n" || fail "veth for $ns"
  ip link set "$P-h$n" netns $NS_S || fail "veth into $NS_S"
  ip link set "$P-p$n" netns "$ns" || fail "veth into $ns"
  in_ns $NS_S ip link set "$P-h$n" master br0 up || fail "veth on br0"
  in_ns "$ns" ip link set lo up || fail "lo up in $ns"
  in_ns "$ns" ip link set "$P-p$n" name eth0 || fail "eth0 in $ns"
  in_ns "$ns" ip addr add 10.77.0.$n/24 brd + dev eth0 || fail "address in $ns"
  in_ns "$ns" ip link set eth0 up || fail "eth0 up in $ns"
  in_ns "$ns" ip route add default via 10.77.0.1 || fail "route in $ns"
done
# The bridge forwards once its ports are in state forwarding (3; no STP: at once).
i=0
while [ $i -lt 40 ]; do
  forwarding=0
  for port in $P-h11 $P-h12; do
    [ "$(in_ns $NS_S cat /sys/class/net/$port/brport/state 2>/dev/null)" = 3 ] &&
      forwarding=$((forwarding + 1))
  done
  [ $forwarding -eq 2 ] && break
  sleep 0.1
  i=$((i + 1))
done

# Private launcher settings: no config file of the machine's user.
export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config"
mkdir -p "$HOME"

# check_receiver NAME JSON LOG: the last second's statistics show the stream arriving
# whole, synchronized to the sender's clock.
check_receiver() {
  python3 - "$@" <<'PY'
import json, sys
name, path, log = sys.argv[1:4]
try:
    rows = [json.loads(l) for l in open(path) if l.strip()]
except (OSError, ValueError) as e:
    sys.exit("%s: no statistics (%s); its output:\n%s" % (name, e, open(log).read()))
if not rows:
    sys.exit("%s: no statistics; its output:\n%s" % (name, open(log).read()))
last = rows[-1]
problems = []
if last.get("packets", 0) < 100:
    problems.append("only %s packets" % last.get("packets"))
if last.get("lost", 0) > 0:
    problems.append("lost %s" % last.get("lost"))
if str(last.get("state", "")).startswith("waiting"):
    problems.append("state %r" % last.get("state"))
if not str(last.get("clock", "")).startswith("net://10.77.0.1"):
    problems.append("clock %r, not the sender's" % last.get("clock"))
if not str(last.get("sender") or "").startswith("10.77.0.1"):
    problems.append("sender %r" % last.get("sender"))
print("%s: %d packets, lost %d, late %d, state %s, clock %s, sender %s" %
      (name, last.get("packets", 0), last.get("lost", 0), last.get("late", 0),
       last.get("state"), last.get("clock"), last.get("sender")))
if problems:
    sys.exit("%s: %s; its output:\n%s" % (name, ", ".join(problems), open(log).read()))
PY
}

# run_case NAME SENDER-OPTION [RECEIVER-OPTION]
run_case() {
  name=$1
  send_opt=$2
  recv_opt=${3:-}
  : >"$WORK/pids"
  for ns in $NS_R1 $NS_R2; do
    rm -f "$WORK/$ns.json"
    # shellcheck disable=SC2086
    in_ns "$ns" "$LAUNCH" receive --silent $recv_opt --duration=$((SECONDS_RUN + 2)) \
      --stats-json="$WORK/$ns.json" >"$WORK/$ns.log" 2>&1 &
    echo $! >>"$WORK/pids"
  done
  sleep 0.5
  in_ns $NS_S "$LAUNCH" send --source=test $send_opt --duration=$((SECONDS_RUN + 1)) \
    >"$WORK/send.log" 2>&1 || fail "$name: the sender failed: $(cat "$WORK/send.log")"
  for pid in $(cat "$WORK/pids"); do wait "$pid"; done
  : >"$WORK/pids"
  ok=0
  for ns in $NS_R1 $NS_R2; do
    check_receiver "$name ${ns#$P-}" "$WORK/$ns.json" "$WORK/$ns.log" || ok=1
  done
  [ $ok -eq 0 ] || fail "$name: a receiver did not get the stream (sender: $(tail -1 "$WORK/send.log"))"
}

run_case broadcast "--broadcast"
run_case multicast "--multicast=239.77.0.1" "--multicast=239.77.0.1"
run_case multicast-raw "--multicast=239.77.0.1 --codec=raw" "--multicast=239.77.0.1"
# An address configured without a broadcast address (no `brd +`): the launcher derives
# 10.77.0.255 from the netmask instead of sending to the interface's own address.
in_ns $NS_S ip addr flush dev br0 || fail "flush br0"
in_ns $NS_S ip addr add 10.77.0.1/24 dev br0 || fail "address on br0 without brd"
in_ns $NS_S ip route replace 224.0.0.0/4 dev br0 || fail "multicast route"
run_case broadcast-no-brd "--broadcast"
echo "PASS: broadcast and multicast reach both receivers"
