// SPDX-License-Identifier: LGPL-2.1-or-later
// Two syncwavesink receivers playing into one null sink of a private sound server this
// test starts (PulseAudio, and PipeWire through pipewire-pulse): the real audio path, with the
// bin's own PulseAudio output (syncwavepulsesink, chosen by `device`) as the device. Checked: both
// play for several seconds without error, the output's position comes from the server's timing
// reports, the drift loop runs against it absolutely (drift-active, sink-delay-us
// known) within its bounds, and audio reaches the null sink (its monitor is not
// silent). SYNC_PULSE_NODRIFT=1 turns drift correction off, SYNC_PULSE_FAKE=1 replaces
// the output by a fakesink, for comparisons by hand.
// The sample-accurate offset between the two, read from the monitor, is measured by
// the benchmark (tests/bench), not asserted here.

#include <gst/app/app.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "gst_test_util.h"
#include "monitor_recorder.h"
#include "pulse_daemon.h"
#include "timing.h"
#include "udp_port.h"

namespace {

class GstEnv : public ::testing::Environment {
 public:
  void SetUp() override { gst_init(nullptr, nullptr); }
};
const auto* const kGstEnv = ::testing::AddGlobalTestEnvironment(new GstEnv);

GstElement* launch(const std::string& desc) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  EXPECT_NE(p, nullptr) << desc << ": " << (err ? err->message : "");
  g_clear_error(&err);
  return p;
}

// Pops errors; returns the first error text, or "".
std::string bus_error(GstElement* pipe) {
  GstBus* bus = gst_element_get_bus(pipe);
  std::string text;
  while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError* err = nullptr;
    gst_message_parse_error(m, &err, nullptr);
    if (text.empty()) text = err->message;
    g_clear_error(&err);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return text;
}

using Server = syncwave_test::PulseDaemon::Server;
class SyncPulse : public ::testing::TestWithParam<Server> {};

}  // namespace

