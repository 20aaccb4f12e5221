// SPDX-License-Identifier: LGPL-2.1-or-later
// syncwavepay ! udpsink -> udpsrc ! syncwavedepay over real sockets on 127.0.0.1:
// raw audio arrives sample-exact and contiguous; Opus arrives with the same tone at
// the same level. A free port per test, so tests run in parallel.
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "audio_analysis.h"
#include "gst_test_util.h"
#include "udp_port.h"

namespace {

using syncwave_test::have;
using syncwave_test::launch;
using syncwave_test::stat;
using syncwave_test::wait_eos;

struct Captured {
  std::vector<float> samples;
  std::vector<GstClockTime> pts, duration;
  std::vector<bool> discont;
};

// Pulls from `sink` until `bytes` bytes arrived or nothing came for `idle`.
void collect(GstElement* sink, size_t bytes, GstClockTime idle, Captured* out) {
  while (out->samples.size() * 4 < bytes) {
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), idle);
    if (!s) break;
    GstBuffer* b = gst_sample_get_buffer(s);
    const size_t n = gst_buffer_get_size(b) / 4;
    const size_t at = out->samples.size();
    out->samples.resize(at + n);
    gst_buffer_extract(b, 0, out->samples.data() + at, n * 4);
    out->pts.push_back(GST_BUFFER_PTS(b));
    out->duration.push_back(GST_BUFFER_DURATION(b));
    out->discont.push_back(GST_BUFFER_IS_DISCONT(b));
    gst_sample_unref(s);
  }
}

std::string receiver_desc(uint16_t port, const std::string& tail) {
  return "udpsrc address=127.0.0.1 port=" + std::to_string(port) +
         " buffer-size=4194304 caps=application/x-syncwave ! syncwavedepay name=depay ! " + tail;
}

}  // namespace

