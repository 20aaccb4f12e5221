#!/usr/bin/env python3
"""syncwave-receiver.service under a real systemd user manager, as on a headless box.

A user manager (`systemd --user`) is started for the user nobody with a temporary
HOME, XDG_RUNTIME_DIR and XDG_CONFIG_HOME; the sound server is whichever the system
enables for users (pipewire-pulse.socket or pulseaudio.socket in
/etc/systemd/user/sockets.target.wants), socket-activated by the first client. Then:

  - `syncwave-launch receive --name=... --device=NULL_SINK ... --save-config --print`
    writes the receiver's config, as docs/launcher.md says;
  - `systemctl --user enable --now syncwave-receiver` starts the unit: the generated
    one, its ExecStart pointed at this build's launcher and a drop-in giving the
    build's plugin and a log file (nothing else is changed, the hardening included);
  - a tone sent from 127.0.0.1 plays into the null sink (its monitor, recorded with
    parec, is at the tone's level), with NoNewPrivs and a seccomp filter in effect;
  - killed with SIGKILL, the receiver is started again after RestartSec;
  - `systemctl --user stop` ends it cleanly (exit 0);
  - with a bad value in the config file it exits 2 and is not restarted.

The user manager refuses to start unless /run/systemd/system exists (a system booted
with systemd): it gets a private mount namespace in which a tmpfs on /run/systemd has
one, so nothing else on the machine sees a change. It also needs a cgroup of its own:
a child of this process's, owned by nobody, removed afterwards. That takes root, so
without root (or unshare, nsenter, setpriv, systemd, pactl, parec) the test is skipped
(77). It is skipped under the sanitizers too: LeakSanitizer's exit-time check needs
ptrace, which the unit's SystemCallFilter=@system-service refuses.

  test_user_service.py --unit build/data/systemd/syncwave-receiver.service \\
      --bindir /usr/local/bin --launcher build/launcher/syncwave-launch \\
      --plugin-dir build/gst-plugin
"""

