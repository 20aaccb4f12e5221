// SPDX-License-Identifier: LGPL-2.1-or-later
// bench-render: render-position sync of separate receiver processes, in software.
//
//   bench-render send --targets=H:P[,H:P...] --seconds=S [--frame-ms=10]
//       A live sender on the host's realtime clock: appsrc (10 ms buffers of a ramp
//       that encodes each sample's index) ! syncwavepay time-provider-port=<free>
//       ! multiudpsink. Prints "clock-port=<port>" once the provider runs, then
//       "capture0=<realtime ns of sample 0>" when streaming starts.
//   bench-render receive --port=P --clock=SPEC --latency=MS --seconds=S
//       udpsrc ! syncwavesink clock=SPEC latency=MS audio-sink="... fakesink
//       sync=true"; for every buffer handed to fakesink prints
//       "r <ramp index of its first sample> <CLOCK_REALTIME ns at that moment>
//        <its scheduled render time, in CLOCK_REALTIME ns>".
//       The scheduled time is where the sink puts the sample on its pipeline clock
//       (base time + running time + latency), carried over to CLOCK_REALTIME by
//       reading both clocks at once: the render position without the wake-up delay of
//       the thread that calls the handoff.
//   bench-render receive --port=P --clock=SPEC --latency=MS --seconds=S --device=SINK
//       The same receiver playing into a PulseAudio sink (syncwavesink device=SINK,
//       its own output) instead of fakesink: no "r" lines.
//   It stops after --seconds, or at SIGINT/SIGTERM. Either way, at the end: "margin n=.. p1=.. p50=.. min=.. late=.." (µs), the
//   arrival margin of every audio datagram from 2 s after the first (its capture time
//   + latency - the pipeline clock when udpsrc pushes it: how long before its due time
//   it arrived, < 0 late; latency: the one the sink plays at, from its
//   "syncwave-latency" messages),
//   measured here because syncwavesink's stats keep only the transit's p99 over the
//   last 2 s (transit-p99-us), and "stats <syncwavesink's stats>".
//       The realtime clock is the same physical clock for every process on the
//       host, so two receivers' render moments of the same sample can be compared
//       whatever clock each pipeline runs on.
//
// The runner (run.py, benchmark "render") pairs the lines of several receivers by
// sample index and reports the offsets.

#include <gio/gio.h>
#include <gst/app/gstappsrc.h>
#include <gst/base/gstbasesink.h>
#include <gst/gst.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr int kRate = 48000;
constexpr int kChannels = 2;
constexpr int kFrames = kRate / 100;
constexpr int64_t kPeriod = 1 << 18;
constexpr double kLo = -0.8, kSpan = 1.6;

float ramp(int64_t n) {
  return static_cast<float>(kLo + kSpan * (n % kPeriod) / kPeriod);
}

guint64 realtime_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<guint64>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

