#!/usr/bin/env python3
"""The control surface end to end on 127.0.0.1 (issue 13, docs/control.md): a sender
`syncwave-launch send --source=test --target=A --target=B --control-port=P` and two
receivers `syncwave-launch receive --name=Kitchen|Bedroom --control-port=P`, each into
its own null sink of a private PulseAudio. Over real HTTP: both rooms are listed; a
volume change to Kitchen silences Kitchen's sink only (judged from the sinks'
monitors); bad values, unknown rooms and other methods are refused with the right
status and one sentence. Skipped (77) without pulseaudio/parec or a launcher built
without libsoup."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77


def http(method, url, body=None):
    req = urllib.request.Request(url, method=method, data=body.encode() if body else None)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# How long start-ups may take: under the sanitizers, with another test beside it, each
# process scans the plugins into its own registry first and three of them start at once
# (10 s was not enough there; a passing run does not wait for it).
STARTUP_S = 60


def polls(seconds, step=0.1):
    """range() for a wait of up to `seconds` in `step`s."""
    return range(int(seconds / step))


# Under the sanitizers (.ci/sanitize-wrapper.sh sets it) the code runs 2-5 times slower
# on two loaded cores: holes in what plays are real-time bounds there, printed and not
# judged, as tests/common/timing.h does for the C++ tests. That it plays is judged.
SANITIZED = os.environ.get("SYNCWAVE_SANITIZED") == "1"


# Recordings that plays() found with holes in this run (real-time bounds missed).
HOLES = []


def plays(r):
    """Sound within 0.5 s of the recording's start (parec itself starts late under the
    sanitizers) and almost no silence after it (under the sanitizers: sound in most of
    it)."""
    heard = 0 <= r["first_sound_ms"] < 500
    holes = r["silent_windows"] - r["first_sound_ms"] // 5
    if SANITIZED and heard and 20 <= holes < r["windows"] // 2:
        print(f"real-time bound missed (not judged under the sanitizers): {holes} silent 5 ms "
              f"windows: {r}")
        return True
    if heard and holes >= 20:
        HOLES.append(r)
    return heard and holes < 20


def run_once_more_after_holes(main, *args):
    """main(*args); when it failed in a run whose sinks played with holes (a real-time
    bound, and a level measured across a hole is off too), once more at once, failing
    only if that run fails too (as tests/common/timing_main.cpp does for gtest)."""
    rc = main(*args)
    if rc == 1 and HOLES and not SANITIZED:
        print(f"[ RETRY    ] the sinks played with holes ({len(HOLES)} recordings): running "
              "once more, at once; it fails if it fails again")
        del HOLES[:]
        rc = main(*args)
    return rc


def start_test(prefix, build, cpu_budget):
    """(tmp, failures, check, pulse, env): a temporary directory, the list of failures
    check(ok, what) keeps (it prints "ok"/"FAIL" and what), a private PulseAudio with
    sinks rxa and rxb, and the environment that runs the launcher against it and the
    built plugin."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    pulse = cpu_budget.Pulse(tmp)
    env = dict(pulse.env, GST_PLUGIN_PATH=os.path.join(build, "gst-plugin"),
               GST_REGISTRY_1_0=os.path.join(tmp, "registry.bin"))
    return tmp, failures, check, pulse, env


def stop_all(procs, pulse, tmp, failures, names=("send", "Kitchen", "Bedroom")):
    """The test's end: SIGINT to every process still running (killed after 3 s), the
    private PulseAudio stopped, on a failure the last of each named process's stderr
    (tmp/NAME.err), and tmp removed."""
    import cpu_budget  # on the path since requirements()
    cpu_budget.stop(list(procs.values()) if isinstance(procs, dict) else procs)
    pulse.stop()
    if failures:
        for n in names:
            path = os.path.join(tmp, n + ".err")
            if os.path.exists(path):
                print(f"--- {n} stderr:\n" + open(path).read()[-2000:])
    shutil.rmtree(tmp, ignore_errors=True)


