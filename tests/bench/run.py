#!/usr/bin/env python3
"""SyncWave benchmarks, side by side with GStreamer's RTP stack and Snapcast (issue 6).

Usage: tests/bench/run.sh [BUILD_DIR] [--quick] [--only=a,b,...] [--no-docs] [--report-only]
       tests/bench/run.sh --check-stale [--warn-only] [--docs=PATH]

Runs every benchmark, interleaving the two (or three) sides of each comparison in
one run so machine noise hits all of them, prints a table and rewrites
docs/benchmarks.md. Benchmarks never fail: a side that cannot run here (element
not built yet, tool missing) is reported as such, never invented.

Benchmarks (names for --only): paydepay, jitter, instructions, latency, stability, pulse, relay,
render, bandwidth, fanout. With --only, the other sections keep the figures of the previous run
(BUILD/bench-results.json).
"""

import datetime
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SRC_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import bench_env  # noqa: E402  (same directory: load, sound server, sink chain)
import bench_stale  # noqa: E402  (the code measured, stale figures)
RATE = 48000
MULTI = 8  # receivers in the largest fan-out sync run
JOIN_AFTER_S = 5  # in the -join cases, the second receiver starts this much later


# ---------------------------------------------------------------- helpers


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_ports(n):
    """n distinct free UDP ports (all bound at once, then released)."""
    socks, ports = bound_udp(n)
    for s in socks:
        s.close()
    return ports


