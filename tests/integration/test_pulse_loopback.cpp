// SPDX-License-Identifier: LGPL-2.1-or-later
// Real system-audio loopback through a private sound server (PulseAudio, and PipeWire
// with pipewire-pulse): a tone is played into a null sink, the default sink, and
// pulsesrc captures the default sink's monitor (@DEFAULT_MONITOR@) into syncwavepay,
// UDP on 127.0.0.1 carries it to syncwavedepay, and the tone arrives at its frequency
// and level.
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "audio_analysis.h"
#include "pulse_daemon.h"
#include "gst_test_util.h"
#include "udp_port.h"

namespace {

using syncwave_test::have;
using syncwave_test::launch;
using syncwave_test::stat;
using syncwave_test::wait_eos;
using Server = syncwave_test::PulseDaemon::Server;

// Fails the test on an error message already posted on the bus.
void expect_no_error(GstElement* pipeline) {
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* m;
  while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) != nullptr) {
    GError* e = nullptr;
    gchar* dbg = nullptr;
    gst_message_parse_error(m, &e, &dbg);
    ADD_FAILURE() << GST_OBJECT_NAME(GST_MESSAGE_SRC(m)) << ": " << e->message << " ("
                  << (dbg ? dbg : "") << ")";
    g_error_free(e);
    g_free(dbg);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
}

class PulseLoopback : public ::testing::TestWithParam<Server> {};

}  // namespace

TEST_P(PulseLoopback, ToneArrivesThroughTheSinkMonitor) {
  if (!syncwave_test::PulseDaemon::available(GetParam()))
    GTEST_SKIP() << syncwave_test::PulseDaemon::missing(GetParam());
  if (!have("pulsesrc") || !have("pulsesink"))
    GTEST_SKIP() << "GStreamer pulseaudio plugin missing";
  syncwave_test::PulseDaemon pulse;
  ASSERT_TRUE(pulse.start(GetParam())) << pulse.error();
  std::string default_sink;
  ASSERT_EQ(pulse.pactl("get-default-sink", &default_sink), 0) << default_sink;
  EXPECT_NE(default_sink.find(pulse.sink_name()), std::string::npos) << default_sink;
  const uint16_t port = syncwave_test::free_udp_port();
  ASSERT_NE(port, 0);
  const std::string server = pulse.server();

  GstElement* rx = launch("udpsrc address=127.0.0.1 port=" + std::to_string(port) +
                          " buffer-size=4194304 ! syncwavedepay name=depay ! "
                          "appsink name=out sync=false max-buffers=0");
  ASSERT_NE(rx, nullptr);
  ASSERT_NE(gst_element_set_state(rx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  // What the machine "plays": a 660 Hz tone at 0.5 into the null sink.
  GstElement* player = launch(
      "audiotestsrc is-live=true freq=660 volume=0.5 ! "
      "audio/x-raw,format=F32LE,rate=48000,channels=2 ! pulsesink server=" +
      server + " device=" + pulse.sink_name());
  // The sender: the default sink's monitor, as syncwave-launch send --source=loopback
  // does.
  GstElement* tx = launch("pulsesrc server=" + server + " device=@DEFAULT_MONITOR@" +
                          " buffer-time=20000 latency-time=10000 ! "
                          "audio/x-raw,format=F32LE,rate=48000,channels=2 ! syncwavepay name=pay ! "
                          "udpsink host=127.0.0.1 port=" +
                          std::to_string(port));
  ASSERT_NE(player, nullptr);
  ASSERT_NE(tx, nullptr);
  ASSERT_NE(gst_element_set_state(player, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_NE(gst_element_set_state(tx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  // Gather 1.5 s of received audio (at most 10 s of waiting).
  GstElement* out = gst_bin_get_by_name(GST_BIN(rx), "out");
  GstElement* depay = gst_bin_get_by_name(GST_BIN(rx), "depay");
  std::vector<float> got;
  const gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  while (got.size() < 72000u * 2 && g_get_monotonic_time() < deadline) {
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 500 * GST_MSECOND);
    if (!s) continue;
    GstBuffer* b = gst_sample_get_buffer(s);
    const size_t n = gst_buffer_get_size(b) / 4;
    const size_t at = got.size();
    got.resize(at + n);
    gst_buffer_extract(b, 0, got.data() + at, n * 4);
    gst_sample_unref(s);
  }
  expect_no_error(player);
  expect_no_error(tx);
  expect_no_error(rx);
  ASSERT_GE(got.size(), 72000u * 2) << "too little audio arrived";

  // The last second in 100 ms windows: the tone at its level. On a busy machine the
  // player or the capture may glitch now and then (silence or a phase jump in the
  // monitor), so the level is judged on the median window and the tone on most.
  const std::vector<double> candidates = {220, 440, 550, 660, 880, 1320};
  const size_t window = 4800;
  const float* last_second = got.data() + got.size() - 10 * window * 2;
  for (uint16_t ch = 0; ch < 2; ch++) {
    std::vector<double> levels;
    int tone_windows = 0;
    for (int w = 0; w < 10; w++) {
      const float* p = last_second + w * window * 2;
      tone_windows +=
          syncwave_test::strongest_frequency(p, window, 2, 48000, candidates, ch) == 660;
      // Peak level from the RMS: unlike the Goertzel amplitude, not lowered by the
      // phase jumps a glitch leaves in a window.
      levels.push_back(std::sqrt(2.0) * syncwave_test::rms(p, window, 2, ch));
    }
    std::sort(levels.begin(), levels.end());
    EXPECT_GE(tone_windows, 7) << "channel " << ch;
    // The level: the loudest window carries the tone at the level played (a glitch
    // only lowers a window), and most windows are not silence. A starved real-time
    // player (sanitizer build on a loaded machine) may glitch in many windows, so the
    // median is only required to be clearly above silence.
    EXPECT_NEAR(levels[9], 0.5, 0.1) << "channel " << ch;
    EXPECT_GT(levels[5], 0.2) << "channel " << ch;
  }
  EXPECT_EQ(stat(depay, "malformed"), 0u);
  EXPECT_GE(stat(depay, "headers"), 5u);

  gst_element_set_state(tx, GST_STATE_NULL);
  gst_element_set_state(player, GST_STATE_NULL);
  gst_element_set_state(rx, GST_STATE_NULL);
  for (GstElement* e : {out, depay, tx, player, rx}) gst_object_unref(e);
  pulse.stop();
}

INSTANTIATE_TEST_SUITE_P(Servers, PulseLoopback,
                         ::testing::Values(Server::kPulseAudio, Server::kPipeWire),
                         [](const ::testing::TestParamInfo<Server>& info) {
                           return std::string(syncwave_test::PulseDaemon::name(info.param));
                         });
