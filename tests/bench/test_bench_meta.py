#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests of what the benchmark runner records of a run (issue 16): pactl's output,
the sink chain, /proc/stat, bench-render's margin line, and which figures are stale
(bench_stale.py against throw-away git repositories). No sound server, no build:
run by `meson test` (bench-meta-unit) in well under a second."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_env  # noqa: E402
import bench_stale  # noqa: E402
import report  # noqa: E402

PACTL_INFO = """Server String: unix:/tmp/pa/rt/native
Library Protocol Version: 35
Server Protocol Version: 35
Is Local: yes
Client Index: 1
Tile Size: 65472
User Name: root
Host Name: vm
Server Name: pulseaudio
Server Version: 16.1
Default Sample Specification: s16le 2ch 44100Hz
Default Channel Map: front-left,front-right
Default Sink: bench
Default Source: bench.monitor
Cookie: 1d4e:0538
"""

PACTL_INFO_PIPEWIRE = """Server String: /run/user/1000/pulse/native
Library Protocol Version: 35
Server Protocol Version: 35
Server Name: PulseAudio (on PipeWire 1.2.7)
Server Version: 15.0.0
Default Sink: alsa_output.pci-0000_00_1f.3.analog-stereo
"""

# `LC_ALL=C pactl list sinks` of PulseAudio 16.1: a null sink and a remap sink on it.
PACTL_SINKS = """Sink #0
\tState: RUNNING
\tName: bench
\tDescription: Null Output
\tDriver: module-null-sink.c
\tSample Specification: s16le 2ch 48000Hz
\tChannel Map: front-left,front-right
\tOwner Module: 1
\tMute: no
\tVolume: front-left: 65536 / 100% / 0.00 dB,   front-right: 65536 / 100% / 0.00 dB
\t        balance 0.00
\tBase Volume: 65536 / 100% / 0.00 dB
\tMonitor Source: bench.monitor
\tLatency: 1980897 usec, configured 2000000 usec
\tFlags: DECIBEL_VOLUME LATENCY SET_FORMATS 
\tProperties:
\t\tdevice.description = "Null Output"
\t\tdevice.class = "abstract"
\t\tdevice.icon_name = "audio-card"
\tFormats:
\t\tpcm

Sink #1
\tState: IDLE
\tName: rxa
\tDescription: Remapped Null Output
\tDriver: module-remap-sink.c
\tSample Specification: s16le 1ch 48000Hz
\tChannel Map: mono
\tOwner Module: 2
\tMute: no
\tVolume: mono: 65536 / 100% / 0.00 dB
\t        balance 0.00
\tBase Volume: 65536 / 100% / 0.00 dB
\tMonitor Source: rxa.monitor
\tLatency: 1980860 usec, configured 2000000 usec
\tFlags: DECIBEL_VOLUME LATENCY 
\tProperties:
\t\tdevice.master_device = "bench"
\t\tdevice.class = "filter"
\t\tdevice.description = "Remapped Null Output"
\t\tdevice.icon_name = "audio-card"
\tFormats:
\t\tpcm

Sink #2
\tState: IDLE
\tName: eq
\tDescription: LADSPA on rxa
\tDriver: module-ladspa-sink.c
\tSample Specification: float32le 1ch 48000Hz
\tChannel Map: mono
\tOwner Module: 3
\tProperties:
\t\tdevice.master_device = "rxa"
\t\tdevice.class = "filter"
\tFormats:
\t\tpcm
"""

# pipewire-pulse lists its sinks with Driver "PipeWire" and PipeWire's node properties.
PACTL_SINKS_PIPEWIRE = """Sink #34
\tState: SUSPENDED
\tName: speakers
\tDescription: Speakers
\tDriver: PipeWire
\tSample Specification: float32le 2ch 48000Hz
\tChannel Map: front-left,front-right
\tOwner Module: 4294967295
\tProperties:
\t\tfactory.name = "support.null-audio-sink"
\t\tmedia.class = "Audio/Sink"
\t\tnode.name = "speakers"
"""


