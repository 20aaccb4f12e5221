// SPDX-License-Identifier: LGPL-2.1-or-later
// Fast join (issue 11): a receiver started while an Opus sender runs is heard within
// about a second, even though the sender's headers went out before it started and no
// other comes (syncwavepay header-interval=0: headers only at the start). The sender
// is the plain gst-launch line (opusenc defaults, udpsink defaults); the receiver is
// `udpsrc ! syncwavesink device=NULLSINK` into a private PulseAudio daemon, judged by
// what the null sink's monitor records. A raw stream, in the same situation, stays
// silent until a header comes (its rate and channels are only in the header:
// docs/wire-format.md, receiver rules); it is not tested here.
#include <gst/app/app.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "audio_analysis.h"
#include "gst_test_util.h"
#include "pulse_daemon.h"
#include "timing.h"
#include "udp_port.h"

using syncwave_test::have;
using syncwave_test::launch;

TEST(FastJoin, OpusWithoutHeaderIsHeardWithinASecond) {
  if (!syncwave_test::PulseDaemon::available()) GTEST_SKIP() << "pulseaudio not installed";
  if (!have("pulsesrc") || !have("opusenc") || !have("opusdec"))
    GTEST_SKIP() << "pulse or opus GStreamer plugins missing";
  syncwave_test::PulseDaemon pulse;
  if (!pulse.start()) GTEST_SKIP() << "cannot start pulseaudio: " << pulse.error();
  setenv("PULSE_SERVER", pulse.server().c_str(), 1);
  const uint16_t port = syncwave_test::free_udp_port();
  ASSERT_NE(port, 0);

  GstElement* tx = launch(
      "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! "
      "audio/x-raw,rate=48000,channels=2 ! opusenc ! syncwavepay name=pay header-interval=0 ! "
      "udpsink host=127.0.0.1 port=" +
      std::to_string(port));
  ASSERT_NE(tx, nullptr);
  ASSERT_NE(gst_element_set_state(tx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  // The sender's start-up headers go to nobody: wait until it has sent a second of
  // packets (1.5 s of waiting was not enough under the sanitizers once).
  GstElement* pay = gst_bin_get_by_name(GST_BIN(tx), "pay");
  ASSERT_NE(pay, nullptr);
  for (int i = 0; i < 200 && syncwave_test::stat(pay, "packets") < 50; i++) g_usleep(50 * 1000);
  gst_object_unref(pay);
  g_usleep(500 * 1000);

  GstElement* mon = launch("pulsesrc server=" + pulse.server() + " device=" + pulse.monitor_name() +
                           " ! audio/x-raw,format=F32LE,rate=48000,channels=2 ! "
                           "appsink name=out sync=false max-buffers=4000");
  ASSERT_NE(mon, nullptr);
  GstElement* out = gst_bin_get_by_name(GST_BIN(mon), "out");
  gst_element_set_state(mon, GST_STATE_PLAYING);
  // Let the monitor run before the receiver starts.
  const gint64 mon_end = g_get_monotonic_time() + 300 * 1000;
  while (g_get_monotonic_time() < mon_end) {
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 50 * GST_MSECOND);
    if (s) gst_sample_unref(s);
  }

  GstElement* rx = launch("udpsrc address=127.0.0.1 port=" + std::to_string(port) +
                          " ! syncwavesink name=rx device=" + pulse.sink_name());
  ASSERT_NE(rx, nullptr);
  const gint64 t0 = g_get_monotonic_time();
  ASSERT_NE(gst_element_set_state(rx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  // The first 10 ms block of the monitor with the tone in it, by arrival time.
  double heard_s = -1;
  std::vector<float> block;
  while (g_get_monotonic_time() < t0 + 5 * G_USEC_PER_SEC && heard_s < 0) {
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 100 * GST_MSECOND);
    if (!s) continue;
    GstBuffer* b = gst_sample_get_buffer(s);
    GstMapInfo m;
    if (gst_buffer_map(b, &m, GST_MAP_READ)) {
      const float* f = reinterpret_cast<const float*>(m.data);
      block.insert(block.end(), f, f + m.size / 4);
      gst_buffer_unmap(b, &m);
    }
    gst_sample_unref(s);
    while (block.size() >= 960 && heard_s < 0) {
      if (syncwave_test::rms(block.data(), 480, 2) > 0.05)
        heard_s = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
      block.erase(block.begin(), block.begin() + 960);
    }
  }
  printf("heard %.3f s after the receiver started\n", heard_s);

  GstElement* bin = gst_bin_get_by_name(GST_BIN(rx), "rx");
  GstElement* depay = gst_bin_get_by_name(GST_BIN(bin), "depay");
  ASSERT_NE(depay, nullptr);
  // Under the sanitizers the sender's start-up header reached the receiver once (the
  // receiver then started from it, heard 0.26 s after): which one comes first is timing.
  EXPECT_TIMELY(syncwave_test::stat(depay, "opus-toc-starts") >= 1u)
      << "started from a header, not from the Opus TOC";
  // It started from the TOC (above). A header may still come later: under the
  // sanitizers one reached the receiver once even after the sender's start-up (seen
  // 2026-12-02, not understood); it is printed, not asserted.
  printf("headers received: %llu\n", (unsigned long long)syncwave_test::stat(depay, "headers"));
  gst_object_unref(depay);
  gst_object_unref(bin);

  // Target 1 s; asserted generously (a loaded machine, the audio server's start).
  EXPECT_GE(heard_s, 0.0) << "the receiver stayed silent";
  EXPECT_TIMELY(heard_s <= 2.5) << heard_s << " s";

  for (GstElement* p : {rx, mon, tx}) {
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
  gst_object_unref(out);
  unsetenv("PULSE_SERVER");
}