def pct(values, p):
    """Percentile with linear interpolation (p in 0..100)."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def med_spread(values):
    """(median, min, max) of a list; NaNs dropped."""
    v = [x for x in values if x is not None and x == x]
    if not v:
        return None
    return (statistics.median(v), min(v), max(v))


def fmt_ms(triple, unit="", digits=2):
    if triple is None:
        return "n/a"
    m, lo, hi = triple
    if lo == hi:
        return f"{m:.{digits}f}{unit}"
    return f"{m:.{digits}f}{unit} ({lo:.{digits}f}–{hi:.{digits}f})"


class Child:
    """A child process whose own CPU time and peak RSS are read with wait4."""

    def __init__(self, argv, env, stdout=subprocess.DEVNULL, stderr=None, stdin=None):
        self.argv = argv
        self.start = time.monotonic()
        self.errfile = stderr or tempfile.TemporaryFile()
        self.p = subprocess.Popen(argv, env=env, stdout=stdout, stderr=self.errfile, stdin=stdin)
        self.cpu = None
        self.maxrss_kb = None
        self.wall = None
        self.rc = None
        self.hwm_kb = None

    def stop(self, sig=signal.SIGINT, timeout=5.0, signal_it=True):
        if self.rc is not None:
            return
        if signal_it:
            self.sample_hwm()
            # os.kill, not Popen.send_signal/poll: those reap the child, and wait4
            # must be the one that does, to read its rusage.
            self.kill(sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
            if pid:
                self._done(status, ru)
                return
            time.sleep(0.02)
        self.kill(signal.SIGKILL)
        pid, status, ru = os.wait4(self.p.pid, 0)
        self._done(status, ru)

    def sample_hwm(self):
        """Peak RSS from /proc (ru_maxrss of a forked child starts at the parent's
        peak, so wait4's figure is useless for processes smaller than Python)."""
        try:
            with open(f"/proc/{self.p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.hwm_kb = int(line.split()[1])
        except OSError:
            pass

    def kill(self, sig):
        try:
            os.kill(self.p.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
            if pid:
                self._done(status, ru)
                return self.rc
            if deadline is not None and time.monotonic() > deadline:
                self.stop()
                return self.rc
            time.sleep(0.02)

    def _done(self, status, ru):
        self.wall = time.monotonic() - self.start
        self.cpu = ru.ru_utime + ru.ru_stime
        self.maxrss_kb = self.hwm_kb
        self.rc = os.waitstatus_to_exitcode(status)
        self.p.returncode = self.rc

    def stderr_text(self):
        try:
            self.errfile.seek(0)
            return self.errfile.read().decode(errors="replace")[-20000:]
        except Exception:
            return ""


def stop_all(children, sig=signal.SIGINT, timeout=5.0):
    """Signals every child first, then reaps them all within one shared deadline."""
    for c in children:
        if c.rc is None:
            c.sample_hwm()
            c.kill(sig)
    deadline = time.monotonic() + timeout
    for c in children:
        c.stop(sig, max(0.1, deadline - time.monotonic()), signal_it=False)


# ---------------------------------------------------------------- environment


class Bench:
    def __init__(self, build, quick):
        self.build = os.path.abspath(build)
        self.quick = quick
        self.bin = os.path.join(self.build, "tests", "bench")
        self.tmp = tempfile.mkdtemp(prefix="syncwave-bench-")
        env = dict(os.environ)
        env["GST_PLUGIN_PATH"] = os.path.join(self.build, "gst-plugin")
        env["GST_REGISTRY_1_0"] = os.path.join(self.tmp, "registry.bin")
        env.setdefault("GST_DEBUG", "*:1")
        self.env = env
        self.results = {}
        self.elements = {}
        for e in ["syncwavepay", "syncwavedepay", "syncwavejitter", "syncwavesink",
                  "rtpL16pay", "rtpopuspay", "rtpjitterbuffer", "opusenc", "pulsesink"]:
            rc = subprocess.run(["gst-inspect-1.0", e], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode
            self.elements[e] = rc == 0
        self.snapcast = shutil.which("snapserver") and shutil.which("snapclient")
        self.pulseaudio = shutil.which("pulseaudio") and shutil.which("parec")

    def has(self, *names):
        return all(self.elements.get(n) for n in names)

    def prog(self, name):
        path = os.path.join(self.bin, name)
        return path if os.path.exists(path) else None

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def machine_info():
    """What the run depends on that does not change between its sections (issue 16)."""
    cpu = bench_env.cpu_info()
    gst = subprocess.run(["gst-launch-1.0", "--version"], capture_output=True, text=True).stdout
    gst = next((l for l in gst.splitlines() if l.startswith("GStreamer")), "GStreamer ?")
    snap = "not installed"
    if shutil.which("snapserver"):
        out = subprocess.run(["snapserver", "--version"], capture_output=True, text=True).stdout
        snap = (out.splitlines() or ["?"])[0]
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1048576:.0f} GiB"
    except OSError:
        pass
    try:
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
    except OSError:
        load = "?"
    def first_line(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]
        except (OSError, subprocess.SubprocessError):
            return "not installed"
    servers = [first_line(["pulseaudio", "--version"])]
    if shutil.which("pipewire"):
        try:
            out = subprocess.run(["pipewire", "--version"], capture_output=True, text=True,
                                 timeout=10).stdout
            # "pipewire\nCompiled with libpipewire 0.3.65\nLinked with libpipewire 0.3.65"
            linked = [l.split()[-1] for l in out.splitlines() if l.startswith("Linked with")]
            servers.append("pipewire " + (linked[0] if linked else " ".join(out.split())))
        except (OSError, subprocess.SubprocessError):
            pass
    state = bench_stale.code_state(SRC_ROOT) or {}
    return {
        "clocksource": bench_env.clocksource(),
        # What is installed; the server each section played through (the runner's own
        # PulseAudio) and its sink chains are recorded with that section.
        "sound_servers_installed": "; ".join(servers),
        "code_head": state.get("head"),
        "code_dirty": state.get("dirty"),
        "code_commit": state.get("code_commit"),
        "code_date": state.get("code_date"),
        "code": bench_stale.provenance(state),
        "load_start": load,
        "cpu": cpu["model"],
        "cores": cpu["cores"],
        "cpus_usable": cpu["usable"],
        "governor": cpu["governor"],
        "cpu_mhz": cpu["mhz"],
        "memory": mem,
        "kernel": platform.release(),
        "os": platform.platform(),
        "gstreamer": gst,
        "snapcast": snap,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ---------------------------------------------------------------- C++ micro-benchmarks


def run_json_prog(bench, name, args):
    prog = bench.prog(name)
    if not prog:
        return None, f"{name} not built"
    p = subprocess.run([prog] + args, env=bench.env, capture_output=True, text=True, timeout=900)
    rows = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    if p.returncode != 0 and not rows:
        return None, f"{name} failed: {p.stderr.strip()[-300:]}"
    return rows, None


def bench_paydepay(bench):
    args = ["--rounds=3", "--seconds=20"] if bench.quick else ["--rounds=9", "--seconds=60"]
    rows, err = run_json_prog(bench, "bench-paydepay", args)
    bench.results["paydepay"] = {"rows": rows, "error": err,
                                 "command": f"{bench.bin}/bench-paydepay {' '.join(args)}"}


def bench_jitter(bench):
    args = ["--rounds=3", "--packets=3000"] if bench.quick else ["--rounds=9", "--packets=12000"]
    rows, err = run_json_prog(bench, "bench-jitter", args)
    bench.results["jitter"] = {"rows": rows, "error": err,
                               "command": f"{bench.bin}/bench-jitter {' '.join(args)}"}


def bench_latency(bench):
    common = ["--rounds=1", "--seconds=5"] if bench.quick else ["--rounds=3", "--seconds=10"]
    presets = sorted(os.path.join(SRC_ROOT, "pipelines", f)
                     for f in os.listdir(os.path.join(SRC_ROOT, "pipelines"))
                     if f.endswith(".preset"))
    runs = [common + ["--latencies=20,40,60"],
            common + ["--codec=opus", "--latencies=60"],
            common + [f"--preset={p}" for p in presets]]
    rows, errors = [], []
    import re
    for args in runs:
        got, err = run_json_prog(bench, "bench-latency", args)
        rows += got or []
        if err:
            errors.append(err)
    for r in rows:
        st = r.get("stats", "")
        for key in ("late", "lost", "loss-events", "pushed", "concealed"):
            m = re.search(rf"(?:^|, ){re.escape(key)}=\(g?u?int(?:64)?\)(\d+)", st)
            if m:
                r[key] = int(m.group(1))
    bench.results["latency"] = {
        "rows": rows, "error": "; ".join(errors) or None,
        "command": " ; ".join(f"{bench.bin}/bench-latency {' '.join(a)}" for a in runs)}


def _callgrind_ir(bench, argv):
    """Instructions executed by a program under callgrind (its own count)."""
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + argv,
                       env=bench.env, capture_output=True, text=True, timeout=600)
    for line in p.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    return None


def bench_instructions(bench):
    """Instruction counts (callgrind) for packetization and jitter buffering: noise
    free where CPU time is not. Each case runs at two lengths; the difference
    removes start-up and warm-up, leaving the cost of the extra audio."""
    out = {"paydepay": {}, "jitter": {}}
    bench.results["instructions"] = out
    if not shutil.which("valgrind"):
        out["error"] = "valgrind not installed"
        return
    if bench.quick:
        out["error"] = "not run in --quick mode"
        return
    pd, jb = bench.prog("bench-paydepay"), bench.prog("bench-jitter")
    short, long_ = (2, 4) if bench.quick else (2, 6)
    for case in ("syncwave-raw", "rtp-l16", "identity-raw", "syncwave-opus", "rtp-opus",
                 "identity-opus"):
        if not pd:
            break
        log(f"  callgrind: paydepay {case}")
        a = _callgrind_ir(bench, [pd, f"--case={case}", "--rounds=1", f"--seconds={short}"])
        b = _callgrind_ir(bench, [pd, f"--case={case}", "--rounds=1", f"--seconds={long_}"])
        out["paydepay"][case] = (b - a) / (long_ - short) if a and b else None
    pk_short, pk_long = 1000, 3000
    patterns = ("reorder5", "loss2")
    for pattern in patterns:
        for case in ("syncwavejitter", "rtpjitterbuffer", "identity"):
            if not jb:
                break
            log(f"  callgrind: jitter {case} {pattern}")
            a = _callgrind_ir(bench, [jb, f"--case={case}", f"--pattern={pattern}", "--rounds=1",
                                      f"--packets={pk_short}"])
            b = _callgrind_ir(bench, [jb, f"--case={case}", f"--pattern={pattern}", "--rounds=1",
                                      f"--packets={pk_long}"])
            out["jitter"][f"{case}/{pattern}"] = (b - a) / (pk_long - pk_short) if a and b else None
    out["command"] = (f"valgrind --tool=callgrind {pd} --case=CASE --rounds=1 --seconds={short}|"
                      f"{long_}; same for {jb} --case=CASE --pattern=P --packets={pk_short}|{pk_long}")


# ---------------------------------------------------------------- PulseAudio sync


class Pulse:
    """A private PulseAudio daemon: one null sink `bench` (48 kHz stereo) and two
    mono remap sinks feeding its left (rxa) and right (rxb) channel; one null sink
    `multi` with MULTI channels and one mono remap sink per channel (m0, m1, ...)."""

    def __init__(self, root):
        self.root = os.path.join(root, "pulse")
        os.makedirs(self.root, exist_ok=True)
        self.env = {"XDG_RUNTIME_DIR": self.root, "PULSE_RUNTIME_PATH": self.root + "/rt",
                    "HOME": self.root, "PULSE_STATE_PATH": self.root + "/state",
                    "PULSE_SERVER": "unix:" + self.root + "/rt/native"}
        self.proc = None

    def start(self, base_env):
        env = dict(base_env)
        env.update(self.env)
        env.pop("PULSE_SERVER")
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--system=no",
             "--use-pid-file=no", "--disable-shm=no", "--log-target=stderr", "--log-level=1",
             "-L", "module-native-protocol-unix",
             "-L", "module-null-sink sink_name=bench rate=48000 channels=2"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env["PULSE_SERVER"] = self.env["PULSE_SERVER"]
        for _ in range(100):
            if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("PulseAudio did not start")
        # `capture`: where the monitor-capture sender's source plays (its monitor is
        # what a Linux user sends: the README's pulsesrc line).
        subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=capture",
                        "rate=48000", "channels=2"], env=env, capture_output=True, check=True)
        aux = ",".join(f"aux{k}" for k in range(MULTI))
        subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=multi",
                        "rate=48000", f"channels={MULTI}", f"channel_map={aux}"],
                       env=env, capture_output=True, check=True)
        remaps = [("rxa", "bench", "front-left"), ("rxb", "bench", "front-right")]
        remaps += [(f"m{k}", "multi", f"aux{k}") for k in range(MULTI)]
        for name, master, pos in remaps:
            subprocess.run(["pactl", "load-module", "module-remap-sink", f"sink_name={name}",
                            f"master={master}", "channels=1", "channel_map=mono",
                            f"master_channel_map={pos}", "remix=no"],
                           env=env, capture_output=True, check=True)
        # What the receivers play through, as the server says (issue 16).
        self.server = bench_env.read_sound_server(env, [n for n, _, _ in remaps])

    def record(self, out, sinks):
        """The server and the chains of `sinks` into a section's results."""
        srv = getattr(self, "server", None) or {}
        out["sound_server"] = srv.get("server")
        out["sink_chains"] = {k: v for k, v in srv.get("chains", {}).items() if k in sinks}

    def environ(self, base_env):
        env = dict(base_env)
        env.update(self.env)
        return env

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def make_noise(bench, seconds):
    """Pink noise, identical on both channels, raw S16LE stereo 48 kHz."""
    path = os.path.join(bench.tmp, "noise.raw")
    if os.path.exists(path):
        return path
    subprocess.run(["gst-launch-1.0", "-q", "audiotestsrc", "wave=pink-noise", "volume=0.5",
                    f"num-buffers={int(seconds * 50)}", "samplesperbuffer=960", "!",
                    "audio/x-raw,rate=48000,channels=1,format=S16LE", "!", "audioconvert", "!",
                    "audio/x-raw,channels=2,format=S16LE", "!", "filesink", f"location={path}"],
                   env=bench.env, check=True)
    return path


