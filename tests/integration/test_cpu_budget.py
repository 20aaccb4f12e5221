#!/usr/bin/env python3
"""Receivers on a small CPU budget, as users run them: two `syncwave-launch receive`
(default options, Opus from `syncwave-launch send --source=test`) share 40 % of one core
in a cgroup (cpu.cfs_quota_us), each into its own null sink of a private PulseAudio;
both sinks' monitors must play: sound within 0.5 s of the recording's start, at most 10 % of
5 ms windows silent, no hole of half a second. The budget is about three times what
two receivers need on this machine, so the test holds on a loaded CI machine; the
comparison with snapclient at 15 % is the benchmark (tests/bench/cpu_budget.py).

Skipped (77) without root, the cgroup v1 cpu controller, pulseaudio or parec, and under
the sanitizer run (its instrumented receivers need several times the CPU)."""
import os
import shutil
import sys
import tempfile

SKIP = 77


def main():
    if os.environ.get("SYNCWAVE_SANITIZER_PRELOAD"):
        print("skipped: sanitized receivers do not fit a CPU budget made for real ones")
        return SKIP
    if os.geteuid() != 0 or not os.path.isdir("/sys/fs/cgroup/cpu"):
        print("skipped: needs root and the cgroup v1 cpu controller (/sys/fs/cgroup/cpu)")
        return SKIP
    for prog in ("pulseaudio", "pactl", "parec"):
        if not shutil.which(prog):
            print(f"skipped: {prog} not installed")
            return SKIP
    src = os.environ["SYNCWAVE_SOURCE_ROOT"]
    build = os.environ["SYNCWAVE_BUILD_ROOT"]
    sys.path.insert(0, os.path.join(src, "tests", "bench"))
    import cpu_budget  # noqa: E402

    tmp = tempfile.mkdtemp(prefix="syncwave-cpu-budget-test-")
    try:
        pulse = cpu_budget.Pulse(tmp)
        try:
            result, throttled = cpu_budget.run_syncwave(build, pulse, 40, 6, "opus", tmp)
        finally:
            pulse.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = False
    for sink, r in sorted(result.items()):
        print(f"{sink}: {r} (throttled {throttled} times)")
        if not 0 <= r["first_sound_ms"] < 500:
            print(f"FAIL {sink}: not playing when the recording started "
                  f"(first sound at {r['first_sound_ms']} ms)")
            failed = True
        if r["silent_windows"] > r["windows"] // 10:
            print(f"FAIL {sink}: {r['silent_windows']} of {r['windows']} windows silent")
            failed = True
        if r["longest_hole_ms"] >= 500:
            print(f"FAIL {sink}: a hole of {r['longest_hole_ms']} ms")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