TEST(UdpRoundtrip, RawIsSampleExact) {
  const uint16_t port = syncwave_test::free_udp_port();
  ASSERT_NE(port, 0);
  GstElement* rx = launch(receiver_desc(port, "appsink name=out sync=false"));
  ASSERT_NE(rx, nullptr);
  ASSERT_NE(gst_element_set_state(rx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  // 1 s of a 440 Hz tone, 3 channels (an odd count), sent in real time.
  GstElement* tx = launch(
      "audiotestsrc is-live=true num-buffers=50 samplesperbuffer=960 freq=440 volume=0.5 ! "
      "audio/x-raw,format=F32LE,rate=48000,channels=3 ! tee name=t ! queue ! "
      "syncwavepay name=pay mtu=1200 ! udpsink host=127.0.0.1 port=" +
      std::to_string(port) + " t. ! queue ! appsink name=ref sync=false");
  ASSERT_NE(tx, nullptr);
  GstElement* ref = gst_bin_get_by_name(GST_BIN(tx), "ref");
  GstElement* out = gst_bin_get_by_name(GST_BIN(rx), "out");
  GstElement* depay = gst_bin_get_by_name(GST_BIN(rx), "depay");
  GstElement* pay = gst_bin_get_by_name(GST_BIN(tx), "pay");
  ASSERT_NE(gst_element_set_state(tx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  Captured sent;
  collect(ref, 48000 * 3 * 4, 5 * GST_SECOND, &sent);
  ASSERT_TRUE(wait_eos(tx, 10 * GST_SECOND));
  ASSERT_EQ(sent.samples.size(), 48000u * 3);

  Captured got;
  collect(out, sent.samples.size() * 4, 3 * GST_SECOND, &got);
  ASSERT_EQ(got.samples.size(), sent.samples.size());
  EXPECT_TRUE(got.samples == sent.samples) << "samples differ";
  for (size_t i = 1; i < got.pts.size(); i++) {
    EXPECT_EQ(got.pts[i], got.pts[i - 1] + got.duration[i - 1]) << i;
    EXPECT_FALSE(got.discont[i]) << i;
  }
  EXPECT_EQ(stat(depay, "malformed"), 0u);
  EXPECT_EQ(stat(depay, "headers"), 6u);  // five at the start, one after 500 ms of audio
  EXPECT_EQ(stat(depay, "packets"), stat(pay, "packets"));
  EXPECT_EQ(stat(depay, "bytes"), stat(pay, "bytes"));

  gst_element_set_state(tx, GST_STATE_NULL);
  gst_element_set_state(rx, GST_STATE_NULL);
  for (GstElement* e : {ref, out, depay, pay, tx, rx}) gst_object_unref(e);
}

TEST(UdpRoundtrip, OpusKeepsFrequencyAndLevel) {
  if (!have("opusenc") || !have("opusdec")) GTEST_SKIP() << "GStreamer opus plugin missing";
  const uint16_t port = syncwave_test::free_udp_port();
  ASSERT_NE(port, 0);
  GstElement* rx = launch(receiver_desc(
      port,
      "opusdec ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=2 "
      "! appsink name=out sync=false"));
  ASSERT_NE(rx, nullptr);
  ASSERT_NE(gst_element_set_state(rx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  GstElement* tx = launch(
      "audiotestsrc is-live=true num-buffers=100 samplesperbuffer=480 freq=1000 volume=0.5 ! "
      "audio/x-raw,rate=48000,channels=2 ! opusenc bitrate=128000 frame-size=10 ! "
      "syncwavepay name=pay ! udpsink host=127.0.0.1 port=" +
      std::to_string(port));
  ASSERT_NE(tx, nullptr);
  GstElement* out = gst_bin_get_by_name(GST_BIN(rx), "out");
  GstElement* depay = gst_bin_get_by_name(GST_BIN(rx), "depay");
  ASSERT_NE(gst_element_set_state(tx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE(wait_eos(tx, 10 * GST_SECOND));

  Captured got;
  collect(out, 48000 * 2 * 4, 2 * GST_SECOND, &got);
  const size_t frames = got.samples.size() / 2;
  ASSERT_GE(frames, 40000u);  // nearly all of 1 s (the encoder's lookahead may hold a bit)
  // Skip the decoder's start; analyse 0.5 s of the middle, both channels.
  const float* mid = got.samples.data() + 2 * 9600;
  const std::vector<double> candidates = {250, 500, 750, 1000, 1500, 2000, 3000};
  for (uint16_t ch = 0; ch < 2; ch++) {
    EXPECT_EQ(syncwave_test::strongest_frequency(mid, 24000, 2, 48000, candidates, ch), 1000);
    EXPECT_NEAR(syncwave_test::tone_amplitude(mid, 24000, 2, 48000, 1000, ch), 0.5, 0.05);
  }
  for (size_t i = 1; i < got.pts.size(); i++) EXPECT_FALSE(got.discont[i]) << i;
  EXPECT_EQ(stat(depay, "malformed"), 0u);
  EXPECT_GE(stat(depay, "packets"), 95u);

  gst_element_set_state(tx, GST_STATE_NULL);
  gst_element_set_state(rx, GST_STATE_NULL);
  for (GstElement* e : {out, depay, tx, rx}) gst_object_unref(e);
}

// One capture, one payloader, two receivers through multiudpsink (buffer lists): both
// get every sample.
TEST(UdpRoundtrip, MultiudpsinkFansOut) {
  const uint16_t port_a = syncwave_test::free_udp_port();
  const uint16_t port_b = syncwave_test::free_udp_port();
  ASSERT_NE(port_a, 0);
  ASSERT_NE(port_b, 0);
  GstElement* rx_a = launch(receiver_desc(port_a, "appsink name=out sync=false"));
  GstElement* rx_b = launch(receiver_desc(port_b, "appsink name=out sync=false"));
  ASSERT_NE(rx_a, nullptr);
  ASSERT_NE(rx_b, nullptr);
  ASSERT_NE(gst_element_set_state(rx_a, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_NE(gst_element_set_state(rx_b, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  GstElement* tx = launch(
      "audiotestsrc is-live=true num-buffers=20 samplesperbuffer=960 wave=pink-noise ! "
      "audio/x-raw,format=F32LE,rate=48000,channels=2 ! tee name=t ! queue ! syncwavepay ! "
      "multiudpsink clients=127.0.0.1:" +
      std::to_string(port_a) + ",127.0.0.1:" + std::to_string(port_b) +
      " t. ! queue ! appsink name=ref sync=false");
  ASSERT_NE(tx, nullptr);
  GstElement* ref = gst_bin_get_by_name(GST_BIN(tx), "ref");
  ASSERT_NE(gst_element_set_state(tx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  Captured sent;
  collect(ref, 20 * 960 * 2 * 4, 5 * GST_SECOND, &sent);
  ASSERT_TRUE(wait_eos(tx, 10 * GST_SECOND));
  ASSERT_EQ(sent.samples.size(), 20u * 960 * 2);

  for (GstElement* rx : {rx_a, rx_b}) {
    GstElement* out = gst_bin_get_by_name(GST_BIN(rx), "out");
    Captured got;
    collect(out, sent.samples.size() * 4, 3 * GST_SECOND, &got);
    EXPECT_TRUE(got.samples == sent.samples) << "receiver " << (rx == rx_a ? "a" : "b");
    gst_object_unref(out);
    gst_element_set_state(rx, GST_STATE_NULL);
    gst_object_unref(rx);
  }
  gst_element_set_state(tx, GST_STATE_NULL);
  gst_object_unref(ref);
  gst_object_unref(tx);
}
