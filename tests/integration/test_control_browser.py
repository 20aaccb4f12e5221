#!/usr/bin/env python3
"""The control page in a real browser (issue 13, docs/control.md): headless Chromium,
driven over the DevTools protocol (cdp_pipe.py), on a phone-sized viewport (360 x 740
CSS px), opens the page of `syncwave-launch send --control-port=P --control-bind=127.0.0.1`
before any receiver runs. Then two receivers, Kitchen and Bedroom, start, each into its
own null sink of a private PulseAudio, and:

- both rooms appear on the open page (the event stream; no reload) and show "synced";
- the page fits the phone's width and its sliders are wide enough to use;
- dragging Kitchen's volume slider with the mouse from 1 to about 0.25 lowers what
  Kitchen's null sink plays by 20*log10(volume) dB (recorded from its monitor), and
  Bedroom's sink keeps playing at its level;
- Kitchen's meter on the page falls by as much, Bedroom's does not move;
- when Bedroom stops, its room leaves the page;
- rooms named "Living room" and "Living_room" (reported over UDP by the test) are two;
- the page threw nothing, logged no error and opened no dialog.

Skipped (77) without chromium, pulseaudio/parec or a launcher built without libsoup."""
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
import urllib.request

import cdp_pipe
from test_control import plays, requirements

SKIP = 77
ROOMS = """[...document.querySelectorAll('.room')].map(e => ({
  name: e.querySelector('.name').textContent,
  state: e.querySelector('.state').textContent,
  meter: parseFloat(e.querySelector('.meter div').style.width || '0'),
  volume: parseFloat(e.querySelector('.volume').value)}))"""


def room_js(name, what):
    """`what` evaluated with `room` bound to the room element named `name` (or null)."""
    return ("(() => { const room = [...document.querySelectorAll('.room')].find(e => "
            f"e.dataset.name === {json.dumps(name)}); return {what}; }})()")


def receivers(base):
    with urllib.request.urlopen(base + "/api/receivers", timeout=5) as r:
        return {x["name"]: x for x in json.loads(r.read())["receivers"]}


