#!/usr/bin/env python3
"""syncwave-receiver.service as systemd itself reads it: `systemd-analyze --user verify`.

The generated unit names the installed launcher (BINDIR/syncwave-launch), which need
not exist yet, and `verify` fails on an ExecStart that cannot be executed. So a copy
whose ExecStart names the launcher of this build is verified instead, with the man
page that Documentation= names on MANPATH (`verify` runs `man` for man: links). It
runs without a running systemd: `--user` only needs an XDG_RUNTIME_DIR, a temporary
one here. Every line `verify` prints about the unit is a failure (it exits 0 on an
unknown key or a value it cannot parse: it only says so).

Also checks what the copy does not: ExecStart of the generated unit is exactly
BINDIR/syncwave-launch receive, and the unit is installed for default.target. Prints
the exposure level of `systemd-analyze --user security --offline=yes`.

Exit 0 when all is well, 1 with the reasons otherwise, 77 (skipped) without
systemd-analyze (Debian's systemd package).

  check_user_unit.py --unit build/data/systemd/syncwave-receiver.service \\
      --bindir /usr/local/bin --launcher build/launcher/syncwave-launch \\
      --man-page docs/syncwave-launch.1
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unit", required=True, help="the generated syncwave-receiver.service")
    ap.add_argument("--bindir", required=True, help="where syncwave-launch is installed")
    ap.add_argument("--launcher", required=True, help="syncwave-launch of this build")
    ap.add_argument("--man-page", required=True, help="docs/syncwave-launch.1")
    args = ap.parse_args()

    text = open(args.unit, encoding="utf-8").read()
    lines = [l.strip() for l in text.splitlines()]
    exec_start = [l for l in lines if l.startswith("ExecStart=")]
    expected = "ExecStart=" + os.path.join(args.bindir, "syncwave-launch") + " receive"
    check(exec_start == [expected], "the unit has one %s (has %s)" % (expected, exec_start))
    check("WantedBy=default.target" in lines, "the unit is installed for default.target")
    left = re.findall(r"@[a-z_]+@", text)
    check(not left, "no @variable@ left unreplaced %s" % left)

    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print("SKIP systemd-analyze not found (apt-get install systemd): the unit was not verified")
        return 1 if failures else SKIP

    tmp = tempfile.mkdtemp(prefix="syncwave-unit-")
    try:
        unit = os.path.join(tmp, "units", os.path.basename(args.unit))
        os.makedirs(os.path.dirname(unit))
        with open(unit, "w", encoding="utf-8") as f:
            f.write(text.replace(expected, "ExecStart=" + os.path.abspath(args.launcher) + " receive"))
        man1 = os.path.join(tmp, "man", "man1")
        os.makedirs(man1)
        shutil.copy(args.man_page, man1)
        runtime = os.path.join(tmp, "runtime")
        os.makedirs(runtime, mode=0o700)
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime, HOME=tmp,
                   XDG_CONFIG_HOME=os.path.join(tmp, "config"), MANPATH=os.path.join(tmp, "man"),
                   SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="", LANG="C.UTF-8")
        # systemd-analyze and the man(1) it runs never load SyncWave's code: without the
        # sanitizer runtimes .ci/sanitize-wrapper.sh preloads (their shells' leaks were
        # reported as the unit's lines).
        env.pop("LD_PRELOAD", None)
        man = ["--man=yes"] if shutil.which("man") else ["--man=no"]
        if man == ["--man=no"]:
            print("note: no man(1) here, so Documentation=man:syncwave-launch(1) is not looked up")
        cmd = [analyze, "--user", "verify", "--recursive-errors=no"] + man + [unit]
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=120)
        name = os.path.basename(unit)
        ours = [l for l in p.stdout.splitlines() if name in l]
        others = [l for l in p.stdout.splitlines() if name not in l]
        for l in others:
            print("note (another unit): " + l)
        check(p.returncode == 0 and not ours,
              "systemd-analyze --user verify %s (rc %d)%s" %
              (name, p.returncode, "".join("\n     " + l for l in ours)))

        p = subprocess.run([analyze, "--user", "security", "--offline=yes", unit], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        level = [l for l in p.stdout.splitlines() if "Overall exposure level" in l]
        print("note: " + (level[0].strip() if level else
                          "systemd-analyze security printed no exposure level (rc %d)" % p.returncode))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d checks failed" % len(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
