// SPDX-License-Identifier: LGPL-2.1-or-later
// bench-latency: end-to-end latency, capture timestamp to render, of a raw
// SyncWave stream over UDP on loopback.
//
// One process, two pipelines on the host's realtime clock (the receiver with
// clock=system, so both read the same timebase):
//   sender:   appsrc (live, 10 ms buffers pushed when their last sample has been
//             "captured") ! syncwavepay ! udpsink 127.0.0.1:PORT
//   receiver: udpsrc ! syncwavesink clock=system latency=L
//             audio-sink="audioconvert ! F32LE ! fakesink sync=true"
// The audio is a ramp that encodes each sample's index (period 2^18 samples), so
// at each render (fakesink's handoff, after its clock wait) the program knows
// which sample is being rendered and when it was captured:
//   e2e = clock time at render - capture time of the buffer's first sample.
// This is the software render position (what an audio sink is handed at that
// moment), not the acoustic output.
//
// Opus does not carry a ramp through, so with --codec=opus (and the Opus presets)
// the signal is a 10 ms 1 kHz burst every 100 ms of silence, and the measured
// sample is each burst's onset (first sample above 0.1 after 50 ms below it) in
// what fakesink is handed: e2e = clock time at render of the onset sample - capture
// time of the burst. The encoder's and decoder's own delay is part of it.
//
// Output: one JSON object per case and round:
//   {"bench":"latency","case":..,"codec":..,"latency_ms":..,"round":..,"renders":..,
//    "median_dev_us":..,"p99_abs_dev_us":..,"min_dev_us":..,"max_dev_us":..,
//    "unmatched":..,"stats":".."}
//
// Usage: bench-latency [--rounds=N] [--seconds=S] [--latencies=20,40,60]
//                      [--codec=raw|opus] [--preset=FILE.preset ...]
// --preset runs the send and receive settings of a syncwave-launch preset (codec,
// bitrate, frame-ms, fec, latency) instead of the latency list.

#include <gio/gio.h>
#include <gst/app/gstappsrc.h>
#include <gst/base/gstbasesink.h>
#include <gst/gst.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kRate = 48000;
constexpr int kChannels = 2;
constexpr int64_t kPeriod = 1 << 18;  // ramp period in samples (5.46 s)
constexpr double kLo = -0.8, kSpan = 1.6;
constexpr int64_t kBurstPeriod = kRate / 10;  // Opus signal: a burst every 100 ms
constexpr int64_t kBurstLength = kRate / 100;

float ramp(int64_t n) {
  return static_cast<float>(kLo + kSpan * (n % kPeriod) / kPeriod);
}

float burst(int64_t n) {
  int64_t k = n % kBurstPeriod;
  return k < kBurstLength ? static_cast<float>(0.5 * std::sin(2 * M_PI * 1000.0 * k / kRate))
                          : 0.0f;
}

struct Case {
  std::string name;
  std::string codec = "raw";  // raw | opus
  int latency_ms = 60;
  int frame_ms = 10;
  int bitrate_kbps = 128;
  int fec_percent = 0;
};

struct Run {
  GstClock* clock = nullptr;
  GstClockTime capture0 = 0;  // realtime ns of sample 0
  std::atomic<bool> started{false};
  int latency_ms = 60;
  bool opus = false;
  std::mutex lock;
  std::vector<double> dev_us;
  guint64 unmatched = 0;
  int64_t quiet = 0;         // Opus onsets: samples since the signal was last above 0.1
  GstClockTime rx_base = 0;  // base time of the receiver (BENCH_DEBUG)
};

// Opus: the onset of each burst in a rendered buffer.
void on_handoff_bursts(Run* run, GstClockTime now, GstClockTime pts, const float* s,
                       size_t frames) {
  std::lock_guard<std::mutex> g(run->lock);
  for (size_t i = 0; i < frames; i++) {
    float v = std::fabs(s[i * kChannels]);
    if (v > 0.1f && run->quiet >= kRate / 20) {
      double render = static_cast<double>(now) + i * 1e9 / kRate;
      double expected =
          (render - run->latency_ms * 1e6 - static_cast<double>(run->capture0)) * kRate / 1e9;
      double n = std::round(expected / kBurstPeriod) * kBurstPeriod;
      double capture = run->capture0 + n * 1e9 / kRate;
      run->dev_us.push_back((render - capture - run->latency_ms * 1e6) / 1000.0);
      if (getenv("BENCH_DEBUG") && GST_CLOCK_TIME_IS_VALID(pts))
        std::fprintf(
            stderr,
            "onset: render-capture-latency %.1f us, timeline (base+pts) - capture %.1f us\n",
            (render - capture - run->latency_ms * 1e6) / 1000.0,
            ((double)run->rx_base + (double)pts + i * 1e9 / kRate - capture) / 1000.0);
    }
    run->quiet = v <= 0.1f ? run->quiet + 1 : 0;
  }
}

