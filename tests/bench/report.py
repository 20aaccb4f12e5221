"""Tables for the terminal and docs/benchmarks.md from the results of run.py."""

import os
import statistics
import sys

SRC_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import bench_env  # noqa: E402  (same directory)
import bench_stale  # noqa: E402
# The code a figure describes: the checkout's HEAD when it was measured, judged against
# the last commit that changed the elements or their core (bench_stale).
CODE_PATHS = bench_stale.CODE_PATHS


def code_commit():
    """(short hash, date) of the last commit touching CODE_PATHS, plus '+dirty' when
    they have uncommitted changes; (None, None) outside a git checkout."""
    st = bench_stale.code_state(SRC_ROOT)
    if not st or not st.get("code_commit"):
        return None, None
    return st["code_commit"] + ("+dirty" if st["dirty"] else ""), st["code_date"]


_VERDICTS = {}  # provenance -> (stale, reason), per report


def _verdict_of(res):
    """(stale, reason) of a section's results, None when it was not measured."""
    if not isinstance(res, dict) or not res.get("measured"):
        return None
    code = res.get("code") or "unknown code"
    if code not in _VERDICTS:
        _VERDICTS[code] = bench_stale.verdict(code, SRC_ROOT)
    return _VERDICTS[code]


def _ms(values):
    v = [x for x in values if x is not None and x == x]
    if not v:
        return None
    return (statistics.median(v), min(v), max(v))


def _f(triple, digits=2, unit=""):
    if triple is None:
        return "n/a"
    m, lo, hi = triple
    if abs(hi - lo) < 10 ** -digits:
        return f"{m:.{digits}f}{unit}"
    return f"{m:.{digits}f}{unit} [{lo:.{digits}f}–{hi:.{digits}f}]"


def _when(res):
    """The section's provenance line (bench_stale.PROVENANCE_RE reads it back) and what
    the run depended on while it measured this section."""
    if not isinstance(res, dict) or not res.get("measured"):
        return []
    code = res.get("code") or "unknown code"
    line = f"Measured on {code}, {res['measured']}."
    stale, reason = _verdict_of(res)
    if stale:
        line += f" **Stale:** {reason}; re-run this section before quoting it."
    return [line, ""] + _depends(res)


def _depends(res):
    """"Recorded with it: load ...; sound server ...; sink chain ..." for one section."""
    parts = []
    if res.get("load"):
        parts.append("load: " + bench_env.load_text(res["load"], res["load"].get("cores")))
    if res.get("sound_server"):
        parts.append(f"sound server: {res['sound_server']} (started by the runner)")
    if res.get("sink_chains"):
        parts.append("sink chain: " + bench_env.chains_summary(res["sink_chains"]))
    if not parts:
        return ["Recorded with it: nothing (load, sound server and sink chain are recorded "
                "per section since issue 16).", ""]
    return ["Recorded with it: " + "; ".join(parts) + ".", ""]


def margin_lines(cases, key_header="receivers", names=None):
    """Arrival margin per receiver (bench-render's own measurement, see
    bench_render.cpp) from cases {key: [run, ...]}, each run with "margins": [per
    receiver]; names: {key: what to print for it}."""
    rows = []
    for n, runs in cases.items():
        ok = [r for r in runs if "error" not in r and r.get("margins")]
        if not ok:
            continue
        for k in range(max(len(r["margins"]) for r in ok)):
            ms = [r["margins"][k] for r in ok if k < len(r["margins"]) and r["margins"][k]]
            ms = [m for m in ms if m.get("n")]
            if not ms:
                continue
            path = "direct" if k == 0 else "relay"
            if ok[0].get("paths") and k < len(ok[0]["paths"]):
                path = ok[0]["paths"][k]

            def col(key, scale=1e-3, digits=1):
                return _f(_ms([m[key] * scale for m in ms if m.get(key) is not None]), digits)
            rows.append([(names or {}).get(n, n), k, path, col("p1") + " / " + col("p50") + " / " + col("min"),
                         sum(m.get("late", 0) for m in ms), sum(m.get("n", 0) for m in ms),
                         col("stats-transit-p99-us"), col("stats-late-arrivals", 1, 0),
                         col("stats-late-outputs", 1, 0),
                         col("stats-played-latency-ms", 1, 0) +
                         (f" ({sum(m.get('latency-changes', 0) for m in ms)} changes)"
                          if any(m.get("latency-changes") for m in ms) else "")])
    if not rows:
        return ["", "Arrival margin: not recorded in this run (recorded per receiver since "
                "issue 16)."]
    return ["", "Arrival margin per receiver (due time − arrival: capture time + latency − "
            "the pipeline clock when udpsrc pushes the datagram, from 2 s after the first, "
            "measured by `bench-render receive` itself; latency = the one the sink plays at, "
            "which it raises when too many packets are late; < 0 = late). syncwavesink's stats "
            "expose no margin distribution, only the transit's p99 over the last 2 s "
            "(`transit-p99-us`, read at the end) and counts of packets that arrived late "
            "(`late-arrivals`) or reached the audio sink late (`late-outputs`), also shown:",
            ""] + _table([key_header, "receiver", "path", "margin p1 / p50 / min ms",
                          "late datagrams", "datagrams", "stats transit-p99 ms (end)",
                          "stats late-arrivals", "stats late-outputs",
                          "played latency ms (stats)"], rows)


RATE = 48000


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    return out


# ---------------------------------------------------------------- per benchmark


