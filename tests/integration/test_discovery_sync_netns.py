#!/usr/bin/env python3
"""Two receivers found by discovery play in step (issue 13), judged from what they play.

The hosts of test_discovery_netns.py (network + mount + UTS + PID namespaces, each with
its own system D-Bus and avahi-daemon, joined by veth pairs on a bridge in host S):

  host S   `syncwave-launch send --source=device:src.monitor`   no destination: it
           finds the receivers through mDNS and sends to each over the veth pairs
  host R1  `syncwave-launch receive --name=left --device=rxa`   their defaults
  host R2  `syncwave-launch receive --name=right --device=rxb`

Each receiver syncs its clock to the sender over its own veth pair. All three use one
PulseAudio (R1's; its unix socket is a file, reachable from every namespace): white noise
plays into the null sink "src", whose monitor the sender captures, and rxa and rxb are
mono remap sinks on the left and right channel of the null sink "syncwave_null". Its
monitor is recorded, and the two channels cross-correlated in 100 ms windows
(bench-sync-analyze): the offset between the two receivers in samples at 48 kHz.

Judged: median |offset| <= 2 samples, at least 90 % of the windows within 4 samples,
every window of the last second within 12 samples (0.25 ms), over at least 40 windows of
6 s, and neither channel silent on its own. (The targets are a median of 1 sample; six
runs on 2026-12-04 had medians of -0.99 to +0.89, p95 up to 1.3, so 2 is the bound that a
loaded machine does not trip for nothing.) The p95 and the largest offset are printed,
not judged: a fresh-clone CI run had a median of +0.05 but a p95 of 34 and a window at
243 samples, a transient the test cannot tell from the machine's load; how often that
happens is a benchmark's figure. (Another had 3-6 underruns per receiver, and windows
at +98 and -57 samples around them.) A receiver that stays off, or is off at the end,
fails. These are real-time bounds: when one is missed the test runs once more on new
hosts, and fails if it misses again.
A silence on both channels at once is in the sender's capture (the noise player
starved), and the windows it touches are not judged. Under the sanitizers
(SYNCWAVE_SANITIZED) only the median is judged, against 12 samples; the rest is printed.

Usage: test_discovery_sync_netns.py SYNCWAVE_LAUNCH BENCH_SYNC_ANALYZE. Needs root and
what test_discovery_netns.py needs, plus gst-launch-1.0 and pactl: exits 77 (meson:
skipped) with the reason when something is missing.
"""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_discovery_netns as dn  # noqa: E402

RECORD_S = 8.0
JUDGE_FROM_S = 2.0  # of the recording: both receivers have placed their outputs by then


