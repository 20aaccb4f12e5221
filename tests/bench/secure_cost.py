#!/usr/bin/env python3
"""What a secret costs (issue 14): the sender's and the receiver's CPU in secure mode
against plain mode, measured side by side: a plain pair and a secure pair run at the
same time, so that whatever else loads the machine loads both alike.

  plain:   syncwave-launch send --source=test --target=127.0.0.1:P1
           syncwave-launch receive --port=P1 --device=rxa
  secure:  the same with --secret=PASSPHRASE, into rxb

as users run them (their defaults), raw and Opus, each pair into its own null sink of
one private PulseAudio. Whole processes (utime + stime of every thread) over SECONDS
after WARMUP seconds, so the key derivation at start (Argon2id, about 0.1 s of CPU) is
not counted. Rounds alternate which pair starts first and which sink each gets.

  python3 tests/bench/secure_cost.py [BUILD_DIR] [--seconds=20] [--warmup=5] [--rounds=3]
      [--codec=raw,opus]

The added latency is not measured here: sealing and opening are in line, so it is their
time per datagram, which `bench-secure` measures (tests/bench/bench_secure.cpp, "core").
Needs pulseaudio and pactl. Traffic stays on 127.0.0.1. Prints one line per round, a
table, and a JSON summary on the last line.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_budget import Pulse, free_port, stop  # noqa: E402
from receiver_cost import cpu_s  # noqa: E402

SECRET = "bench: a long passphrase for the secure-cost benchmark"


class Pair:
    """One sender and one receiver, plain or secure, into `device`."""

    def __init__(self, build, env, codec, secure, device):
        launch = os.path.join(build, "launcher", "syncwave-launch")
        port, clock = free_port(), free_port()
        extra = [f"--secret={SECRET}"] if secure else []
        self.sender = subprocess.Popen(
            [launch, "send", "--source=test", f"--codec={codec}", "--quiet",
             f"--clock-port={clock}", f"--target=127.0.0.1:{port}"] + extra,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.receiver = subprocess.Popen(
            [launch, "receive", f"--port={port}", f"--clock-port={clock}",
             f"--device={device}", "--quiet"] + extra,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cpu(self):
        return cpu_s(self.sender.pid), cpu_s(self.receiver.pid)

    def alive(self):
        return self.sender.poll() is None and self.receiver.poll() is None

    def stop(self):
        stop([self.receiver, self.sender])


def med(v):
    v = sorted(v)
    return v[len(v) // 2] if v else float("nan")


def main():
    build, seconds, warmup, rounds, codecs = "build", 20.0, 5.0, 3, ["raw", "opus"]
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
            print(f"secure_cost.py: unknown option {a}", file=sys.stderr)
            return 2
        else:
            build = a
    if any(c not in ("raw", "opus") for c in codecs):
        print("secure_cost.py: --codec takes raw, opus or both", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="syncwave-secure-cost-")
    pulse = Pulse(tmp)
    env = dict(pulse.env, GST_PLUGIN_PATH=os.path.join(build, "gst-plugin"),
               GST_REGISTRY_1_0=os.path.join(tmp, "registry.bin"))
    subprocess.run(["gst-inspect-1.0", "syncwavesink"], env=env, capture_output=True)
    ratios = {}  # (codec, "sender"|"receiver") -> [secure / plain per round]
    absolute = {}  # (codec, mode, role) -> [CPU-s/min]
    failed = 0
    try:
        for codec in codecs:
            for r in range(rounds):
                order = [False, True] if r % 2 == 0 else [True, False]
                pairs = {}
                for i, secure in enumerate(order):
                    pairs[secure] = Pair(build, env, codec, secure, ["rxa", "rxb"][i])
                    time.sleep(0.2)
                time.sleep(warmup)
                c0, t0 = {k: p.cpu() for k, p in pairs.items()}, time.monotonic()
                time.sleep(seconds)
                ok = all(p.alive() for p in pairs.values())
                c1, t1 = {k: p.cpu() for k, p in pairs.items()}, time.monotonic()
                for p in pairs.values():
                    p.stop()
                if not ok:
                    failed += 1
                    print(f"round {r + 1}, {codec}: a process exited early", flush=True)
                    continue
                per_min = {k: [(c1[k][j] - c0[k][j]) / (t1 - t0) * 60.0 for j in (0, 1)]
                           for k in pairs}
                line = []
                for j, role in enumerate(("sender", "receiver")):
                    plain, sec = per_min[False][j], per_min[True][j]
                    absolute.setdefault((codec, "plain", role), []).append(plain)
                    absolute.setdefault((codec, "secure", role), []).append(sec)
                    if plain > 0:
                        ratios.setdefault((codec, role), []).append(sec / plain)
                    line.append(f"{role} {plain:.3f} plain, {sec:.3f} secure CPU-s/min")
                print(f"round {r + 1}, {codec}: " + "; ".join(line), flush=True)
    finally:
        pulse.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    summary = {"seconds": seconds, "warmup": warmup, "rounds": rounds, "failed": failed,
               "rows": {}}
    print("\n| codec | process | plain CPU-s/min | secure CPU-s/min | secure / plain, median [range] |")
    print("|---|---|---|---|---|")
    for codec in codecs:
        for role in ("sender", "receiver"):
            v = ratios.get((codec, role), [])
            p = absolute.get((codec, "plain", role), [])
            s = absolute.get((codec, "secure", role), [])
            if not v:
                continue
            print(f"| {codec} | {role} | {med(p):.3f} | {med(s):.3f} | {med(v):.3f} "
                  f"[{min(v):.3f}–{max(v):.3f}] |")
            summary["rows"][f"{codec} {role}"] = {"plain": p, "secure": s, "ratio": v}
    print(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
