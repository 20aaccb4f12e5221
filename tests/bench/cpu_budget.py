#!/usr/bin/env python3
"""Receivers on a small CPU budget: two receivers share QUOTA % of one core (a cgroup v1
cpu controller, cpu.cfs_quota_us), as on a slow device, each playing into its own null
sink of a private PulseAudio daemon. What they play is recorded from the sinks' monitors
(parec) and judged in 5 ms windows: silent windows, holes (runs of silent windows) and
the longest hole. The same for two snapclients of one snapserver, in the same run.

  python3 tests/bench/cpu_budget.py [BUILD_DIR] [--quota=15] [--seconds=10] [--codec=opus]

Needs root (the cgroup), pulseaudio, pulseaudio-utils (parec) and, for the Snapcast
rows, snapserver and snapclient. Traffic stays on 127.0.0.1. Prints one line per
receiver and a JSON summary on the last line.
"""
import array
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

CGROUP_ROOT = "/sys/fs/cgroup/cpu"


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def analyse(data, rate=48000, channels=2, threshold=0.003):
    """Silent 5 ms windows, holes and the longest hole (ms) in float32 interleaved data."""
    a = array.array("f")
    a.frombytes(data[: len(data) // 4 * 4])
    w = rate // 200 * channels
    silent = []
    for i in range(0, len(a) - w + 1, w):
        chunk = a[i:i + w]
        silent.append(max(max(chunk), -min(chunk)) < threshold)
    holes, run, longest = 0, 0, 0
    for s in silent + [False]:
        if s:
            run += 1
        else:
            if run:
                holes += 1
                longest = max(longest, run)
            run = 0
    rms = math.sqrt(sum(x * x for x in a) / len(a)) if len(a) else 0.0
    heard = [i for i, s in enumerate(silent) if not s]
    return {"seconds": len(a) / (rate * channels), "windows": len(silent),
            "first_sound_ms": 5 * heard[0] if heard else -1,
            "silent_windows": sum(silent), "holes": holes, "longest_hole_ms": 5 * longest,
            "rms_dbfs": round(20 * math.log10(rms), 1) if rms > 0 else -200.0}


class Pulse:
    def __init__(self, tmp):
        self.dir = tempfile.mkdtemp(dir=tmp)
        self.env = dict(os.environ, XDG_RUNTIME_DIR=self.dir, HOME=self.dir,
                        PULSE_SERVER="unix:" + self.dir + "/native",
                        XDG_CONFIG_HOME=self.dir + "/config")
        self.p = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
             "-L", f"module-native-protocol-unix socket={self.dir}/native auth-anonymous=1"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        for sink in ("rxa", "rxb"):
            subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={sink}",
                            "format=float32le", "rate=48000", "channels=2"],
                           env=self.env, check=True, capture_output=True)

    def stop(self):
        self.p.terminate()
        self.p.wait(5)