def paydepay_section(res):
    lines = []
    if not res:
        return ["Not run."]
    if res.get("error"):
        return [f"Not measured: {res['error']}"]
    rows = res["rows"]
    avail = {}
    for r in rows:
        avail.setdefault(r["case"], r.get("available", False))
    by = {}
    for r in rows:
        if r.get("available"):
            by.setdefault(r["case"], {})[r["round"]] = r
    table = []
    summary = {}
    for kind, sw, rtp, ident in (("raw 48 kHz stereo", "syncwave-raw", "rtp-l16", "identity-raw"),
                                 ("Opus 128 kb/s, 10 ms", "syncwave-opus", "rtp-opus",
                                  "identity-opus")):
        for case in (sw, rtp):
            if case not in by:
                table.append([kind, case, "not available: " + next(
                    (r.get("missing", "?") for r in rows if r["case"] == case), "?") +
                    " not built", "", "", "", ""])
                continue
            per_pkt, per_s, gross_pkt = [], [], []
            for rnd, r in by[case].items():
                base = by.get(ident, {}).get(rnd)
                net = r["cpu_s"] - (base["cpu_s"] if base else 0.0)
                per_pkt.append(net / r["packets"] * 1e9)
                per_s.append(net / r["audio_s"] * 1e6)
                gross_pkt.append(r["cpu_s"] / r["packets"] * 1e9)
            any_r = next(iter(by[case].values()))
            table.append([kind, case, any_r["packets"], f"{any_r['packets'] / any_r['audio_s']:.0f}",
                          _f(_ms(per_pkt), 0), _f(_ms(per_s), 1), _f(_ms(gross_pkt), 0)])
        if sw in by and rtp in by:
            ratios_s, ratios_gross = [], []
            for rnd in by[sw]:
                if rnd in by[rtp]:
                    b = by.get(ident, {}).get(rnd)
                    bc = b["cpu_s"] if b else 0.0
                    a_net = by[sw][rnd]["cpu_s"] - bc
                    r_net = by[rtp][rnd]["cpu_s"] - bc
                    if r_net > 0:
                        ratios_s.append(a_net / r_net)
                    ratios_gross.append(by[sw][rnd]["cpu_s"] / by[rtp][rnd]["cpu_s"])
            summary[kind] = (_ms(ratios_s), _ms(ratios_gross))
    lines += _table(["stream", "pipeline (pay ! depay)", "packets", "packets/s",
                     "CPU ns/packet (net)", "CPU µs per audio s (net)", "CPU ns/packet (gross)"],
                    table)
    lines.append("")
    for kind, (net, gross) in summary.items():
        lines.append(f"- {kind}: SyncWave / RTP CPU per audio second = **{_f(net, 2)}** net of "
                     f"harness overhead ({_f(gross, 2)} gross); target ≤ 1.0.")
    lines.append("")
    lines.append("Net = the round's CPU time minus that of `identity` fed the same buffers through "
                 "the same harness, in the same round. Median [min–max] over rounds.")
    return lines


def jitter_section(res):
    if not res:
        return ["Not run."]
    if res.get("error"):
        return [f"Not measured: {res['error']}"]
    rows = res["rows"]
    by = {}
    missing = {}
    for r in rows:
        if r.get("available"):
            by.setdefault((r["case"], r["pattern"]), {})[r["round"]] = r
        else:
            missing[r["case"]] = r.get("missing")
    table = []
    ratio_lines = []
    for pattern in ("inorder", "reorder5", "loss2"):
        vals = {}
        for case in ("syncwavejitter", "rtpjitterbuffer"):
            d = by.get((case, pattern))
            if not d:
                table.append([pattern, case, f"not available: {missing.get(case, '?')} not built",
                              "", "", ""])
                continue
            net = {}
            for rnd, r in d.items():
                b = by.get(("identity", pattern), {}).get(rnd)
                net[rnd] = (r["cpu_s"] - (b["cpu_s"] if b else 0.0)) / r["pushed"] * 1e9
            vals[case] = net
            any_r = next(iter(d.values()))
            table.append([pattern, case, any_r["pushed"], any_r["outputs"], any_r["lost_events"],
                          _f(_ms(list(net.values())), 0)])
        if len(vals) == 2:
            rat = [vals["syncwavejitter"][k] / vals["rtpjitterbuffer"][k]
                   for k in vals["syncwavejitter"] if k in vals["rtpjitterbuffer"]
                   and vals["rtpjitterbuffer"][k] > 0]
            ratio_lines.append(f"- {pattern}: syncwavejitter / rtpjitterbuffer CPU per packet = "
                               f"**{_f(_ms(rat), 2)}** (target ≤ 1.0)")
    lines = _table(["arrival pattern", "element", "packets in", "buffers out", "loss events",
                    "CPU ns/packet (net)"], table)
    lines.append("")
    lines += ratio_lines
    lines.append("")
    lines.append("10 ms Opus packets, latency 60 ms, arrival = capture + 5 ms + U(0, 2 ms); "
                 "reorder5 swaps 5 % of neighbours, loss2 drops 2 %. rtpjitterbuffer runs with "
                 "do-lost=true so both emit loss events. Net of the same driving loop through "
                 "`identity`. Median [min–max] over rounds.")
    return lines


def instructions_section(res):
    if not res:
        return ["Not run."]
    if res.get("error"):
        return [f"Not measured: {res['error']}"]
    lines = []
    pd = res.get("paydepay", {})
    rows = []
    for kind, sw, rtp, ident in (("raw", "syncwave-raw", "rtp-l16", "identity-raw"),
                                 ("Opus", "syncwave-opus", "rtp-opus", "identity-opus")):
        a, b, i = pd.get(sw), pd.get(rtp), pd.get(ident)
        if a is None or b is None:
            rows.append([kind, "n/a", "n/a", "n/a", "n/a"])
            continue
        i = i or 0.0
        rows.append([kind, f"{(a - i) / 1e6:.2f}", f"{(b - i) / 1e6:.2f}", f"{i / 1e6:.2f}",
                     f"**{(a - i) / (b - i):.2f}**" if b - i > 0 else "n/a"])
    lines += _table(["pay ! depay", "SyncWave Minstr / audio s (net)", "RTP Minstr / audio s (net)",
                     "identity run, subtracted (input generation + harness)",
                     "ratio SyncWave / RTP"], rows)
    jb = res.get("jitter", {})
    rows = []
    for pattern in ("inorder", "reorder5", "loss2"):
        a = jb.get(f"syncwavejitter/{pattern}")
        b = jb.get(f"rtpjitterbuffer/{pattern}")
        i = jb.get(f"identity/{pattern}") or 0.0
        if a is None and b is None:
            continue
        if a is None or b is None:
            rows.append([pattern, "n/a" if a is None else f"{a - i:.0f}",
                         "n/a" if b is None else f"{b - i:.0f}", f"{i:.0f}", "n/a"])
            continue
        rows.append([pattern, f"{a - i:.0f}", f"{b - i:.0f}", f"{i:.0f}",
                     f"**{(a - i) / (b - i):.2f}**" if b - i > 0 else "n/a"])
    lines += [""]
    lines += _table(["jitter buffer, pattern", "syncwavejitter instr / packet (net)",
                     "rtpjitterbuffer instr / packet (net)",
                     "identity run, subtracted (input generation + harness)",
                     "ratio"], rows)
    lines += ["", "Counted by callgrind over the difference between a short and a long run of "
              "the same case (start-up and warm-up cancel), net of `identity` through the same "
              "harness. Deterministic up to thread scheduling, so one run each."]
    return lines


