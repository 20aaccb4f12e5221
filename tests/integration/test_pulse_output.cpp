// SPDX-License-Identifier: LGPL-2.1-or-later
// syncwavepulsesink against a private sound server (started here, one null sink), each
// test once through PulseAudio and once through PipeWire (pipewire-pulse):
// what it plays reaches the sink, its position comes from the server's timing reports
// (fitted, the null sink's rate found to be the host clock's), its clock advances at
// the device's pace, it pauses, resumes and stops without blocking, and a missing
// device or server fails with a message that says what to do.
#include <gst/app/gstappsink.h>
#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "audio_analysis.h"
#include "gst_test_util.h"
#include "pulse_daemon.h"

namespace {

using syncwave_test::have;
using syncwave_test::launch;
using Server = syncwave_test::PulseDaemon::Server;

// The error messages on the bus, waiting up to `wait` for the first one.
std::string bus_error(GstElement* pipeline, GstClockTime wait = 0) {
  GstBus* bus = gst_element_get_bus(pipeline);
  std::string text;
  GstMessage* m;
  while ((m = gst_bus_timed_pop_filtered(bus, text.empty() ? wait : 0, GST_MESSAGE_ERROR)) !=
         nullptr) {
    GError* e = nullptr;
    gst_message_parse_error(m, &e, nullptr);
    text += e->message;
    g_error_free(e);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return text;
}

class PulseOutput : public ::testing::TestWithParam<Server> {
 protected:
  void SetUp() override {
    if (!have("syncwavepulsesink")) GTEST_SKIP() << "built without libpulse";
    if (!syncwave_test::PulseDaemon::available(GetParam()))
      GTEST_SKIP() << syncwave_test::PulseDaemon::missing(GetParam());
    ASSERT_TRUE(pulse_.start(GetParam())) << pulse_.error() << pulse_.log();
    setenv("PULSE_SERVER", pulse_.server().c_str(), 1);
  }
  void TearDown() override { unsetenv("PULSE_SERVER"); }
  std::string sink_args() const {
    return "server=" + pulse_.server() + " device=" + pulse_.sink_name();
  }
  syncwave_test::PulseDaemon pulse_;
};

// Field `field` of the sink's stats (a number: guint64 or double), or NAN.
double sink_stat(GstElement* sink, const char* field) {
  GstStructure* st = nullptr;
  g_object_get(sink, "stats", &st, NULL);
  double v = NAN;
  guint64 u;
  if (st && !gst_structure_get_double(st, field, &v) && gst_structure_get_uint64(st, field, &u))
    v = (double)u;
  if (st) gst_structure_free(st);
  return v;
}

TEST_P(PulseOutput, PlaysAndKnowsItsPosition) {
  GstElement* play = launch(
      "audiotestsrc is-live=true freq=660 volume=0.5 ! "
      "audio/x-raw,format=F32LE,rate=48000,channels=2 ! syncwavepulsesink name=out " +
      sink_args());
  GstElement* mon =
      launch("pulsesrc server=" + pulse_.server() + " device=" + pulse_.monitor_name() +
             " ! audio/x-raw,format=F32LE,rate=48000,channels=2 ! "
             "appsink name=cap sync=false max-buffers=0");
  ASSERT_NE(play, nullptr);
  ASSERT_NE(mon, nullptr);
  ASSERT_EQ(gst_element_set_state(play, GST_STATE_PLAYING), GST_STATE_CHANGE_ASYNC);
  ASSERT_NE(gst_element_set_state(mon, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(play), "out");
  GstElement* cap = gst_bin_get_by_name(GST_BIN(mon), "cap");

  // A second of what the null sink plays (the monitor may take a while to start).
  std::vector<float> got;
  const gint64 end = g_get_monotonic_time() + 8 * G_USEC_PER_SEC;
  while (got.size() < 48000u * 2 && g_get_monotonic_time() < end) {
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(cap), 100 * GST_MSECOND);
    if (!s) continue;
    GstBuffer* b = gst_sample_get_buffer(s);
    const size_t n = gst_buffer_get_size(b) / 4, at = got.size();
    got.resize(at + n);
    gst_buffer_extract(b, 0, got.data() + at, n * 4);
    gst_sample_unref(s);
  }
  EXPECT_EQ(bus_error(play), "");
  ASSERT_GE(got.size(), 48000u * 2) << "the monitor delivered too little";
  // The last half second carries the tone at its level.
  const float* tail = got.data() + got.size() - 24000 * 2;
  EXPECT_EQ(syncwave_test::strongest_frequency(tail, 24000, 2, 48000, {440, 550, 660, 880}), 660);
  EXPECT_NEAR(std::sqrt(2.0) * syncwave_test::rms(tail, 24000, 2, 0), 0.5, 0.1);

  // The position: reports every 20 ms while playing, fitted on a line whose slope
  // is the null sink's rate, the host clock's (0 ppm, within what two seconds of
  // scheduling noise allow), with one stream and no underrun.
  // (Counted once 40 arrived, within 3 s more: after the monitor's second the sink had
  // 38 in a CI run beside other builds.)
  for (const gint64 until = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
       sink_stat(sink, "position-reports") < 40 && g_get_monotonic_time() < until;)
    g_usleep(20000);
  EXPECT_GE(sink_stat(sink, "position-reports"), 40);
  EXPECT_EQ(sink_stat(sink, "streams"), 1);
  EXPECT_LT(std::fabs(sink_stat(sink, "device-drift-ppm")), 200.0);
  EXPECT_LT(sink_stat(sink, "position-residual-us"), 1000.0);

  // Its clock is the device's position: it advances as the device plays (0.5 s of
  // host time, within 20 ms), and the ring buffer's delay is the short queue.
  GstClock* clock = GST_AUDIO_BASE_SINK(sink)->provided_clock;
  ASSERT_TRUE(GST_IS_AUDIO_CLOCK(clock));
  auto position = [&] {
    return GST_AUDIO_CLOCK(clock)->func(clock, GST_AUDIO_CLOCK(clock)->user_data);
  };
  // The best of three intervals is judged: a server stalled by a loaded machine holds
  // the position back in one of them (27 ms in 0.5 s once through PipeWire, in a CI
  // run beside other builds), a wrong clock in all three.
  double best_ms = 1e9;
  for (int i = 0; i < 3 && best_ms > 20.0; i++) {
    const gint64 h0 = g_get_monotonic_time();
    const GstClockTime p0 = position();
    g_usleep(500000);
    const GstClockTime p1 = position();
    const gint64 h1 = g_get_monotonic_time();
    ASSERT_TRUE(GST_CLOCK_TIME_IS_VALID(p0));
    ASSERT_TRUE(GST_CLOCK_TIME_IS_VALID(p1));
    const double diff = (double)(p1 - p0) / 1e6 - (double)(h1 - h0) / 1e3;
    printf("device position advanced %.1f ms in %.1f ms of host time\n", (p1 - p0) / 1e6,
           (h1 - h0) / 1e3);
    best_ms = std::min(best_ms, std::fabs(diff));
  }
  EXPECT_LE(best_ms, 20.0);
  GstAudioRingBuffer* rb = GST_AUDIO_BASE_SINK(sink)->ringbuffer;
  const double delay_ms = gst_audio_ring_buffer_delay(rb) * 1000.0 / 48000;
  EXPECT_GT(delay_ms, 1.0);
  EXPECT_LT(delay_ms, 100.0);

  gst_element_set_state(mon, GST_STATE_NULL);
  gst_element_set_state(play, GST_STATE_NULL);
  gst_object_unref(cap);
  gst_object_unref(sink);
  gst_object_unref(mon);
  gst_object_unref(play);
}

TEST_P(PulseOutput, PausesResumesAndStopsWithoutBlocking) {
  // A pause corks the stream; the writer thread must not stay blocked on it, or
  // PAUSED→READY would wait for it forever.
  GstElement* play = launch(
      "audiotestsrc is-live=true ! audio/x-raw,format=S16LE,rate=44100,channels=1 ! "
      "syncwavepulsesink name=out " +
      sink_args());
  ASSERT_NE(play, nullptr);
  gst_element_set_state(play, GST_STATE_PLAYING);
  ASSERT_EQ(gst_element_get_state(play, nullptr, nullptr, 5 * GST_SECOND),
            GST_STATE_CHANGE_SUCCESS);
  g_usleep(300000);
  for (GstState s : {GST_STATE_PAUSED, GST_STATE_PLAYING, GST_STATE_PAUSED, GST_STATE_READY}) {
    gst_element_set_state(play, s);
    EXPECT_NE(gst_element_get_state(play, nullptr, nullptr, 5 * GST_SECOND),
              GST_STATE_CHANGE_FAILURE)
        << gst_element_state_get_name(s);
    if (s == GST_STATE_PLAYING) g_usleep(300000);
  }
  EXPECT_EQ(bus_error(play), "");
  gst_element_set_state(play, GST_STATE_NULL);
  gst_object_unref(play);
}

TEST_P(PulseOutput, APauseKeepsThePositionOnTheRingBuffersIndex) {
  // Issue 16: a pause drops the rest of the segment being written, and the ring
  // buffer's index moves past those frames all the same. Where the stream goes on
  // (the position plus the queue: the ring sample the stream takes next) must stay the
  // segment the writer thread is on. Before, each pause put it up to a segment behind,
  // and the position read that much early from then on (a receiver whose stream had
  // just started when the pipeline re-selected its clock played up to 5 ms early).
  GstElement* play = launch(
      "audiotestsrc is-live=true ! audio/x-raw,format=F32LE,rate=48000,channels=2 ! "
      "syncwavepulsesink name=out " +
      sink_args());
  ASSERT_NE(play, nullptr);
  gst_element_set_state(play, GST_STATE_PLAYING);
  ASSERT_NE(gst_element_get_state(play, nullptr, nullptr, 5 * GST_SECOND),
            GST_STATE_CHANGE_FAILURE);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(play), "out");
  GstClock* clock = GST_AUDIO_BASE_SINK(sink)->provided_clock;
  ASSERT_TRUE(GST_IS_AUDIO_CLOCK(clock));
  GstAudioRingBuffer* rb = GST_AUDIO_BASE_SINK(sink)->ringbuffer;
  // Frames from where the stream goes on to the start of the writer's segment: in
  // [-segment, 0] while it writes that segment.
  auto behind = [&]() -> double {
    const GstClockTime pos = GST_AUDIO_CLOCK(clock)->func(clock, GST_AUDIO_CLOCK(clock)->user_data);
    if (!GST_CLOCK_TIME_IS_VALID(pos)) return NAN;
    const double next = (double)pos * 48000 / GST_SECOND + gst_audio_ring_buffer_delay(rb);
    const gint segtotal = rb->spec.segtotal;
    const gint rings = (rb->segbase + segtotal - 1) / segtotal;
    const double seg_start =
        (double)((gint64)g_atomic_int_get(&rb->segdone) - (gint64)rings * segtotal) *
        rb->samples_per_seg;
    return seg_start - next;
  };
  // The position is fitted from timing reports again after each resume.
  auto settled = [&]() {
    double b = NAN;
    for (int i = 0; i < 100 && std::isnan(b); i++) {
      g_usleep(20000);
      b = behind();
    }
    return b;
  };
  g_usleep(300000);
  const double sps = rb->samples_per_seg;
  const double before = settled();
  EXPECT_LE(before, 48.0);
  EXPECT_GE(before, -sps - 48.0);
  for (int i = 0; i < 6; i++) {
    gst_element_set_state(play, GST_STATE_PAUSED);
    gst_element_get_state(play, nullptr, nullptr, 5 * GST_SECOND);
    g_usleep(30000);
    gst_element_set_state(play, GST_STATE_PLAYING);
    gst_element_get_state(play, nullptr, nullptr, 5 * GST_SECOND);
    g_usleep(200000);
  }
  const double after = settled();
  printf("stream goes on %.1f frames behind the writer's segment before 6 pauses, %.1f after "
         "(segment %.0f frames)\n",
         before, after, sps);
  EXPECT_LE(after, 48.0) << "the frames a pause dropped are missing from the ring offset";
  EXPECT_GE(after, -sps - 48.0);
  EXPECT_EQ(bus_error(play), "");
  gst_element_set_state(play, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(play);
}

TEST_P(PulseOutput, UnknownDeviceSaysWhereToLook) {
  GstElement* play =
      launch("audiotestsrc num-buffers=10 ! syncwavepulsesink server=" + pulse_.server() +
             " device=no_such_sink");
  ASSERT_NE(play, nullptr);
  gst_element_set_state(play, GST_STATE_PLAYING);
  const std::string err = bus_error(play, 5 * GST_SECOND);
  EXPECT_NE(err.find("'no_such_sink'"), std::string::npos) << err;
  EXPECT_NE(err.find("syncwave-launch devices"), std::string::npos) << err;
  gst_element_set_state(play, GST_STATE_NULL);
  gst_object_unref(play);
}

TEST_P(PulseOutput, NoServerFailsAtOnceWithAHint) {
  GstElement* sink = gst_element_factory_make("syncwavepulsesink", nullptr);
  ASSERT_NE(sink, nullptr);
  g_object_set(sink, "server", "unix:/nonexistent/syncwave/native", NULL);
  GstElement* pipe = gst_pipeline_new(nullptr);
  gst_bin_add(GST_BIN(pipe), sink);
  EXPECT_EQ(gst_element_set_state(pipe, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  const std::string err = bus_error(pipe);
  EXPECT_NE(err.find("Cannot connect to the PulseAudio server"), std::string::npos) << err;
  gst_element_set_state(pipe, GST_STATE_NULL);
  gst_object_unref(pipe);
}

INSTANTIATE_TEST_SUITE_P(Servers, PulseOutput,
                         ::testing::Values(Server::kPulseAudio, Server::kPipeWire),
                         [](const ::testing::TestParamInfo<Server>& info) {
                           return std::string(syncwave_test::PulseDaemon::name(info.param));
                         });

}  // namespace