def percentile(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def print_stats(paths):
    """Each receiver's clock offset, drift and underruns, a line a second (--stats-json)."""
    for who, path in sorted(paths.items()):
        rows = []
        try:
            with open(path) as f:
                for line in f:
                    try:
                        j = json.loads(line)
                    except ValueError:
                        continue
                    rows.append("%s/%s/%s" % (j.get("clock_offset_us"), j.get("drift_ppm"),
                                              j.get("underruns")))
        except OSError as e:
            rows.append(str(e))
        print("%s, a second each (clock offset us/drift ppm/underruns): %s"
              % (who, " ".join(rows[-16:])))


def main():
    if len(sys.argv) != 3:
        print("usage: test_discovery_sync_netns.py SYNCWAVE_LAUNCH BENCH_SYNC_ANALYZE")
        return 2
    launcher, analyze = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    dn.check_requirements()
    for prog, pkg in {"gst-launch-1.0": "gstreamer1.0-tools",
                      "pactl": "pulseaudio-utils"}.items():
        if shutil.which(prog) is None:
            dn.skip("no '%s' (Debian: %s)" % (prog, pkg))
    if not os.path.exists(analyze):
        dn.skip("no %s (built with tests/bench)" % analyze)
    sanitized = bool(os.environ.get("SYNCWAVE_SANITIZED"))
    # As test_discovery_netns.py: every daemon and client uses its namespace's own system
    # bus, and nothing started here runs under the sanitizers' preload.
    os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
    os.environ.pop("LD_PRELOAD", None)
    # Not in step is a real-time bound: run once more on new hosts, at once, and fail
    # only if they are out of step again (as tests/common/timing_main.cpp does).
    for attempt in (1, 2):
        t = dn.Test(os.path.abspath(launcher))
        try:
            t.setup()
            return scenario(t, launcher, analyze, sanitized)
        except NotInStep as e:
            print("FAIL: %s" % e)
            if attempt == 1:
                print("[ RETRY    ] a real-time bound missed: running once more, at once; it "
                      "fails if it misses again")
                continue
            return 1
        except dn.Failure as e:
            print("FAIL: %s" % e)
            for p in t.procs:
                if getattr(p, "log", None):
                    print("--- %s\n%s" % (p.tag, t.log_of(p)[-2000:]))
            return 1
        finally:
            t.cleanup()
    return 1


class NotInStep(dn.Failure):
    """The receivers played, but further apart than the bounds: a real-time bound."""


def scenario(t, launcher, analyze, sanitized):
    pulse = t.hosts["r1"].pulse_server
    env = dict(t.env, PULSE_SERVER=pulse)

    def pactl(args):
        r = subprocess.run(["pactl"] + args, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise dn.Failure("pactl %s: %s" % (" ".join(args), r.stdout.strip()))

    for name, pos in (("rxa", "front-left"), ("rxb", "front-right")):
        pactl(["load-module", "module-remap-sink", "sink_name=" + name,
               "master=syncwave_null", "channels=1", "channel_map=mono",
               "master_channel_map=" + pos, "remix=no"])
    pactl(["load-module", "module-null-sink", "sink_name=src", "format=float32le",
           "rate=48000", "channels=2"])
    noise = subprocess.Popen(
        ["gst-launch-1.0", "-q", "audiotestsrc", "is-live=true", "wave=white-noise",
         "volume=0.25", "!", "audio/x-raw,format=F32LE,rate=48000,channels=2", "!",
         "pulsesink", "device=src"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t.procs.append(noise)

    # Their defaults, plus a line of stats a second: printed when a window is off.
    stats = {who: os.path.join(t.work, who + ".json") for who in ("left", "right")}
    left = t.start("r1", [launcher, "receive", "--name=left", "--device=rxa",
                          "--stats-json=" + stats["left"]], "left", env)
    right = t.start("r2", [launcher, "receive", "--name=right", "--device=rxb",
                           "--stats-json=" + stats["right"]], "right", env)
    # Both announced before the sender starts, so that it finds them from its first look.
    t.wait_list(lambda s: {"left", "right"} <= set(dn.by_name(s, "receiver")),
                "left and right announced")
    sender = t.start("s", [launcher, "send", "--source=device:src.monitor"], "send", env)

    # Wait until both channels play, then record.
    deadline = time.time() + 20
    rec_path = os.path.join(t.work, "room.s16")
    while True:
        probe = subprocess.run(
            ["timeout", "0.6", "parec", "-d", "syncwave_null.monitor", "--format=s16le",
             "--rate=48000", "--channels=2", "--raw"], env=env, stdout=subprocess.PIPE)
        data = probe.stdout
        lo = [abs(int.from_bytes(data[i:i + 2], "little", signed=True))
              for i in range(0, len(data) - 3, 4)]
        ro = [abs(int.from_bytes(data[i + 2:i + 4], "little", signed=True))
              for i in range(0, len(data) - 3, 4)]
        if lo and max(lo) > 1000 and max(ro) > 1000:
            break
        for p in (left, right, sender):
            if p.poll() is not None:
                raise dn.Failure("%s exited (%d)" % (p.tag, p.returncode))
        if time.time() > deadline:
            raise dn.Failure("the two receivers did not both play within 20 s (left %d, "
                             "right %d peak)" % (max(lo, default=0), max(ro, default=0)))
    with open(rec_path, "wb") as out:
        subprocess.run(["timeout", str(RECORD_S), "parec", "-d", "syncwave_null.monitor",
                        "--format=s16le", "--rate=48000", "--channels=2", "--raw",
                        "--latency-msec=20"], env=env, stdout=out)
    for p in (left, right, sender):
        if p.poll() is not None:
            raise dn.Failure("%s exited (%d) while recording" % (p.tag, p.returncode))

    r = subprocess.run([analyze, rec_path, "--channels=2", "--rate=48000", "--window-ms=100",
                        "--hop-ms=100", "--max-lag-ms=20", "--dropout-ms=10"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise dn.Failure("bench-sync-analyze: %s" % r.stdout[-500:])
    windows, weak, drops = [], 0, {"0": [], "1": []}
    for line in r.stdout.splitlines():
        f = line.split()
        if f and f[0] == "win" and float(f[1]) >= JUDGE_FROM_S:
            windows.append((float(f[1]), float(f[2]), float(f[3]), float(f[4]), float(f[5])))
        elif f and f[0] == "dropout" and float(f[2]) >= JUDGE_FROM_S:
            drops[f[1]].append((float(f[2]), float(f[3])))

    # A silence on both channels at once is in what the sender captured (the noise
    # player into "src" starved), not a receiver's: the windows it touches are not
    # judged (their correlation straddles it). A silence on one channel is a hole.
    def overlaps(a, b):
        return any(abs(x[0] - y[0]) < 0.02 for x in a for y in b)
    both = [d for d in drops["0"] if overlaps([d], drops["1"])]
    one = [("left", d) for d in drops["0"] if d not in both] + \
          [("right", d) for d in drops["1"] if not overlaps([d], both)]
    dropouts = ["%s at %.2f s, %.3f s" % (who, t0, n) for who, (t0, n) in one]
    offsets, skipped, times = [], 0, []
    for (t0, off, peak, rms0, rms1) in windows:
        if any(t0 - 0.1 <= d0 + n and d0 <= t0 + 0.2 for d0, n in both):
            skipped += 1
        elif peak < 0.5 or rms0 < 0.01 or rms1 < 0.01:
            weak += 1
        else:
            offsets.append(off)
            times.append(t0)
    if both:
        print("the sender's capture was silent on both channels at %s: %d windows around it "
              "not judged" % (", ".join("%.2f s (%.3f s)" % d for d in both), skipped))
    if not offsets:
        raise dn.Failure("no window correlated: %s" % r.stdout[-800:])
    mags = [abs(x) for x in offsets]
    median = sorted(offsets)[len(offsets) // 2]
    p95, worst = percentile(mags, 95), max(mags)
    within = sum(1 for m in mags if m <= 4) / float(len(mags))
    last = [m for tt, m in zip(times, mags) if tt >= max(times) - 1.0]
    print("left (R1) against right (R2), found by discovery, clocks over veth: %d windows "
          "(%d weak), median %+.2f, %.0f %% within 4, p95 |%.2f|, max |%.2f| samples at 48 kHz; "
          "dropouts: %s" % (len(offsets), weak, median, 100 * within, p95, worst,
                            "; ".join(dropouts) or "none"))
    off = ["%.1f:%+.2f" % (tt, o) for tt, o in zip(times, offsets) if abs(o) > 4]
    if off:
        print("windows over 4 samples (t, offset):", " ".join(off))
        print_stats(stats)
    problems = []
    if abs(median) > (12 if sanitized else 2):
        problems.append("median %+.2f samples" % median)
    if not sanitized:
        if len(offsets) < 40:
            problems.append("only %d of the windows correlated (%d weak)" % (len(offsets), weak))
        if within < 0.9:
            problems.append("only %.0f %% of the windows within 4 samples" % (100 * within))
        if max(last) > 12:
            problems.append("%.2f samples off in the last second (over 0.25 ms)" % max(last))
        if dropouts:
            problems.append("dropouts: " + "; ".join(dropouts))
    if problems:
        print("windows (t, offset, peak):", " ".join("%.1f:%+.2f:%.2f" % (w[0], w[1], w[2])
                                                   for w in windows))
        raise NotInStep("the two receivers are not in step: " + ", ".join(problems))
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