class PactlTest(unittest.TestCase):
    def test_info(self):
        info = bench_env.parse_pactl_info(PACTL_INFO)
        self.assertEqual(info["server_name"], "pulseaudio")
        self.assertEqual(info["server_version"], "16.1")
        self.assertEqual(info["default_sink"], "bench")
        self.assertEqual(bench_env.server_text(info), "pulseaudio 16.1")

    def test_info_pipewire(self):
        info = bench_env.parse_pactl_info(PACTL_INFO_PIPEWIRE)
        self.assertEqual(bench_env.server_text(info), "PulseAudio (on PipeWire 1.2.7) 15.0.0")

    def test_info_empty(self):
        self.assertIsNone(bench_env.server_text(bench_env.parse_pactl_info("")))

    def test_sinks(self):
        sinks = bench_env.parse_pactl_sinks(PACTL_SINKS)
        self.assertEqual([s["name"] for s in sinks], ["bench", "rxa", "eq"])
        self.assertEqual(sinks[1]["index"], 1)
        self.assertEqual(sinks[1]["driver"], "module-remap-sink.c")
        self.assertEqual(sinks[1]["sample_spec"], "s16le 1ch 48000Hz")
        self.assertEqual(sinks[1]["properties"]["device.master_device"], "bench")
        # Lines of Volume's continuation and Formats are not properties.
        self.assertNotIn("pcm", sinks[0]["properties"])
        self.assertEqual(sinks[0]["properties"]["device.class"], "abstract")

    def test_chain_direct_and_layered(self):
        sinks = bench_env.parse_pactl_sinks(PACTL_SINKS)
        self.assertEqual(bench_env.sink_chain(sinks, "bench"),
                         [{"name": "bench", "kind": "module-null-sink", "channels": "2ch"}])
        chain = bench_env.sink_chain(sinks, "eq")
        self.assertEqual([c["name"] for c in chain], ["eq", "rxa", "bench"])
        self.assertEqual(bench_env.chain_text(chain),
                         "eq (module-ladspa-sink, 1ch) → rxa (module-remap-sink, 1ch) → "
                         "bench (module-null-sink, 2ch)")

    def test_chain_unknown_and_loop(self):
        sinks = bench_env.parse_pactl_sinks(PACTL_SINKS)
        self.assertEqual(bench_env.sink_chain(sinks, "nope"),
                         [{"name": "nope", "kind": "?", "channels": None}])
        looped = [{"name": "a", "driver": "module-remap-sink.c", "sample_spec": None,
                   "properties": {"device.master_device": "b"}},
                  {"name": "b", "driver": "module-remap-sink.c", "sample_spec": None,
                   "properties": {"device.master_device": "a"}}]
        self.assertEqual([c["name"] for c in bench_env.sink_chain(looped, "a")], ["a", "b"])

    def test_chain_pipewire(self):
        sinks = bench_env.parse_pactl_sinks(PACTL_SINKS_PIPEWIRE)
        self.assertEqual(bench_env.chain_text(bench_env.sink_chain(sinks, "speakers")),
                         "speakers (PipeWire: support.null-audio-sink, 2ch)")

    def test_chains_summary_groups_alike_outputs(self):
        sinks = bench_env.parse_pactl_sinks(PACTL_SINKS)
        chains = {"rxa": bench_env.sink_chain(sinks, "rxa"),
                  "rxb": bench_env.sink_chain(sinks, "rxa")}
        chains["rxb"][0] = dict(chains["rxb"][0], name="rxb")
        self.assertEqual(bench_env.chains_summary(chains),
                         "rxa..rxb (module-remap-sink, 1ch) → bench (module-null-sink, 2ch)")
        chains["eq"] = bench_env.sink_chain(sinks, "eq")
        self.assertIn("; eq (module-ladspa-sink", bench_env.chains_summary(chains))


