# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a benchmark run depends on (issue 16), read so that it can be stored with the
figures: the machine's load while a section ran (load average before and after, CPU
time of other processes), the sound server the runner started and its version, and
the chain of sinks under each output a receiver plays to.

The parsers are pure functions of a command's text (tested by test_bench_env.py); the
readers around them run the commands and never raise: what cannot be read is None.
"""

import os
import subprocess
import time

# ---------------------------------------------------------------- pactl


def _c_locale(env):
    env = dict(env)
    env["LC_ALL"] = "C"  # pactl translates its field names
    return env


def parse_pactl_info(text):
    """`pactl info` -> {"server_name", "server_version", "server_string", "default_sink",
    "protocol"}; missing fields are None."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return {"server_name": fields.get("Server Name"),
            "server_version": fields.get("Server Version"),
            "server_string": fields.get("Server String"),
            "default_sink": fields.get("Default Sink"),
            "protocol": fields.get("Server Protocol Version")}


def server_text(info):
    """"pulseaudio 16.1", "PulseAudio (on PipeWire 1.0.5) 15.0.0", or None."""
    if not info or not info.get("server_name"):
        return None
    return " ".join(x for x in (info["server_name"], info.get("server_version")) if x)


def parse_pactl_sinks(text):
    """`pactl list sinks` (C locale) -> list of {"index", "name", "driver", "description",
    "sample_spec", "channel_map", "owner_module", "properties": {key: value}}."""
    sinks = []
    cur = None
    in_props = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("Sink #"):
            cur = {"index": int(line[6:]) if line[6:].strip().isdigit() else None,
                   "name": None, "driver": None, "description": None, "sample_spec": None,
                   "channel_map": None, "owner_module": None, "properties": {}}
            sinks.append(cur)
            in_props = False
            continue
        if cur is None or not line.strip():
            continue
        depth = len(line) - len(line.lstrip("\t"))
        body = line.strip()
        if depth <= 1:
            in_props = body == "Properties:"
            key, sep, value = body.partition(":")
            if not sep or in_props:
                continue
            k = {"Name": "name", "Driver": "driver", "Description": "description",
                 "Sample Specification": "sample_spec", "Channel Map": "channel_map",
                 "Owner Module": "owner_module"}.get(key.strip())
            if k:
                cur[k] = value.strip()
        elif in_props and depth == 2:
            key, sep, value = body.partition(" = ")
            if sep:
                v = value.strip()
                if len(v) >= 2 and v[0] == v[-1] == '"':
                    v = v[1:-1]
                cur["properties"][key.strip()] = v
    return sinks


def _kind(sink):
    """What a sink is: its module (PulseAudio) or its factory / media class (PipeWire)."""
    drv = sink.get("driver") or ""
    props = sink.get("properties", {})
    if drv.startswith("module-"):
        return drv[:-2] if drv.endswith(".c") else drv
    for key in ("factory.name", "node.driver", "media.class"):
        if props.get(key):
            return f"{drv or '?'}: {props[key]}"
    return drv or "?"


def sink_chain(sinks, name):
    """The sinks from `name` down to the sink that plays: [{"name", "kind", "channels"}],
    following device.master_device (module-remap-sink, module-ladspa-sink, filter
    sinks) or, on PipeWire, the target of a filter's playback node when pactl lists it.
    A loop or an unknown master ends the chain with that name and kind "?"."""
    by_name = {s["name"]: s for s in sinks if s.get("name")}
    chain, seen = [], set()
    while name and name not in seen:
        seen.add(name)
        s = by_name.get(name)
        if s is None:
            chain.append({"name": name, "kind": "?", "channels": None})
            break
        spec = (s.get("sample_spec") or "").split()
        chain.append({"name": name, "kind": _kind(s),
                      "channels": spec[1] if len(spec) > 1 else None})
        props = s.get("properties", {})
        name = props.get("device.master_device") or props.get("filter.master") or None
    return chain


def chain_text(chain):
    """"rxa (module-remap-sink, 1ch) -> bench (module-null-sink, 2ch)"."""
    if not chain:
        return "?"
    return " → ".join(f"{c['name']} ({c['kind']}" + (f", {c['channels']}" if c.get("channels")
                                                     else "") + ")" for c in chain)


def read_sound_server(env, sinks_in_use):
    """pactl info and list sinks against the server in env: {"server", "info",
    "chains": {sink: chain}}; None fields when pactl fails."""
    out = {"server": None, "info": None, "chains": {}}
    try:
        info = subprocess.run(["pactl", "info"], env=_c_locale(env), capture_output=True,
                              text=True, timeout=10)
        if info.returncode == 0:
            out["info"] = parse_pactl_info(info.stdout)
            out["server"] = server_text(out["info"])
        ls = subprocess.run(["pactl", "list", "sinks"], env=_c_locale(env),
                            capture_output=True, text=True, timeout=10)
        if ls.returncode == 0:
            sinks = parse_pactl_sinks(ls.stdout)
            for name in sinks_in_use:
                out["chains"][name] = sink_chain(sinks, name)
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def chains_summary(chains):
    """One text for many outputs: identical chains (up to the first sink's name) once,
    "m0..m7 (module-remap-sink, 1ch) -> multi (module-null-sink, 8ch)"."""
    groups = {}
    for name, chain in chains.items():
        tail = tuple((c["name"], c["kind"], c.get("channels")) for c in chain[1:])
        head = (chain[0]["kind"], chain[0].get("channels")) if chain else ("?", None)
        groups.setdefault((head, tail), []).append(name)
    parts = []
    for (head, tail), names in groups.items():
        first = names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"
        chain = [{"name": first, "kind": head[0], "channels": head[1]}] + \
            [{"name": n, "kind": k, "channels": ch} for n, k, ch in tail]
        parts.append(chain_text(chain))
    return "; ".join(parts) if parts else "?"