TEST_P(SyncPulse, TwoReceiversIntoOneNullSink) {
  if (!syncwave_test::PulseDaemon::available(GetParam()))
    GTEST_SKIP() << syncwave_test::PulseDaemon::missing(GetParam());
  GstElementFactory* f = gst_element_factory_find("pulsesink");
  if (!f) GTEST_SKIP() << "GStreamer pulseaudio plugin missing";
  gst_object_unref(f);
  syncwave_test::PulseDaemon pulse;
  if (!pulse.start(GetParam()))
    GTEST_SKIP() << "cannot start " << syncwave_test::PulseDaemon::name(GetParam()) << ": "
                 << pulse.error();
  // The bin's `device` property makes its PulseAudio output; it finds the private
  // daemon here.
  setenv("PULSE_SERVER", pulse.server().c_str(), 1);

  const uint16_t clock_port = syncwave_test::free_udp_port();
  const uint16_t port_a = syncwave_test::free_udp_port();
  const uint16_t port_b = syncwave_test::free_udp_port();
  const std::string clock = "net://127.0.0.1:" + std::to_string(clock_port);

  GstElement* tx = launch(
      "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! "
      "audio/x-raw,format=F32LE,rate=48000,channels=2 ! syncwavepay header-interval=100 "
      "time-provider-port=" +
      std::to_string(clock_port) + " ! multiudpsink clients=127.0.0.1:" + std::to_string(port_a) +
      ",127.0.0.1:" + std::to_string(port_b));
  ASSERT_NE(tx, nullptr);
  ASSERT_NE(gst_element_set_state(tx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  auto receiver = [&](uint16_t port) {
    return launch("udpsrc address=127.0.0.1 port=" + std::to_string(port) +
                  " ! syncwavesink name=rx latency=60 " +
                  (getenv("SYNC_PULSE_NODRIFT") ? "drift-correction=false " : "") +
                  "clock=" + clock +
                  (getenv("SYNC_PULSE_FAKE") ? std::string(" audio-sink=\"fakesink sync=true\"")
                                             : " device=" + pulse.sink_name()));
  };
  GstElement* ra = receiver(port_a);
  GstElement* rb = receiver(port_b);
  ASSERT_NE(ra, nullptr);
  ASSERT_NE(rb, nullptr);
  ASSERT_NE(syncwave_test::play_when_clock_synced(ra), GST_STATE_CHANGE_FAILURE);
  ASSERT_NE(syncwave_test::play_when_clock_synced(rb), GST_STATE_CHANGE_FAILURE);

  // The monitor of the null sink: is anything arriving?
  GstElement* mon = launch("pulsesrc server=" + pulse.server() + " device=" + pulse.monitor_name() +
                           " ! audio/x-raw,format=F32LE,rate=48000,channels=2 ! "
                           "appsink name=out sync=false max-buffers=2000");
  ASSERT_NE(mon, nullptr);
  GstElement* out = gst_bin_get_by_name(GST_BIN(mon), "out");
  gst_element_set_state(mon, GST_STATE_PLAYING);

  double peak = 0;
  const gint64 end = g_get_monotonic_time() + 6 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < end) {
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 100 * GST_MSECOND);
    if (!s) continue;
    GstMapInfo m;
    GstBuffer* b = gst_sample_get_buffer(s);
    if (gst_buffer_map(b, &m, GST_MAP_READ)) {
      const float* f = reinterpret_cast<const float*>(m.data);
      for (size_t i = 0; i < m.size / 4; i++) peak = std::max(peak, (double)std::fabs(f[i]));
      gst_buffer_unmap(b, &m);
    }
    gst_sample_unref(s);
  }

  for (GstElement* r : {ra, rb}) {
    EXPECT_EQ(bus_error(r), "");
    GstElement* bin = gst_bin_get_by_name(GST_BIN(r), "rx");
    GstStructure* st = nullptr;
    g_object_get(bin, "stats", &st, NULL);
    ASSERT_NE(st, nullptr);
    gchar* text = gst_structure_to_string(st);
    printf("receiver stats: %s\n", text);
    g_free(text);
    gboolean active = FALSE;
    gint64 sink_delay = -1;
    double drift = 1e9;
    gst_structure_get_boolean(st, "drift-active", &active);
    gst_structure_get_int64(st, "sink-delay-us", &sink_delay);
    gst_structure_get_double(st, "drift-ppm", &drift);
    gboolean absolute = FALSE;
    guint64 steps = 0;
    gst_structure_get_boolean(st, "absolute-position", &absolute);
    gst_structure_get_uint64(st, "alignment-steps", &steps);
    // The loop runs on PulseAudio's own play position (pulsesink's clock function),
    // absolutely, and stays within its bounds; the output was aligned at most a few
    // times (once at the start, again if the server moved the stream). The offsets it
    // reaches are a benchmark's figures (tests/bench, docs/synchronization.md).
    EXPECT_TRUE(active);
    EXPECT_TRUE(absolute);
    // Through PipeWire the aligner steps more: 4-20 steps of about 90 frames (1.9 ms)
    // in loaded suite runs, none of them underruns, 0-3 when the machine is idle
    // (2026-12-02, open in issues 16 and 20); bounded there so that a receiver that
    // keeps stepping still fails. An underrun moves the device's play position, and
    // the aligner steps once to put the output back (output_aligner.h): that step is
    // the recovery, not a fault, so each underrun the output counted allows one. (A
    // fresh-clone CI run, 2026-12-04, had 34 and 36 underruns on PulseAudio, a starved
    // machine, and 14 and 16 steps.)
    const bool pipewire = GetParam() == syncwave_test::PulseDaemon::Server::kPipeWire;
    guint64 underruns = 0;
    gst_structure_get_uint64(st, "underruns", &underruns);
    EXPECT_TIMELY(steps <= (pipewire ? 25u : 3u) + underruns)
        << steps << " steps, " << underruns << " underruns";
    EXPECT_GE(sink_delay, 0);
    EXPECT_LE(std::fabs(drift), 1500.0);
    gst_structure_free(st);
    // The device is syncwavepulsesink, on the server's timing reports.
    GstElement* dev = gst_bin_get_by_name(GST_BIN(bin), "audio-sink");
    GstElementFactory* pf = gst_element_factory_find("syncwavepulsesink");
    const bool have_output = pf != nullptr;
    if (pf) gst_object_unref(pf);
    if (dev != nullptr && !getenv("SYNC_PULSE_FAKE") && have_output) {
      EXPECT_STREQ(GST_OBJECT_NAME(gst_element_get_factory(dev)), "syncwavepulsesink");
      GstStructure* ds = nullptr;
      g_object_get(dev, "stats", &ds, NULL);
      ASSERT_NE(ds, nullptr);
      guint64 reports = 0;
      gst_structure_get_uint64(ds, "position-reports", &reports);
      EXPECT_GT(reports, 50u);
      gst_structure_free(ds);
    }
    if (dev != nullptr) gst_object_unref(dev);
    gst_object_unref(bin);
  }
  // Audio reaches the null sink. Two 0.3 sines exactly in phase would peak at 0.6;
  // how close they get is timing, measured by the benchmark, so only presence is
  // asserted here and the peak printed.
  EXPECT_GT(peak, 0.1);
  printf("monitor peak %.3f\n", peak);

  for (GstElement* p : {mon, ra, rb, tx}) {
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
  gst_object_unref(out);
  unsetenv("PULSE_SERVER");
}

// Start-up (issue 11, case 5): a receiver `syncwavesink device=<null sink>` started
// together with its sender is heard soon, through both servers. The time from starting
// the two pipelines to the first loud sample the monitor delivers is printed (the
// figure in docs/synchronization.md); asserted is only that it is heard within 2 s and
// keeps playing.
// With `senders_clock`, the sender serves its clock (as syncwave-launch send does) and
// the receiver's clock=auto finds it and re-selects the pipeline's clock while playing.
// The receiver starts `head_start_ms` before the sender; the time is counted from the
// sender's start.
void heard_soon_after_start(Server server, bool senders_clock, int head_start_ms = 0,
                            gint64 within_us = 2 * G_USEC_PER_SEC) {
  if (!syncwave_test::PulseDaemon::available(server))
    GTEST_SKIP() << syncwave_test::PulseDaemon::missing(server);
  GstElementFactory* f = gst_element_factory_find("pulsesrc");
  if (!f) GTEST_SKIP() << "GStreamer pulseaudio plugin missing";
  gst_object_unref(f);
  syncwave_test::PulseDaemon pulse;
  if (!pulse.start(server))
    GTEST_SKIP() << "cannot start " << syncwave_test::PulseDaemon::name(server) << ": "
                 << pulse.error();
  setenv("PULSE_SERVER", pulse.server().c_str(), 1);

  // The monitor first, running before anything plays.
  GstElement* mon = launch("pulsesrc server=" + pulse.server() + " device=" + pulse.monitor_name() +
                           " buffer-time=20000 latency-time=5000 ! "
                           "audio/x-raw,format=F32LE,rate=48000,channels=2 ! "
                           "appsink name=out sync=false max-buffers=0");
  ASSERT_NE(mon, nullptr);
  GstElement* out = gst_bin_get_by_name(GST_BIN(mon), "out");
  gst_element_set_state(mon, GST_STATE_PLAYING);
  gst_element_get_state(mon, nullptr, nullptr, 5 * GST_SECOND);

  // Receiver and sender as users start them; the sender sends each packet when it is
  // made, as syncwave-launch send does (sync=false: udpsink's default holds packets for
  // the pipeline latency, a separate case of issue 11).
  const uint16_t port = syncwave_test::free_udp_port();
  const std::string clock_port = std::to_string(syncwave_test::free_udp_port());
  GstElement* rx = launch("udpsrc address=127.0.0.1 port=" + std::to_string(port) +
                          " ! syncwavesink name=rx device=" + pulse.sink_name() +
                          (senders_clock ? " auto-clock-port=" + clock_port : std::string()));
  GstElement* tx = launch(
      "audiotestsrc is-live=true wave=sine freq=440 volume=0.5 ! "
      "audio/x-raw,format=F32LE,rate=48000,channels=2 ! syncwavepay " +
      (senders_clock ? "time-provider-port=" + clock_port : std::string()) +
      " ! udpsink sync=false host=127.0.0.1 port=" + std::to_string(port));
  ASSERT_NE(rx, nullptr);
  ASSERT_NE(tx, nullptr);
  ASSERT_NE(gst_element_set_state(rx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  if (head_start_ms > 0) g_usleep(head_start_ms * 1000);
  const gint64 t0 = g_get_monotonic_time();
  ASSERT_NE(gst_element_set_state(tx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  gint64 heard_us = -1;
  size_t loud_after = 0, total_after = 0;  // 10 ms windows after the first loud one
  std::vector<float> pending;              // less than one window
  const size_t window = 960;               // 10 ms, stereo
  const gint64 end = t0 + 5 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < end && (heard_us < 0 || total_after < 100)) {
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 50 * GST_MSECOND);
    if (!s) continue;
    GstBuffer* b = gst_sample_get_buffer(s);
    const size_t n = gst_buffer_get_size(b) / 4, at = pending.size();
    pending.resize(at + n);
    gst_buffer_extract(b, 0, pending.data() + at, n * 4);
    gst_sample_unref(s);
    size_t done = 0;
    for (; done + window <= pending.size(); done += window) {
      float peak = 0;
      for (size_t i = done; i < done + window; i++) peak = std::max(peak, std::fabs(pending[i]));
      if (heard_us < 0 && peak > 0.1f) heard_us = g_get_monotonic_time() - t0;
      if (heard_us >= 0) {
        total_after++;
        loud_after += peak > 0.1f;
      }
    }
    pending.erase(pending.begin(), pending.begin() + done);
  }
  printf("%s%s: first audio heard %.0f ms after the sender started (receiver %d ms before)\n",
         syncwave_test::PulseDaemon::name(server), senders_clock ? " (sender's clock)" : "",
         heard_us / 1000.0, head_start_ms);
  EXPECT_EQ(bus_error(rx), "");
  EXPECT_GE(heard_us, 0) << "nothing heard within 5 s";
  EXPECT_TIMELY(heard_us < within_us) << heard_us / 1000 << " ms";
  // And it goes on playing (a second of 10 ms windows, nearly all loud).
  EXPECT_GT(loud_after, 0u);
  EXPECT_TIMELY(loud_after >= total_after * 9 / 10) << loud_after << " of " << total_after;

  for (GstElement* p : {tx, rx, mon}) {
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
  gst_object_unref(out);
  unsetenv("PULSE_SERVER");
}

TEST_P(SyncPulse, HeardSoonAfterStart) {
  heard_soon_after_start(GetParam(), false);
}

TEST_P(SyncPulse, HeardSoonAfterStartOnTheSendersClock) {
  heard_soon_after_start(GetParam(), true);
}

// A receiver started before a sender that serves its clock is heard soon after the
// sender starts, within 1 s (measured 61-84 ms, both servers, 2026-12-02). It was
// silent about as long as it ran alone (heard 1.9 s after the sender in 4 of 6 runs):
// the bin's audio sink prerolled asynchronously, so the live pipeline went back to
// PAUSED until the first packet reached the sink and took a new base time going to
// PLAYING again; that first buffer, stamped by the jitter on the old base time, lay 2 s
// in the future. The bin's own output no longer prerolls (async=false).
TEST_P(SyncPulse, HeardSoonWhenTheReceiverStartedFirst) {
  heard_soon_after_start(GetParam(), true, 2000, G_USEC_PER_SEC);
}

// A delay change while playing (the control page's slider, issue 13): through the
// server, on syncwavepulsesink (absolute placement), `delay` 0 -> 100 ms on a playing
// receiver is a faded step: what the null sink plays has one silence of 100 ms, and no
// sample-to-sample jump beyond what a 440 Hz sine at 0.5 and the fades make (a click, a
// jump of the pad offset, was a step of up to 0.5). The output keeps its timeline.
TEST_P(SyncPulse, ADelayChangeWhilePlayingIsAFadedStep) {
  const Server server = GetParam();
  if (!syncwave_test::PulseDaemon::available(server))
    GTEST_SKIP() << syncwave_test::PulseDaemon::missing(server);
  if (!syncwave_test::have("pulsesrc")) GTEST_SKIP() << "GStreamer pulseaudio plugin missing";
  syncwave_test::PulseDaemon pulse;
  if (!pulse.start(server))
    GTEST_SKIP() << "cannot start " << syncwave_test::PulseDaemon::name(server) << ": "
                 << pulse.error();
  setenv("PULSE_SERVER", pulse.server().c_str(), 1);
  syncwave_test::MonitorRecorder rec(pulse.server(), pulse.monitor_name());
  ASSERT_TRUE(rec.ok());
  const uint16_t port = syncwave_test::free_udp_port();
  GstElement* rx = launch("udpsrc address=127.0.0.1 port=" + std::to_string(port) +
                          " ! syncwavesink name=rx clock=system device=" + pulse.sink_name());
  GstElement* tx = launch(
      "audiotestsrc is-live=true wave=sine freq=440 volume=0.5 ! "
      "audio/x-raw,format=F32LE,rate=48000,channels=2 ! syncwavepay "
      "! udpsink sync=false host=127.0.0.1 port=" + std::to_string(port));
  ASSERT_NE(rx, nullptr);
  ASSERT_NE(tx, nullptr);
  ASSERT_NE(gst_element_set_state(rx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_NE(gst_element_set_state(tx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  GstElement* bin = gst_bin_get_by_name(GST_BIN(rx), "rx");
  auto stat = [&](const char* field) { return syncwave_test::stat(bin, field); };
  // Placed and tracking (the start-up step done) before the change.
  g_usleep(3 * G_USEC_PER_SEC);
  const size_t from = rec.frames();
  const guint64 timelines = stat("output-timelines");
  g_object_set(bin, "delay", 100, NULL);
  g_usleep(1500 * 1000);
  std::vector<float> got = rec.since(from);
  const guint64 moves = stat("delay-moves");
  const guint64 timelines_after = stat("output-timelines");
  gboolean absolute = FALSE;
  GstStructure* st = nullptr;
  g_object_get(bin, "stats", &st, NULL);
  if (st) gst_structure_get_boolean(st, "absolute-position", &absolute);
  if (st) gst_structure_free(st);
  EXPECT_EQ(bus_error(rx), "");
  for (GstElement* p : {tx, rx}) gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(bin);
  gst_object_unref(tx);
  gst_object_unref(rx);
  unsetenv("PULSE_SERVER");

  ASSERT_TRUE(absolute) << "syncwavepulsesink did not report its position";
  EXPECT_EQ(moves, 1u);
  EXPECT_EQ(timelines_after, timelines);
  ASSERT_GE(got.size(), (size_t)48000 * 2);
  // Channel 0: the longest run of near-silence (the step), and the largest change
  // between samples within 50 ms of it (elsewhere a loaded server's own underrun would
  // count; it is printed).
  size_t run = 0, longest = 0, longest_end = 0;
  for (size_t f = 0; f < got.size() / 2; f++) {
    run = std::fabs(got[2 * f]) < 0.01f ? run + 1 : 0;
    if (run > longest) {
      longest = run;
      longest_end = f;
    }
  }
  float jump = 0, elsewhere = 0;
  for (size_t f = 0; f + 1 < got.size() / 2; f++) {
    const float d = std::fabs(got[2 * f + 2] - got[2 * f]);
    const bool near = f + longest + 2400 >= longest_end && f <= longest_end + 2400;
    (near ? jump : elsewhere) = std::max(near ? jump : elsewhere, d);
  }
  printf("%s: delay 0 -> 100 ms: longest silence %.2f ms, largest sample step around it %.4f "
         "(elsewhere %.4f)\n",
         syncwave_test::PulseDaemon::name(server), longest / 48.0, jump, elsewhere);
  // 100 ms of silence (4800 frames), give or take the fades' quiet ends.
  EXPECT_TIMELY(longest >= 4750 && longest <= 4900) << longest << " frames";
  // A 440 Hz sine at 0.5 steps by up to 0.029 per sample; the 2 ms fades add 0.008.
  // A recording with such steps away from the move too (a glitch of the server or of the
  // recorder: a fresh-clone CI run on PipeWire had 0.49 elsewhere and 0.48 near the
  // move) cannot tell a click of the move from its own glitches: then it is printed.
  if (elsewhere >= 0.05f) {
    printf("%s: the recording has steps of %.4f away from the move too; the step near it "
           "(%.4f) is not judged\n",
           syncwave_test::PulseDaemon::name(server), elsewhere, jump);
  } else {
    EXPECT_TIMELY(jump < 0.05f) << jump;
  }
}

INSTANTIATE_TEST_SUITE_P(Servers, SyncPulse,
                         ::testing::Values(Server::kPulseAudio, Server::kPipeWire),
                         [](const ::testing::TestParamInfo<Server>& info) {
                           return std::string(syncwave_test::PulseDaemon::name(info.param));
                         });
