#!/usr/bin/env python3
"""What a receiver costs, side by side with snapclient in one run (issue 12): CPU seconds
per minute and peak RSS of whole processes, each playing into a null sink of one private
PulseAudio daemon, one at a time, in rounds that alternate the order:

  syncwave-launch receive --device=rxa                 one output
  syncwave-launch receive --device=rxa --device=rxb    two outputs, one receive chain
  gst-launch-1.0 udpsrc ! syncwavesink device=rxa      the element alone
  snapclient --player pulse -s rxa                     Snapcast 0.26 (pcm or opus)

for raw against pcm and Opus against opus. The SyncWave sender is `syncwave-launch send
--source=test` (its defaults), Snapcast's a snapserver reading a tone from a file; senders
are not measured. Each receiver is measured for SECONDS after WARMUP seconds.

  python3 tests/bench/receiver_cost.py [BUILD_DIR] [--seconds=20] [--warmup=5] [--rounds=2]
      [--codec=raw,opus]

Needs pulseaudio and pactl; snapserver and snapclient for the Snapcast rows. Traffic stays
on 127.0.0.1. Prints one line per measurement, a table, and a JSON summary on the last
line.
"""
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_budget import Pulse, free_port, stop  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """utime + stime of the whole process (every thread), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def measure(proc, warmup, seconds):
    """CPU-s per minute over `seconds` after `warmup`, and peak RSS; None if it died."""
    time.sleep(warmup)
    if proc.poll() is not None:
        return None
    c0, t0 = cpu_s(proc.pid), time.monotonic()
    time.sleep(seconds)
    if proc.poll() is not None:
        return None
    c1, t1 = cpu_s(proc.pid), time.monotonic()
    return {"cpu_s_per_min": (c1 - c0) / (t1 - t0) * 60.0, "peak_rss_mib": peak_rss_mib(proc.pid)}


class SyncWaveSender:
    def __init__(self, build, env, codec):
        self.launch = os.path.join(build, "launcher", "syncwave-launch")
        self.port, self.clock = free_port(), free_port()
        self.p = subprocess.Popen(
            [self.launch, "send", "--source=test", f"--codec={codec}", "--quiet",
             f"--clock-port={self.clock}", f"--target=127.0.0.1:{self.port}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)

    def stop(self):
        stop([self.p])


class SnapServer:
    def __init__(self, env, codec, tmp, seconds):
        raw = os.path.join(tmp, "tone.raw")
        if not os.path.exists(raw):
            frames = 48000 * int(seconds)
            with open(raw, "wb") as f:
                f.write(b"".join(int(16000 * math.sin(2 * math.pi * 440 * i / 48000)).to_bytes(
                    2, "little", signed=True) * 2 for i in range(frames)))
        self.port, tport = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
        datadir = os.path.join(tmp, "snapdata")
        os.makedirs(datadir, exist_ok=True)
        self.p = subprocess.Popen(
            ["snapserver", "-c", "/dev/null", f"--server.datadir={datadir}",
             "--http.enabled=false", "--tcp.bind_to_address=127.0.0.1", f"--tcp.port={tport}",
             "--stream.bind_to_address=127.0.0.1", f"--stream.port={self.port}",
             f"--stream.source=file://{raw}?name=default&sampleformat=48000:16:2",
             f"--stream.codec={'opus' if codec == 'opus' else 'pcm'}", "--logging.sink=null"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)

    def stop(self):
        stop([self.p])


def receivers(build, codec, snapcast):
    gst_launch = shutil.which("gst-launch-1.0") or "gst-launch-1.0"
    launch = os.path.join(build, "launcher", "syncwave-launch")
    rows = [
        ("syncwave-launch receive, 1 output", "syncwave",
         lambda s: [launch, "receive", f"--port={s.port}", f"--clock-port={s.clock}",
                    "--device=rxa", "--quiet"]),
        ("syncwave-launch receive, 2 outputs", "syncwave",
         lambda s: [launch, "receive", f"--port={s.port}", f"--clock-port={s.clock}",
                    "--device=rxa", "--device=rxb", "--quiet"]),
        ("gst-launch-1.0 udpsrc ! syncwavesink", "syncwave",
         lambda s: [gst_launch, "-q", "udpsrc", "address=127.0.0.1", f"port={s.port}",
                    "buffer-size=1048576", "!", "syncwavesink", f"auto-clock-port={s.clock}",
                    "device=rxa"]),
    ]
    if snapcast:
        rows.append((f"snapclient 0.26 --player pulse ({'opus' if codec == 'opus' else 'pcm'})",
                     "snapcast",
                     lambda s: ["snapclient", "-h", "127.0.0.1", "-p", str(s.port), "--hostID",
                                "bench", "--player", "pulse", "-s", "rxa", "--logsink", "null"]))
    return rows


def main():
    build, seconds, warmup, rounds, codecs = "build", 20.0, 5.0, 2, ["raw", "opus"]
    for a in sys.argv[1:]:
        if a.startswith("--seconds="):
            seconds = float(a.split("=", 1)[1])
        elif a.startswith("--warmup="):
            warmup = float(a.split("=", 1)[1])
        elif a.startswith("--rounds="):
            rounds = int(a.split("=", 1)[1])
        elif a.startswith("--codec="):
            codecs = a.split("=", 1)[1].split(",")
        elif a.startswith("-"):
            print(f"receiver_cost.py: unknown option {a}", file=sys.stderr)
            return 2
        else:
            build = a
    if any(c not in ("raw", "opus") for c in codecs):
        print("receiver_cost.py: --codec takes raw, opus or both", file=sys.stderr)
        return 2
    snapcast = bool(shutil.which("snapserver") and shutil.which("snapclient"))
    tmp = tempfile.mkdtemp(prefix="syncwave-receiver-cost-")
    results = {}
    pulse = Pulse(tmp)
    env = dict(pulse.env, GST_PLUGIN_PATH=os.path.join(build, "gst-plugin"),
               GST_REGISTRY_1_0=os.path.join(tmp, "registry.bin"))
    # Scan the plugins once, outside the measurement.
    subprocess.run(["gst-inspect-1.0", "syncwavesink"], env=env, capture_output=True)
    try:
        for codec in codecs:
            rows = receivers(build, codec, snapcast)
            for r in range(rounds):
                order = rows if r % 2 == 0 else list(reversed(rows))
                for name, kind, argv in order:
                    if kind == "syncwave":
                        sender = SyncWaveSender(build, env, codec)
                    else:
                        sender = SnapServer(env, codec, tmp, 2 * (warmup + seconds) + 30)
                    proc = subprocess.Popen(argv(sender), env=env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
                    m = measure(proc, warmup, seconds)
                    stop([proc])
                    sender.stop()
                    key = f"{codec}: {name}"
                    results.setdefault(key, []).append(m)
                    said = ("exited early" if m is None else
                            f"{m['cpu_s_per_min']:.2f} CPU-s/min, peak RSS {m['peak_rss_mib']:.1f} MiB")
                    print(f"round {r + 1}, {key}: {said}", flush=True)
    finally:
        pulse.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(v):
        v = sorted(v)
        return v[len(v) // 2] if v else float("nan")

    summary = {"seconds": seconds, "warmup": warmup, "rounds": rounds, "rows": {}}
    print("\n| codec | receiver | CPU-s/min | peak RSS MiB | vs snapclient |")
    print("|---|---|---|---|---|")
    for codec in codecs:
        snap = [k for k in results if k.startswith(codec + ": snapclient")]
        snap_cpu = med([m["cpu_s_per_min"] for m in results[snap[0]] if m]) if snap else None
        for key, ms in results.items():
            if not key.startswith(codec + ":"):
                continue
            ok = [m for m in ms if m]
            cpu = [m["cpu_s_per_min"] for m in ok]
            rss = [m["peak_rss_mib"] for m in ok]
            ratio = (f"{med(cpu) / snap_cpu:.2f} ×" if snap_cpu and cpu else "–")
            print(f"| {codec} | {key.split(': ', 1)[1]} | {med(cpu):.2f} "
                  f"[{min(cpu, default=float('nan')):.2f}–{max(cpu, default=float('nan')):.2f}] | "
                  f"{med(rss):.1f} | {ratio} |")
            summary["rows"][key] = {"cpu_s_per_min": cpu, "peak_rss_mib": rss,
                                    "failed": len(ms) - len(ok)}
        one = results.get(f"{codec}: syncwave-launch receive, 1 output")
        two = results.get(f"{codec}: syncwave-launch receive, 2 outputs")
        if one and two:
            r = med([m["cpu_s_per_min"] for m in two if m]) / med([m["cpu_s_per_min"] for m in one if m])
            print(f"{codec}: two outputs cost {r:.2f} × one (target < 1.3)")
            summary["rows"][f"{codec}: two outputs / one"] = r
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
