#!/usr/bin/env python3
"""docs/syncwave-launch.1 is written by hand from docs/launcher.md: this fails when an
option (--name) or a command appears in one and not in the other, so the two stay in
step. Usage: check_man_page.py docs/launcher.md docs/syncwave-launch.1"""

import re
import sys

COMMANDS = ["send", "receive", "devices", "presets", "list", "control", "calibrate"]
# Mentioned in docs/launcher.md or the man page but not options of syncwave-launch
# (`meson test --suite`; `systemctl --user enable --now`, `systemctl --global`).
NOT_LAUNCHER_OPTIONS = {"--suite", "--user", "--now", "--global"}


def options(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]", text))


def main():
    markdown = open(sys.argv[1], encoding="utf-8").read()
    troff = open(sys.argv[2], encoding="utf-8").read()
    # Strip troff escapes: \- is a minus, \fI..\fR font changes, \c continuation.
    text = re.sub(r"\\f[BIRP]", "", troff.replace("\\-", "-")).replace("\\c", "")
    text = re.sub(r"\n\.(B|I|BR|RB|BI|IB|RI|IR) ", " ", text)
    doc, man = options(markdown) - NOT_LAUNCHER_OPTIONS, options(text) - NOT_LAUNCHER_OPTIONS
    ok = True
    for o in sorted(doc - man):
        print("FAIL %s is in docs/launcher.md but not in the man page" % o)
        ok = False
    for o in sorted(man - doc):
        print("FAIL %s is in the man page but not in docs/launcher.md" % o)
        ok = False
    for c in COMMANDS:
        if not re.search(r"^\.SS %s$" % c, troff, re.M):
            print("FAIL the man page has no section for the command %s" % c)
            ok = False
    print("%d options in both" % len(doc & man))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