def analyze(bench, rec, channels=2):
    """Per-window offsets of channels 1..N-1 against channel 0 from the monitor
    recording, then the summary of one run (offsets in samples)."""
    out = subprocess.run([bench.prog("bench-sync-analyze"), rec, "--max-lag-ms=250",
                          f"--channels={channels}"], capture_output=True, text=True).stdout
    wins = {}  # t -> {channel: (offset or None, corr)}
    dropouts = []
    for line in out.splitlines():
        f = line.split()
        if f[0] == "win":
            off = float(f[2]) if f[2] != "nan" else None
            wins.setdefault(float(f[1]), {})[int(f[6])] = (off, float(f[3]))
        elif f[0] == "dropout":
            dropouts.append((int(f[1]), float(f[2]), float(f[3])))
    times = sorted(wins)
    # A window whose correlation peak is weak did not find the offset (beyond the
    # search range, or different content): counted, never averaged in.
    def good(t):
        w = wins[t]
        return len(w) == channels - 1 and all(o is not None and c >= 0.5 for o, c in w.values())
    audible = [t for t in times if good(t)]
    if len(audible) < 5:
        return {"error": "receivers not audible (or not matching) in the monitor"}
    join = audible[0]
    last = audible[-1]
    offs = [(t, max(abs(o) for o, _ in wins[t].values())) for t in audible]
    pooled = [(t, abs(o)) for t in audible for o, _ in wins[t].values()]
    # Settled: the first window after which every window stays within 0.25 ms.
    thr = 0.25e-3 * RATE
    settle = None
    for i in range(len(offs)):
        if all(o <= thr for _, o in offs[i:]):
            settle = offs[i][0] - join
            break
    after2 = [o for t, o in pooled if t >= join + 2.0]
    steady = [o for t, o in pooled if t >= join + (last - join) / 2]
    bad_windows = [t for t in times if join < t < last and not good(t)]
    return {
        "join_s": join,
        "settle_s": settle,
        "windows": len(offs),
        "after2_median": pct(after2, 50), "after2_p95": pct(after2, 95),
        "after2_p99": pct(after2, 99),
        "after2_max": max(after2) if after2 else float("nan"),
        "steady_median": pct(steady, 50), "steady_p95": pct(steady, 95),
        "steady_max": max(steady) if steady else float("nan"),
        "dropouts": len([d for d in dropouts if join - 0.1 < d[1] < last]),
        "bad_windows": len(bad_windows),
        "first_offset": offs[0][1],
        "min_corr": min(c for t in audible for _, c in wins[t].values()),
        "series": [(round(t - join, 2), round(o, 2)) for t, o in offs[:: max(1, len(offs) // 40)]],
    }


def run_pulse_case(bench, pulse, case, noise, seconds):
    env = pulse.environ(bench.env)
    rec = os.path.join(bench.tmp, f"rec-{case}.raw")
    recf = open(rec, "wb")
    parec = subprocess.Popen(["parec", "-d", "bench.monitor", "--format=s16le", "--rate=48000",
                              "--channels=2", "--raw", "--latency-msec=20"],
                             env=env, stdout=recf, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    servers, clients, outs = [], [], []
    info = {}
    join = case.endswith("-join")
    if join:
        info["joined_after_s"] = JOIN_AFTER_S
    try:
        if case == "plain":
            srv = subprocess.Popen([bench.prog("bench-plain-sync"), "serve"], env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            line = srv.stdout.readline()
            kv = dict(x.split("=") for x in line.split())
            base = int(kv["now"]) + 3_000_000_000  # after the net clocks have synced
            servers.append(srv)
            for dev in ("rxa", "rxb"):
                clients.append(Child([bench.prog("bench-plain-sync"), "play",
                                      f"--clock-port={kv['port']}", f"--base-time={base}",
                                      f"--device={dev}", f"--file={noise}",
                                      f"--seconds={seconds + 5}"], env))
        elif case.startswith("snapcast"):
            codec = "opus" if case.endswith("opus") else "pcm"
            sport, tport = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
            datadir = os.path.join(bench.tmp, "snapdata")
            os.makedirs(datadir, exist_ok=True)
            servers.append(Child(["snapserver", "-c", "/dev/null",
                                  f"--server.datadir={datadir}", "--http.enabled=false",
                                  "--tcp.bind_to_address=127.0.0.1", f"--tcp.port={tport}",
                                  "--stream.bind_to_address=127.0.0.1",
                                  f"--stream.port={sport}",
                                  f"--stream.source=file://{noise}?name=default"
                                  "&sampleformat=48000:16:2",
                                  f"--stream.codec={codec}", "--logging.sink=null"], env))
            time.sleep(0.5)
            for i, dev in enumerate(("rxa", "rxb")):
                if i == 1 and join:
                    time.sleep(JOIN_AFTER_S)
                clients.append(Child(["snapclient", "-h", "127.0.0.1", "-p", str(sport),
                                      "--hostID", f"bench{i}", "--player", "pulse", "-s", dev,
                                      "--logsink", "null"], env))
            info["buffer_ms"] = 1000
        elif case.startswith("syncwave"):
            opus = case.endswith("opus")
            ports = free_ports(3)
            cport = ports.pop()
            enc = (["audioconvert", "!", "opusenc", "bitrate=128000", "frame-size=10", "!"]
                   if opus else ["audioconvert", "!", "audio/x-raw,format=F32LE", "!"])
            # Receivers first (in a -join case only the first one): a receiver that
            # joins a running stream waits for the next header (every 1000 packets:
            # 3.3 s of raw, 10 s of Opus at 10 ms frames).
            # `device` gives the bin's own PulseAudio output (syncwavepulsesink); the
            # -pulsesink case plays through GStreamer's pulsesink instead.
            via_pulsesink = "-pulsesink" in case
            render_prog = None if via_pulsesink else bench.prog("bench-render")
            def receiver(p, dev):
                if render_prog:
                    # The same receiver (latency 60 is the default), which also measures
                    # every datagram's arrival margin and prints it and its stats when
                    # stopped by stop_all's SIGINT (issue 16).
                    f = tempfile.TemporaryFile(mode="w+")
                    outs.append(f)
                    return Child([render_prog, "receive", f"--port={p}",
                                  f"--clock=net://127.0.0.1:{cport}", "--latency=60",
                                  f"--device={dev}", "--seconds=100000"], env, stdout=f)
                return Child(["gst-launch-1.0", "-q", "udpsrc", f"port={p}",
                              "address=127.0.0.1", "!", "syncwavesink",
                              f"clock=net://127.0.0.1:{cport}",
                              f"audio-sink=pulsesink device={dev}" if via_pulsesink
                              else f"device={dev}"], env)
            clients.append(receiver(ports[0], "rxa"))
            if not join:
                clients.append(receiver(ports[1], "rxb"))
            time.sleep(0.3)
            clients_prop = "clients=" + ",".join(f"127.0.0.1:{p}" for p in ports)
            if "-monitor" in case:
                # The README's Linux sender: what plays into a sink, captured from its
                # monitor by pulsesrc (its own clock), raw, multiudpsink's defaults.
                servers.append(Child(["gst-launch-1.0", "-q", "filesrc", f"location={noise}",
                                      "!", "rawaudioparse", "format=pcm", "pcm-format=s16le",
                                      "sample-rate=48000", "num-channels=2", "!",
                                      "pulsesink", "device=capture"], env))
                servers.append(Child(["gst-launch-1.0", "-q", "pulsesrc",
                                      "device=capture.monitor", "!", "audioconvert", "!",
                                      "audio/x-raw,format=F32LE,rate=48000,channels=2", "!",
                                      "syncwavepay", f"time-provider-port={cport}", "!",
                                      "multiudpsink", clients_prop], env))
            elif "-original" in case:
                # An original-style sender: 5 ms raw packets stamped with the wall clock
                # when sent, 0-4 ms after their capture time (tests/bench/original_sender.py).
                # The shared clock (wall-clock based, what the stamps are on) from a
                # syncwavepay's time provider, as the original sender had none.
                servers.append(Child(["gst-launch-1.0", "-q", "audiotestsrc", "is-live=true",
                                      "!", "syncwavepay", f"time-provider-port={cport}", "!",
                                      "fakesink"], env))
                servers.append(Child([sys.executable,
                                      os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "original_sender.py"),
                                      f"--file={noise}"] +
                                     [f"--target=127.0.0.1:{p}" for p in ports], env))
            else:
                servers.append(Child(["gst-launch-1.0", "-q", "filesrc", f"location={noise}",
                                      "!", "rawaudioparse", "format=pcm", "pcm-format=s16le",
                                      "sample-rate=48000", "num-channels=2", "!",
                                      "audiobuffersplit", "output-buffer-duration=1/100", "!",
                                      "identity", "sync=true", "!"] + enc +
                                     ["syncwavepay", f"time-provider-port={cport}", "!",
                                      "multiudpsink", "sync=false", clients_prop], env))
            if join:
                time.sleep(JOIN_AFTER_S)
                clients.append(receiver(ports[1], "rxb"))
            info["latency_ms"] = 60
        time.sleep(seconds)
    finally:
        stop_all(clients)
        stop_all([s for s in servers if isinstance(s, Child)])
        for s in servers:
            if not isinstance(s, Child):
                s.stdin.close()
                s.wait(5)
        time.sleep(0.2)
        parec.terminate()
        parec.wait(5)
        recf.close()
    res = analyze(bench, rec)
    os.unlink(rec)
    res.update(info)
    if outs:
        res["receiver_program"] = "bench-render receive --device"
        res["margins"] = [read_receiver_output(f) for f in outs]
        res["paths"] = ["rxa", "rxb (joins later)" if join else "rxb"]
    cpu = [c.cpu / c.wall * 60.0 for c in clients if c.cpu is not None and c.wall]
    res["client_cpu_s_per_min"] = statistics.mean(cpu) if cpu else None
    res["client_rss_kb"] = max((c.maxrss_kb or 0) for c in clients) if clients else None
    srv = [s for s in servers if isinstance(s, Child) and s.cpu is not None]
    res["server_cpu_s_per_min"] = srv[0].cpu / srv[0].wall * 60.0 if srv else None
    res["server_rss_kb"] = srv[0].maxrss_kb if srv else None
    bad = [c for c in clients if c.rc not in (0, None, -2, 130)]
    if bad and "error" not in res:
        res["warning"] = bad[0].stderr_text()[-300:]
    if "error" in res:
        res["error"] += " | " + " / ".join(c.stderr_text()[-300:] for c in clients)
        if os.environ.get("BENCH_DEBUG"):
            res["stderr"] = [c.stderr_text() for c in clients + [s for s in servers if isinstance(s, Child)]]
    return res


def run_relay_case(bench, pulse, n, noise, seconds):
    """SyncWave raw, one sender, n receivers (separate processes): receiver 0
    straight from the sender, receivers 1..n-1 through syncwave-impair with 2 %
    loss, +-10 ms jitter and a delay growing to 30 ms; each plays into its own
    channel of the `multi` null sink."""
    env = pulse.environ(bench.env)
    relay_bin = os.path.join(bench.build, "tests", "tools", "syncwave-impair")
    rec = os.path.join(bench.tmp, f"rec-relay{n}.raw")
    recf = open(rec, "wb")
    aux = ",".join(f"aux{k}" for k in range(MULTI))
    parec = subprocess.Popen(["parec", "-d", "multi.monitor", "--format=s16le", "--rate=48000",
                              f"--channels={MULTI}", f"--channel-map={aux}", "--raw",
                              "--latency-msec=20"],
                             env=env, stdout=recf, stderr=subprocess.DEVNULL)
    procs, clients, outs = [], [], []
    render_prog = bench.prog("bench-render")
    ports = free_ports(n + 1)
    cport = ports.pop()
    portfile = os.path.join(bench.tmp, "relay.port")
    if os.path.exists(portfile):
        os.unlink(portfile)
    try:
        dests = []
        for k in range(1, n):
            delay = round(30 * k / max(1, n - 1))
            dests += ["-t", f"127.0.0.1:{ports[k]},delay={delay}ms,jitter=10ms,loss=2%"]
        procs.append(Child([relay_bin, "--seed=1", f"--port-file={portfile}", "-q"] + dests, env))
        for _ in range(100):
            if os.path.exists(portfile) and open(portfile).read().strip():
                break
            time.sleep(0.05)
        rport = int(open(portfile).read().strip())
        for k in range(n):
            if render_prog:
                # The same receiver as gst-launch-1.0 below, which also measures each
                # datagram's arrival margin (issue 16) and prints its stats at the end.
                f = tempfile.TemporaryFile(mode="w+")
                outs.append(f)
                clients.append(Child([render_prog, "receive", f"--port={ports[k]}",
                                      f"--clock=net://127.0.0.1:{cport}", "--latency=60",
                                      f"--device=m{k}", f"--seconds={seconds + 1}"], env,
                                     stdout=f))
            else:
                clients.append(Child(["gst-launch-1.0", "-q", "udpsrc", f"port={ports[k]}",
                                      "address=127.0.0.1", "!", "syncwavesink",
                                      f"clock=net://127.0.0.1:{cport}", f"device=m{k}"], env))
        time.sleep(0.3)
        procs.append(Child(["gst-launch-1.0", "-q", "filesrc", f"location={noise}", "!",
                            "rawaudioparse", "format=pcm", "pcm-format=s16le",
                            "sample-rate=48000", "num-channels=2", "!", "audiobuffersplit",
                            "output-buffer-duration=1/100", "!", "identity", "sync=true",
                            "!", "audioconvert", "!", "audio/x-raw,format=F32LE", "!",
                            "syncwavepay", f"time-provider-port={cport}", "!", "multiudpsink",
                            "sync=false", f"clients=127.0.0.1:{ports[0]},127.0.0.1:{rport}"],
                           env))
        time.sleep(seconds)
        if render_prog:  # they stop by themselves, after printing what they measured
            deadline = time.monotonic() + 10
            for c in clients:
                c.wait(max(0.1, deadline - time.monotonic()))
    finally:
        stop_all(clients)
        stop_all(procs)
        time.sleep(0.2)
        parec.terminate()
        parec.wait(5)
        recf.close()
    # Mix down to the n channels in use.
    res = analyze(bench, _keep_channels(rec, MULTI, n), channels=n)
    os.unlink(rec)
    cpu = [c.cpu / c.wall * 60.0 for c in clients if c.cpu is not None and c.wall]
    res["client_cpu_s_per_min"] = statistics.mean(cpu) if cpu else None
    res["receivers"] = n
    res["receiver_program"] = "bench-render receive --device" if render_prog else "gst-launch-1.0"
    if outs:
        res["margins"] = [read_receiver_output(f) for f in outs]
        res["paths"] = ["direct"] + [f"relay delay {round(30 * k / max(1, n - 1))} ms"
                                     for k in range(1, n)]
    if "error" in res:
        res["error"] += " | " + " / ".join(c.stderr_text()[-200:] for c in clients + procs)
    return res


def _keep_channels(path, total, keep):
    """Rewrites a raw S16LE recording of `total` channels keeping the first `keep`."""
    if total == keep:
        return path
    import array
    data = array.array("h")
    with open(path, "rb") as f:
        data.frombytes(f.read())
    frames = len(data) // total
    out = array.array("h", bytes(2 * frames * keep))
    for c in range(keep):
        out[c::keep] = data[c:frames * total:total]
    with open(path, "wb") as f:
        f.write(out.tobytes())
    return path


# What syncwavesink's stats say of arrivals, kept next to the measured margins.
STATS_MARGIN_KEYS = ("transit-p99-us", "late-arrivals", "late-outputs", "late",
                     "played-latency-ms", "level-ms")


def read_receiver_output(f):
    """bench-render receive's "margin ..." and "stats ..." lines (an open file, any
    position) -> the margin dict with the stats fields of STATS_MARGIN_KEYS."""
    f.seek(0)
    mg, st = {}, ""
    for line in f:
        if line.startswith("margin "):
            mg = bench_env.parse_margin_line(line)
        elif line.startswith("stats "):
            st = line[6:]
    mg.update(stats_margin_fields(st))
    return mg


def stats_margin_fields(st):
    """STATS_MARGIN_KEYS of a stats string as "stats-KEY" (the margin line has its own
    "late": datagrams with a negative margin)."""
    return {f"stats-{k}": v for k, v in bench_env.parse_stats_fields(st, STATS_MARGIN_KEYS).items()}


def run_render_case(bench, n, seconds, latency_ms=60, impair_all=None, frame_ms=10):
    """n receivers (bench-render, separate processes) with fakesink renders: receiver
    0 straight from the sender, 1..n-1 through syncwave-impair (2 % loss, +-10 ms
    jitter, delay growing to 30 ms); net clock from the sender. With impair_all (a
    syncwave-impair destination spec such as "delay=5ms,jitter=5ms"), every receiver
    goes through the relay with that spec instead."""
    env = bench.env
    relay_bin = os.path.join(bench.build, "tests", "tools", "syncwave-impair")
    prog = bench.prog("bench-render")
    ports = free_ports(n)
    portfile = os.path.join(bench.tmp, "relay-render.port")
    if os.path.exists(portfile):
        os.unlink(portfile)
    procs, clients, outs = [], [], []
    try:
        dests = []
        if impair_all:
            for k in range(n):
                dests += ["-t", f"127.0.0.1:{ports[k]},{impair_all}"]
        for k in range(1, n) if not impair_all else []:
            delay = round(30 * k / max(1, n - 1))
            dests += ["-t", f"127.0.0.1:{ports[k]},delay={delay}ms,jitter=10ms,loss=2%"]
        if dests:
            procs.append(Child([relay_bin, "--seed=1", f"--port-file={portfile}", "-q"] + dests,
                               env))
            for _ in range(100):
                if os.path.exists(portfile) and open(portfile).read().strip():
                    break
                time.sleep(0.05)
            rport = int(open(portfile).read().strip())
        targets = ([] if impair_all else [f"127.0.0.1:{ports[0]}"]) + \
            ([f"127.0.0.1:{rport}"] if dests else [])
        sender = subprocess.Popen([prog, "send", "--targets=" + ",".join(targets),
                                   f"--seconds={seconds + 2}", f"--frame-ms={frame_ms}"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        line = sender.stdout.readline()
        cport = int(line.strip().split("=")[1])
        for k in range(n):
            f = tempfile.TemporaryFile(mode="w+")
            outs.append(f)
            clients.append(Child([prog, "receive", f"--port={ports[k]}",
                                  f"--clock=net://127.0.0.1:{cport}", f"--latency={latency_ms}",
                                  f"--seconds={seconds + 3}"], env, stdout=f))
        capture0 = int(sender.stdout.readline().strip().split("=")[1])
        sender.wait(seconds + 30)
        for c in clients:
            c.wait(30)
    finally:
        stop_all(clients)
        stop_all(procs)
    period = 1 << 18
    renders, scheds, stats, margins = [], [], [], []
    for f in outs:
        f.seek(0)
        d, ds = {}, {}
        st = ""
        for line in f:
            if line.startswith("r "):
                fields = line.split()
                k0, now = int(fields[1]), int(fields[2])
                exp = (now - latency_ms * 1e6 - capture0) * RATE / 1e9
                idx = k0 + period * round((exp - k0) / period)
                d[idx] = now
                if len(fields) > 3 and int(fields[3]) > 0:
                    ds[idx] = int(fields[3])
            elif line.startswith("stats "):
                st = line[6:]
        renders.append(d)
        scheds.append(ds)
        stats.append(st)
        margins.append(read_receiver_output(f))
    if not renders or not renders[0]:
        return {"error": "receiver 0 rendered nothing"}
    first = min(renders[0])
    skip = first + 2 * RATE  # settle: from 2 s after the first render
    offsets, e2e = [], []
    for idx, t0 in renders[0].items():
        if idx < skip:
            continue
        e2e.append((t0 - (capture0 + idx * 1e9 / RATE)) / 1e3 - latency_ms * 1e3)
        for d in renders[1:]:
            if idx in d:
                offsets.append((d[idx] - t0) / 1e3)
    absd = [abs(o) for o in offsets]
    # The same pairs at the scheduled render position (each sink's clock target).
    sched_off = []
    for idx, t0 in scheds[0].items():
        if idx < skip:
            continue
        for ds in scheds[1:]:
            if idx in ds:
                sched_off.append(abs(ds[idx] - t0) / 1e3)
    import re
    late = lost = pushed = 0
    for st in stats:
        m = re.search(r"(?:^|, )late=\(guint64\)(\d+)", st)
        if m:
            late += int(m.group(1))
        m = re.search(r"(?:^|, )lost=\(guint64\)(\d+)", st)
        if m:
            lost += int(m.group(1))
        m = re.search(r"(?:^|, )pushed=\(guint64\)(\d+)", st)
        if m:
            pushed += int(m.group(1))
    return {"receivers": n, "pairs": len(offsets),
            "median_us": pct(offsets, 50) if offsets else float("nan"),
            "p50_abs_us": pct(absd, 50) if absd else float("nan"),
            "p99_abs_us": pct(absd, 99) if absd else float("nan"),
            "max_abs_us": max(absd) if absd else float("nan"),
            "sched_p50_abs_us": pct(sched_off, 50) if sched_off else float("nan"),
            "sched_p99_abs_us": pct(sched_off, 99) if sched_off else float("nan"),
            "sched_max_abs_us": max(sched_off) if sched_off else float("nan"),
            "e2e_median_dev_us": pct(e2e, 50) if e2e else float("nan"),
            "e2e_p99_abs_dev_us": pct([abs(x) for x in e2e], 99) if e2e else float("nan"),
            "renders": [len(d) for d in renders], "late": late, "lost": lost,
            "pushed": pushed, "margins": margins,
            "paths": [f"relay {impair_all}" if impair_all else "direct" if k == 0 else
                      f"relay delay {round(30 * k / max(1, n - 1))} ms" for k in range(n)],
            "client_cpu_s_per_min": statistics.mean(
                [c.cpu / c.wall * 60 for c in clients if c.cpu is not None and c.wall]
            ) if clients else None}


def bench_stability(bench):
    """Issue 3: raw audio at 20 ms latency, stable over ten minutes of +-5 ms jitter on
    loopback: 5 ms capture buffers (as the lan-lowlatency preset), one receiver through
    syncwave-impair (delay 5 ms +- 5 ms), late packets and end-to-end deviation."""
    out = {}
    bench.results["stability"] = out
    if not bench.has("syncwavepay", "syncwavesink") or not bench.prog("bench-render"):
        out["error"] = "syncwavesink or bench-render not built"
        return
    seconds = 30 if bench.quick else 600
    log(f"  stability: raw, latency 20 ms, +-5 ms jitter, {seconds} s")
    try:
        res = run_render_case(bench, 1, seconds, latency_ms=20, frame_ms=5,
                              impair_all="delay=5ms,jitter=5ms")
    except Exception as e:  # a benchmark never fails the run
        res = {"error": str(e)}
    res["seconds"] = seconds
    out.update(res)
    out["command"] = f"tests/bench/run.sh {bench.build} --only=stability"


def bench_render(bench):
    out = {"cases": {}}
    bench.results["render"] = out
    relay_bin = os.path.join(bench.build, "tests", "tools", "syncwave-impair")
    if not bench.has("syncwavepay", "syncwavesink"):
        out["error"] = "syncwavesink not built yet in this tree"
        return
    if not os.path.exists(relay_bin) or not bench.prog("bench-render"):
        out["error"] = "syncwave-impair or bench-render not built"
        return
    reps = 1 if bench.quick else 2
    seconds = 8 if bench.quick else 15
    for r in range(reps):
        for n in (2,) if bench.quick else (2, 4, 8):
            log(f"  render sync: {n} receivers run {r + 1}/{reps}")
            try:
                res = run_render_case(bench, n, seconds)
            except Exception as e:
                res = {"error": f"{type(e).__name__}: {e}"}
            out["cases"].setdefault(str(n), []).append(res)
    out["seconds"] = seconds
    out["reps"] = reps


def bench_relay(bench):
    out = {"cases": {}}
    bench.results["relay"] = out
    relay_bin = os.path.join(bench.build, "tests", "tools", "syncwave-impair")
    if not bench.pulseaudio:
        out["error"] = "pulseaudio/parec not installed"
        return
    if not bench.has("syncwavepay", "syncwavesink"):
        out["error"] = "syncwavesink not built yet in this tree"
        return
    if not os.path.exists(relay_bin):
        out["error"] = "syncwave-impair (tests/tools) not built"
        return
    reps = 1 if bench.quick else 2
    seconds = 10 if bench.quick else 20
    noise = make_noise(bench, seconds + 20)
    pulse = Pulse(bench.tmp)
    pulse.start(bench.env)
    pulse.record(out, [f"m{k}" for k in range(2 if bench.quick else MULTI)])
    try:
        for r in range(reps):
            for n in (2,) if bench.quick else (2, 4, 8):
                log(f"  relay sync: {n} receivers run {r + 1}/{reps}")
                try:
                    res = run_relay_case(bench, pulse, n, noise, seconds)
                except Exception as e:
                    res = {"error": f"{type(e).__name__}: {e}"}
                out["cases"].setdefault(str(n), []).append(res)
    finally:
        pulse.stop()
    out["seconds"] = seconds
    out["reps"] = reps


def bench_pulse(bench):
    out = {"cases": {}, "skipped": {}}
    bench.results["pulse"] = out
    if not bench.pulseaudio:
        out["error"] = "pulseaudio/parec not installed"
        return
    cases = ["plain"]
    if bench.snapcast:
        cases += ["snapcast-pcm"] if bench.quick else ["snapcast-pcm", "snapcast-opus",
                                                       "snapcast-pcm-join"]
    else:
        out["skipped"]["snapcast"] = "snapserver/snapclient not installed (apt-get install snapserver snapclient)"
    if bench.has("syncwavepay", "syncwavesink"):
        cases += ["syncwave-raw"] if bench.quick else ["syncwave-raw", "syncwave-opus",
                                                       "syncwave-raw-join",
                                                       "syncwave-raw-pulsesink",
                                                       "syncwave-raw-monitor",
                                                       "syncwave-raw-original"]
    else:
        out["skipped"]["syncwave"] = "syncwavesink not built yet in this tree"
    reps = 1 if bench.quick else 3
    seconds = 10 if bench.quick else 20
    noise = make_noise(bench, seconds + 30)
    pulse = Pulse(bench.tmp)
    pulse.start(bench.env)
    pulse.record(out, ["rxa", "rxb"])
    try:
        for r in range(reps):
            order = cases[r % len(cases):] + cases[:r % len(cases)]
            for case in order:
                log(f"  pulse sync: {case} run {r + 1}/{reps}")
                try:
                    res = run_pulse_case(bench, pulse, case, noise, seconds)
                except Exception as e:  # a benchmark never fails the run
                    res = {"error": str(e)}
                out["cases"].setdefault(case, []).append(res)
    finally:
        pulse.stop()
    out["seconds"] = seconds
    out["reps"] = reps


# ---------------------------------------------------------------- bandwidth and fan-out


def bound_udp(count):
    """`count` UDP sockets bound to free ports on 127.0.0.1 (kept open, so no two
    share a port); returns (sockets, ports)."""
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    return socks, [s.getsockname()[1] for s in socks]


def drain(socks, seconds):
    import selectors
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    n = b = 0
    t_first = t_last = None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(0.1):
            while True:
                try:
                    d = key.fileobj.recv(70000)
                except BlockingIOError:
                    break
                now = time.monotonic()
                t_first = t_first or now
                t_last = now
                n += 1
                b += len(d)
    return n, b, (t_last - t_first) if t_first and t_last else 0.0


def sender_pipeline(kind, bitrate, clients, live=True):
    src = ["audiotestsrc", "is-live=true" if live else "is-live=false", "wave=pink-noise",
           "samplesperbuffer=480", "!", "audio/x-raw,rate=48000,channels=2", "!"]
    if kind == "syncwave-raw":
        body = ["audioconvert", "!", "audio/x-raw,format=F32LE", "!", "syncwavepay", "!"]
    elif kind == "syncwave-opus":
        body = ["opusenc", f"bitrate={bitrate}", "frame-size=10", "!", "syncwavepay", "!"]
    elif kind == "rtp-l16":
        body = ["audioconvert", "!", "audio/x-raw,format=S16BE", "!", "rtpL16pay", "!"]
    elif kind == "rtp-opus":
        body = ["opusenc", f"bitrate={bitrate}", "frame-size=10", "!", "rtpopuspay", "!"]
    else:
        raise ValueError(kind)
    sink = ["multiudpsink", "sync=false", "clients=" + ",".join(f"127.0.0.1:{p}" for p in clients)]
    return ["gst-launch-1.0", "-q"] + src + body + sink


def bench_bandwidth(bench):
    out = {"rows": []}
    bench.results["bandwidth"] = out
    seconds = 2 if bench.quick else 8
    kinds = [("rtp-l16", 0), ("rtp-opus", 64000), ("rtp-opus", 128000), ("rtp-opus", 256000)]
    if bench.has("syncwavepay"):
        kinds = [("syncwave-raw", 0)] + kinds[:1] + [
            k for b in (64000, 128000, 256000) for k in (("syncwave-opus", b), ("rtp-opus", b))]
    else:
        out["skipped"] = "syncwavepay not built yet in this tree"
    for kind, br in kinds:
        socks, ports = bound_udp(1)
        c = Child(sender_pipeline(kind, br, ports), bench.env)
        n, b, span = drain(socks, seconds)
        c.stop()
        for s in socks:
            s.close()
        if n < 2 or span <= 0:
            out["rows"].append({"kind": kind, "bitrate": br, "error": c.stderr_text()[-200:]})
            continue
        pps = (n - 1) / span
        payload_kbps = b * 8 / span / 1000 * (n - 1) / n
        wire_kbps = (b + 28 * n) * 8 / span / 1000 * (n - 1) / n
        out["rows"].append({"kind": kind, "bitrate": br, "packets_per_s": pps,
                            "udp_payload_kbps": payload_kbps, "ip_kbps": wire_kbps,
                            "bytes_per_packet": b / n})
    out["seconds"] = seconds


def bench_fanout(bench):
    out = {"rows": []}
    bench.results["fanout"] = out
    seconds = 5 if bench.quick else 15
    reps = 1 if bench.quick else 2
    kinds = ["rtp-opus"]
    if bench.has("syncwavepay"):
        kinds = ["syncwave-opus", "rtp-opus"]
    else:
        out["skipped"] = "syncwavepay not built yet in this tree"
    targets = [1, 10, 100]
    socks, ports = bound_udp(max(targets))  # bound, never read: the kernel drops, no ICMP
    try:
        for r in range(reps):
            for n in targets:
                for kind in kinds:
                    log(f"  fan-out: {kind} x{n} run {r + 1}/{reps}")
                    c = Child(sender_pipeline(kind, 128000, ports[:n]), bench.env)
                    time.sleep(seconds)
                    c.stop()
                    out["rows"].append({"kind": kind, "targets": n, "cpu_pct": 100.0 * c.cpu / c.wall,
                                        "rss_kb": c.maxrss_kb, "wall": c.wall})
    finally:
        for s in socks:
            s.close()
    out["seconds"] = seconds
    out["reps"] = reps


# ---------------------------------------------------------------- report

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from report import write_report, print_table  # noqa: E402  (same directory)


def depends_text(res):
    """One line of what a section depended on, for the terminal."""
    parts = [bench_env.load_text(res.get("load"), os.cpu_count())]
    if res.get("sound_server"):
        parts.append(f"sound server {res['sound_server']}")
    if res.get("sink_chains"):
        parts.append("sink chain " + bench_env.chains_summary(res["sink_chains"]))
    return "; ".join(parts)


def main(argv):
    build = "build"
    quick = False
    only = None
    docs = True
    report_only = False
    for a in argv:
        if a == "--quick":
            quick = True
        elif a.startswith("--only="):
            only = set(a.split("=", 1)[1].split(","))
        elif a == "--no-docs":
            docs = False
        elif a == "--report-only":
            report_only = True
        elif a == "--check-stale":
            # Which sections of docs/benchmarks.md were measured on other code (issue 16).
            return bench_stale.main([x for x in argv if x.startswith("--docs=") or
                                     x == "--warn-only"])
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        elif a == "--warn-only" or a.startswith("--docs="):
            pass  # options of --check-stale
        else:
            build = a
    if not os.path.isdir(build):
        print(f"build directory {build} not found: meson setup {build} && ninja -C {build}",
              file=sys.stderr)
        return 2
    if report_only:
        raw_path = os.path.join(build, "bench-results.json")
        with open(raw_path) as f:
            saved = json.load(f)
        print_table(saved["meta"], saved["results"])
        if docs:
            path = os.path.join(SRC_ROOT, "docs", "benchmarks.md")
            only_saved = saved["meta"].get("only")
            if only_saved is None:
                for word in saved["meta"].get("command", "").split():
                    if word.startswith("--only="):
                        only_saved = sorted(word.split("=", 1)[1].split(","))
            write_report(path, saved["meta"], saved["results"], partial=only_saved)
            log(f"wrote {path} from {raw_path}")
        return 0
    bench = Bench(build, quick)
    machine = machine_info()
    run_load = bench_env.LoadProbe()
    started = time.monotonic()
    steps = [("paydepay", bench_paydepay), ("jitter", bench_jitter),
             ("instructions", bench_instructions),
             ("latency", bench_latency), ("stability", bench_stability), ("pulse", bench_pulse),
             ("relay", bench_relay), ("render", bench_render),
             ("bandwidth", bench_bandwidth), ("fanout", bench_fanout)]
    try:
        for name, fn in steps:
            if only and name not in only:
                continue
            log(f"benchmark: {name}")
            t = time.monotonic()
            probe = bench_env.LoadProbe()
            try:
                fn(bench)
            except Exception as e:  # report, never fail
                bench.results[name] = {"error": f"{type(e).__name__}: {e}"}
            if isinstance(bench.results.get(name), dict):
                bench.results[name]["load"] = probe.finish()
                log(f"  {name}: {depends_text(bench.results[name])}")
            log(f"  {name} took {time.monotonic() - t:.0f} s")
    finally:
        bench.cleanup()
    machine["load"] = run_load.finish()
    machine["load_end"] = machine["load"].get("loadavg_end") or "?"
    meta = {"machine": machine, "quick": quick, "elements": bench.elements,
            "duration_s": time.monotonic() - started,
            "command": "tests/bench/run.sh " + " ".join(argv),
            "only": sorted(only) if only else None}
    raw_path = os.path.join(bench.build, "bench-results.json")
    date = machine["date"]
    for r in bench.results.values():
        if isinstance(r, dict):
            r["measured"] = date
            r["code"] = machine["code"]  # HEAD (+dirty): bench_stale judges it
    if only and os.path.exists(raw_path):
        # Keep the other sections' figures from the previous run, marked as such.
        try:
            with open(raw_path) as f:
                prev = json.load(f)
            for name, r in prev.get("results", {}).items():
                if name not in bench.results:
                    r.setdefault("measured", prev.get("meta", {}).get("machine", {}).get("date"))
                    bench.results[name] = r
            meta["merged_from"] = prev.get("meta", {}).get("command")
        except (OSError, ValueError):
            pass
    with open(raw_path, "w") as f:
        json.dump({"meta": meta, "results": bench.results}, f, indent=1)
    print_table(meta, bench.results)
    if docs:
        path = os.path.join(SRC_ROOT, "docs", "benchmarks.md")
        write_report(path, meta, bench.results, partial=sorted(only) if only else None)
        log(f"wrote {path} (raw figures in {raw_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
