#!/usr/bin/env python3
"""An original-style SyncWave sender for the benchmarks: reads 48 kHz stereo s16le from
--file, sends 5 ms raw float32 packets in the SYNC v1 wire format to every --target,
each stamped with the wall clock when it is sent, 0-4 ms after its capture time (as
the original Rust+Python sender and any callback-driven capture do), with the stream
header first and every 100 packets. Runs until killed (loops over the file).

  original_sender.py --file=noise.raw --target=127.0.0.1:5555 [--target=...] [--seed=1]
"""
import random
import socket
import struct
import sys
import time

RATE, CHANNELS, FRAMES = 48000, 2, 240


def main():
    path, targets, seed = None, [], 1
    for a in sys.argv[1:]:
        if a.startswith("--file="):
            path = a.split("=", 1)[1]
        elif a.startswith("--target="):
            host, port = a.split("=", 1)[1].rsplit(":", 1)
            targets.append((host, int(port)))
        elif a.startswith("--seed="):
            seed = int(a.split("=", 1)[1])
        else:
            print(f"original_sender.py: unknown option {a}", file=sys.stderr)
            return 2
    if not path or not targets:
        print("original_sender.py: --file and --target are required", file=sys.stderr)
        return 2
    pcm = open(path, "rb").read()
    step = FRAMES * CHANNELS * 2
    samples = len(pcm) // step
    if samples == 0:
        print("original_sender.py: the file is shorter than one packet", file=sys.stderr)
        return 1
    header = b"SYNC" + struct.pack("<BIHB", 1, RATE, CHANNELS, 0)
    rng = random.Random(seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0 = time.monotonic()
    k = 0
    while True:
        due = t0 + k * FRAMES / RATE + rng.uniform(0, 0.004)
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        if k % 100 == 0:
            for t in targets:
                sock.sendto(header, t)
        i = (k % samples) * step
        ints = struct.unpack(f"<{FRAMES * CHANNELS}h", pcm[i:i + step])
        body = struct.pack(f"<{FRAMES * CHANNELS}f", *(v / 32768.0 for v in ints))
        stamp = int(time.time() * 1e6)
        packet = struct.pack("<BQH", 0, stamp, len(body)) + body  # type 0: raw
        for t in targets:
            sock.sendto(packet, t)
        k += 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