# ---------------------------------------------------------------- load


def parse_proc_stat(text):
    """The aggregate `cpu` line of /proc/stat -> {"busy", "idle", "steal", "total"} in
    clock ticks. busy = user + nice + system + irq + softirq (guest time is inside user);
    idle includes iowait."""
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == "cpu":
            v = [int(x) for x in f[1:]] + [0] * 10
            user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
            busy = user + nice + system + irq + softirq
            return {"busy": busy, "idle": idle + iowait, "steal": steal,
                    "total": busy + idle + iowait + steal}
    return None


def parse_loadavg(text):
    f = text.split()
    return " ".join(f[:3]) if len(f) >= 3 else None


def other_cpu(stat0, stat1, own_s, wall_s, hz):
    """CPU of everything but the bench between two /proc/stat readings: {"machine_cores",
    "bench_cores", "other_cores", "steal_cores"} as average cores busy over wall_s.
    own_s: CPU seconds of the bench (its own and its reaped children's) in between."""
    if not stat0 or not stat1 or wall_s <= 0:
        return None
    busy = (stat1["busy"] - stat0["busy"]) / hz
    steal = (stat1["steal"] - stat0["steal"]) / hz
    return {"machine_cores": busy / wall_s, "bench_cores": own_s / wall_s,
            # Ticks are sampled and the bench's time is exact: never below 0.
            "other_cores": max(0.0, busy - own_s) / wall_s,
            "steal_cores": steal / wall_s}


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _own_cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class LoadProbe:
    """Load around one section: load average before and after, and the CPU other
    processes used meanwhile (/proc/stat minus this process and its reaped children:
    read it after the section's processes are stopped)."""

    def __init__(self):
        self.load_start = parse_loadavg(_read("/proc/loadavg"))
        self.stat0 = parse_proc_stat(_read("/proc/stat"))
        self.own0 = _own_cpu()
        self.t0 = time.monotonic()

    def finish(self):
        wall = time.monotonic() - self.t0
        stat1 = parse_proc_stat(_read("/proc/stat"))
        try:
            hz = os.sysconf("SC_CLK_TCK")
        except (ValueError, OSError):
            hz = 100
        out = {"loadavg_start": self.load_start,
               "loadavg_end": parse_loadavg(_read("/proc/loadavg")),
               "wall_s": round(wall, 1), "cores": os.cpu_count()}
        cpu = other_cpu(self.stat0, stat1, _own_cpu() - self.own0, wall, hz)
        if cpu:
            out.update({k: round(v, 3) for k, v in cpu.items()})
        return out


def load_text(load, cores=None):
    """"load average 0.52 -> 0.80; other processes 0.31 cores (of 2), steal 0.00"."""
    if not load:
        return "not recorded"
    txt = f"load average {load.get('loadavg_start', '?')} → {load.get('loadavg_end', '?')}"
    if load.get("other_cores") is not None:
        txt += (f"; other processes {load['other_cores']:.2f} cores"
                + (f" (of {cores})" if cores else "") +
                f", the bench {load.get('bench_cores', 0):.2f}, steal "
                f"{load.get('steal_cores', 0):.2f}")
    return txt


# ---------------------------------------------------------------- CPU


def cpu_info():
    """{"model", "cores" (online), "usable" (this process's affinity), "governor",
    "mhz"} from /proc/cpuinfo and sysfs."""
    model, mhz = None, None
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name") and model is None:
            model = line.split(":", 1)[1].strip()
        elif line.startswith("cpu MHz") and mhz is None:
            mhz = line.split(":", 1)[1].strip()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    gov = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").strip() or None
    return {"model": model or "unknown", "cores": os.cpu_count(), "usable": usable,
            "governor": gov, "mhz": mhz}


def clocksource():
    return _read("/sys/devices/system/clocksource/clocksource0/current_clocksource").strip() \
        or "?"


# ---------------------------------------------------------------- arrival margins


def parse_margin_line(line):
    """bench-render's "margin n=.. p1=.. p50=.. min=.. late=.." (µs) -> dict of numbers."""
    out = {}
    for tok in line.split()[1:]:
        k, sep, v = tok.partition("=")
        if sep:
            try:
                out[k] = float(v) if "." in v else int(v)
            except ValueError:
                pass
    return out


def parse_stats_fields(text, keys):
    """Numeric fields of a GstStructure string: "late-arrivals=(guint64)3, level-ms=
    (double)41.5" -> {"late-arrivals": 3, "level-ms": 41.5} for the keys asked."""
    import re
    out = {}
    for key in keys:
        m = re.search(rf"(?:^|[ ,]){re.escape(key)}=\((?:g?u?int(?:64)?|gdouble|double)\)"
                      r"(-?[0-9.e+]+)", text)
        if m:
            v = m.group(1)
            out[key] = float(v) if any(c in v for c in ".e") else int(v)
    return out
