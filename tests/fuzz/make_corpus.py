#!/usr/bin/env python3
"""Writes the seed corpus under tests/fuzz/corpus/<target>/ (committed; rerun after
changing the input formats of the fuzz targets)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def header(rate=48000, channels=2, comp=0, version=1):
    return b"SYNC" + struct.pack("<BIHB", version, rate, channels, comp)


def audio(kind, ts, payload):
    return struct.pack("<BQH", kind, ts, len(payload)) + payload


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def seq(*dgrams):
    return b"".join(struct.pack("<H", len(g)) + g for g in dgrams)


T0 = 1700000000000000
raw10ms = bytes(480 * 2 * 4)
opus_tocs = [0xFC, 0xF8, 0x78, 0x08, 0x80, 0xE0, 0xFD, 0xFE, 0xFF, 0x03]

# fuzz-wire-format: single datagrams and length-prefixed sequences.
w = "fuzz-wire-format"
write(w, "header-raw", header())
write(w, "header-opus", header(48000, 2, 1))
write(w, "header-0hz", header(0))
write(w, "header-10mhz", header(10000000))
write(w, "header-0ch", header(48000, 0))
write(w, "header-65535ch", header(48000, 65535))
write(w, "header-v2", header(version=2))
write(w, "header-codec9", header(comp=9))
write(w, "raw-10ms", audio(0, T0, raw10ms))
write(w, "raw-size-lies", audio(0, T0, raw10ms)[:9] + b"\xff\xff" + raw10ms)
for t in opus_tocs:
    write(w, "opus-%02x" % t, audio(1, T0, bytes([t, 3, 0x10, 0x20, 0x30, 0x40])))
write(w, "seq-raw", seq(header(), header(), audio(0, T0, raw10ms[:64]),
                        audio(0, T0 + 10000, raw10ms[:64]), b"\x07garbage",
                        header(44100, 1, 0), audio(0, T0 + 20000, raw10ms[:60])))
write(w, "seq-opus", seq(header(48000, 2, 1), audio(1, T0, b"\xfc\x01\x02"),
                         audio(0, T0, raw10ms[:8]), audio(1, T0 + 20000, b"\xfd\x01\x02\x03")))

# fuzz-depay / fuzz-jitter: scripts for fuzz_gst_common's DatagramScript.
# op byte: low 3 bits = action (0 loss event, 1 flush, 2..7 datagram; 6 DISCONT,
# 7 no timestamp), high 5 bits = ms to advance. Datagram kind byte: %8 == 0 header,
# 7 garbage, else audio. Audio flags: bit0 codec mismatch, bit1 lie/garbage,
# bits2-4 timestamp mode, bit5 size field lies, bit6 truncate.
def op(action, ms):
    return bytes([(ms << 3) | action])


def hdr(sel=0, flags=0):
    return b"\x00" + bytes([sel, flags])


def aud(flags=0, frames=31, extra=b""):
    return b"\x01" + bytes([flags, frames]) + bytes(8) + extra


steady = op(2, 0) + hdr() + b"".join(op(2, 10) + aud(0, 31) for _ in range(40))
for target in ("fuzz-depay", "fuzz-jitter"):
    write(target, "steady-raw", bytes([0x10]) + steady)
    write(target, "steady-opus", bytes([0x10]) + op(2, 0) + hdr(0, 1) +
          b"".join(op(2, 20) + b"\x01\x00\x05\xfc\x01\x02\x03\x04\x05" for _ in range(30)))
    write(target, "jittery", bytes([0x10]) + op(2, 0) + hdr() +
          b"".join(op(2, 10) + aud(3 << 2, 31, b"\x10\x27") for _ in range(30)))
    write(target, "loss-and-flush", bytes([0x10]) + steady[:60] + op(0, 30) + b"\x00\x10\x27\x00\x00"
          + op(1, 0) + steady[:60])
    write(target, "format-change", bytes([0x10]) + steady[:80] + op(2, 0) + hdr(1, 0) +
          op(2, 0) + hdr(0x11, 1) + steady[3:80])
    write(target, "garbage-mix", bytes([0x10]) + b"".join(
        op(2, 5) + aud(0, 31) + op(3, 0) + b"\x07\x05hello" + op(4, 0) + aud(0x20, 31, b"\xff\xff")
        for _ in range(20)))
    write(target, "restart-jump", bytes([0x10]) + steady[:120] + op(2, 10) + aud(4 << 2, 31, b"\x00\x00\x00\x10")
          + steady[3:120])
    write(target, "back-in-time", bytes([0x91]) + steady[:120] + op(2, 10) + aud(5 << 2, 31, b"\xff\x7f")
          + steady[3:60])

# fuzz-secure-channel: steps of op byte + u16 LE length + chunk (see fuzz_secure_channel.cpp).
def step(o, chunk=b""):
    return bytes([o]) + struct.pack("<H", len(chunk)) + chunk


w = "fuzz-secure-channel"
a10 = audio(0, T0, raw10ms[:64])
write(w, "stream", step(1, header()) + b"".join(step(1, audio(0, T0 + 10000 * i, raw10ms[:64]))
                                                 for i in range(8)))
write(w, "replays", step(1, header()) + step(1, a10) + step(1, a10) + step(2, b"\x00\x00") +
      step(2, b"\x01\x00") + step(2, b"\x02\x00"))
write(w, "window-jumps", step(1, a10) + step(3, struct.pack("<Q", 1023)) + step(1, a10) +
      step(3, struct.pack("<Q", 1)) + step(1, a10) + step(3, struct.pack("<Q", 5000)) +
      step(1, a10) + step(3, struct.pack("<Q", 5000 - 1024)) + step(1, a10) +
      step(3, struct.pack("<Q", 2**64 - 2)) + step(1, a10) + step(1, a10))
write(w, "restarts", b"".join(step(4, struct.pack("<Q", i * 7919)) + step(1, header()) + step(1, a10)
                              for i in range(20)) + step(2, b"\x03\x00"))
write(w, "tamper-cut-foreign", step(1, header()) + step(1, a10) +
      b"".join(step(5, struct.pack("<HHB", 1, i, 1 << (i % 8))) for i in range(0, 90, 3)) +
      b"".join(step(6, struct.pack("<HH", 1, n)) for n in (0, 1, 18, 19, 35, 36, 74)) +
      step(7, header()) + step(7, a10))
write(w, "raw-datagrams", step(0, header()) + step(0, a10) + step(0, b"\xf5") +
      step(0, b"\xf5\x01" + bytes(40)) + step(0, b"\xf5\x02" + bytes(40)) +
      step(0, b"\xf5\x01" + bytes(7) + b"\x01\x00" + bytes(30)))
write(w, "stray-secure", b"\xf5\x01" + bytes(7) + b"\x00\x00" + bytes(8) + header() + bytes(16))
print("corpus written")