def latency_section(res):
    if not res:
        return ["Not run."]
    if res.get("error"):
        return [f"Not measured: {res['error']}"]
    rows = res.get("rows") or []
    if rows and rows[0].get("available") is False:
        return [f"Not measured: {rows[0].get('missing')} not built in this tree."]
    by = {}
    order = []
    for r in rows:
        if "error" in r:
            continue
        key = r.get("case") or f"raw-{r['latency_ms']}ms"
        if key not in by:
            order.append(key)
        by.setdefault(key, []).append(r)
    table = []
    for key in order:
        rs = by[key]
        r0 = rs[0]
        codec = r0.get("codec", "raw")
        table.append([key, codec, f"{r0.get('frame_ms', 10)} ms", f"{r0['latency_ms']} ms", len(rs),
                      _f(_ms([r["median_dev_us"] for r in rs]), 0),
                      _f(_ms([r["p99_abs_dev_us"] for r in rs]), 0),
                      _f(_ms([r["max_dev_us"] for r in rs]), 0),
                      sum(r.get("late", 0) for r in rs),
                      f"{sum(r.get('loss-events', 0) for r in rs)} / {sum(r.get('pushed', 0) for r in rs)}",
                      sum(r.get("unmatched", 0) for r in rs)])
    lines = _table(["case", "codec", "frames", "configured latency", "runs",
                    "median deviation µs", "p99 |deviation| µs", "max deviation µs",
                    "late packets", "loss events / packets pushed", "renders not matched"], table)
    lines += ["", "48 kHz stereo over loopback without impairment, sender and receiver on the "
              "host's realtime clock (receiver `clock=system`). Deviation = (clock time when "
              "fakesink is handed the sample) − (its capture time) − configured latency. Raw: "
              "the buffer's first sample, decoded from a ramp signal; renders not matched are "
              "buffers that are not an intact piece of the ramp (concealment, the ramp's wrap). "
              "Opus: the onset of a 10 ms 1 kHz burst sent every 100 ms, so the encoder's and "
              "decoder's own delay is part of the figure. Preset rows use the send and receive "
              "settings of pipelines/*.preset (codec, bitrate, frame size, FEC, latency) on "
              "this same loopback path, not syncwave-launch itself. Late packets and loss "
              "events from syncwavesink's `stats`. Median [min–max] over runs."]
    return lines


PULSE_NAMES = {
    "plain": "plain GStreamer (net clock + shared base time, pulsesink)",
    "snapcast-pcm": "Snapcast 0.26 (pcm, 1000 ms buffer)",
    "snapcast-opus": "Snapcast 0.26 (opus, 1000 ms buffer)",
    "syncwave-raw": "SyncWave raw (syncwavesink, latency 60 ms)",
    "syncwave-opus": "SyncWave Opus 128 kb/s (syncwavesink, latency 60 ms)",
    "syncwave-raw-pulsesink": "SyncWave raw through GStreamer's pulsesink (audio-sink=pulsesink)",
    "snapcast-pcm-join": "Snapcast 0.26 (pcm), 2nd client joins 5 s later",
    "syncwave-raw-join": "SyncWave raw, 2nd receiver joins 5 s later",
    "syncwave-raw-monitor": "SyncWave raw from a monitor capture (the README's pulsesrc line)",
    "syncwave-raw-original": "SyncWave raw from an original-style sender (stamps 0-4 ms late)",
}


def _us(samples):
    return samples / RATE * 1e6


def pulse_section(res):
    if not res:
        return ["Not run."], []
    if res.get("error"):
        return [f"Not measured: {res['error']}"], []
    table, cpu_table = [], []
    for case, runs in res["cases"].items():
        ok = [r for r in runs if "error" not in r]
        errs = [r["error"] for r in runs if "error" in r]
        name = PULSE_NAMES.get(case, case)
        if not ok:
            table.append([name, f"failed: {errs[0][:150]}" if errs else "no run"] + [""] * 6)
            continue

        def col(key):
            return _ms([_us(r[key]) for r in ok if r.get(key) == r.get(key)])
        settle = [r["settle_s"] for r in ok]
        settle_txt = _f(_ms([s for s in settle if s is not None]), 1, " s")
        unsettled = sum(1 for s in settle if s is None)
        if unsettled:
            settle_txt += f" ({unsettled}/{len(ok)} runs never within 0.25 ms)"
        table.append([name, f"{len(ok)}" + (f" (+{len(errs)} failed)" if errs else ""),
                      settle_txt,
                      _f(col("after2_median"), 0), _f(col("after2_p95"), 0),
                      _f(col("after2_max"), 0),
                      _f(col("steady_median"), 0) + " / " + _f(col("steady_p95"), 0) + " / " +
                      _f(col("steady_max"), 0),
                      f"{sum(r['dropouts'] for r in ok)} ({sum(r.get('bad_windows', 0) for r in ok)} "
                      "unmatched windows)"])
        cpu = _ms([r.get("client_cpu_s_per_min") for r in ok])
        cpu_table.append([name, _f(cpu, 2),
                          _f(tuple(x / 60 * 100 for x in cpu), 2, " %") if cpu else "n/a",
                          _f(_ms([(r.get("client_rss_kb") or 0) / 1024 for r in ok]), 1),
                          _f(_ms([r.get("server_cpu_s_per_min") for r in ok]), 2),
                          _f(_ms([r["server_rss_kb"] / 1024 for r in ok
                                  if r.get("server_rss_kb")]), 1)])
    lines = _table(["system", "runs", "settled (|offset| ≤ 0.25 ms for good) after",
                    "|offset| median µs (from 2 s)", "p95 µs (from 2 s)", "max µs (from 2 s)",
                    "steady (last half) median / p95 / max µs", "dropouts ≥ 5 ms (all runs)"], table)
    lines.append("")
    lines.append(f"{res.get('reps')} run(s) of {res.get('seconds')} s per system, systems "
                 "interleaved. 1 sample = 20.8 µs. Median [min–max] over runs of each run's "
                 "statistic. Offsets from the cross-correlation of the two receivers in the null "
                 "sink's monitor, 200 ms windows every 100 ms, times from the moment both are "
                 "audible (in the join cases: from the moment the late receiver is heard). "
                 "A failed run (\"not audible or not matching\") had a receiver silent or the two "
                 "more than 250 ms apart, beyond the search range. "
                 "Receivers that play from the same start (all but the join cases) start "
                 "before the sender or together with the server.")
    for k, v in res.get("skipped", {}).items():
        lines.append(f"- {k}: not measured here: {v}.")
    sw = {c: r for c, r in res["cases"].items() if c.startswith("syncwave")}
    lines += margin_lines(sw, "system", PULSE_NAMES)
    if any(r.get("margins") for runs in sw.values() for r in runs):
        lines += ["", "The SyncWave receivers above are `bench-render receive --device=rxa|rxb` "
                  "(`udpsrc ! syncwavesink device=...`, plus the margin probe) when it is "
                  "built; through pulsesink, gst-launch-1.0 (no margins)."]
    cpu_lines = _table(["system", "receiver CPU s/min", "= % of one core", "receiver peak RSS MiB",
                        "server/sender CPU s/min", "server/sender peak RSS MiB"], cpu_table)
    return lines, cpu_lines