const char* arg(int argc, char** argv, const char* name, const char* def) {
  size_t n = std::strlen(name);
  for (int i = 2; i < argc; i++)
    if (!std::strncmp(argv[i], name, n) && argv[i][n] == '=') return argv[i] + n + 1;
  return def;
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

int send(int argc, char** argv) {
  const char* targets = arg(argc, argv, "--targets", nullptr);
  int seconds = std::atoi(arg(argc, argv, "--seconds", "20"));
  // Capture buffer length: 10 ms, or 5 ms as the lan-lowlatency preset sends.
  const int frame_ms = std::atoi(arg(argc, argv, "--frame-ms", "10"));
  if (!targets || frame_ms <= 0 || frame_ms > 100) return 2;
  const int frames = kRate * frame_ms / 1000;
  GstClock* clock =
      GST_CLOCK(g_object_new(GST_TYPE_SYSTEM_CLOCK, "clock-type", GST_CLOCK_TYPE_REALTIME, NULL));
  int cport = free_udp_port();
  gchar* desc = g_strdup_printf(
      "appsrc name=src is-live=true format=time caps=audio/x-raw,format=F32LE,"
      "layout=interleaved,rate=%d,channels=%d ! syncwavepay time-provider-port=%d ! "
      "multiudpsink clients=%s sync=false async=false",
      kRate, kChannels, cport, targets);
  GError* err = NULL;
  GstElement* tx = gst_parse_launch(desc, &err);
  g_free(desc);
  if (!tx) {
    std::fprintf(stderr, "sender: %s\n", err ? err->message : "?");
    return 1;
  }
  gst_pipeline_use_clock(GST_PIPELINE(tx), clock);
  gst_element_set_state(tx, GST_STATE_PLAYING);
  gst_element_get_state(tx, NULL, NULL, 5 * GST_SECOND);
  std::printf("clock-port=%d\n", cport);
  std::fflush(stdout);
  // Give the receivers a moment to sync their clocks before audio starts.
  g_usleep(1500 * 1000);
  GstElement* src = gst_bin_get_by_name(GST_BIN(tx), "src");
  GstClockTime base = gst_element_get_base_time(tx);
  GstClockTime start_rt = gst_clock_get_time(clock) - base;
  std::printf("capture0=%" G_GUINT64_FORMAT "\n", base + start_rt);
  std::fflush(stdout);
  std::vector<float> pcm(frames * kChannels);
  for (int i = 0; i < seconds * 1000 / frame_ms; i++) {
    const int64_t first = int64_t(i) * frames;
    GstClockTime pts = start_rt + gst_util_uint64_scale(first, GST_SECOND, kRate);
    GstClockTime due = base + start_rt + gst_util_uint64_scale(first + frames, GST_SECOND, kRate);
    GstClockID id = gst_clock_new_single_shot_id(clock, due);
    gst_clock_id_wait(id, NULL);
    gst_clock_id_unref(id);
    for (int f = 0; f < frames; f++)
      for (int c = 0; c < kChannels; c++) pcm[f * kChannels + c] = ramp(first + f);
    GstBuffer* b = gst_buffer_new_memdup(pcm.data(), pcm.size() * sizeof(float));
    GST_BUFFER_PTS(b) = pts;
    GST_BUFFER_DURATION(b) = gst_util_uint64_scale(frames, GST_SECOND, kRate);
    gst_app_src_push_buffer(GST_APP_SRC(src), b);
  }
  g_usleep(500 * 1000);
  gst_element_set_state(tx, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(tx);
  gst_object_unref(clock);
  return 0;
}

void on_handoff(GstElement* sink, GstBuffer* buf, GstPad*, gpointer) {
  guint64 now = realtime_ns();
  // Where the sink scheduled this buffer, on its clock, then in realtime.
  guint64 sched = 0;
  GstClock* clock = gst_element_get_clock(sink);
  if (clock != NULL && GST_BUFFER_PTS_IS_VALID(buf)) {
    GstBaseSink* bs = GST_BASE_SINK(sink);
    GST_OBJECT_LOCK(bs);
    GstClockTime rt =
        gst_segment_to_running_time(&bs->segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
    GST_OBJECT_UNLOCK(bs);
    GstClockTime clock_now = gst_clock_get_time(clock);
    guint64 now2 = realtime_ns();
    if (GST_CLOCK_TIME_IS_VALID(rt)) {
      double at = (double)gst_element_get_base_time(sink) + (double)rt +
                  (double)gst_base_sink_get_latency(bs) +
                  (double)gst_base_sink_get_render_delay(bs);
      sched = (guint64)((double)(now + now2) / 2 - ((double)clock_now - at));
    }
  }
  if (clock) gst_object_unref(clock);
  GstMapInfo m;
  if (!gst_buffer_map(buf, &m, GST_MAP_READ)) return;
  const float* s = reinterpret_cast<const float*>(m.data);
  size_t frames = m.size / (sizeof(float) * kChannels);
  if (frames >= 2) {
    int64_t k0 = std::llround((s[0] - kLo) / kSpan * kPeriod);
    int64_t k1 = std::llround((s[(frames - 1) * kChannels] - kLo) / kSpan * kPeriod);
    bool ok = k0 > 2000 && k0 < kPeriod - 2000 - static_cast<int64_t>(frames) &&
              std::llabs(k1 - k0 - static_cast<int64_t>(frames - 1)) <= 2;
    if (ok)
      std::printf("r %lld %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
                  static_cast<long long>(k0), now, sched);
  }
  gst_buffer_unmap(buf, &m);
}

// SIGINT or SIGTERM: stop receiving and print what was measured, as after --seconds
// (so that the runner can stop a receiver as it stops gst-launch-1.0).
volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

struct Margins {
  // The latency the sink plays at: the configured one until it posts
  // "syncwave-latency" (it raises it when too many packets are late).
  std::atomic<int64_t> latency_ns{0};
  int changes = 0;                           // latency changes seen (main thread)
  GstClockTime first = GST_CLOCK_TIME_NONE;  // the first datagram's arrival: skip 2 s
  std::vector<int64_t> us;  // streaming thread only, read after the pipeline stopped
};

// Every audio datagram (type 0 or 1, then its capture time, u64 LE µs: the wire
// format's header, docs/wire-format.md) as udpsrc pushes it: its due time minus now.
GstPadProbeReturn on_datagram(GstPad* pad, GstPadProbeInfo* info, gpointer user_data) {
  Margins* m = static_cast<Margins*>(user_data);
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  guint8 head[9];
  if (gst_buffer_extract(buf, 0, head, sizeof head) != sizeof head || head[0] > 1)
    return GST_PAD_PROBE_OK;
  guint64 stamp_us = 0;
  for (int i = 8; i >= 1; i--) stamp_us = (stamp_us << 8) | head[i];
  GstElement* el = gst_pad_get_parent_element(pad);
  GstClock* clock = el ? gst_element_get_clock(el) : NULL;
  if (el) gst_object_unref(el);
  if (clock == NULL) return GST_PAD_PROBE_OK;
  const GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  if (!GST_CLOCK_TIME_IS_VALID(m->first)) m->first = now;
  if (now < m->first + 2 * GST_SECOND) return GST_PAD_PROBE_OK;  // the clock settling
  const int64_t margin_ns = (int64_t)(stamp_us * 1000) + m->latency_ns - (int64_t)now;
  if (margin_ns > -10 * (int64_t)GST_SECOND && margin_ns < 10 * (int64_t)GST_SECOND)
    m->us.push_back(margin_ns / 1000);
  return GST_PAD_PROBE_OK;
}

void print_margins(Margins* m) {
  std::vector<int64_t> v = m->us;
  std::sort(v.begin(), v.end());
  size_t late = 0;
  for (int64_t x : v) late += x < 0;
  auto at = [&](double q) { return v.empty() ? 0 : v[(size_t)(q * (v.size() - 1) + 0.5)]; };
  std::printf("margin n=%zu p1=%lld p50=%lld min=%lld late=%zu latency-changes=%d\n", v.size(),
              static_cast<long long>(at(0.01)), static_cast<long long>(at(0.5)),
              static_cast<long long>(v.empty() ? 0 : v.front()), late, m->changes);
}

int receive(int argc, char** argv) {
  int port = std::atoi(arg(argc, argv, "--port", "0"));
  const char* clock = arg(argc, argv, "--clock", "system");
  int latency = std::atoi(arg(argc, argv, "--latency", "60"));
  int seconds = std::atoi(arg(argc, argv, "--seconds", "20"));
  const char* device = arg(argc, argv, "--device", nullptr);
  gchar* desc =
      device ? g_strdup_printf(
                   "udpsrc name=src port=%d address=127.0.0.1 ! syncwavesink name=sw clock=%s "
                   "latency=%d device=%s",
                   port, clock, latency, device)
             : g_strdup_printf(
                   "udpsrc name=src port=%d address=127.0.0.1 ! syncwavesink name=sw clock=%s "
                   "latency=%d audio-sink=\"audioconvert ! audio/x-raw,format=F32LE ! "
                   "fakesink name=fs sync=true signal-handoffs=true\"",
                   port, clock, latency);
  GError* err = NULL;
  GstElement* rx = gst_parse_launch(desc, &err);
  g_free(desc);
  if (!rx) {
    std::fprintf(stderr, "receiver: %s\n", err ? err->message : "?");
    return 1;
  }
  GstElement* sw = gst_bin_get_by_name(GST_BIN(rx), "sw");
  GstElement* as = NULL;
  GstElement* fs = NULL;
  if (!device) {
    g_object_get(sw, "audio-sink", &as, NULL);
    fs = as && GST_IS_BIN(as) ? gst_bin_get_by_name(GST_BIN(as), "fs") : NULL;
    if (!fs) {
      std::fprintf(stderr, "receiver: no fakesink\n");
      return 1;
    }
    g_signal_connect(fs, "handoff", G_CALLBACK(on_handoff), NULL);
  }
  Margins margins;
  margins.latency_ns = (int64_t)latency * GST_MSECOND;
  GstElement* src = gst_bin_get_by_name(GST_BIN(rx), "src");
  GstPad* srcpad = gst_element_get_static_pad(src, "src");
  gst_pad_add_probe(srcpad, GST_PAD_PROBE_TYPE_BUFFER, on_datagram, &margins, NULL);
  gst_object_unref(srcpad);
  gst_object_unref(src);
  gst_element_set_state(rx, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(rx);
  GstClockTime end = realtime_ns() + static_cast<guint64>(seconds) * GST_SECOND;
  signal(SIGINT, on_stop_signal);
  signal(SIGTERM, on_stop_signal);
  while (realtime_ns() < end && !g_stop) {
    GstMessage* msg = gst_bus_timed_pop_filtered(
        bus, 100 * GST_MSECOND,
        static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_CLOCK_LOST |
                                    GST_MESSAGE_ELEMENT | GST_MESSAGE_LATENCY));
    if (!msg) continue;
    const GstStructure* ms = gst_message_get_structure(msg);
    guint played_ms = 0;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT) {
      if (ms && gst_structure_has_name(ms, "syncwave-latency") &&
          gst_structure_get_uint(ms, "latency-ms", &played_ms)) {
        margins.latency_ns = (int64_t)played_ms * GST_MSECOND;
        margins.changes++;
      }
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_LATENCY) {
      // As gst-launch-1.0 and syncwave-launch do: when syncwavesink moves its playout
      // point the jitter element's latency changes, and the audio sink renders at the
      // new latency only once the pipeline's latency is redistributed. Without this the
      // jitter waited for the new latency while the sink still played at the old one,
      // and every buffer it held reached the output late (issue 16).
      gst_bin_recalculate_latency(GST_BIN(rx));
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_CLOCK_LOST) {
      // As gst-launch-1.0 does: re-select the clock.
      gst_element_set_state(rx, GST_STATE_PAUSED);
      gst_element_set_state(rx, GST_STATE_PLAYING);
    } else {
      GError* e = NULL;
      gst_message_parse_error(msg, &e, NULL);
      std::fprintf(stderr, "receiver error: %s\n", e->message);
      g_error_free(e);
    }
    gst_message_unref(msg);
  }
  GstStructure* stats = NULL;
  g_object_get(sw, "stats", &stats, NULL);
  if (stats) {
    gchar* s = gst_structure_to_string(stats);
    std::printf("stats %s\n", s);
    g_free(s);
    gst_structure_free(stats);
  }
  gst_element_set_state(rx, GST_STATE_NULL);
  print_margins(&margins);
  std::fflush(stdout);
  gst_object_unref(bus);
  if (fs) gst_object_unref(fs);
  if (as) gst_object_unref(as);
  gst_object_unref(sw);
  gst_object_unref(rx);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  if (argc >= 2 && !std::strcmp(argv[1], "send")) return send(argc, argv);
  if (argc >= 2 && !std::strcmp(argv[1], "receive")) return receive(argc, argv);
  std::fprintf(stderr,
               "usage: bench-render send --targets=H:P,... [--seconds=S]\n"
               "       bench-render receive --port=P [--clock=SPEC] [--latency=MS] "
               "[--seconds=S] [--device=SINK]\n");
  return 2;
}