import argparse
import array
import math
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
SINK = "syncwave_unit_test"
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def skip(why):
    print("SKIP " + why, flush=True)
    return SKIP


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rms_dbfs(data):
    a = array.array("f")
    a.frombytes(data[: len(data) // 4 * 4])
    ms = sum(x * x for x in a) / len(a) if a else 0.0
    return 10 * math.log10(ms) if ms > 0 else -200.0


def cgroup_dirs():
    """This process's cgroup in the hierarchies a user manager uses: the unified one
    (cgroup v2) and, on a hybrid system, the named v1 hierarchy name=systemd."""
    mounts = []
    for line in open("/proc/self/mountinfo"):
        left, right = line.split(" - ", 1)
        fstype, _, superopts = right.split()[:3]
        mounts.append((fstype, left.split()[4], superopts.split(",")))
    dirs = []
    for line in open("/proc/self/cgroup"):
        hid, controllers, path = line.rstrip("\n").split(":", 2)
        if hid == "0" and controllers == "":
            points = [m for t, m, _ in mounts if t == "cgroup2"]
        elif "name=systemd" in controllers.split(","):
            points = [m for t, m, o in mounts if t == "cgroup" and "name=systemd" in o]
        else:
            continue
        if points:
            dirs.append(os.path.join(points[0], path.lstrip("/")))
    return dirs


def remove_cgroup(top):
    """Kills what is left in a cgroup tree (only this test's processes) and removes it."""
    if not os.path.isdir(top):
        return
    for d, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
        try:
            for pid in open(os.path.join(d, "cgroup.procs")).read().split():
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    for _ in range(50):
        try:
            for d, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                os.rmdir(d)
            return
        except OSError:
            time.sleep(0.1)
    print("note: could not remove the cgroup " + top)


class UserSession:
    """A user manager for one user, and commands run as that user next to it."""

    def __init__(self, tmp, user, systemd):
        self.tmp, self.user, self.systemd = tmp, user, systemd
        self.home = os.path.join(tmp, "home")
        self.runtime = os.path.join(tmp, "runtime")
        self.config = os.path.join(tmp, "config")
        self.cgroups = []
        self.manager = None
        self.env = ["HOME=" + self.home, "USER=" + user.pw_name, "LOGNAME=" + user.pw_name,
                    "XDG_RUNTIME_DIR=" + self.runtime, "XDG_CONFIG_HOME=" + self.config,
                    "PATH=/usr/bin:/bin", "LANG=C.UTF-8"]

    def as_user(self):
        return ["setpriv", "--reuid=%d" % self.user.pw_uid, "--regid=%d" % self.user.pw_gid,
                "--init-groups", "env", "-i"] + self.env

    def start(self):
        """None when running, else why not."""
        for d in (self.home, self.runtime, self.config):
            os.makedirs(d, mode=0o700)
            os.chown(d, self.user.pw_uid, self.user.pw_gid)
        for parent in cgroup_dirs():
            d = os.path.join(parent, "syncwave-user-service-%d" % os.getpid())
            try:
                os.mkdir(d)
            except OSError as e:
                return "cannot create a cgroup under %s (%s)" % (parent, e)
            self.cgroups.append(d)
            for f in os.listdir(d):
                try:
                    os.chown(os.path.join(d, f), self.user.pw_uid, self.user.pw_gid)
                except OSError:
                    pass
            os.chown(d, self.user.pw_uid, self.user.pw_gid)
        if not self.cgroups:
            return "no cgroup hierarchy for a user manager in /proc/self/cgroup"
        script = (
            "mount -t tmpfs -o mode=755 tmpfs /run/systemd || exit 3\n"
            "mkdir /run/systemd/system /run/systemd/seats /run/systemd/sessions /run/systemd/users\n"
            + "".join("echo $$ > %s/cgroup.procs || exit 4\n" % d for d in self.cgroups)
            + 'exec "$@"\n')
        self.log = open(os.path.join(self.tmp, "manager.log"), "w")
        self.manager = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
            + self.as_user() + [self.systemd, "--user"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        state = ""
        for _ in range(100):
            if self.manager.poll() is not None:
                return "the user manager exited (%d): %s" % (
                    self.manager.returncode, open(self.log.name).read().strip()[-300:])
            if os.path.exists(os.path.join(self.runtime, "systemd", "private")):
                state = self.systemctl("is-system-running").stdout.strip()
                if state in ("running", "degraded"):
                    return None
            time.sleep(0.2)
        return "the user manager did not come up (state %r)" % state

    def run(self, cmd, timeout=30, extra_env=()):
        return subprocess.run(["nsenter", "-t", str(self.manager.pid), "-m"] + self.as_user()
                              + list(extra_env) + cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)

    def systemctl(self, *args):
        p = self.run(["systemctl", "--user", "--no-pager"] + list(args))
        p.stdout, p.stderr = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        return p

    def show(self, unit, *props):
        out = self.systemctl("show", unit, "-p", ",".join(props)).stdout
        return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)

    def stop(self):
        if self.manager and self.manager.poll() is None:
            self.manager.terminate()
            try:
                self.manager.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.manager.kill()
                self.manager.wait()
        for d in self.cgroups:
            remove_cgroup(d)


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unit", required=True, help="the generated syncwave-receiver.service")
    ap.add_argument("--bindir", required=True, help="where syncwave-launch is installed")
    ap.add_argument("--launcher", required=True, help="syncwave-launch of this build")
    ap.add_argument("--plugin-dir", required=True, help="the build's gst-plugin directory")
    args = ap.parse_args()

    if os.environ.get("SYNCWAVE_SANITIZER_PRELOAD") or "detect_leaks=1" in os.environ.get("ASAN_OPTIONS", ""):
        return skip("under the sanitizers: LeakSanitizer's exit-time check needs ptrace, "
                    "which the unit's SystemCallFilter=@system-service refuses")
    if os.geteuid() != 0:
        return skip("needs root: the user manager gets a mount namespace and a cgroup of its own")
    missing = [p for p in ("unshare", "nsenter", "setpriv", "pactl", "parec") if not shutil.which(p)]
    systemd = next((p for p in ("/usr/lib/systemd/systemd", "/lib/systemd/systemd")
                    if os.access(p, os.X_OK)), None)
    if missing or not systemd:
        return skip("missing: " + " ".join(missing + ([] if systemd else ["systemd"])))
    if not os.path.isdir("/run/systemd"):
        return skip("no /run/systemd to put a private /run/systemd/system on")
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        return skip("no user nobody")

    tmp = tempfile.mkdtemp(prefix="syncwave-user-service-")
    os.chmod(tmp, 0o755)
    session = UserSession(tmp, user, systemd)
    sender = None
    try:
        why = session.start()
        if why:
            return skip(why)
        print("ok   user manager for %s running" % user.pw_name, flush=True)
        p = session.run(["pactl", "info"], timeout=20)
        server = [l for l in p.stdout.decode(errors="replace").splitlines() if l.startswith("Server Name")]
        if p.returncode != 0 or not server:
            return skip("no sound server starts for the user (pipewire-pulse.socket or "
                        "pulseaudio.socket enabled in /etc/systemd/user): %s" % p.stderr.decode()[-200:])
        print("ok   the sound server: " + server[0], flush=True)
        p = session.run(["pactl", "load-module", "module-null-sink", "sink_name=" + SINK,
                         "format=float32le", "rate=48000", "channels=2"])
        if not check(p.returncode == 0, "a null sink %s (%s)" % (SINK, p.stderr.decode().strip())):
            return 1

        # The unit: ExecStart on this build's launcher; a drop-in for what only a test
        # needs (the build's plugin, no system bus so nothing is announced on the
        # network, a log file as there is no journal).
        units = os.path.join(session.config, "systemd", "user")
        os.makedirs(units + "/syncwave-receiver.service.d")
        installed = "ExecStart=" + os.path.join(args.bindir, "syncwave-launch") + " receive"
        text = open(args.unit, encoding="utf-8").read()
        check(installed in text, "the unit runs " + installed)
        with open(os.path.join(units, "syncwave-receiver.service"), "w") as f:
            f.write(text.replace(installed, "ExecStart=" + os.path.abspath(args.launcher) + " receive"))
        log = os.path.join(session.home, "receiver.log")  # written by the user manager
        gst_env = ["GST_PLUGIN_PATH=" + os.path.abspath(args.plugin_dir),
                   "GST_REGISTRY_1_0=" + os.path.join(session.home, "registry.bin"),
                   "DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + os.path.join(tmp, "no-system-bus")]
        with open(os.path.join(units, "syncwave-receiver.service.d", "test.conf"), "w") as f:
            f.write("[Service]\n" + "".join("Environment=%s\n" % e for e in gst_env)
                    + "StandardOutput=append:%s\nStandardError=append:%s\n" % (log, log))
        for d, _, fs in os.walk(session.config):
            for n in [d] + [os.path.join(d, f) for f in fs]:
                os.chown(n, user.pw_uid, user.pw_gid)

        port = free_udp_port()
        p = session.run([os.path.abspath(args.launcher), "receive", "--name=unit-test",
                         "--device=" + SINK, "--port=%d" % port, "--clock=system", "--control-port=0",
                         "--save-config", "--print"], extra_env=gst_env)
        conf = os.path.join(session.config, "syncwave", "syncwave.conf")
        check(p.returncode == 0 and os.path.exists(conf),
              "receive ... --save-config --print writes %s (rc %d) %s" %
              (conf, p.returncode, p.stderr.decode().strip()[-200:]))

        p = session.systemctl("enable", "--now", "syncwave-receiver")
        check(p.returncode == 0, "systemctl --user enable --now syncwave-receiver %s" % p.stderr.strip())
        running = wait_for(lambda: session.show("syncwave-receiver", "SubState")
                           .get("SubState") == "running" and os.path.exists(log)
                           and os.path.getsize(log) > 0, 15)
        check(running, "the receiver runs: %s" % session.show("syncwave-receiver", "ActiveState",
                                                              "SubState", "ExecMainStatus"))

        sender_env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "sender-config"))
        sender = subprocess.Popen([args.launcher, "send", "--source=test", "--codec=opus",
                                   "--target=127.0.0.1:%d" % port, "--clock-port=0",
                                   "--control-port=0", "--duration=9", "--quiet"], env=sender_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(3.5)
        p = session.run(["timeout", "3", "parec", "-d", SINK + ".monitor", "--raw",
                         "--format=float32le", "--rate=48000", "--channels=2"])
        seconds = len(p.stdout) / (4 * 2 * 48000)
        level = rms_dbfs(p.stdout)
        # The tone is a sine at amplitude 0.5: -9 dBFS RMS. Silence is below -100.
        check(seconds > 0.5 and level > -30,
              "the tone plays through the unit into %s: %.1f dBFS RMS over %.1f s" % (SINK, level, seconds))

        pid = session.show("syncwave-receiver", "MainPID").get("MainPID", "0")
        status = open("/proc/%s/status" % pid).read() if pid != "0" else ""
        check("NoNewPrivs:\t1" in status and "Seccomp:\t2" in status,
              "the receiver (pid %s) runs with NoNewPrivs and a seccomp filter" % pid)
        sender.wait(timeout=30)
        check(sender.returncode == 0, "the sender ran (rc %d)" % sender.returncode)

        if pid != "0":
            os.kill(int(pid), signal.SIGKILL)
        restarted = wait_for(lambda: (lambda s: s.get("NRestarts") == "1" and s.get("SubState") == "running"
                                      and s.get("MainPID") not in ("0", pid))(
            session.show("syncwave-receiver", "NRestarts", "SubState", "MainPID")), 12)
        check(restarted, "killed, the receiver is started again after RestartSec: %s" %
              session.show("syncwave-receiver", "NRestarts", "SubState", "MainPID"))

        t0 = time.monotonic()
        p = session.systemctl("stop", "syncwave-receiver")
        s = session.show("syncwave-receiver", "ActiveState", "Result", "ExecMainStatus")
        # Exit 0 from its SIGTERM handler; a receiver stopped right after its restart, before
        # it installed that handler, ends by the signal itself (15), which systemd also
        # counts as a clean stop (Result=success; seen once in a suite run).
        check(p.returncode == 0 and s.get("ActiveState") == "inactive" and
              s.get("Result") == "success" and s.get("ExecMainStatus") in ("0", "15"),
              "systemctl --user stop: exit 0 in %.1f s %s" % (time.monotonic() - t0, s))

        with open(conf, "a") as f:
            f.write("\nlatency=soon\n")
        session.systemctl("start", "syncwave-receiver")
        wait_for(lambda: session.show("syncwave-receiver", "ActiveState").get("ActiveState") == "failed", 10)
        time.sleep(6)  # longer than RestartSec
        s = session.show("syncwave-receiver", "ActiveState", "ExecMainStatus", "NRestarts")
        check(s == {"ActiveState": "failed", "ExecMainStatus": "2", "NRestarts": "0"},
              "a bad config file value: exit 2, not restarted %s" % s)
        if failures and os.path.exists(log):
            print("receiver log (the end):\n" + "".join(open(log).readlines()[-15:]))
    finally:
        if sender and sender.poll() is None:
            sender.kill()
            sender.wait()
        session.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d checks failed" % len(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