def relay_section(res):
    if not res:
        return ["Not run."]
    if res.get("error"):
        return [f"Not measured: {res['error']}"]
    table = []
    for n, runs in res["cases"].items():
        ok = [r for r in runs if "error" not in r]
        errs = [r["error"] for r in runs if "error" in r]
        if not ok:
            table.append([n, f"failed: {errs[0][:150]}" if errs else "no run"] + [""] * 6)
            continue

        def col(key):
            return _ms([_us(r[key]) for r in ok if r.get(key) == r.get(key)])
        settle = [r["settle_s"] for r in ok]
        settle_txt = _f(_ms([x for x in settle if x is not None]), 1, " s")
        unsettled = sum(1 for x in settle if x is None)
        if unsettled:
            settle_txt += f" ({unsettled}/{len(ok)} runs never within 0.25 ms)"
        table.append([n, f"{len(ok)}" + (f" (+{len(errs)} failed)" if errs else ""), settle_txt,
                      _f(col("after2_median"), 0), _f(col("after2_p99"), 0),
                      _f(col("after2_max"), 0), sum(r["dropouts"] for r in ok),
                      _f(_ms([r.get("client_cpu_s_per_min") for r in ok]), 2)])
    lines = _table(["receivers", "runs", "settled after", "|offset| p50 µs", "p99 µs", "max µs",
                    "dropouts (all receivers)", "CPU s/min per receiver"], table)
    lines += ["", f"{res.get('reps')} run(s) of {res.get('seconds')} s per receiver count. "
              "SyncWave raw, latency 60 ms, net clock from the sender. Receiver 0 gets the "
              "stream straight from the sender; receivers 1..n-1 through syncwave-impair with "
              "2 % loss, ±10 ms uniform jitter and a delay growing to 30 ms. Each receiver "
              "plays into its own channel of one 8-channel null sink; offsets of every "
              "receiver against receiver 0 from the monitor, pooled, from 2 s after all are "
              "audible. Receivers are `bench-render receive --device=mK` (`udpsrc ! "
              "syncwavesink device=mK`, as with gst-launch-1.0, plus the margin probe) when "
              "it is built."]
    lines += margin_lines(res["cases"])
    return lines


def render_section(res):
    if not res:
        return ["Not run."]
    if res.get("error"):
        return [f"Not measured: {res['error']}"]
    table = []
    for n, runs in res["cases"].items():
        ok = [r for r in runs if "error" not in r]
        errs = [r["error"] for r in runs if "error" in r]
        if not ok:
            table.append([n, f"failed: {errs[0][:150]}" if errs else "no run"] + [""] * 8)
            continue
        sched = [r for r in ok if r.get("sched_p99_abs_us") == r.get("sched_p99_abs_us")
                 and r.get("sched_p99_abs_us") is not None]
        table.append([n, f"{len(ok)}" + (f" (+{len(errs)} failed)" if errs else ""),
                      (_f(_ms([r["sched_p50_abs_us"] for r in sched]), 0) + " / " +
                       _f(_ms([r["sched_p99_abs_us"] for r in sched]), 0) + " / " +
                       _f(_ms([r["sched_max_abs_us"] for r in sched]), 0)) if sched else "n/a",
                      _f(_ms([r["median_us"] for r in ok]), 0),
                      _f(_ms([r["p50_abs_us"] for r in ok]), 0),
                      _f(_ms([r["p99_abs_us"] for r in ok]), 0),
                      _f(_ms([r["max_abs_us"] for r in ok]), 0),
                      _f(_ms([r["e2e_median_dev_us"] for r in ok]), 0) + " / " +
                      _f(_ms([r["e2e_p99_abs_dev_us"] for r in ok]), 0),
                      sum(r.get("late", 0) for r in ok),
                      _f(_ms([r.get("client_cpu_s_per_min") for r in ok]), 2)])
    lines = _table(["receivers", "runs",
                    "scheduled render position: |offset| p50 / p99 / max µs",
                    "at the handoff: offset median µs (signed)", "|offset| p50 µs",
                    "p99 µs", "max µs", "receiver 0 end-to-end − latency: median / p99 µs",
                    "late packets", "CPU s/min per receiver"], table)
    lines += ["", f"{res.get('reps')} run(s) of {res.get('seconds')} s per receiver count. "
              "Separate processes (`bench-render receive`), each `udpsrc ! syncwavesink "
              "clock=net://sender latency=60` into a fakesink (sync=true); at every render the "
              "receiver logs the ramp-coded index of the buffer's first sample and "
              "CLOCK_REALTIME, which all processes on the host share. Offsets of every "
              "receiver against receiver 0 for the same sample, pooled, from 2 s after the "
              "first render. Receiver 0 is fed straight by the sender, the others through "
              "syncwave-impair (2 % loss, ±10 ms jitter, delay up to 30 ms). Raw float32. "
              "Scheduled render position: the time each fakesink synchronizes the buffer to "
              "on its own pipeline clock (base time + running time + latency), carried to "
              "CLOCK_REALTIME by reading both clocks together; this is the render position "
              "of a software sink. At the handoff: CLOCK_REALTIME when fakesink's handoff "
              "runs, which adds the wake-up delay of the streaming thread (the machine's "
              "scheduling, not the stream's timing)."]
    lines += margin_lines(res["cases"])
    return lines


def stability_section(res):
    if not res:
        return ["Not run."]
    if res.get("error"):
        return [f"Not measured: {res['error']}"]
    table = [[f"{res.get('seconds', 0) / 60:.0f} min", res.get("pushed", 0), res.get("late", 0),
              res.get("lost", 0), f"{res.get('e2e_median_dev_us', float('nan')):.0f}",
              f"{res.get('e2e_p99_abs_dev_us', float('nan')):.0f}", sum(res.get("renders") or [0])]]
    lines = _table(["stream time", "packets pushed", "late packets", "lost packets",
                    "end-to-end − latency: median µs", "p99 |…| µs", "renders"], table)
    lines += ["", "Raw float32 48 kHz stereo in 5 ms capture buffers (as the lan-lowlatency "
              "preset), latency 20 ms, one receiver (`bench-render "
              "receive`, fakesink sync=true) fed through syncwave-impair with a delay of "
              "5 ms ± 5 ms (uniform), net clock from the sender, loopback. End-to-end at the "
              "handoff callback, from 2 s after the first render.",
              "", "Target (issue 3): stable at 20 ms with raw audio on loopback, no late "
              "packets over ten minutes at ±5 ms jitter."]
    lines += margin_lines({"1": [res]})
    return lines


def bandwidth_section(res):
    if not res:
        return ["Not run."]
    if res.get("error"):
        return [f"Not measured: {res['error']}"]
    table = []
    for r in res["rows"]:
        br = f"{r['bitrate'] // 1000} kb/s" if r["bitrate"] else "—"
        if "error" in r:
            table.append([r["kind"], br, "failed: " + r["error"][:100], "", "", ""])
            continue
        table.append([r["kind"], br, f"{r['packets_per_s']:.0f}", f"{r['bytes_per_packet']:.0f}",
                      f"{r['udp_payload_kbps']:.0f}", f"{r['ip_kbps']:.0f}"])
    lines = _table(["stream", "Opus bitrate", "packets/s", "bytes/datagram",
                    "UDP payload kb/s", "on the wire kb/s (+28 B IPv4/UDP)"], table)
    if res.get("skipped"):
        lines += ["", f"SyncWave: not measured here: {res['skipped']}."]
    lines += ["", f"Counted on a receiving socket for {res.get('seconds')} s; 48 kHz stereo, "
              "10 ms buffers from a live audiotestsrc; mtu 1400 for both."]
    return lines


