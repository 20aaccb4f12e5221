#!/usr/bin/env python3
"""The control surface with a secret (issue 14, docs/control.md "Authentication"), end to
end on 127.0.0.1: a sender and two receivers, Kitchen and Bedroom, all started with
--secret-file, each receiver into its own null sink of a private PulseAudio. Judged by
what the sinks play and by what the receivers report:

- without a token, with another secret's, a stale, a malformed and a replayed one, the
  API answers 401 with one sentence and the sender's time, and nothing changes: Kitchen
  keeps playing at volume 1; the refusals are counted by reason;
- `syncwave-launch control` without a secret and with a wrong one: exit 1, one sentence,
  nothing changes; against a sender whose clock is 2 minutes ahead it signs again on the
  time the refusal gives; with the right --secret-file Kitchen falls silent and Bedroom
  plays on;
  with the secret in the config file's [send] group Kitchen plays again, and a wrong one
  in its [control] group wins over that;
- a change datagram forged from the sender's own address (the attack an open back
  channel allows), with no token and with a wrong one, is dropped by Kitchen and counted
  in its report; a forged report adds no room.

`control --page-key` prints the key the sender prints. The tokens are made here, independently of the launcher, with Python's hmac over the
control key the sender prints ("Control page: http://.../#key=HEX"). Skipped (77)
without pulseaudio/parec, a launcher built without libsoup or without libsodium."""
import hashlib
import hmac
from http.server import BaseHTTPRequestHandler, HTTPServer
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from test_control import (STARTUP_S, plays, polls, requirements, run_once_more_after_holes,
                          start_test, stop_all)

SKIP = 77


def token(key, method, path, body="", ts=None, nonce=None):
    ts = int(time.time() * 1000) if ts is None else ts
    nonce = secrets.token_hex(16) if nonce is None else nonce
    text = f"SWAUTH1\n{ts}\n{nonce}\n{method}\n{path}\n{body}".encode()
    return f"v1.{ts}.{nonce}." + hmac.new(key, text, hashlib.sha256).hexdigest()


def still_plays(cpu_budget, pulse, sink, recorded):
    """plays() of `sink` in `recorded`, or in a second 1 s recording when the first had a
    hole: on this 2-core machine, other tests' load alone has cut 235 ms out of a null
    sink's second once; a sink that was silenced stays silent in both."""
    if plays(recorded[sink]):
        return recorded[sink]
    again = cpu_budget.record(pulse, 1.0)[sink]
    print(f"(recorded {sink} again: {recorded[sink]})")
    return again if plays(again) else None


