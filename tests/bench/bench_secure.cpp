// SPDX-License-Identifier: LGPL-2.1-or-later
// bench-secure: what secure streams cost (issue 14; docs/benchmarks.md, "Secure streams").
//
//   core       seal and open of one datagram (core/secure_channel.h), ns each: an
//              MTU-sized raw datagram (1395 bytes of v1, 1360 in secure mode, which
//              carries 4 frames less to stay within the MTU) and a 10 ms Opus datagram at
//              128 kb/s (171 bytes); this is also the latency each adds to a datagram's path
//   derive     the key derivation (Argon2id, 64 MiB), once per secret
//   elements   through GstHarness, plain against a secret, raw and Opus, alternating
//              order per round: the sender (syncwavepay, pre-encoded Opus) and the
//              receiver (each datagram a fresh buffer, as udpsrc makes them, into
//              syncwavejitter ! syncwavedepay), CPU per audio second of the elements
//              alone (no capture, encoder, decoder, audio output)
//
// Output: one JSON object per measurement on stdout.
// Usage: bench-secure [--rounds=N] [--seconds=S]

#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.h"
#include "secure_channel.h"

namespace secure = syncwave::secure;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void bench_core(int rounds) {
  secure::Key key{};
  for (size_t i = 0; i < key.size(); i++) key[i] = (uint8_t)(i * 7 + 1);
  for (size_t size : {size_t{1360}, size_t{1395}, size_t{171}}) {
    std::vector<uint8_t> plain(size, 0x5a);
    plain[0] = 0;
    std::vector<double> seal_ns, open_ns;
    const int n = 20000;
    for (int r = 0; r < rounds; r++) {
      secure::Sealer sealer(key, 7);
      secure::Opener opener(key);
      std::vector<std::vector<uint8_t>> sealed(n, std::vector<uint8_t>(size + secure::kOverhead));
      double t0 = bench::process_cpu_s();
      for (int i = 0; i < n; i++)
        sealer.seal(plain.data(), size, sealed[i].data(), sealed[i].size());
      double t1 = bench::process_cpu_s();
      for (int i = 0; i < n; i++) opener.open_in_place(sealed[i].data(), sealed[i].size());
      double t2 = bench::process_cpu_s();
      if (opener.opened() != (uint64_t)n) std::abort();
      seal_ns.push_back((t1 - t0) / n * 1e9);
      open_ns.push_back((t2 - t1) / n * 1e9);
    }
    std::printf(
        "{\"bench\":\"secure\",\"case\":\"core\",\"v1_bytes\":%zu,\"seal_ns\":%.0f,\"open_ns\":%."
        "0f,"
        "\"seal_ns_min\":%.0f,\"open_ns_min\":%.0f}\n",
        size, median(seal_ns), median(open_ns), *std::min_element(seal_ns.begin(), seal_ns.end()),
        *std::min_element(open_ns.begin(), open_ns.end()));
  }
}

void bench_derive() {
  secure::Key key{};
  double w0 = bench::wall_s(), c0 = bench::process_cpu_s();
  if (!secure::derive_key("a long bench passphrase", &key)) std::abort();
  std::printf("{\"bench\":\"secure\",\"case\":\"derive\",\"wall_s\":%.3f,\"cpu_s\":%.3f}\n",
              bench::wall_s() - w0, bench::process_cpu_s() - c0);
}

// Sender: syncwavepay (plain or with a secret) ! fakesink, CPU of the whole run.
double run_sender(const std::string& pay, const std::string& caps,
                  const std::vector<GstBuffer*>& input, std::vector<GstBuffer*>* out) {
  double cpu0 = bench::process_cpu_s();
  GstHarness* h = gst_harness_new_parse(pay.c_str());
  gst_harness_use_systemclock(h);
  gst_harness_set_src_caps_str(h, caps.c_str());
  for (GstBuffer* b : input) {
    gst_harness_push(h, gst_buffer_ref(b));
    while (GstBuffer* o = gst_harness_try_pull(h)) {
      if (out)
        out->push_back(o);
      else
        gst_buffer_unref(o);
    }
  }
  gst_harness_teardown(h);
  return bench::process_cpu_s() - cpu0;
}