def fanout_section(res):
    if not res:
        return ["Not run."]
    if res.get("error"):
        return [f"Not measured: {res['error']}"]
    by = {}
    for r in res["rows"]:
        by.setdefault((r["kind"], r["targets"]), []).append(r["cpu_pct"])
    kinds = sorted({k for k, _ in by})
    table = []
    for kind in kinds:
        c1 = _ms(by.get((kind, 1), []))
        c10 = _ms(by.get((kind, 10), []))
        c100 = _ms(by.get((kind, 100), []))
        inc = None
        if c1 and c100:
            inc = (c100[0] - c1[0]) / 99.0
        table.append([kind, _f(c1, 2, " %"), _f(c10, 2, " %"), _f(c100, 2, " %"),
                      f"{inc:.4f} %" if inc is not None else "n/a"])
    lines = _table(["sender (Opus 128 kb/s, live tone)", "1 target", "10 targets", "100 targets",
                    "per added target"], table)
    if res.get("skipped"):
        lines += ["", f"SyncWave: not measured here: {res['skipped']}."]
    lines += ["", "Percent of one core from the sender process's own user+system time "
              f"(wait4) over {res.get('seconds')} s, {res.get('reps')} run(s), median [min–max]. "
              "One capture and one encoder feed every target through multiudpsink; receiving "
              "sockets are bound and never read (no ICMP)."]
    return lines


# ---------------------------------------------------------------- whole report


def _ratio_from(res, sw, rtp, ident):
    try:
        pd = res["paydepay"]
        i = pd.get(ident) or 0.0
        return (pd[sw] - i) / (pd[rtp] - i)
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def summary_section(results):
    """One line per target of issues 3 and 6: the figure reached and whether it is met."""
    lines = []

    def verdict(ok):
        return "met" if ok else "**not met**"

    def add(name, text):
        # A figure from a stale section is stale here too.
        stale = _verdict_of(results.get(name))
        lines.append(text + (" — **stale**" if stale and stale[0] else ""))
    ins = results.get("instructions") or {}
    for kind, sw, rtp, ident in (("raw", "syncwave-raw", "rtp-l16", "identity-raw"),
                                 ("Opus", "syncwave-opus", "rtp-opus", "identity-opus")):
        r = _ratio_from(ins, sw, rtp, ident)
        if r is not None:
            add("instructions", f"- Packetization {kind}, SyncWave / RTP instructions per audio second: "
                         f"{r:.2f} (target ≤ 1.0: {verdict(r <= 1.0)})")
    jb = ins.get("jitter") or {}
    for pattern in ("reorder5", "loss2"):
        a, b = jb.get(f"syncwavejitter/{pattern}"), jb.get(f"rtpjitterbuffer/{pattern}")
        i = jb.get(f"identity/{pattern}") or 0.0
        if a is not None and b is not None and b - i > 0:
            r = (a - i) / (b - i)
            add("instructions", f"- Jitter buffering ({pattern}), syncwavejitter / rtpjitterbuffer "
                         f"instructions per packet: {r:.2f} (target ≤ 1.0: {verdict(r <= 1.0)})")
    pulse = (results.get("pulse") or {}).get("cases", {})

    def pulse_stat(case, key):
        ok = [r for r in pulse.get(case, []) if "error" not in r and r.get(key) == r.get(key)]
        v = _ms([_us(r[key]) for r in ok])
        return v[0] if v else None
    sw_cpu = [r.get("client_cpu_s_per_min") for r in pulse.get("syncwave-opus", [])
              if "error" not in r]
    sc_cpu = [r.get("client_cpu_s_per_min") for r in pulse.get("snapcast-opus", [])
              if "error" not in r]
    if sw_cpu and sc_cpu:
        a, b = statistics.median(sw_cpu), statistics.median(sc_cpu)
        add("pulse", f"- Receiver CPU, Opus: SyncWave {a:.2f} CPU-s/min against snapclient "
                     f"{b:.2f} in the same run (target ≤ snapclient: {verdict(a <= b)})")
    sw_med = pulse_stat("syncwave-raw", "after2_median")
    if sw_med is not None:
        others = [x for x in (pulse_stat("snapcast-pcm", "after2_median"),
                              pulse_stat("plain", "after2_median")) if x is not None]
        p95 = pulse_stat("syncwave-raw", "after2_p95")
        mx = pulse_stat("syncwave-raw", "after2_max")
        ok = sw_med <= 21 and p95 <= 83 and mx <= 250 and all(sw_med < o for o in others)
        def us(x):
            return "n/a" if x is None else f"{x:.0f} µs"
        add("pulse", f"- Sync through PulseAudio (SyncWave raw, from 2 s): median {sw_med:.0f} µs, "
                     f"p95 {p95:.0f} µs, max {mx:.0f} µs; Snapcast pcm median "
                     f"{us(pulse_stat('snapcast-pcm', 'after2_median'))}, "
                     f"plain GStreamer {us(pulse_stat('plain', 'after2_median'))} "
                     f"(target ≤ 21 / 83 / 250 µs and tighter than both: {verdict(ok)})")
    render = (results.get("render") or {}).get("cases", {}).get("2", [])
    ok_r = [r for r in render if "error" not in r]
    if ok_r:
        p99 = statistics.median(r["p99_abs_us"] for r in ok_r)
        sp = [r["sched_p99_abs_us"] for r in ok_r
              if r.get("sched_p99_abs_us") is not None and r["sched_p99_abs_us"] == r["sched_p99_abs_us"]]
        if sp:
            sp99 = statistics.median(sp)
            add("render", f"- Render position, 2 receivers through the relay: p99 {sp99:.0f} µs at "
                         f"the sinks' scheduled render position, {p99:.0f} µs at the handoff "
                         f"callback (target ≤ 100 µs: {verdict(sp99 <= 100)})")
        else:
            add("render", f"- Render position, 2 receivers through the relay: p99 {p99:.0f} µs "
                         f"(target ≤ 100 µs: {verdict(p99 <= 100)})")
    stab = results.get("stability") or {}
    if stab and not stab.get("error") and stab.get("pushed"):
        add("stability", f"- Raw at 20 ms latency, ±5 ms jitter, {stab.get('seconds', 0) / 60:.0f} min: "
                     f"{stab.get('late', 0)} late packets of {stab.get('pushed', 0)} (target 0: "
                     f"{verdict(stab.get('late', 0) == 0)})")
    lat = [r for r in (results.get("latency") or {}).get("rows") or [] if "median_dev_us" in r]
    if lat:
        raw = [r for r in lat if r.get("codec", "raw") == "raw"]
        opus = [r for r in lat if r.get("codec") == "opus"]
        worst_med = max(abs(r["median_dev_us"]) for r in raw) if raw else float("nan")
        worst_p99 = max(r["p99_abs_dev_us"] for r in raw) if raw else float("nan")
        late20 = sum(r.get("late", 0) for r in raw if r["latency_ms"] == 20)
        add("latency", f"- End-to-end latency, raw: median deviation ≤ {worst_med:.0f} µs, p99 up "
                     f"to {worst_p99:.0f} µs over 20/40/60 ms and the raw preset; late packets "
                     f"at 20 ms: {late20} (target within 1 ms: {verdict(worst_p99 <= 1000)} at "
                     f"p99; no late packets at 20 ms: {verdict(late20 == 0)})")
        if opus:
            meds = sorted(r["median_dev_us"] for r in opus)
            add("latency", f"- End-to-end latency, Opus (every Opus case and preset): median "
                         f"{meds[0] / 1000:.1f} to {meds[-1] / 1000:.1f} ms from the configured "
                         f"latency (target within 1 ms: "
                         f"{verdict(max(abs(m) for m in meds) <= 1000)})")
    fan = (results.get("fanout") or {}).get("rows", [])
    by = {}
    for r in fan:
        by.setdefault((r["kind"], r["targets"]), []).append(r["cpu_pct"])
    if ("syncwave-opus", 1) in by and ("syncwave-opus", 100) in by:
        inc = (statistics.median(by[("syncwave-opus", 100)]) -
               statistics.median(by[("syncwave-opus", 1)])) / 99
        add("fanout", f"- Sender fan-out: {inc:.4f} % of a core per added unicast target "
                     f"(target < 0.1 %: {verdict(inc < 0.1)})")
    return lines or ["No figures yet."]