void on_handoff(GstElement*, GstBuffer* buf, GstPad*, gpointer data) {
  Run* run = static_cast<Run*>(data);
  GstClockTime now = gst_clock_get_time(run->clock);
  if (!run->started) return;
  if (run->opus) {
    GstMapInfo m;
    if (!gst_buffer_map(buf, &m, GST_MAP_READ)) return;
    on_handoff_bursts(run, now, GST_BUFFER_PTS(buf), reinterpret_cast<const float*>(m.data),
                      m.size / (sizeof(float) * kChannels));
    gst_buffer_unmap(buf, &m);
    return;
  }
  GstMapInfo m;
  if (!gst_buffer_map(buf, &m, GST_MAP_READ)) return;
  const float* s = reinterpret_cast<const float*>(m.data);
  size_t frames = m.size / (sizeof(float) * kChannels);
  bool ok = frames >= 2;
  int64_t k0 = 0;
  if (ok) {
    k0 = std::llround((s[0] - kLo) / kSpan * kPeriod);
    int64_t k1 = std::llround((s[(frames - 1) * kChannels] - kLo) / kSpan * kPeriod);
    // A ramp segment away from the wrap, contiguous within the buffer.
    ok = k0 > 2000 && k0 < kPeriod - 2000 - static_cast<int64_t>(frames) &&
         std::llabs(k1 - k0 - static_cast<int64_t>(frames - 1)) <= 2;
  }
  gst_buffer_unmap(buf, &m);
  std::lock_guard<std::mutex> g(run->lock);
  if (!ok) {
    run->unmatched++;
    return;
  }
  double expected =
      (static_cast<double>(now) - run->latency_ms * 1e6 - static_cast<double>(run->capture0)) *
      kRate / 1e9;
  double wraps = std::round((expected - k0) / kPeriod);
  int64_t n = k0 + static_cast<int64_t>(wraps) * kPeriod;
  double capture = run->capture0 + n * 1e9 / kRate;
  double e2e = static_cast<double>(now) - capture;
  run->dev_us.push_back((e2e - run->latency_ms * 1e6) / 1000.0);
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  double k = (v.size() - 1) * p / 100.0;
  size_t lo = static_cast<size_t>(k), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (k - lo);
}

int free_udp_port() {
  GSocket* s =
      g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  GInetAddress* lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress* a = g_inet_socket_address_new(lo, 0);
  g_socket_bind(s, a, TRUE, NULL);
  GSocketAddress* b = g_socket_get_local_address(s, NULL);
  int port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(b));
  g_object_unref(b);
  g_object_unref(a);
  g_object_unref(lo);
  g_object_unref(s);
  return port;
}