class LoadTest(unittest.TestCase):
    STAT0 = "cpu  100 10 50 1000 20 5 5 7 0 0\ncpu0 50 5 25 500 10 2 2 3 0 0\nintr 1\n"
    STAT1 = "cpu  300 10 150 1200 20 5 5 17 0 0\n"

    def test_proc_stat(self):
        st = bench_env.parse_proc_stat(self.STAT0)
        self.assertEqual(st, {"busy": 170, "idle": 1020, "steal": 7, "total": 1197})
        self.assertIsNone(bench_env.parse_proc_stat("intr 1\n"))

    def test_other_cpu(self):
        a = bench_env.parse_proc_stat(self.STAT0)
        b = bench_env.parse_proc_stat(self.STAT1)
        # 300 ticks busy at 100 Hz over 2 s = 1.5 cores; the bench used 1 s = 0.5 cores.
        cpu = bench_env.other_cpu(a, b, own_s=1.0, wall_s=2.0, hz=100)
        self.assertAlmostEqual(cpu["machine_cores"], 1.5)
        self.assertAlmostEqual(cpu["bench_cores"], 0.5)
        self.assertAlmostEqual(cpu["other_cores"], 1.0)
        self.assertAlmostEqual(cpu["steal_cores"], 0.05)
        # Tick rounding never gives other processes negative time.
        self.assertEqual(bench_env.other_cpu(a, b, 5.0, 2.0, 100)["other_cores"], 0.0)
        self.assertIsNone(bench_env.other_cpu(None, b, 1.0, 2.0, 100))

    def test_loadavg_and_text(self):
        self.assertEqual(bench_env.parse_loadavg("0.52 0.70 0.80 2/300 1234\n"),
                         "0.52 0.70 0.80")
        self.assertEqual(bench_env.load_text(None), "not recorded")
        txt = bench_env.load_text({"loadavg_start": "1 2 3", "loadavg_end": "2 2 3",
                                   "other_cores": 0.31, "bench_cores": 0.9,
                                   "steal_cores": 0.0}, 2)
        self.assertEqual(txt, "load average 1 2 3 → 2 2 3; other processes 0.31 cores (of 2), "
                              "the bench 0.90, steal 0.00")

    def test_probe_reads_this_machine(self):
        probe = bench_env.LoadProbe()
        out = probe.finish()
        self.assertIn("loadavg_start", out)
        if os.path.exists("/proc/stat"):
            self.assertGreaterEqual(out["other_cores"], 0.0)


class MarginTest(unittest.TestCase):
    def test_margin_line(self):
        self.assertEqual(bench_env.parse_margin_line(
            "margin n=750 p1=49541 p50=53125 min=-1200 late=3\n"),
            {"n": 750, "p1": 49541, "p50": 53125, "min": -1200, "late": 3})

    def test_stats_fields(self):
        st = ("application/x-syncwave-sink-stats, pushed=(guint64)1353, late=(guint64)2, "
              "level-ms=(double)50.562801999999998, played-latency-ms=(uint)60, "
              "transit-p99-us=(gint64)11000, late-arrivals=(guint64)0, "
              "depay-transit-last-us=(gint64)0;")
        got = bench_env.parse_stats_fields(st, ("late", "level-ms", "played-latency-ms",
                                                "transit-p99-us", "late-arrivals", "missing"))
        self.assertEqual(got, {"late": 2, "level-ms": 50.562801999999998,
                               "played-latency-ms": 60, "transit-p99-us": 11000,
                               "late-arrivals": 0})

    def test_receiver_output(self):
        import run
        with tempfile.TemporaryFile(mode="w+") as f:
            f.write("r 1000 5 6\nstats application/x-syncwave-sink-stats, late=(guint64)7, "
                    "transit-p99-us=(gint64)41000, played-latency-ms=(uint)90;\n"
                    "margin n=5 p1=100 p50=200 min=-3 late=1 latency-changes=1\n")
            got = run.read_receiver_output(f)
        self.assertEqual(got, {"n": 5, "p1": 100, "p50": 200, "min": -3, "late": 1,
                               "latency-changes": 1, "stats-late": 7,
                               "stats-transit-p99-us": 41000, "stats-played-latency-ms": 90})

    def test_margin_table(self):
        cases = {"2": [{"margins": [{"n": 10, "p1": 49000, "p50": 53000, "min": 48000,
                                     "late": 0, "stats-transit-p99-us": 11000,
                                     "stats-played-latency-ms": 60},
                                    {"n": 9, "p1": 1000, "p50": 20000, "min": -500, "late": 1,
                                     "stats-played-latency-ms": 90, "latency-changes": 1}],
                        "paths": ["direct", "relay delay 30 ms"]}]}
        lines = "\n".join(report.margin_lines(cases))
        self.assertIn("| 2 | 0 | direct | 49.0 / 53.0 / 48.0 | 0 | 10 | 11.0 | n/a | n/a | 60 |",
                      lines)
        self.assertIn("| 2 | 1 | relay delay 30 ms | 1.0 / 20.0 / -0.5 | 1 | 9 | n/a | n/a | n/a "
                      "| 90 (1 changes) |", lines)
        self.assertIn("not recorded", "\n".join(report.margin_lines({"2": [{}]})))