def print_table(meta, results):
    m = meta["machine"]
    _VERDICTS.clear()
    print(f"\nSyncWave benchmarks — {m['date']} — {m['cpu']}, {m['cores']} cores, "
          f"kernel {m['kernel']}, clock source {m.get('clocksource', '?')}, {m['gstreamer']}")
    print(f"Code: HEAD {m.get('code_head') or 'unknown'}"
          + (" (+ uncommitted changes to core/elements)" if m.get("code_dirty") else "")
          + (f"; load over the run: {bench_env.load_text(m['load'], m.get('cores'))}"
             if m.get("load") else ""))

    def sec(name, lines):
        # Each section with its provenance and what it depended on (issue 16).
        return _when(results.get(name)) + lines
    sections = [("Summary against the targets", summary_section(results)),
                ("Packetization", sec("paydepay", paydepay_section(results.get("paydepay")))),
                ("Jitter buffering", sec("jitter", jitter_section(results.get("jitter")))),
                ("Instruction counts", sec("instructions",
                                           instructions_section(results.get("instructions")))),
                ("End-to-end latency", sec("latency", latency_section(results.get("latency")))),
                ("Stability at 20 ms", sec("stability",
                                           stability_section(results.get("stability"))))]
    sync, cpu = pulse_section(results.get("pulse"))
    sections += [("Sync through PulseAudio", sec("pulse", sync)),
                 ("Receiver CPU and memory", cpu),
                 ("Sync at the render position (software), 2 to 8 receivers",
                  sec("render", render_section(results.get("render")))),
                 ("Sync of 2 to 8 receivers through the impairment relay, via PulseAudio",
                  sec("relay", relay_section(results.get("relay")))),
                 ("Bandwidth", sec("bandwidth", bandwidth_section(results.get("bandwidth")))),
                 ("Sender fan-out", sec("fanout", fanout_section(results.get("fanout"))))]
    for title, lines in sections:
        print(f"\n== {title}")
        for l in lines:
            print(l)


