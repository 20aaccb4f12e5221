#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Which figures of docs/benchmarks.md describe the code they sit next to (issue 16).

Every section of docs/benchmarks.md with figures carries one provenance line, written
by the runner (report.py) from the run that measured it:

    Measured on 4f710ea1b2c3, 2026-12-03 10:12 UTC.
    Measured on 4f710ea1b2c3+dirty, 2026-12-03 10:12 UTC.   (uncommitted core/elements)
    Measured on unknown code, 2026-11-25 01:35 UTC.         (runs before the commit was kept)

The commit is the checkout's HEAD when the section was measured. A section is stale when
its commit is unknown, not in this repository, had uncommitted changes to the code, or
when a commit touching gst-plugin/core/ or gst-plugin/elements/ is in one tree and not
the other (the code changed since, or the run measured changes this tree lacks).

    tests/bench/run.sh --check-stale [--docs=PATH] [--warn-only]
    python3 tests/bench/bench_stale.py [--docs=PATH] [--root=DIR] [--warn-only]

prints every section with figures and its state; exit 1 when one is stale (0 with
--warn-only), 2 when a section with figures has no provenance line or the file cannot
be read, 77 (skipped) outside a git checkout.
"""

import os
import re
import subprocess
import sys

SRC_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CODE_PATHS = ["gst-plugin/core", "gst-plugin/elements"]
PROVENANCE_RE = re.compile(
    r"^Measured on (?P<code>unknown code|[0-9a-f]{7,40}(?:\+dirty)?), (?P<date>[^.]+?)\.")


# ---------------------------------------------------------------- git


def git(root, *args):
    """stdout of a git command in root, or None when it fails (no git, no checkout)."""
    try:
        p = subprocess.run(["git", "-C", root] + list(args), capture_output=True, text=True,
                           timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def code_state(root=SRC_ROOT):
    """The code a run measures: {"head" (12 hex), "code_commit", "code_date" (the last
    commit touching CODE_PATHS), "dirty" (CODE_PATHS have uncommitted changes)}, or None
    outside a git checkout."""
    head = git(root, "rev-parse", "--short=12", "HEAD")
    if not head:
        return None
    last = (git(root, "log", "-1", "--format=%h %cs", "--", *CODE_PATHS) or "").split()
    dirty = git(root, "status", "--porcelain", "--", *CODE_PATHS)
    return {"head": head, "code_commit": last[0] if last else None,
            "code_date": last[1] if len(last) > 1 else None, "dirty": bool(dirty)}


def provenance(state):
    """What a section's line says of its code: "4f710ea1b2c3", "...+dirty" or None."""
    if not state or not state.get("head"):
        return None
    return state["head"] + ("+dirty" if state.get("dirty") else "")


def verdict(code, root=SRC_ROOT):
    """(stale, reason) for figures measured on `code` (a provenance string or None),
    against HEAD of the checkout at root."""
    if not code or code == "unknown code":
        return True, "the code measured was not recorded"
    commit = code.split("+")[0]
    if git(root, "rev-parse", "--verify", "--quiet", commit + "^{commit}") is None:
        return True, f"commit {commit} is not in this repository"
    newer = (git(root, "rev-list", f"{commit}..HEAD", "--", *CODE_PATHS) or "").split()
    if newer:
        last = git(root, "log", "-1", "--format=%h %cs", newer[0]) or newer[0][:12]
        return True, (f"{len(newer)} commit(s) changed gst-plugin/core or gst-plugin/elements "
                      f"since (the last: {last})")
    only_there = (git(root, "rev-list", f"HEAD..{commit}", "--", *CODE_PATHS) or "").split()
    if only_there:
        return True, (f"measured on {len(only_there)} change(s) to gst-plugin/core or "
                      "gst-plugin/elements that this tree does not have")
    if code.endswith("+dirty"):
        return True, "measured with uncommitted changes to gst-plugin/core or elements"
    return False, "measured on the code of this tree"