def _git(repo, *args):
    subprocess.run(["git", "-C", repo] + list(args), check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
                            GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t"))


@unittest.skipUnless(shutil.which("git"), "git not installed")
class StaleTest(unittest.TestCase):
    def setUp(self):
        self.repo = tempfile.mkdtemp(prefix="bench-stale-")
        _git(self.repo, "init", "-q", "-b", "main")
        self.commit("gst-plugin/core/a.cpp", "1")          # code
        self.c_code1 = self.head()
        self.commit("docs/x.md", "doc")                      # not code
        self.c_doc = self.head()

    def tearDown(self):
        shutil.rmtree(self.repo, ignore_errors=True)

    def commit(self, path, text):
        full = os.path.join(self.repo, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        _git(self.repo, "add", path)
        _git(self.repo, "commit", "-q", "-m", path)

    def head(self):
        return bench_stale.git(self.repo, "rev-parse", "--short=12", "HEAD")

    def test_fresh_when_only_other_files_changed(self):
        self.assertEqual(bench_stale.verdict(self.c_code1, self.repo)[0], False)
        self.assertEqual(bench_stale.verdict(self.c_doc, self.repo)[0], False)

    def test_stale_after_a_change_to_core_or_elements(self):
        self.commit("gst-plugin/elements/e.cpp", "2")
        stale, reason = bench_stale.verdict(self.c_doc, self.repo)
        self.assertTrue(stale)
        self.assertIn("1 commit(s) changed", reason)
        self.assertFalse(bench_stale.verdict(self.head(), self.repo)[0])

    def test_stale_unknown_missing_dirty(self):
        self.assertTrue(bench_stale.verdict(None, self.repo)[0])
        self.assertTrue(bench_stale.verdict("unknown code", self.repo)[0])
        stale, reason = bench_stale.verdict("0123456789ab", self.repo)
        self.assertTrue(stale)
        self.assertIn("not in this repository", reason)
        stale, reason = bench_stale.verdict(self.c_doc + "+dirty", self.repo)
        self.assertTrue(stale)
        self.assertIn("uncommitted", reason)

    def test_stale_when_measured_on_a_branch_with_other_code(self):
        _git(self.repo, "checkout", "-q", "-b", "other")
        self.commit("gst-plugin/core/b.cpp", "branch")
        on_branch = self.head()
        _git(self.repo, "checkout", "-q", "main")
        stale, reason = bench_stale.verdict(on_branch, self.repo)
        self.assertTrue(stale)
        self.assertIn("does not have", reason)

    def test_code_state_and_provenance(self):
        st = bench_stale.code_state(self.repo)
        self.assertEqual(st["head"], self.c_doc)
        self.assertEqual(st["code_commit"], self.c_code1[:len(st["code_commit"])])
        self.assertFalse(st["dirty"])
        self.assertEqual(bench_stale.provenance(st), self.c_doc)
        with open(os.path.join(self.repo, "gst-plugin/core/a.cpp"), "w") as f:
            f.write("changed")
        st = bench_stale.code_state(self.repo)
        self.assertTrue(st["dirty"])
        self.assertEqual(bench_stale.provenance(st), self.c_doc + "+dirty")
        self.assertIsNone(bench_stale.code_state(tempfile.gettempdir() + "/no-such-repo"))

    def test_main_exit_codes(self):
        doc = os.path.join(self.repo, "bench.md")
        with open(doc, "w") as f:
            f.write(f"## A\n\nMeasured on {self.c_doc}, 2026-12-03 10:00 UTC.\n\n"
                    "| a |\n|---|\n| 1 |\n")
        out = os.devnull
        with open(out, "w") as sink:
            old = sys.stdout
            sys.stdout = sink
            try:
                self.assertEqual(bench_stale.main([f"--docs={doc}", f"--root={self.repo}"]), 0)
                self.commit("gst-plugin/core/a.cpp", "3")
                self.assertEqual(bench_stale.main([f"--docs={doc}", f"--root={self.repo}"]), 1)
                self.assertEqual(bench_stale.main([f"--docs={doc}", f"--root={self.repo}",
                                                   "--warn-only"]), 0)
                with open(doc, "a") as f:
                    f.write("\n### B\n\n| b |\n|---|\n| 2 |\n")
                self.assertEqual(bench_stale.main([f"--docs={doc}", f"--root={self.repo}",
                                                   "--warn-only"]), 2)
                self.assertEqual(bench_stale.main([f"--root={tempfile.gettempdir()}"]), 77)
            finally:
                sys.stdout = old


class DocumentTest(unittest.TestCase):
    DOC = """# Benchmarks

## Reproduce

```sh
## not a heading
| x |
|---|
```

## This run

- Date: 2026-12-03

## 1. Packetization

`bench-paydepay`

Measured on 4f710ea26511, 2026-12-03 10:12 UTC.

| a | b |
|---|---|
| 1 | 2 |

### Instruction counts

Measured on unknown code, 2026-11-25 01:35 UTC. **Stale:** the code measured was not recorded.

| c |
|:---:|
| 3 |

### Without provenance

| d |
|---|
| 4 |

## Notes

Measured on 4f710ea26511+dirty, 2026-12-03 10:12 UTC.
"""

    def test_sections(self):
        secs = bench_stale.parse_sections(self.DOC)
        self.assertEqual([s["title"] for s in secs],
                         ["Reproduce", "This run", "1. Packetization", "Instruction counts",
                          "Without provenance", "Notes"])
        self.assertFalse(secs[0]["has_table"])  # the table in the code block is not one
        self.assertEqual(secs[2]["provenance"], {"code": "4f710ea26511",
                                                 "date": "2026-12-03 10:12 UTC"})
        self.assertTrue(secs[3]["has_table"])
        self.assertEqual(secs[3]["provenance"]["code"], "unknown code")
        self.assertEqual(secs[5]["provenance"]["code"], "4f710ea26511+dirty")

    def test_check(self):
        seen = []

        def judge(code, root):
            seen.append(code)
            return code != "4f710ea26511", "because"
        rows = bench_stale.check(self.DOC, "/nowhere", judge)
        self.assertEqual([(r["title"], r["stale"]) for r in rows],
                         [("1. Packetization", False), ("Instruction counts", True),
                          ("Without provenance", None), ("Notes", True)])
        self.assertEqual(seen, ["4f710ea26511", "unknown code", "4f710ea26511+dirty"])

    def test_report_writes_what_the_check_reads(self):
        # The line report.py writes for a section is the one bench_stale.py parses.
        for code in ("4f710ea26511", "4f710ea26511+dirty", None):
            res = {"measured": "2026-12-03 10:12 UTC", "code": code,
                   "load": {"loadavg_start": "0.1 0.2 0.3", "loadavg_end": "0.2 0.2 0.3",
                            "other_cores": 0.1, "bench_cores": 1.0, "steal_cores": 0.0},
                   "sound_server": "pulseaudio 16.1",
                   "sink_chains": {"rxa": [{"name": "rxa", "kind": "module-remap-sink",
                                            "channels": "1ch"}]}}
            lines = report._when(res)
            m = bench_stale.PROVENANCE_RE.match(lines[0])
            self.assertIsNotNone(m, lines[0])
            self.assertEqual(m.group("code"), code or "unknown code")
            self.assertEqual(m.group("date"), "2026-12-03 10:12 UTC")
            self.assertIn("sound server: pulseaudio 16.1 (started by the runner)", lines[2])
            self.assertIn("sink chain: rxa (module-remap-sink, 1ch)", lines[2])
        self.assertEqual(report._when({"error": "x"}), [])


if __name__ == "__main__":
    unittest.main()