DEPENDS_SECTION = [
    "## What a run depends on",
    "",
    "Issue 16: the same command (`--only=relay`, 2 receivers) gave p99 31–42 µs here and "
    "5–132 ms on a fresh machine of the same kind. A figure here is only worth what is known of the run behind it, "
    "so the runner records, in BUILD/bench-results.json and in this file:",
    "",
    "- **The code**: every section's line \"Measured on COMMIT, DATE.\" gives the checkout's "
    "HEAD when it ran (`+dirty`: gst-plugin/core or gst-plugin/elements had uncommitted "
    "changes). `tests/bench/run.sh --check-stale` (tests/bench/bench_stale.py, also run by "
    "`meson test` as `bench-stale-docs`, which only reports) lists the sections whose "
    "commit is unknown, not in the repository, dirty, or older than the last commit "
    "touching gst-plugin/core/ or gst-plugin/elements/; the report marks them **Stale** "
    "and the summary's lines from them too. Sections measured before the commit was "
    "recorded say \"unknown code\" and are stale.",
    "- **The load**, per section: the load average before and after, and the CPU other "
    "processes used meanwhile (busy time from /proc/stat minus the runner's own and its "
    "children's, in cores), with the hypervisor's steal time. A p99 or a CPU figure taken "
    "while other processes used a core is not comparable with one from an idle machine.",
    "- **The machine**: CPU model, cores online and usable (affinity), frequency governor, "
    "memory, kernel, the clock source (/sys/devices/system/clocksource/clocksource0; a "
    "machine on `hpet` or `acpi_pm` instead of `tsc` pays for every clock read), GStreamer "
    "and Snapcast versions, and the sound servers installed.",
    "- **The sound server** that the runner started, as it answers (`pactl info`: server "
    "name and version; PipeWire's pulse server says \"PulseAudio (on PipeWire X)\"), per "
    "section that plays through one.",
    "- **The sink chain** of every output a receiver plays to, from `pactl list sinks` "
    "(each sink's module and channels, down through `device.master_device`): the sync "
    "sections play into mono module-remap-sinks over one module-null-sink, not into the "
    "null sink directly.",
    "- **The receivers' arrival margin** (due time − arrival, per receiver: p1, p50 and "
    "min over the run) in the relay, render and stability sections and for the SyncWave "
    "receivers of the PulseAudio section, measured by `bench-render receive` on its "
    "udpsrc pad. syncwavesink and syncwavejitter expose no "
    "margin distribution in their stats: the closest are `transit-p99-us` (capture to "
    "arrival, p99 over the last 2 s), `level-ms` (how far ahead of playout the newest "
    "packet is, at the moment of reading), `late`, `late-arrivals` and `late-outputs`, "
    "recorded with the margins. The sink's output margins (buffers reaching the device) are "
    "only in its DEBUG log.",
    "",
    '### Issue 16: why the relayed receiver was late and raised its latency (2026-12-03)',
    '',
    '`tests/bench/run.sh BUILD --only=relay --quick` (2 receivers), and the same two receivers by hand: `bench-render receive --device=...` with `GST_DEBUG=syncwavesink:6` (plus a temporary per-buffer log of the output margin and the device queue), one straight from the sender, one through `syncwave-impair -t 127.0.0.1:PORT,delay=30ms,jitter=10ms,loss=2%`, into a private PulseAudio 16.1, through mono remap sinks over a null sink and, for comparison, into the null sink directly. 15 s runs.',
    '',
    '- **Before**: the relayed receiver counted 520–636 `late-outputs` and went from 60 to 80 to 100 ms; the direct one stayed at 60. The remap sink had nothing to do with it: on the null sink directly the device queue was the same (24.5 ms) and so was the raise. Two causes:',
    "  1. **The benchmark's receiver did not redistribute the latency.** `bench-render receive` ignored GST_MESSAGE_LATENCY (gst-launch-1.0 and syncwave-launch handle it). After the first raise the jitter held packets for 80 ms while the audio sink still rendered at 60. Output margins were p2 −28 to −32 ms, a third of the buffers were late, and a second raise followed that could not help. Fixed in bench-render. After that fix and before the next one: 11–17 late outputs and one raise, to 70 ms.",
    "  2. **The relayed path does not fit 60 ms: the lateness is real.** The relayed packets arrive 20–41 ms after capture: 30 ± 10 ms of relay, minus up to 6.7 ms because the file-fed sender's `identity sync=true` sends each 10 ms buffer at its start, so its second and third packets leave 3.3 and 6.7 ms before their capture stamps. That is also why the direct receiver's median transit is −3 ms. The output needs each buffer the device's queue ahead of its time (syncwavepulsesink: 17–29 ms measured, 30 ms asked of the server). Once a later packet has come, the jitter reports a missing one lost `loss-margin` before its time (the queue + 10 ms, at most half the latency: 30 ms at 60). The relay reorders almost every packet (±10 ms on 3.3 ms packets), so every packet that came out of order more than 30 ms after capture was dropped as late and concealed. Per 15 s run that was 707–960 jitter `late` and 918–1512 `lost`, a quarter of the stream. Meanwhile the monitor counted those packets as on time (`late-arrivals` 0). Only the in-order packets that reached the device late (`late-outputs`) moved it, to 70 ms, where a fifth of the packets were still dropped. Now an out-of-order packet that arrives after the jitter's give-up time counts as late, and the need includes the give-up time. Result: one raise, 60 → 80 ms; 0 late outputs; 51–82 packets dropped late, all before the raise.",
    '- **After**, `--only=relay --quick`, 2 receivers: receiver 1 plays at 80 ms, with 88–96 late arrivals (before the raise), 0 late outputs and 0 dropouts (2 runs). Its offset to receiver 0 was 24.95–24.98 ms: the 20 ms latency difference plus one 5 ms segment.',
    "- **That 5 ms** was syncwavepulsesink, and it had nothing to do with the relay. A pause drops the rest of the segment the writer is on, but the ring buffer's index moves past it. The offset between ring samples and stream frames kept its old value, so from then on the position read up to a segment early and that receiver played up to 5 ms early. It hit receivers whose stream had just started when the pipeline re-selected its clock (PAUSED→PLAYING once the net clock synced). The by-hand runs with `GST_DEBUG=*:1` had this timing and measured 24.89–25.00 ms in 5 of 5 runs; with a slower start (stream 0.45 s after the clock synced) they measured 19.95–20.02 ms. The dropped frames now go into the offset: 19.99–20.03 ms in 3 of 3 runs with that timing (offset from the monitor by cross-correlation, `bench-sync-analyze`). `integration-pulse-output` APauseKeepsThePositionOnTheRingBuffersIndex: after six pauses the stream used to resume 1441 frames (6 whole segments) behind the writer's segment on PulseAudio and 433 on PipeWire; now it is within the segment on both. With both fixes (87c5232), `--only=relay --quick`: receiver 1 at 80 ms, offset to receiver 0 19.98–20.00 ms (the latency difference, exactly), 0 late outputs, 0 dropouts. The same pair by hand through PipeWire 0.3.65 (pipewire-pulse, remap sinks over an 8-channel null sink) behaves the same: device queue 23–25 ms, one raise 60 → 80 ms, 0 late outputs, offset 19.87–19.93 ms.",
    "- So at latency 60 the relay section's receivers cannot all be in step: the relayed path needs 80 ms through syncwavepulsesink. The section's figures of 2026-11-25 (p99 31–63 µs) predate the playout monitor and the loss margin (2026-12-02). Back then the relayed receivers stayed at 60 ms and underran: 598–1602 dropouts. A sync figure through this relay needs every receiver at the latency the slowest one says it needs (at least 80 ms), and the benchmark does not set that yet.",
    "",
]