def requirements():
    """(launcher, build root, the cpu_budget module: private PulseAudio with sinks rxa and
    rxb, and the analysis), or (None, None, None) after printing why the test skips."""
    for prog in ("pulseaudio", "pactl", "parec"):
        if not shutil.which(prog):
            print(f"skipped: {prog} not installed")
            return None, None, None
    src = os.environ["SYNCWAVE_SOURCE_ROOT"]
    build = os.environ["SYNCWAVE_BUILD_ROOT"]
    launch = os.path.join(build, "launcher", "syncwave-launch")
    helptext = subprocess.run([launch, "send", "--help"], capture_output=True, text=True).stdout
    if "--control-port" not in helptext:
        print("skipped: syncwave-launch built without the control surface (libsoup-3.0)")
        return None, None, None
    sys.path.insert(0, os.path.join(src, "tests", "bench"))
    import cpu_budget
    return launch, build, cpu_budget


def main():
    launch, build, cpu_budget = requirements()
    if launch is None:
        return SKIP

    tmp, failures, check, pulse, env = start_test("syncwave-control-test-", build, cpu_budget)
    procs = []
    try:
        ports = [cpu_budget.free_port(), cpu_budget.free_port()]
        clock = cpu_budget.free_port()
        import socket
        control = cpu_budget.free_port(socket.SOCK_STREAM)
        base = f"http://127.0.0.1:{control}"
        procs.append(subprocess.Popen(
            [launch, "send", "--source=test", "--quiet", f"--clock-port={clock}",
             f"--control-port={control}", "--control-bind=127.0.0.1"] +
            [f"--target=127.0.0.1:{p}" for p in ports], env=env,
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "send.err"), "w")))
        def receiver(name, port, sink):
            return subprocess.Popen(
                [launch, "receive", f"--port={port}", f"--clock-port={clock}",
                 f"--control-port={control}", f"--device={sink}", f"--name={name}", "--quiet"],
                env=env, stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(tmp, name + ".err"), "a"))
        for name, port, sink in (("Kitchen", ports[0], "rxa"), ("Bedroom", ports[1], "rxb")):
            procs.append(receiver(name, port, sink))
        listed = []
        for _ in polls(STARTUP_S):
            time.sleep(0.1)
            try:
                status, body = http("GET", base + "/api/receivers")
            except OSError:
                continue
            if status == 200:
                listed = sorted(r["name"] for r in json.loads(body)["receivers"])
                if listed == ["Bedroom", "Kitchen"]:
                    break
        check(listed == ["Bedroom", "Kitchen"], f"both rooms listed: {listed}")
        # Both playing (under the sanitizers a receiver reports before it plays).
        states = {}
        for _ in polls(STARTUP_S):
            try:
                status, body = http("GET", base + "/api/receivers")
            except OSError:
                time.sleep(0.1)
                continue
            states = {r["name"]: r["state"] for r in json.loads(body)["receivers"]}
            if states and all(v == "synced" for v in states.values()) and len(states) == 2:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        status, page = http("GET", base + "/")
        check(status == 200 and "SyncWave rooms" in page, "the page is served")
        before = cpu_budget.record(pulse, 1.0)
        check(all(plays(r) for r in before.values()),
              f"both sinks play before the change: {before}")
        status, body = http("POST", base + "/api/receivers/Kitchen", '{"volume": 0}')
        check(status == 200 and json.loads(body) == {"ok": True}, f"volume 0: {status} {body}")
        time.sleep(1.5)
        after = cpu_budget.record(pulse, 1.0)
        check(after["rxa"]["silent_windows"] >= after["rxa"]["windows"] - 2,
              f"Kitchen's sink is silent after volume 0: {after['rxa']}")
        check(plays(after["rxb"]), f"Bedroom's sink still plays: {after['rxb']}")
        time.sleep(1.2)
        status, body = http("GET", base + "/api/receivers")
        kitchen = [r for r in json.loads(body)["receivers"] if r["name"] == "Kitchen"]
        check(bool(kitchen) and kitchen[0]["volume"] == 0, f"Kitchen reports volume 0: {kitchen}")
        for method, path, payload, want in (
                ("POST", "/api/receivers/Kitchen", '{"volume": 2}', 400),
                ("POST", "/api/receivers/Kitchen", '{"delay_ms": "soon"}', 400),
                ("POST", "/api/receivers/Kitchen", '{"run": "/bin/sh"}', 400),
                ("POST", "/api/receivers/Garage", '{"volume": 0.5}', 404),
                ("DELETE", "/api/receivers/Kitchen", None, 405),
                ("GET", "/nothing", None, 404)):
            status, body = http(method, base + path, payload)
            err = json.loads(body).get("error", "") if body.startswith("{") else ""
            check(status == want and err, f"{method} {path} {payload}: {status} {err}")
        # The same from the shell: syncwave-launch control NAME KEY=VALUE.
        cli = lambda *a: subprocess.run([launch, "control", *a, f"--control-port={control}"],
                                        env=env, capture_output=True, text=True, timeout=20)
        r = cli("Bedroom", "mute=true")
        check(r.returncode == 0, f"control Bedroom mute=true: {r.returncode} {r.stdout} {r.stderr}")
        time.sleep(1.5)
        muted = cpu_budget.record(pulse, 1.0)
        check(muted["rxb"]["silent_windows"] >= muted["rxb"]["windows"] - 2,
              f"Bedroom's sink is silent after control mute=true: {muted['rxb']}")
        # A secret given to control: a sender without one ignores the token.
        r = cli("Bedroom", "mute=false", "--secret=unused here")
        check(r.returncode == 0, f"control Bedroom mute=false --secret: {r.returncode} {r.stderr}")
        r = cli("Garage", "volume=0.5")
        check(r.returncode == 1 and 'no receiver named "Garage"' in r.stderr,
              f"control Garage: {r.returncode} {r.stderr.strip()}")
        r = cli("Kitchen", "volume=9")
        check(r.returncode == 2 and "from 0 to 1.5" in r.stderr,
              f"control Kitchen volume=9: {r.returncode} {r.stderr.strip()}")
        r = cli("Kitchen")
        check(r.returncode == 2, f"control without a setting: {r.returncode} {r.stderr.strip()}")
        status, body = http("POST", base + "/api/receivers/Kitchen", '{"volume": 1}')
        time.sleep(1.5)
        back = cpu_budget.record(pulse, 1.0)
        check(plays(back["rxa"]), f"Kitchen plays again at volume 1: {back['rxa']}")
        check(plays(back["rxb"]), f"Bedroom plays again unmuted: {back['rxb']}")

        # A change survives a restart: the receiver keeps it in its config file under
        # its name and applies it when it starts again.
        status, body = http("POST", base + "/api/receivers/Kitchen", '{"volume": 0}')
        check(status == 200, f"volume 0 again: {status} {body}")
        time.sleep(1.5)
        conf = os.path.join(env["XDG_CONFIG_HOME"], "syncwave", "syncwave.conf")
        saved = open(conf).read() if os.path.exists(conf) else ""
        check("[room Kitchen]" in saved and "volume=0" in saved,
              f"Kitchen's volume is kept in {conf}: {saved!r}")
        status, body = http("GET", base + "/api/receivers")
        old = [r["address"] for r in json.loads(body)["receivers"] if r["name"] == "Kitchen"]
        kitchen = procs[1]
        kitchen.send_signal(2)
        kitchen.wait(10)
        procs[1] = receiver("Kitchen", ports[0], "rxa")
        restarted = []
        for _ in polls(STARTUP_S):
            time.sleep(0.1)
            status, body = http("GET", base + "/api/receivers")
            restarted = [r for r in json.loads(body)["receivers"]
                         if r["name"] == "Kitchen" and [r["address"]] != old and
                         r["state"] in ("synced", "muted")]
            if restarted:
                break
        time.sleep(1.2)
        status, body = http("GET", base + "/api/receivers")
        kitchen = [r for r in json.loads(body)["receivers"] if r["name"] == "Kitchen"]
        check(bool(restarted) and bool(kitchen) and kitchen[0]["volume"] == 0,
              f"the restarted Kitchen reports volume 0: {kitchen}")
        restored = cpu_budget.record(pulse, 1.0)
        check(restored["rxa"]["silent_windows"] >= restored["rxa"]["windows"] - 2,
              f"the restarted Kitchen's sink stays silent: {restored['rxa']}")
        check(plays(restored["rxb"]), f"Bedroom plays on: {restored['rxb']}")
    finally:
        stop_all(procs, pulse, tmp, failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_once_more_after_holes(main))