// Receiver: datagrams pushed one by one, each a fresh buffer as udpsrc makes them, into
// syncwavejitter (plain or with a secret) ! syncwavedepay.
double run_receiver(const std::string& rx, const std::vector<GstBuffer*>& datagrams) {
  double cpu0 = bench::process_cpu_s();
  GstHarness* h = gst_harness_new_parse(rx.c_str());
  gst_harness_use_systemclock(h);
  gst_harness_set_src_caps_str(h, "application/x-syncwave");
  for (GstBuffer* b : datagrams) {
    gst_harness_push(h, gst_buffer_copy_deep(b));
    while (GstBuffer* o = gst_harness_try_pull(h)) gst_buffer_unref(o);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  while (GstBuffer* o = gst_harness_try_pull(h)) gst_buffer_unref(o);
  gst_harness_teardown(h);
  return bench::process_cpu_s() - cpu0;
}

void report(const char* name, std::vector<double> plain, std::vector<double> sec, int seconds) {
  std::vector<double> ratio;
  for (size_t r = 0; r < plain.size(); r++) ratio.push_back(sec[r] / plain[r]);
  std::sort(ratio.begin(), ratio.end());
  std::printf(
      "{\"bench\":\"secure\",\"case\":\"%s\",\"plain_us_per_audio_s\":%.1f,"
      "\"secure_us_per_audio_s\":%.1f,\"cpu_ratio\":%.3f,\"min\":%.3f,\"max\":%.3f}\n",
      name, median(plain) / seconds * 1e6, median(sec) / seconds * 1e6, median(ratio),
      ratio.front(), ratio.back());
  std::fflush(stdout);
}

void bench_elements(int rounds, int seconds) {
  const size_t count = static_cast<size_t>(seconds) * 100;
  std::vector<float> pcm = bench::noise(bench::kRate * 10, 1);
  std::vector<GstBuffer*> f32 = bench::f32_buffers(pcm, count);
  GstCaps* opus_caps = nullptr;
  std::vector<GstBuffer*> opus = bench::opus_packets(pcm, count, 128000, &opus_caps);
  gchar* oc = gst_caps_to_string(opus_caps);
  const std::string opus_caps_str = oc;
  g_free(oc);
  const std::string f32_caps = "audio/x-raw,format=F32LE,layout=interleaved,rate=48000,channels=2";
  const std::string pay = "syncwavepay", pay_s = "syncwavepay secret=bench-secret";
  const std::string rx = "syncwavejitter mode=slave latency=20 ! syncwavedepay";
  const std::string rx_s =
      "syncwavejitter secret=bench-secret mode=slave latency=20 ! syncwavedepay";
  struct Stream {
    const char* name;
    std::vector<GstBuffer*>* input;
    std::string caps;
    std::vector<GstBuffer*> plain, sealed;  // the sender's datagrams, for the receiver
  };
  std::vector<Stream> streams = {{"raw", &f32, f32_caps, {}, {}},
                                 {"opus", &opus, opus_caps_str, {}, {}}};
  for (Stream& s : streams) {
    run_sender(pay, s.caps, *s.input, &s.plain);  // also the warm-up
    run_sender(pay_s, s.caps, *s.input, &s.sealed);
    run_receiver(rx, s.plain);
    run_receiver(rx_s, s.sealed);
  }
  for (Stream& s : streams) {
    std::vector<double> tx[2], recv[2];
    for (int r = 0; r < rounds; r++) {
      for (int k = 0; k < 2; k++) {
        const int v = (k + r) % 2;  // alternate which runs first
        tx[v].push_back(run_sender(v ? pay_s : pay, s.caps, *s.input, nullptr));
        recv[v].push_back(run_receiver(v ? rx_s : rx, v ? s.sealed : s.plain));
      }
    }
    report((std::string(s.name) + "-sender").c_str(), tx[0], tx[1], seconds);
    report((std::string(s.name) + "-receiver").c_str(), recv[0], recv[1], seconds);
    for (auto* v : {&s.plain, &s.sealed})
      for (GstBuffer* b : *v) gst_buffer_unref(b);
  }
  for (auto* v : {&f32, &opus})
    for (GstBuffer* b : *v) gst_buffer_unref(b);
  gst_caps_unref(opus_caps);
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  int rounds = 5, seconds = 30;
  for (int i = 1; i < argc; i++) {
    if (!std::strncmp(argv[i], "--rounds=", 9))
      rounds = std::atoi(argv[i] + 9);
    else if (!std::strncmp(argv[i], "--seconds=", 10))
      seconds = std::atoi(argv[i] + 10);
    else {
      std::fprintf(stderr, "usage: bench-secure [--rounds=N] [--seconds=S]\n");
      return 2;
    }
  }
  if (!secure::available()) return 1;
  bench_core(rounds);
  bench_derive();
  bench_elements(rounds, seconds);
  return 0;
}