def write_report(path, meta, results, partial=False):
    _VERDICTS.clear()
    m = meta["machine"]
    sync, cpu = pulse_section(results.get("pulse"))
    cmd = meta["command"]
    run_load = m.get("load") or {}
    out = [
        "# Benchmarks",
        "",
        "SyncWave measured side by side with what a user would otherwise pick: GStreamer's RTP "
        "elements and Snapcast. Every comparison interleaves its sides in one run so machine "
        "noise hits all of them; figures are medians with [min–max] over repetitions. CPU "
        "figures come from the measured process's own user+system time (getrusage / wait4). "
        "This file is rewritten by the benchmark runner: do not edit the figures by hand.",
        "",
        "## Reproduce",
        "",
        "```sh",
        "meson setup build && ninja -C build",
        "tests/bench/run.sh build            # everything, ~22 min on 2 cores",
        "tests/bench/run.sh build --quick    # smoke run, ~2 min",
        "tests/bench/run.sh build --only=pulse   # some benchmarks: paydepay, jitter, "
        "instructions, latency, stability, pulse, relay, render, bandwidth, fanout",
        "tests/bench/run.sh build --report-only  # rewrite this file from "
        "build/bench-results.json",
        "tests/bench/run.sh --check-stale   # which sections were measured on older code",
        "```",
        "",
        "Needs pulseaudio, pulseaudio-utils (parec), valgrind (instruction counts) and, for the "
        "Snapcast column, `apt-get install snapserver snapclient` (Debian 12: 0.26). The runner "
        "starts its own PulseAudio daemon, snapserver and clients on 127.0.0.1 with free ports, "
        "and stops them. Raw per-run figures go to BUILD/bench-results.json. Benchmarks are "
        "built with the project (meson option `benchmarks`) and never run by `meson test`.",
        "",
    ] + DEPENDS_SECTION + [
        "## This run",
        "",
        f"- Date: {m['date']}" + (f" (this run re-measured only: {', '.join(partial)}; the "
                                  "other sections keep the figures of the previous run, "
                                  "each with its own date below)" if partial else ""),
        f"- Code: HEAD {m.get('code_head') or 'unknown'}"
        + (" with uncommitted changes to gst-plugin/core or elements" if m.get("code_dirty")
           else "") +
        f"; gst-plugin/core and elements last changed in {m.get('code_commit') or '?'} "
        f"({m.get('code_date') or '?'})",
        f"- Machine: {m['cpu']}, {m['cores']} cores"
        + (f" ({m['cpus_usable']} usable)" if m.get("cpus_usable") not in (None, m["cores"])
           else "")
        + f", {m['memory']} RAM, kernel {m['kernel']}, clock source "
        f"{m.get('clocksource', '?')}"
        + (f", governor {m['governor']}" if m.get("governor") else ""),
        f"- Load over the whole run: {bench_env.load_text(run_load, m.get('cores'))}"
        if run_load else
        f"- Load average (1/5/15 min) at start: {m.get('load_start', '?')}, at end: "
        f"{m.get('load_end', '?')}",
        f"- {m['gstreamer']}; Snapcast: {m['snapcast']}; sound servers installed: "
        f"{m.get('sound_servers_installed') or m.get('sound_server', '?')}",
        f"- Command: `{cmd}`" + (" (quick mode: fewer and shorter repetitions)" if meta["quick"]
                                  else "") + f", {meta['duration_s'] / 60:.1f} min",
        "- SyncWave elements present in the build: " + ", ".join(
            f"{k} {'yes' if v else 'no'}" for k, v in meta["elements"].items()
            if k.startswith("syncwave")),
        "",
        "## Summary against the targets (issues 3 and 6)",
        "",
        "Each figure comes from its section below, with that section's code and load; a "
        "line from a stale section is marked stale.",
        "",
    ] + summary_section(results) + [
        "",
        "## 1. Packetization cost (pay ! depay in one process)",
        "",
        f"`{results.get('paydepay', {}).get('command', 'bench-paydepay')}`",
        "",
    ] + _when(results.get("paydepay"))
    out += paydepay_section(results.get("paydepay"))
    out += ["", "rtpL16 carries 16-bit samples and SyncWave raw float32, so SyncWave moves twice "
            "the bytes and more packets per audio second: compare per audio second.", "",
            "## 2. Jitter buffering", "",
            f"`{results.get('jitter', {}).get('command', 'bench-jitter')}`", ""]
    out += _when(results.get("jitter"))
    out += jitter_section(results.get("jitter"))
    out += ["", "### Instruction counts (items 1 and 2 without timing noise)", "",
            f"`{(results.get('instructions') or {}).get('command', 'valgrind --tool=callgrind')}`",
            ""]
    out += _when(results.get("instructions"))
    out += instructions_section(results.get("instructions"))
    out += ["", "## 3. End-to-end latency (capture timestamp to render)", "",
            f"`{(results.get('latency') or {}).get('command', 'bench-latency')}`", ""]
    out += _when(results.get("latency"))
    out += latency_section(results.get("latency"))
    out += ["", "Target (issue 3): equal to the configured latency within 1 ms; no late packets "
            "at 20 ms.",
            "", "### Ten minutes at 20 ms with ±5 ms jitter", "",
            f"`{(results.get('stability') or {}).get('command', 'tests/bench/run.sh BUILD --only=stability')}`",
            ""]
    out += _when(results.get("stability"))
    out += stability_section(results.get("stability"))
    out += [
            "", "## 4. Inter-receiver sync", "",
            "### Through a real PulseAudio server", "",
            "Two receivers (separate processes) play the same pink noise into one null sink: "
            "receiver A through a mono remap sink onto the left channel, receiver B onto the "
            "right. The sink's monitor is recorded with parec and the offset between the two "
            "channels measured by cross-correlation (`bench-sync-analyze`), the same way for "
            "every system.",
            "", "`tests/bench/run.sh BUILD --only=pulse`", ""]
    out += _when(results.get("pulse"))
    out += sync
    out += ["", "Targets (issue 3): median ≤ 1 sample (21 µs), p95 ≤ 4 samples (83 µs), "
            "max ≤ 250 µs, within 2 s of joining, no dropout — tighter than Snapcast and plain "
            "GStreamer in the same run.",
            "", "### At the render position in software, 2 to 8 receivers (separate processes) "
            "through the impairment relay", "",
            "`tests/bench/run.sh BUILD --only=render`", ""]
    out += _when(results.get("render"))
    out += render_section(results.get("render"))
    out += ["", "Target (issue 3): p99 ≤ 100 µs between two receivers on loopback with the net "
            "clock, under that jitter and loss.",
            "", "### 2 to 8 receivers through the impairment relay, at PulseAudio's output", "",
            "`tests/bench/run.sh BUILD --only=relay`", ""]
    out += _when(results.get("relay"))
    out += relay_section(results.get("relay"))
    out += ["", "Measured at PulseAudio's output (the null sink's monitor), which includes each "
            "receiver's placement of the stream on its output (syncwavepulsesink). Dropouts "
            "are windows of 5 ms or more of near-silence; the relayed receivers lose 2 % of "
            "their packets and conceal each loss (raw: by continuing the waveform, "
            "docs/reliability.md), which is where they are expected to come from (not "
            "separated further here).", "",
            "## 5. CPU", "", "### Receiver (and server/sender) CPU, from the PulseAudio runs", "",
            "Whole processes: snapclient, `gst-launch-1.0 ... syncwavesink`, the plain "
            "receiver; CPU seconds per minute of running, and peak RSS (item 7).", ""]
    out += _when(results.get("pulse"))
    out += cpu
    out += ["", "Reference (issue 6, measured on this kind of machine): snapclient 0.30 CPU-s/min "
            "for PCM, 0.48 for Opus; snapserver 0.81 and 1.3.",
            "", "### Sender fan-out: 1, 10 and 100 unicast targets", "",
            "`tests/bench/run.sh BUILD --only=fanout`", ""]
    out += _when(results.get("fanout"))
    out += fanout_section(results.get("fanout"))
    out += ["", "Target: adding a unicast target costs under 0.1 % of a core.",
            "", "## 6. Bandwidth per receiver", "", "`tests/bench/run.sh BUILD --only=bandwidth`",
            ""]
    out += _when(results.get("bandwidth"))
    out += bandwidth_section(results.get("bandwidth"))
    out += ["", "## 7. Memory", "", "Peak RSS of receivers and senders is in the CPU table "
            "of section 5 (VmHWM of each process, read just before it is stopped).", ""]
    out += kept_by_hand(path)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


BY_HAND = "## 8. Measured by hand or by other scripts (kept by the runner)"


def kept_by_hand(path):
    """The part of the existing file from BY_HAND on (profiles, receiver_cost.py), which
    the runner does not measure and keeps as it is."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    at = text.find("\n" + BY_HAND + "\n")
    if at < 0:
        return []
    return text[at + 1:].rstrip("\n").split("\n") + [""]