void run_one(const Case& c, int seconds, int round) {
  const int latency_ms = c.latency_ms;
  const int frames_per_buffer = kRate * c.frame_ms / 1000;
  Run run;
  run.latency_ms = latency_ms;
  run.opus = c.codec == "opus";
  run.clock =
      GST_CLOCK(g_object_new(GST_TYPE_SYSTEM_CLOCK, "clock-type", GST_CLOCK_TYPE_REALTIME, NULL));
  int port = free_udp_port();
  gchar* rdesc = g_strdup_printf(
      "udpsrc port=%d address=127.0.0.1 ! syncwavesink name=sw clock=system latency=%d "
      "audio-sink=\"audioconvert ! audio/x-raw,format=F32LE ! fakesink name=fs sync=true "
      "signal-handoffs=true\"",
      port, latency_ms);
  gchar* fec = c.fec_percent > 0
                   ? g_strdup_printf(" inband-fec=true packet-loss-percentage=%d", c.fec_percent)
                   : g_strdup("");
  gchar* enc = run.opus ? g_strdup_printf("audioconvert ! opusenc bitrate=%d frame-size=%d%s ! ",
                                          c.bitrate_kbps * 1000, c.frame_ms, fec)
                        : g_strdup("");
  g_free(fec);
  gchar* sdesc = g_strdup_printf(
      "appsrc name=src is-live=true format=time caps=audio/x-raw,format=F32LE,"
      "layout=interleaved,rate=%d,channels=%d ! %ssyncwavepay ! udpsink host=127.0.0.1 "
      "port=%d sync=false async=false",
      kRate, kChannels, enc, port);
  g_free(enc);
  GError* err = NULL;
  GstElement* rx = gst_parse_launch(rdesc, &err);
  GstElement* tx = rx ? gst_parse_launch(sdesc, &err) : NULL;
  g_free(rdesc);
  g_free(sdesc);
  if (!rx || !tx) {
    std::printf(
        "{\"bench\":\"latency\",\"case\":\"%s\",\"latency_ms\":%d,\"round\":%d,"
        "\"error\":\"%s\"}\n",
        c.name.c_str(), latency_ms, round, err ? err->message : "parse");
    return;
  }
  GstElement* sw = gst_bin_get_by_name(GST_BIN(rx), "sw");
  GstElement* fs = gst_bin_get_by_name_recurse_up(GST_BIN(sw), "fs");
  if (!fs) {
    GstElement* as = NULL;
    g_object_get(sw, "audio-sink", &as, NULL);
    if (as && GST_IS_BIN(as)) fs = gst_bin_get_by_name(GST_BIN(as), "fs");
    if (as) gst_object_unref(as);
  }
  if (fs) g_signal_connect(fs, "handoff", G_CALLBACK(on_handoff), &run);
  gst_pipeline_use_clock(GST_PIPELINE(tx), run.clock);
  gst_element_set_state(rx, GST_STATE_PLAYING);
  gst_element_set_state(tx, GST_STATE_PLAYING);
  gst_element_get_state(tx, NULL, NULL, 5 * GST_SECOND);
  GstElement* src = gst_bin_get_by_name(GST_BIN(tx), "src");
  GstClockTime base = gst_element_get_base_time(tx);
  run.rx_base = gst_element_get_base_time(rx);
  GstClockTime start_rt = gst_clock_get_time(run.clock) - base;
  run.capture0 = base + start_rt;
  run.started = true;
  if (getenv("BENCH_DEBUG"))
    std::fprintf(stderr, "capture0 %" G_GUINT64_FORMAT " us\n", (guint64)(run.capture0 / 1000));
  std::vector<float> pcm(frames_per_buffer * kChannels);
  const int buffers = seconds * 1000 / c.frame_ms;
  for (int i = 0; i < buffers; i++) {
    const int64_t first = int64_t(i) * frames_per_buffer;
    GstClockTime pts = start_rt + gst_util_uint64_scale(first, GST_SECOND, kRate);
    GstClockTime due =
        base + start_rt + gst_util_uint64_scale(first + frames_per_buffer, GST_SECOND, kRate);
    GstClockID id = gst_clock_new_single_shot_id(run.clock, due);
    gst_clock_id_wait(id, NULL);
    gst_clock_id_unref(id);
    for (int f = 0; f < frames_per_buffer; f++)
      for (int ch = 0; ch < kChannels; ch++)
        pcm[f * kChannels + ch] = run.opus ? burst(first + f) : ramp(first + f);
    GstBuffer* b = gst_buffer_new_memdup(pcm.data(), pcm.size() * sizeof(float));
    GST_BUFFER_PTS(b) = pts;
    GST_BUFFER_DURATION(b) = gst_util_uint64_scale(frames_per_buffer, GST_SECOND, kRate);
    gst_app_src_push_buffer(GST_APP_SRC(src), b);
  }
  g_usleep((latency_ms + 100) * 1000);
  if (getenv("BENCH_DEBUG") && fs)
    std::fprintf(stderr, "sink latency %" GST_TIME_FORMAT " rx base %" G_GUINT64_FORMAT "\n",
                 GST_TIME_ARGS(gst_base_sink_get_latency(GST_BASE_SINK(fs))),
                 (guint64)gst_element_get_base_time(rx));
  gchar* stats_str = NULL;
  GstStructure* stats = NULL;
  g_object_get(sw, "stats", &stats, NULL);
  if (stats) {
    stats_str = gst_structure_to_string(stats);
    gst_structure_free(stats);
  }
  gst_element_set_state(tx, GST_STATE_NULL);
  gst_element_set_state(rx, GST_STATE_NULL);
  std::vector<double> absd;
  {
    std::lock_guard<std::mutex> g(run.lock);
    for (double d : run.dev_us) absd.push_back(std::fabs(d));
  }
  std::string st = stats_str ? stats_str : "";
  for (char& ch : st)
    if (ch == '"' || ch == '\\') ch = '\'';
  std::printf(
      "{\"bench\":\"latency\",\"case\":\"%s\",\"codec\":\"%s\",\"frame_ms\":%d,"
      "\"latency_ms\":%d,\"round\":%d,\"renders\":%zu,"
      "\"median_dev_us\":%.1f,\"p99_abs_dev_us\":%.1f,\"min_dev_us\":%.1f,"
      "\"max_dev_us\":%.1f,\"unmatched\":%" G_GUINT64_FORMAT ",\"stats\":\"%s\"}\n",
      c.name.c_str(), c.codec.c_str(), c.frame_ms, latency_ms, round, run.dev_us.size(),
      pct(run.dev_us, 50), pct(absd, 99), pct(run.dev_us, 0), pct(run.dev_us, 100), run.unmatched,
      st.c_str());
  std::fflush(stdout);
  g_free(stats_str);
  if (fs) gst_object_unref(fs);
  gst_object_unref(src);
  gst_object_unref(sw);
  gst_object_unref(tx);
  gst_object_unref(rx);
  gst_object_unref(run.clock);
}

}  // namespace