def http(method, url, body=None, auth=None):
    req = urllib.request.Request(url, method=method, data=body.encode() if body else None)
    if auth:
        req.add_header("Authorization", "SyncWave " + auth)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main():
    launch, build, cpu_budget = requirements()
    if launch is None:
        return SKIP
    helptext = subprocess.run([launch, "control", "--help"], capture_output=True, text=True).stdout
    if "--secret" not in helptext:
        print("skipped: syncwave-launch control takes no --secret")
        return SKIP

    tmp, failures, check, pulse, env = start_test("syncwave-control-secure-", build, cpu_budget)
    procs = {}
    try:
        secret = os.path.join(tmp, "secret")
        with open(secret, "w") as f:
            f.write("a long passphrase for the house\n")
        ports = [cpu_budget.free_port(), cpu_budget.free_port()]
        clock = cpu_budget.free_port()
        control = cpu_budget.free_port(socket.SOCK_STREAM)
        base = f"http://127.0.0.1:{control}"
        send_err = os.path.join(tmp, "send.err")
        procs["send"] = subprocess.Popen(
            [launch, "send", "--source=test", f"--clock-port={clock}", f"--secret-file={secret}",
             f"--control-port={control}", "--control-bind=127.0.0.1"] +
            [f"--target=127.0.0.1:{p}" for p in ports], env=env,
            stdout=subprocess.DEVNULL, stderr=open(send_err, "w"))

        def receiver(name, port, sink):
            return subprocess.Popen(
                [launch, "receive", f"--port={port}", f"--clock-port={clock}",
                 f"--secret-file={secret}", f"--control-port={control}", f"--device={sink}",
                 f"--name={name}", "--quiet"],
                env=env, stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(tmp, name + ".err"), "a"))
        for name, port, sink in (("Kitchen", ports[0], "rxa"), ("Bedroom", ports[1], "rxb")):
            procs[name] = receiver(name, port, sink)

        # The page's key, as the sender prints it.
        key = None
        for _ in polls(STARTUP_S):
            m = re.search(r"Control page: http://[^/]+/#key=([0-9a-f]{64})", open(send_err).read())
            if m:
                key = bytes.fromhex(m.group(1))
                break
            time.sleep(0.1)
        check(key is not None, "the sender prints the page's address with #key=")
        if key is None:
            return 1
        r = subprocess.run([launch, "control", "--page-key", "--secret-file=" + secret], env=env,
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and r.stdout.strip() == key.hex(),
              f"control --page-key prints the same key: {r.returncode} {r.stdout.strip()}")

        def listing():
            status, body = http("GET", base + "/api/receivers",
                                auth=token(key, "GET", "/api/receivers"))
            return json.loads(body) if status == 200 else {}

        def rooms():
            return {r["name"]: r for r in listing().get("receivers", [])}
        states = {}
        for _ in polls(STARTUP_S):
            try:
                states = {n: r["state"] for n, r in rooms().items()}
            except OSError:
                states = {}
            if sorted(states) == ["Bedroom", "Kitchen"] and all(
                    v == "synced" for v in states.values()):
                break
            time.sleep(0.1)
        check(sorted(states) == ["Bedroom", "Kitchen"] and
              all(v == "synced" for v in states.values()),
              f"both rooms listed and synced with a signed request: {states}")
        time.sleep(0.5)
        before = cpu_budget.record(pulse, 1.0)
        check(all(plays(r) for r in before.values()), f"both sinks play: {before}")

        # The API refuses every request without a valid token, before anything else.
        status, page = http("GET", base + "/")
        check(status == 200 and "SyncWave rooms" in page and "keyform" in page,
              "the page itself is served without a token (it asks for the key)")
        other = hashlib.sha256(b"another secret").digest()
        path = "/api/receivers/Kitchen"
        body = '{"volume":0}'
        now = int(time.time() * 1000)
        cases = [
            ("no token", None, "needs its token"),
            ("another secret's token", token(other, "POST", path, body), "does not verify"),
            ("a token for another body", token(key, "POST", path, '{"volume":1}'), "does not verify"),
            ("a token for another room", token(key, "POST", "/api/receivers/Bedroom", body),
             "does not verify"),
            ("a token 60 s old", token(key, "POST", path, body, ts=now - 60000), "clock"),
            ("a token 60 s ahead", token(key, "POST", path, body, ts=now + 60000), "clock"),
            ("a malformed token", "v1.123.abc.def", "malformed"),
        ]
        for what, auth, sentence in cases:
            status, reply = http("POST", base + path, body, auth=auth)
            j = json.loads(reply) if reply.startswith("{") else {}
            check(status == 401 and sentence in j.get("error", "") and
                  abs(j.get("server_time_ms", 0) - time.time() * 1000) < 5000,
                  f"POST with {what}: {status} {reply}")
        for method, p in (("GET", "/api/receivers"), ("GET", "/api/events"), ("GET", "/nothing"),
                          ("POST", "/api/receivers/Garage")):
            status, reply = http(method, base + p, '{"volume":0}' if method == "POST" else None)
            check(status == 401, f"{method} {p} without a token: {status} (not 404: names stay private)")
        # A genuine token is good once.
        once = token(key, "POST", "/api/receivers/Bedroom", '{"volume":1}')
        status, reply = http("POST", base + "/api/receivers/Bedroom", '{"volume":1}', auth=once)
        check(status == 200, f"a signed POST is taken: {status} {reply}")
        status, reply = http("POST", base + "/api/receivers/Bedroom", '{"volume":1}', auth=once)
        check(status == 401 and "used before" in reply, f"the same token again: {status} {reply}")
        # The event stream with the token in the query (what the page's EventSource does).
        ev = token(key, "GET", "/api/events")
        with urllib.request.urlopen(base + "/api/events?auth=" + ev, timeout=5) as r:
            first = r.readline().decode() + r.readline().decode()
        check("Kitchen" in first, f"the event stream opens with ?auth=: {first[:80]!r}")

        # The shell: no secret, a wrong one, then the right one.
        def cli(*args):
            return subprocess.run([launch, "control", *args, f"--control-port={control}",
                                   "--sender=127.0.0.1"], env=env, capture_output=True,
                                  text=True, timeout=30)
        r = cli("Kitchen", "volume=0")
        check(r.returncode == 1 and "wants its secret" in r.stderr and
              len(r.stderr.strip().splitlines()) == 1,
              f"control without a secret: exit {r.returncode}: {r.stderr.strip()}")
        r = cli("Kitchen", "volume=0", "--secret=not the passphrase")
        check(r.returncode == 1 and "does not verify" in r.stderr and
              "server_time_ms" not in r.stderr and len(r.stderr.strip().splitlines()) == 1,
              f"control with a wrong secret: exit {r.returncode}: {r.stderr.strip()}")
        r = cli("Kitchen", "volume=0", "--secret-file=" + os.path.join(tmp, "missing"))
        check(r.returncode == 2, f"control with an unreadable --secret-file: exit {r.returncode}: "
              f"{r.stderr.strip()}")

        # The back channel: a change forged from the sender's address (127.0.0.1) to
        # Kitchen's control socket (the address it reports from).
        kitchen = rooms().get("Kitchen", {})
        host, _, kport = kitchen.get("address", ":0").rpartition(":")
        fake = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        fake.bind(("127.0.0.1", 0))
        forged_token = token(other, "SWCTL1-S", "Kitchen", '{"volume":0}')
        for datagram in (b'SWCTL1 S {"volume":0}',
                         f"SWCTL1 S {forged_token} {{\"volume\":0}}".encode()):
            fake.sendto(datagram, ("127.0.0.1", int(kport)))
        # A forged report: no room appears.
        fake.sendto(b"SWCTL1 R " + json.dumps(
            {"name": "Garage", "state": "synced", "latency_ms": 60, "sync_offset_us": 0,
             "lost": 0, "late": 0, "level_db": "-20,-20", "volume": 1, "mute": False,
             "delay_ms": 0}).encode(), ("127.0.0.1", control))
        fake.close()
        time.sleep(1.5)
        after_forgery = cpu_budget.record(pulse, 1.0)
        kitchen_on = still_plays(cpu_budget, pulse, "rxa", after_forgery)
        check(kitchen_on is not None and
              abs(kitchen_on["rms_dbfs"] - before["rxa"]["rms_dbfs"]) < 1.0,
              f"Kitchen plays on at its level after every refusal: {before['rxa']['rms_dbfs']} -> "
              f"{after_forgery['rxa']}")
        listed = listing()
        kitchen = {r["name"]: r for r in listed.get("receivers", [])}.get("Kitchen", {})
        check(kitchen.get("volume") == 1 and kitchen.get("control_refused", 0) >= 2,
              f"Kitchen reports volume 1 and the forged changes refused: {kitchen}")
        check("Garage" not in {r["name"] for r in listed.get("receivers", [])},
              "a forged report adds no room")
        counts = listed.get("auth", {})
        req = counts.get("requests", {})
        check(req.get("missing", 0) >= 5 and req.get("bad-mac", 0) >= 4 and
              req.get("stale", 0) >= 2 and req.get("malformed", 0) >= 1 and
              req.get("replayed", 0) >= 1 and counts.get("reports", {}).get("missing", 0) >= 1,
              f"the refusals are counted by reason: {counts}")

        # A sender whose clock is 2 minutes ahead (played here by a stand-in on
        # 127.0.0.1): control's first token is stale, it signs again on the time the
        # refusal gives, and that one verifies.
        seen = []

        class Ahead(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                tok = self.headers.get("Authorization", "")[len("SyncWave "):]
                ts = int(tok.split(".")[1]) if tok.count(".") == 3 else 0
                ahead = int(time.time() * 1000) + 120000
                good = tok == token(key, "POST", self.path.replace("%20", " "), body, ts=ts,
                                    nonce=tok.split(".")[2]) if ts else False
                seen.append((ts - ahead, good))
                fresh = abs(ts - ahead) <= 30000
                reply = (b'{"ok":true}' if fresh and good else json.dumps(
                    {"error": "the request's time is more than 30 s from the sender's clock",
                     "server_time_ms": ahead}).encode())
                self.send_response(200 if fresh and good else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass
        stand_in = HTTPServer(("127.0.0.1", 0), Ahead)
        threading.Thread(target=stand_in.serve_forever, daemon=True).start()
        r = subprocess.run([launch, "control", "Kitchen", "volume=0.5", "--sender=127.0.0.1",
                            f"--control-port={stand_in.server_address[1]}",
                            "--secret-file=" + secret], env=env, capture_output=True, text=True,
                           timeout=30)
        stand_in.shutdown()
        check(r.returncode == 0 and len(seen) == 2 and seen[0][1] and seen[1][1] and
              seen[0][0] < -100000 and abs(seen[1][0]) < 2000,
              f"control signs again on the time a stale refusal gives: exit {r.returncode} "
              f"{r.stderr.strip()}; (ms off the sender's clock, verified): {seen}")

        r = cli("Kitchen", "volume=0", "--secret-file=" + secret)
        check(r.returncode == 0, f"control with the secret: exit {r.returncode}: {r.stderr.strip()}")
        time.sleep(1.5)
        quiet = cpu_budget.record(pulse, 1.0)
        check(quiet["rxa"]["silent_windows"] >= quiet["rxa"]["windows"] - 2,
              f"Kitchen's sink is silent after control volume=0 with the secret: {quiet['rxa']}")
        check(still_plays(cpu_budget, pulse, "rxb", quiet) is not None,
              f"Bedroom's sink plays on: {quiet['rxb']}")

        # The secret from the config file: [send]'s when there is no [control] group
        # (control run where the sender runs), and [control]'s before it.
        conf_dir = os.path.join(env["XDG_CONFIG_HOME"], "syncwave")
        os.makedirs(conf_dir, exist_ok=True)
        conf = os.path.join(conf_dir, "syncwave.conf")
        with open(conf, "a") as f:
            f.write(f"\n[send]\nsecret-file={secret}\n")
        r = subprocess.run([launch, "control", "Kitchen", "volume=1", f"--control-port={control}"],
                           env=env, capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, f"control with [send] secret-file: exit {r.returncode}: "
              f"{r.stderr.strip()}")
        time.sleep(1.5)
        back = cpu_budget.record(pulse, 1.0)
        check(still_plays(cpu_budget, pulse, "rxa", back) is not None,
              f"Kitchen plays again: {back['rxa']}")
        with open(conf, "a") as f:
            f.write("\n[control]\nsecret=not the passphrase\n")
        r = cli("Kitchen", "volume=0")
        check(r.returncode == 1 and "does not verify" in r.stderr,
              f"[control] secret= wins over [send]: exit {r.returncode}: {r.stderr.strip()}")
    finally:
        stop_all(procs, pulse, tmp, failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_once_more_after_holes(main))