def poll(fn, timeout, what):
    """fn() every 0.1 s until it returns something truthy; BrowserError after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except OSError as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.1)
    raise cdp_pipe.BrowserError(f"{what}: not within {timeout} s (last: {last!r})")


def main():
    t_start = time.monotonic()
    chromium = shutil.which(os.environ.get("CHROMIUM", "chromium"))
    if not chromium:
        print("skipped: chromium not installed (Debian package chromium; or set CHROMIUM)")
        return SKIP
    launch, build, cpu_budget = requirements()
    if launch is None:
        return SKIP

    tmp = tempfile.mkdtemp(prefix="syncwave-control-browser-")
    procs = {}
    failures = []
    browser = None

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    pulse = cpu_budget.Pulse(tmp)
    try:
        env = dict(pulse.env, GST_PLUGIN_PATH=os.path.join(build, "gst-plugin"),
                   GST_REGISTRY_1_0=os.path.join(tmp, "registry.bin"))
        ports = [cpu_budget.free_port(), cpu_budget.free_port()]
        clock = cpu_budget.free_port()
        control = cpu_budget.free_port(socket.SOCK_STREAM)
        base = f"http://127.0.0.1:{control}"
        procs["send"] = subprocess.Popen(
            [launch, "send", "--source=test", "--quiet", f"--clock-port={clock}",
             f"--control-port={control}", "--control-bind=127.0.0.1"] +
            [f"--target=127.0.0.1:{p}" for p in ports], env=env,
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "send.err"), "w"))
        poll(lambda: receivers(base) == {}, 10, "the sender answers on " + base)

        # The page first, on a phone-sized screen; alert() would block the page and the
        # test, so it is turned into a console error (counted as a problem below).
        browser = cdp_pipe.Browser(chromium, tmp, os.path.join(tmp, "chromium.err"))
        page = browser.open_page(width=360, height=740, mobile=True)
        page.call("Page.addScriptToEvaluateOnNewDocument",
                  {"source": "window.alert = m => console.error('alert: ' + m);"})
        page.navigate(base + "/")
        page.evaluate("window.loadedOnce = true")  # gone if the page reloads
        check(page.wait_for("document.getElementById('empty').style.display !== 'none' && "
                            "document.querySelectorAll('.room').length === 0", 5,
                            "the page says it is looking for receivers"),
              "the page opens with no room: " +
              page.evaluate("document.getElementById('empty').textContent"))

        for name, port, sink in (("Kitchen", ports[0], "rxa"), ("Bedroom", ports[1], "rxb")):
            procs[name] = subprocess.Popen(
                [launch, "receive", f"--port={port}", f"--clock-port={clock}",
                 f"--control-port={control}", f"--device={sink}", f"--name={name}", "--quiet"],
                env=env, stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(tmp, name + ".err"), "w"))
        shown = page.wait_for(
            f"(() => {{ const r = {ROOMS}; return r.length === 2 && "
            "r.every(x => x.state === 'synced' && x.meter > 0) && r; })()", 20,
            "both rooms on the page, synced, their meters moving")
        check(sorted(r["name"] for r in shown) == ["Bedroom", "Kitchen"] and
              page.evaluate("window.loadedOnce === true"),
              f"both rooms appear on the open page, synced, without a reload: {shown}")
        check(page.evaluate("document.getElementById('empty').style.display") == "none",
              "the 'looking for receivers' line is hidden")

        layout = page.evaluate(
            "(() => ({width: innerWidth, scroll: document.documentElement.scrollWidth, "
            "sliders: [...document.querySelectorAll('.volume')].map(s => { "
            "const r = s.getBoundingClientRect(); return [r.left, r.right]; })}))()")
        check(layout["width"] == 360 and layout["scroll"] <= layout["width"] and
              all(0 <= left and right <= layout["width"] and right - left >= 150
                  for left, right in layout["sliders"]),
              f"the page fits a 360 px wide phone, sliders at least 150 px wide: {layout}")

        before = cpu_budget.record(pulse, 1.0)
        check(all(plays(r) for r in before.values()), f"both sinks play before: {before}")
        meters_before = {r["name"]: r["meter"] for r in page.evaluate(ROOMS)}

        # Kitchen's slider, dragged by its thumb from 1 to about 0.25. Chromium's thumb
        # is 16 px wide (an estimate: the value it lands on is read back).
        rect = page.evaluate(room_js("Kitchen", "(() => { const s = room.querySelector("
                                     "'.volume'); s.scrollIntoView({block: 'center'}); "
                                     "const r = s.getBoundingClientRect(); return {x: r.x, "
                                     "y: r.y, w: r.width, h: r.height, v: +s.value}; })()"))
        check(rect["v"] == 1.0, f"Kitchen's slider starts at 1: {rect}")
        at = lambda v: rect["x"] + 8 + (rect["w"] - 16) * v / 1.5
        page.drag(at(rect["v"]), rect["y"] + rect["h"] / 2, at(0.25))
        volume = page.evaluate(room_js("Kitchen", "+room.querySelector('.volume').value"))
        check(0.15 <= volume <= 0.35, f"the drag left Kitchen's slider at about 0.25: {volume}")

        def kitchen_took_it():
            r = receivers(base)
            return r if abs(r.get("Kitchen", {}).get("volume", -1) - volume) < 1e-6 else None
        reported = poll(kitchen_took_it, 5, f"Kitchen reports volume {volume}")
        check(reported["Bedroom"]["volume"] == 1.0,
              f"Kitchen reports {reported['Kitchen']['volume']}, Bedroom still "
              f"{reported['Bedroom']['volume']}")

        # Judged by what the sinks play: wait for Kitchen's sink to fall, then measure.
        poll(lambda: cpu_budget.record(pulse, 0.3)["rxa"]["rms_dbfs"] <
             before["rxa"]["rms_dbfs"] - 6, 6, "Kitchen's sink gets quieter")
        after = cpu_budget.record(pulse, 1.5)
        want = 20 * math.log10(volume)
        fell = after["rxa"]["rms_dbfs"] - before["rxa"]["rms_dbfs"]
        moved = after["rxb"]["rms_dbfs"] - before["rxb"]["rms_dbfs"]
        check(abs(fell - want) <= 1.0 and plays(after["rxa"]),
              f"Kitchen's sink plays {fell:+.1f} dB ({before['rxa']['rms_dbfs']} -> "
              f"{after['rxa']['rms_dbfs']} dBFS; volume {volume}: {want:+.1f} dB)")
        check(abs(moved) <= 0.5 and plays(after["rxb"]),
              f"Bedroom's sink keeps playing at its level: {moved:+.1f} dB "
              f"({before['rxb']['rms_dbfs']} -> {after['rxb']['rms_dbfs']} dBFS)")

        # The meters (from the event stream): Kitchen's falls by as much, Bedroom's stays.
        want_width = want * 100 / 60
        meters = page.wait_for(
            f"(() => {{ const m = Object.fromEntries({ROOMS}.map(r => [r.name, r.meter])); "
            f"return Math.abs(m.Kitchen - {meters_before['Kitchen'] + want_width}) <= 5 && m; }})()",
            8, "Kitchen's meter falls by as much")
        # (Waited for the whole fall: a report whose 1 s level window spans the change
        # shows part of it, 85 -> 71 % once.)
        check(abs(meters["Kitchen"] - meters_before["Kitchen"] - want_width) <= 5 and
              abs(meters["Bedroom"] - meters_before["Bedroom"]) <= 3,
              f"the page's meters: Kitchen {meters_before['Kitchen']:.0f} -> "
              f"{meters['Kitchen']:.0f} % (want {want_width:+.0f}), Bedroom "
              f"{meters_before['Bedroom']:.0f} -> {meters['Bedroom']:.0f} %")
        check(page.evaluate(room_js("Kitchen", "+room.querySelector('.volume').value")) ==
              volume, "Kitchen's slider stays where it was left")

        procs["Bedroom"].send_signal(signal.SIGINT)
        left = page.wait_for(f"(() => {{ const r = {ROOMS}; return r.length === 1 && r; }})()",
                             10, "Bedroom's room leaves the page")
        check([r["name"] for r in left] == ["Kitchen"],
              f"Bedroom's room leaves the page when it stops: {left}")

        # Names that differ only in a space and an underscore are two rooms. Reported the
        # way a receiver reports (docs/control.md, the back channel), without playing.
        fake = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for name in ("Living room", "Living_room"):
            fake.sendto(b"SWCTL1 R " + json.dumps(
                {"name": name, "state": "synced", "latency_ms": 200, "sync_offset_us": 0,
                 "lost": 0, "late": 0, "level_db": "-20,-20", "volume": 0.5, "mute": False,
                 "delay_ms": 0}).encode(), ("127.0.0.1", control))
        fake.close()
        poll(lambda: len(receivers(base)) == 3, 5, "the sender lists Living room, Living_room")
        three = page.wait_for(f"(() => {{ const r = {ROOMS}; return r.length === 3 && r; }})()",
                              3, "three rooms on the page")
        check(sorted(r["name"] for r in three) == ["Kitchen", "Living room", "Living_room"],
              f"'Living room' and 'Living_room' are two rooms: {three}")
        problems = page.problems()
        check(not problems, f"the page reported no problem: {problems}")
    except cdp_pipe.BrowserError as e:
        check(False, str(e))
    finally:
        if browser:
            browser.close()
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        pulse.stop()
        if failures:
            for n in ("send", "Kitchen", "Bedroom", "chromium"):
                path = os.path.join(tmp, n + ".err")
                if os.path.exists(path):
                    print(f"--- {n} stderr:\n" + open(path).read()[-2000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{time.monotonic() - t_start:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