class Cgroup:
    def __init__(self, quota_pct):
        self.path = os.path.join(CGROUP_ROOT, f"syncwave-bench-{os.getpid()}")
        os.makedirs(self.path, exist_ok=True)
        with open(os.path.join(self.path, "cpu.cfs_period_us"), "w") as f:
            f.write("100000")
        with open(os.path.join(self.path, "cpu.cfs_quota_us"), "w") as f:
            f.write(str(int(quota_pct * 1000)))

    def spawn(self, argv, env):
        path = self.path

        def enter():
            with open(os.path.join(path, "tasks"), "w") as f:
                f.write(str(os.getpid()))
        return subprocess.Popen(argv, env=env, preexec_fn=enter, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def throttled(self):
        with open(os.path.join(self.path, "cpu.stat")) as f:
            for line in f:
                if line.startswith("nr_throttled"):
                    return int(line.split()[1])
        return -1

    def usage_s(self):
        acct = os.path.join("/sys/fs/cgroup/cpuacct", os.path.basename(self.path), "cpuacct.usage")
        return None if not os.path.exists(acct) else int(open(acct).read()) / 1e9

    def remove(self):
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def record(pulse, seconds):
    """Records both monitors at once for `seconds`; returns {sink: analysis}."""
    n = int(48000 * seconds) * 8
    procs = {s: subprocess.Popen(["parec", "-d", s + ".monitor", "--format=float32le",
                                  "--rate=48000", "--channels=2", "--latency-msec=20"],
                                 env=pulse.env, stdout=subprocess.PIPE) for s in ("rxa", "rxb")}
    out = {}
    for s, p in procs.items():
        data = b""
        while len(data) < n:
            chunk = p.stdout.read(n - len(data))
            if not chunk:
                break
            data += chunk
        p.kill()
        p.wait()
        out[s] = analyse(data)
    return out


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_syncwave(build, pulse, quota, seconds, codec, tmp):
    launch = os.path.join(build, "launcher", "syncwave-launch")
    env = dict(pulse.env, GST_PLUGIN_PATH=os.path.join(build, "gst-plugin"),
               GST_REGISTRY_1_0=os.path.join(tmp, "registry.bin"))
    ports = [free_port(), free_port()]
    clock = free_port()
    tx = subprocess.Popen([launch, "send", "--source=test", f"--codec={codec}", "--quiet",
                           f"--clock-port={clock}"] + [f"--target=127.0.0.1:{p}" for p in ports],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    cg = Cgroup(quota)
    rx = [cg.spawn([launch, "receive", f"--port={p}", f"--clock-port={clock}", f"--device={d}",
                    "--quiet"], env) for p, d in zip(ports, ("rxa", "rxb"))]
    time.sleep(2.5)
    t0 = cg.throttled()
    result = record(pulse, seconds)
    throttled = cg.throttled() - t0
    stop(rx)
    stop([tx])
    cg.remove()
    return result, throttled


def run_snapcast(pulse, quota, seconds, codec, tmp):
    raw = os.path.join(tmp, "tone.raw")
    frames = 48000 * int(seconds + 10)
    with open(raw, "wb") as f:
        f.write(b"".join(int(16000 * math.sin(2 * math.pi * 440 * i / 48000)).to_bytes(
            2, "little", signed=True) * 2 for i in range(frames)))
    sport, tport = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    datadir = os.path.join(tmp, "snapdata")
    os.makedirs(datadir, exist_ok=True)
    server = subprocess.Popen(
        ["snapserver", "-c", "/dev/null", f"--server.datadir={datadir}", "--http.enabled=false",
         "--tcp.bind_to_address=127.0.0.1", f"--tcp.port={tport}",
         "--stream.bind_to_address=127.0.0.1", f"--stream.port={sport}",
         f"--stream.source=file://{raw}?name=default&sampleformat=48000:16:2",
         f"--stream.codec={'opus' if codec == 'opus' else 'pcm'}", "--logging.sink=null"],
        env=pulse.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    cg = Cgroup(quota)
    clients = [cg.spawn(["snapclient", "-h", "127.0.0.1", "-p", str(sport), "--hostID", f"b{i}",
                         "--player", "pulse", "-s", d, "--logsink", "null"], pulse.env)
               for i, d in enumerate(("rxa", "rxb"))]
    time.sleep(3.0)
    t0 = cg.throttled()
    result = record(pulse, seconds)
    throttled = cg.throttled() - t0
    stop(clients)
    stop([server])
    cg.remove()
    return result, throttled


def main():
    build, quota, seconds, codec = "build", 15.0, 10.0, "opus"
    for a in sys.argv[1:]:
        if a.startswith("--quota="):
            quota = float(a.split("=", 1)[1])
        elif a.startswith("--seconds="):
            seconds = float(a.split("=", 1)[1])
        elif a.startswith("--codec="):
            codec = a.split("=", 1)[1]
        elif a.startswith("-"):
            print(f"cpu_budget.py: unknown option {a}", file=sys.stderr)
            return 2
        else:
            build = a
    if codec not in ("opus", "raw"):
        print("cpu_budget.py: --codec is opus or raw", file=sys.stderr)
        return 2
    if os.geteuid() != 0 or not os.path.isdir(CGROUP_ROOT):
        print("cpu_budget.py: needs root and the cgroup v1 cpu controller at " + CGROUP_ROOT,
              file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="syncwave-cpu-budget-")
    summary = {"quota_pct": quota, "seconds": seconds, "codec": codec, "rows": []}
    try:
        cases = [("syncwave-launch receive", lambda p: run_syncwave(build, p, quota, seconds,
                                                                    codec, tmp))]
        if shutil.which("snapserver") and shutil.which("snapclient"):
            cases.append(("snapclient --player pulse",
                          lambda p: run_snapcast(p, quota, seconds, codec, tmp)))
        for name, fn in cases:
            pulse = Pulse(tmp)
            try:
                result, throttled = fn(pulse)
            finally:
                pulse.stop()
            for sink, r in result.items():
                print(f"{name:28s} {sink}: {r['seconds']:.1f} s, {r['rms_dbfs']} dBFS, "
                      f"{r['silent_windows']} silent 5 ms windows of {r['windows']}, "
                      f"{r['holes']} holes, longest {r['longest_hole_ms']} ms, first sound at "
                      f"{r['first_sound_ms']} ms "
                      f"(cgroup throttled {throttled} times)")
                summary["rows"].append(dict(r, receiver=name, sink=sink, throttled=throttled))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