// The send and receive settings of a syncwave-launch preset file (INI).
bool read_preset(const char* path, Case* c) {
  GKeyFile* kf = g_key_file_new();
  if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, NULL)) {
    g_key_file_free(kf);
    return false;
  }
  gchar* base = g_path_get_basename(path);
  c->name = base;
  c->name = c->name.substr(0, c->name.find('.'));
  g_free(base);
  auto get_int = [&](const char* group, const char* key, int* out) {
    GError* e = NULL;
    int v = g_key_file_get_integer(kf, group, key, &e);
    if (e == NULL) *out = v;
    g_clear_error(&e);
  };
  gchar* codec = g_key_file_get_string(kf, "send", "codec", NULL);
  if (codec) c->codec = codec;
  g_free(codec);
  get_int("send", "bitrate", &c->bitrate_kbps);
  get_int("send", "frame-ms", &c->frame_ms);
  get_int("send", "fec", &c->fec_percent);
  get_int("receive", "latency", &c->latency_ms);
  g_key_file_free(kf);
  return true;
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  int rounds = 3, seconds = 10;
  std::vector<int> latencies = {20, 40, 60};
  std::string codec = "raw";
  std::vector<Case> presets;
  for (int i = 1; i < argc; i++) {
    if (!std::strncmp(argv[i], "--rounds=", 9)) {
      rounds = std::atoi(argv[i] + 9);
    } else if (!std::strncmp(argv[i], "--seconds=", 10)) {
      seconds = std::atoi(argv[i] + 10);
    } else if (!std::strncmp(argv[i], "--latencies=", 12)) {
      latencies.clear();
      std::stringstream ss(argv[i] + 12);
      std::string tok;
      while (std::getline(ss, tok, ',')) latencies.push_back(std::atoi(tok.c_str()));
    } else if (!std::strncmp(argv[i], "--codec=", 8) &&
               (!std::strcmp(argv[i] + 8, "raw") || !std::strcmp(argv[i] + 8, "opus"))) {
      codec = argv[i] + 8;
    } else if (!std::strncmp(argv[i], "--preset=", 9)) {
      Case c;
      if (!read_preset(argv[i] + 9, &c)) {
        std::fprintf(stderr, "bench-latency: cannot read preset %s\n", argv[i] + 9);
        return 2;
      }
      presets.push_back(c);
    } else {
      std::fprintf(stderr,
                   "usage: bench-latency [--rounds=N] [--seconds=S] [--latencies=20,40,60] "
                   "[--codec=raw|opus] [--preset=FILE ...]\n");
      return 2;
    }
  }
  for (const char* e : {"syncwavepay", "syncwavesink"}) {
    GstElementFactory* f = gst_element_factory_find(e);
    if (!f) {
      std::printf("{\"bench\":\"latency\",\"available\":false,\"missing\":\"%s\"}\n", e);
      return 0;
    }
    gst_object_unref(f);
  }
  std::vector<Case> cases = presets;
  if (cases.empty()) {
    for (int l : latencies) {
      Case c;
      c.codec = codec;
      c.latency_ms = l;
      c.name = codec + "-" + std::to_string(l) + "ms";
      cases.push_back(c);
    }
  }
  for (int r = 0; r < rounds; r++)
    for (size_t k = 0; k < cases.size(); k++) run_one(cases[(k + r) % cases.size()], seconds, r);
  return 0;
}
