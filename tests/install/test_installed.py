#!/usr/bin/env python3
"""Installs the build into a fresh temporary root and runs what was installed.

  meson install --no-rebuild --destdir ROOT      (the build's own prefix, under ROOT)

then, with only PATH (ROOT's bindir first), GStreamer's standard system search path
for that root (GST_PLUGIN_SYSTEM_PATH_1_0 = ROOT's plugin directory, then the
system's for audiotestsrc, udpsrc and the rest), the preset directory of that root
and a private registry, with no GST_PLUGIN_PATH:

  - every installed file is there, and the plugin is where GStreamer looks;
  - with --user-unit-dir, syncwave-receiver.service is in that directory and its
    ExecStart is the installed launcher (`syncwave-launch receive`), which exists;
  - `syncwave-launch presets` lists the shipped presets from ROOT;
  - `syncwave-launch send --source=test --target=127.0.0.1 --print` prints a
    gst-launch-1.0 line;
  - gst-inspect-1.0 finds every element, from ROOT's copy of the plugin;
  - the installed launcher streams a tone to an installed receiver on 127.0.0.1
    (send and receive --silent --stats-json), which counts the packets;
  - `meson uninstall` (the build's uninstall target) removes every file again.

The build's install log (meson-logs/install-log.txt, what `ninja uninstall` reads) is
restored afterwards, so a real `meson install` made before the tests can still be
uninstalled. Exit 0 on success, 1 with the reasons otherwise.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ELEMENTS = ["syncwavepay", "syncwavedepay", "syncwavejitter", "syncwavesink", "syncwavepulsesink"]
PRESETS = ["gaming", "lan-lowlatency", "movie", "wifi"]
# What the sanitizer run (.ci/sanitize.sh) needs to pass on to every process.
PASS_THROUGH = ["LD_PRELOAD", "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "GST_REGISTRY_FORK",
                "G_SLICE", "G_DEBUG", "GST_DEBUG", "LANG", "LC_ALL", "TMPDIR"]

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def under(root, path):
    return os.path.join(root, path.lstrip("/"))


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, env, timeout=300):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meson", required=True)
    ap.add_argument("--build-root", required=True)
    ap.add_argument("--system-plugins-dir", required=True)
    ap.add_argument("--pulse", action="store_true", help="the plugin has syncwavepulsesink")
    ap.add_argument("--user-unit-dir", help="where syncwave-receiver.service is installed (-Dsystemd)")
    args = ap.parse_args()
    build = os.path.abspath(args.build_root)
    elements = ELEMENTS if args.pulse else ELEMENTS[:-1]

    tmp = tempfile.mkdtemp(prefix="syncwave-install-")
    root = os.path.join(tmp, "root")
    log = os.path.join(build, "meson-logs", "install-log.txt")
    saved_log = os.path.join(tmp, "install-log.txt.saved")
    had_log = os.path.exists(log)
    if had_log:
        shutil.copy2(log, saved_log)
    try:
        installed = json.loads(subprocess.run(
            [args.meson, "introspect", "--installed", build], check=True,
            stdout=subprocess.PIPE, text=True).stdout)
        p = subprocess.run([args.meson, "install", "-C", build, "--no-rebuild", "--quiet",
                            "--destdir", root], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if not check(p.returncode == 0, "meson install --destdir " + root):
            print(p.stdout)
            return 1

        dest = {os.path.basename(src): dst for src, dst in installed.items()}
        plugin = next((d for d in installed.values() if "gstsyncwave" in os.path.basename(d)), None)
        launcher = next((d for d in installed.values() if os.path.basename(d) == "syncwave-launch"), None)
        presets_dir = dest.get("pipelines")
        check(plugin is not None and launcher is not None and presets_dir is not None,
              "the plugin, the launcher and the presets are installed")
        check(any(d.endswith("/man1/syncwave-launch.1") for d in installed.values()),
              "the man page goes to share/man/man1")
        for src, dst in installed.items():
            check(os.path.exists(under(root, dst)), "installed: " + dst)
        units = [d for d in installed.values() if os.path.basename(d) == "syncwave-receiver.service"]
        if args.user_unit_dir:
            unit = os.path.join(args.user_unit_dir, "syncwave-receiver.service")
            check(units == [unit], "the systemd user unit goes to %s (%s)" % (unit, units))
            if launcher and os.path.exists(under(root, unit)):
                exec_start = [l.strip() for l in open(under(root, unit)) if l.startswith("ExecStart=")]
                check(exec_start == ["ExecStart=%s receive" % launcher],
                      "the unit runs the installed launcher: %s" % exec_start)
                check(os.access(under(root, launcher), os.X_OK),
                      "ExecStart's program is installed, executable: " + under(root, launcher))
        else:
            check(not units, "no systemd unit installed (-Dsystemd off): %s" % units)
        if failures:
            return 1
        plugin_dir = os.path.dirname(plugin)

        env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
        env.update({
            "PATH": under(root, os.path.dirname(launcher)) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.path.join(tmp, "home"),
            "XDG_CONFIG_HOME": os.path.join(tmp, "config"),
            "XDG_CACHE_HOME": os.path.join(tmp, "cache"),
            "GST_PLUGIN_SYSTEM_PATH_1_0": under(root, plugin_dir) + os.pathsep + args.system_plugins_dir,
            "GST_REGISTRY_1_0": os.path.join(tmp, "registry.bin"),
            # The compiled-in preset directory is PREFIX/share/syncwave; under ROOT here.
            "SYNCWAVE_PIPELINES_DIR": under(root, presets_dir),
        })
        os.makedirs(env["HOME"])
        exe = shutil.which("syncwave-launch", path=env["PATH"])
        check(exe == under(root, launcher), "syncwave-launch on PATH is the installed one: %s" % exe)

        rc, out, err = run(["syncwave-launch", "presets", "--verbose"], env)
        check(rc == 0 and all(("\n" + n + " ") in ("\n" + out) for n in PRESETS),
              "syncwave-launch presets lists %s (rc %d) %s" % (", ".join(PRESETS), rc, err.strip()))
        files = [l.split(":", 1)[1].strip() for l in out.splitlines() if l.strip().startswith("file:")]
        check(files and all(f.startswith(under(root, presets_dir)) for f in files),
              "the presets come from the installed directory")

        rc, out, err = run(["syncwave-launch", "send", "--source=test", "--target=127.0.0.1",
                            "--print"], env)
        check(rc == 0 and out.startswith("gst-launch-1.0 ") and "syncwavepay" in out,
              "syncwave-launch send --source=test --target=127.0.0.1 --print (rc %d) %s" %
              (rc, (out + err).strip()[:300]))

        rc, out, err = run(["gst-inspect-1.0", "syncwave"], env)
        check(rc == 0 and under(root, plugin) in out,
              "gst-inspect-1.0 syncwave finds the installed plugin (rc %d)" % rc)
        for e in elements:
            rc, out, err = run(["gst-inspect-1.0", e], env)
            check(rc == 0, "gst-inspect-1.0 %s (rc %d) %s" % (e, rc, err.strip()[:200]))

        # The installed pair, end to end on 127.0.0.1: a tone, raw, no clock server.
        port = free_udp_port()
        stats = os.path.join(tmp, "stats.jsonl")
        rx = subprocess.Popen(["syncwave-launch", "receive", "--silent", "--port=%d" % port,
                               "--clock=system", "--duration=6", "--quiet",
                               "--stats-json=" + stats], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        rc_tx, out_tx, err_tx = run(["syncwave-launch", "send", "--source=test", "--codec=raw",
                                     "--target=127.0.0.1:%d" % port, "--clock-port=0",
                                     "--duration=3", "--quiet"], env)
        try:
            out_rx, err_rx = rx.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            rx.kill()
            out_rx, err_rx = rx.communicate()
        check(rc_tx == 0, "installed send runs (rc %d) %s" % (rc_tx, err_tx.strip()[:300]))
        check(rx.returncode == 0, "installed receive runs (rc %s) %s" % (rx.returncode, err_rx.strip()[:300]))
        packets = 0
        if os.path.exists(stats):
            for line in open(stats):
                try:
                    packets = max(packets, json.loads(line).get("packets") or 0)
                except ValueError:
                    pass
        check(packets > 50, "the installed receiver counted %d packets from the installed sender" % packets)

        # `ninja uninstall` runs exactly this; called directly so no ninja regenerates anything.
        p = subprocess.run([args.meson, "--internal", "uninstall"], cwd=build,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        left = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs] if os.path.exists(root) else []
        check(p.returncode == 0 and not left,
              "meson uninstall removes every installed file (left: %s)" % left[:5])
    finally:
        if had_log:
            shutil.copy2(saved_log, log)
        elif os.path.exists(log):
            os.remove(log)
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d checks failed" % len(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