def changes_since(date_text, root=SRC_ROOT):
    """Commits touching CODE_PATHS committed after a "YYYY-MM-DD HH:MM UTC" date (a hint
    for figures of unknown code), or None."""
    m = re.match(r"(\d{4}-\d\d-\d\d)(?: (\d\d:\d\d))?", date_text or "")
    if not m:
        return None
    since = m.group(1) + (" " + m.group(2) if m.group(2) else "") + " +0000"
    out = git(root, "rev-list", f"--since={since}", "HEAD", "--", *CODE_PATHS)
    return None if out is None else len(out.split())


# ---------------------------------------------------------------- the document


def parse_sections(text):
    """Sections (## and ### headings) of a markdown text: [{"title", "line", "has_table",
    "provenance": {"code", "date"} or None}]. A section's own text ends at the next
    heading of any level."""
    sections = []
    cur = None
    in_code = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        m = re.match(r"^(#{2,3}) (.*)$", line)
        if m:
            cur = {"title": m.group(2).strip(), "line": n, "has_table": False,
                   "provenance": None}
            sections.append(cur)
            continue
        if cur is None:
            continue
        if re.match(r"^\|(\s*:?-{3,}:?\s*\|)+\s*$", line):
            cur["has_table"] = True
        p = PROVENANCE_RE.match(line)
        if p and cur["provenance"] is None:
            cur["provenance"] = {"code": p.group("code"), "date": p.group("date")}
    return sections


def check(text, root=SRC_ROOT, judge=verdict):
    """[{"title", "line", "code", "date", "stale", "reason"}] for every section with
    figures (a table or a provenance line); a table without provenance is reported with
    stale None (the document is malformed)."""
    out = []
    for s in parse_sections(text):
        if not s["has_table"] and not s["provenance"]:
            continue
        if not s["provenance"]:
            out.append({"title": s["title"], "line": s["line"], "code": None, "date": None,
                        "stale": None, "reason": "figures without a 'Measured on' line"})
            continue
        code, date = s["provenance"]["code"], s["provenance"]["date"]
        stale, reason = judge(code, root)
        out.append({"title": s["title"], "line": s["line"], "code": code, "date": date,
                    "stale": stale, "reason": reason})
    return out


def main(argv):
    docs = os.path.join(SRC_ROOT, "docs", "benchmarks.md")
    root = SRC_ROOT
    warn_only = False
    for a in argv:
        if a.startswith("--docs="):
            docs = a.split("=", 1)[1]
        elif a.startswith("--root="):
            root = a.split("=", 1)[1]
        elif a == "--warn-only":
            warn_only = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            print(f"unknown argument {a}", file=sys.stderr)
            return 2
    if git(root, "rev-parse", "HEAD") is None:
        print(f"{root} is not a git checkout: cannot tell which figures are stale")
        return 77
    try:
        with open(docs) as f:
            text = f.read()
    except OSError as e:
        print(f"cannot read {docs}: {e}", file=sys.stderr)
        return 2
    rows = check(text, root)
    state = code_state(root)
    print(f"{docs}: HEAD {state['head']}, gst-plugin/core or elements last changed in "
          f"{state['code_commit']} ({state['code_date']})"
          + ("; they have uncommitted changes now (figures are judged against HEAD)"
             if state["dirty"] else ""))
    malformed = [r for r in rows if r["stale"] is None]
    stale = [r for r in rows if r["stale"]]
    for r in rows:
        mark = "MALFORMED" if r["stale"] is None else "STALE" if r["stale"] else "ok"
        extra = ""
        if r["stale"] and r["code"] == "unknown code":
            n = changes_since(r["date"], root)
            if n is not None:
                extra = f"; {n} commit(s) touched core/ or elements/ after {r['date']}"
        print(f"{mark:9} line {r['line']}: {r['title']} — measured on {r['code']}, "
              f"{r['date']}: {r['reason']}{extra}")
    print(f"{len(rows)} section(s) with figures, {len(stale)} stale, {len(malformed)} "
          "without provenance")
    if malformed:
        return 2
    if stale and not warn_only:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
