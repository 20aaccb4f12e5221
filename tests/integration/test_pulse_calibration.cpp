// SPDX-License-Identifier: LGPL-2.1-or-later
// Acoustic calibration through a private PulseAudio (issue 15): two "loudspeakers" and a
// "room", the room's monitor as the microphone.
//
//   one stereo stream ──► null sink "speakers"
//        left  = loudspeaker A ──► remap source spk_a ──► module-loopback 40 ms ──┐
//        right = loudspeaker B ──► remap source spk_b ──► module-loopback 160 ms ─┼─► null sink
//        "room"
//   pink noise ───────────────────────────────────────────────────────────────────┘
//   room.monitor ──► MonitorRecorder ──► measure_arrival() per probe
//
// Each round plays A's sweep, then a click (one sample at 0.9) through A, then the same
// through B. The probes of A and B are in one stream, so their relative timing is
// exact; where the recording's start is relative to the playback's start is not known
// (two streams' start latencies): that is the real thing's unknown microphone capture
// latency, common to everything, and it cancels in differences.
//
// The truth is the click: its arrival is the largest sample near where it is due, read
// without any of the calibration's code, 0.8 s after the sweep through the same
// loopback. module-loopback normally resamples to hold its target latency, and then its
// latency moves by milliseconds within seconds (measured here: repeats of A spread over
// 14 to 28 ms in 12 s, B's over 7 to 8 ms, up to about 1 ms between a sweep and its
// click). So the main case runs the loopbacks with adjust_time=0: their latency stays
// whatever it settled at (measured: 0 µs spread over four rounds), the sweep and the
// click of a round see the same path, and the sweep's arrival must be within 0.5 ms of
// the click's (measured: 0.1 µs; one round in four may be lost to a glitch of a
// starved player or recorder). B − A is asserted near the 120 ms asked for, loosely:
// the loopbacks' actual latencies are not exactly those (measured 119.96 to 120.00 ms
// held, 120.47 ms adaptive). The adaptive case only reports the errors.
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "calibration.h"
#include "calibration_plan.h"
#include "gst_test_util.h"
#include "monitor_recorder.h"
#include "pulse_daemon.h"

namespace {

using syncwave_test::have;
using syncwave_test::launch;
using syncwave_test::wait_eos;

constexpr uint32_t kRate = 48000;
constexpr int kRepeats = 4;
constexpr double kFirstA = 0.5;      // s into the stream
constexpr double kClickAfter = 0.8;  // each sweep's click this long after it
constexpr double kBAfterA = 1.5;     // B's sweep this long after A's
constexpr double kRound = 4.0;       // one A and one B per round
constexpr float kClick = 0.9f;

// The click's arrival: the largest |sample| in [from, from + span], with a parabola
// through its neighbours. Returns the delay after `from_s`, seconds.
double click_arrival(const std::vector<float>& mic, double from_s, double span_s) {
  const size_t from = std::min(mic.size() - 1, static_cast<size_t>(std::max(0.0, from_s) * kRate));
  const size_t to = std::min(mic.size() - 1, from + static_cast<size_t>(span_s * kRate));
  size_t best = from;
  for (size_t i = from; i < to; i++) {
    if (std::abs(mic[i]) > std::abs(mic[best])) best = i;
  }
  double off = 0;
  if (best > 0 && best + 1 < mic.size()) {
    const double ym = std::abs(mic[best - 1]), y0 = std::abs(mic[best]),
                 yp = std::abs(mic[best + 1]);
    const double d = ym - 2 * y0 + yp;
    if (d < 0) off = std::max(-0.5, std::min(0.5, 0.5 * (ym - yp) / d));
  }
  return (static_cast<double>(best) + off) / kRate - from_s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

// adjust_time=0 (the loopbacks hold their latency) or module-loopback's default
// (it resamples to chase its target: the latency moves while it is measured).
class PulseCalibration : public ::testing::TestWithParam<bool> {};

TEST_P(PulseCalibration, MeasuresTheDifferenceOfTwoLoopbackLatencies) {
  const bool adaptive = GetParam();
  using syncwave::Arrival;
  using syncwave::LogSweep;
  using syncwave::Verdict;
  if (!syncwave_test::PulseDaemon::available()) GTEST_SKIP() << "pulseaudio not installed";
  if (!have("pulsesrc") || !have("pulsesink") || !have("appsrc"))
    GTEST_SKIP() << "GStreamer pulseaudio or app plugin missing";
  syncwave_test::PulseDaemon pulse;
  ASSERT_TRUE(pulse.start()) << pulse.error();
  ASSERT_TRUE(pulse.load_null_sink("speakers")) << pulse.error();
  ASSERT_TRUE(pulse.load_null_sink("room")) << pulse.error();
  std::string out;
  for (const char* side : {"a", "b"}) {
    const std::string channel = std::string(side) == "a" ? "front-left" : "front-right";
    ASSERT_EQ(pulse.pactl(std::string("load-module module-remap-source source_name=spk_") + side +
                              " master=speakers.monitor channels=1 master_channel_map=" + channel +
                              " channel_map=mono remix=no",
                          &out),
              0)
        << out;
  }
  const std::string fixed = adaptive ? "" : " adjust_time=0";
  for (const char* path :
       {"source=spk_a sink=room latency_msec=40", "source=spk_b sink=room latency_msec=160"}) {
    ASSERT_EQ(pulse.pactl(std::string("load-module module-loopback ") + path + fixed +
                              " source_dont_move=true sink_dont_move=true",
                          &out),
              0)
        << out;
  }

  // The room's noise: pink, peaks under 0.4 (the click is 0.9).
  GstElement* noise = launch(
      "audiotestsrc is-live=true wave=pink-noise volume=0.1 ! "
      "audio/x-raw,format=F32LE,rate=48000,channels=2 ! pulsesink server=" +
      pulse.server() + " device=room");
  ASSERT_NE(noise, nullptr);
  ASSERT_NE(gst_element_set_state(noise, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  syncwave_test::MonitorRecorder rec(pulse.server(), "room.monitor");
  ASSERT_TRUE(rec.ok());

  // The stream: A's probe in the left channel, B's in the right, kRepeats rounds.
  LogSweep probe;
  ASSERT_TRUE(probe.valid());
  const size_t frames = static_cast<size_t>((kRepeats * kRound + 0.5) * kRate);
  std::vector<float> stream(frames * 2, 0.0f);
  for (int r = 0; r < kRepeats; r++) {
    for (int ch = 0; ch < 2; ch++) {
      const size_t at = static_cast<size_t>((kFirstA + r * kRound + ch * kBAfterA) * kRate);
      for (size_t i = 0; i < probe.samples().size(); i++) {
        stream[(at + i) * 2 + ch] = probe.samples()[i];
      }
      stream[(at + static_cast<size_t>(kClickAfter * kRate)) * 2 + ch] = kClick;
    }
  }
  GstElement* player = launch(
      "appsrc name=src format=time caps=audio/x-raw,format=F32LE,rate=48000,channels=2,"
      "layout=interleaved ! pulsesink server=" +
      pulse.server() + " device=speakers");
  ASSERT_NE(player, nullptr);
  GstElement* src = gst_bin_get_by_name(GST_BIN(player), "src");
  GstBuffer* buf = gst_buffer_new_allocate(nullptr, stream.size() * 4, nullptr);
  gst_buffer_fill(buf, 0, stream.data(), stream.size() * 4);
  GST_BUFFER_PTS(buf) = 0;
  GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(frames, GST_SECOND, kRate);
  ASSERT_EQ(gst_app_src_push_buffer(GST_APP_SRC(src), buf), GST_FLOW_OK);
  gst_app_src_end_of_stream(GST_APP_SRC(src));
  // Let the recording run first; what it holds when the player starts is the offset's
  // coarse part.
  while (rec.frames() < kRate / 2) g_usleep(10000);
  const size_t before = rec.frames();
  ASSERT_NE(gst_element_set_state(player, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  EXPECT_TRUE(wait_eos(player, 60 * GST_SECOND));
  // The last probe's window (its reply 160 ms and more later) must be recorded too.
  const size_t want = before + frames + kRate;
  for (int i = 0; i < 300 && rec.frames() < want; i++) g_usleep(10000);
  std::vector<float> stereo = rec.since(0);
  gst_element_set_state(player, GST_STATE_NULL);
  gst_element_set_state(noise, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(player);
  gst_object_unref(noise);

  std::vector<float> mic(stereo.size() / 2);
  for (size_t i = 0; i < mic.size(); i++) mic[i] = stereo[2 * i];
  ASSERT_GE(mic.size(), want - kRate / 2);

  // Where each round is: the recording's start relative to the playback's is known only
  // roughly (`before`: two streams' start latencies), and on a loaded machine the
  // recorder can lose a stretch (a capture overrun), which moves everything after it.
  // So each round's A is found with a wide window (-1.0 to +1.2 s), and B (its window
  // -0.3 to +0.5 s around A's arrival) and the clicks (+-50 ms) are looked for near it.
  syncwave::AnalysisConfig wide;
  wide.earliest_s = -1.0;
  wide.latest_s = 1.2;
  std::vector<Arrival> a, b;
  std::vector<double> diffs, errors, clicks_a, clicks_b;
  for (int r = 0; r < kRepeats; r++) {
    const double t_a = static_cast<double>(before) / kRate + kFirstA + r * kRound;
    const double t_b = t_a + kBAfterA;
    a.push_back(syncwave::measure_arrival(probe, mic.data(), mic.size(), t_a, wide));
    const double shift = std::isfinite(a.back().delay_s) ? a.back().delay_s : 0.0;
    syncwave::AnalysisConfig near;
    near.earliest_s = shift - 0.3;
    near.latest_s = shift + 0.5;
    b.push_back(syncwave::measure_arrival(probe, mic.data(), mic.size(), t_b, near));
    const double b_shift = std::isfinite(b.back().delay_s) ? b.back().delay_s : shift + 0.12;
    const double ca = click_arrival(mic, t_a + kClickAfter + shift - 0.05, 0.1) + shift - 0.05;
    const double cb = click_arrival(mic, t_b + kClickAfter + b_shift - 0.05, 0.1) + b_shift - 0.05;
    clicks_a.push_back(ca);
    clicks_b.push_back(cb);
    const double ea = (a.back().delay_s - ca) * 1000, eb = (b.back().delay_s - cb) * 1000;
    std::printf(
        "  round %d: A %-9s %8.3f ms (click %8.3f, error %+7.4f ms, PNR %.1f dB)\n"
        "           B %-9s %8.3f ms (click %8.3f, error %+7.4f ms, PNR %.1f dB)"
        "   B - A %8.3f ms\n",
        r, syncwave::verdict_name(a.back().verdict), a.back().delay_s * 1000, ca * 1000, ea,
        a.back().peak_to_noise_db, syncwave::verdict_name(b.back().verdict),
        b.back().delay_s * 1000, cb * 1000, eb, b.back().peak_to_noise_db,
        (b.back().delay_s - a.back().delay_s) * 1000);
    if (a.back().verdict == Verdict::kOk) errors.push_back(ea);
    if (b.back().verdict == Verdict::kOk) errors.push_back(eb);
    if (a.back().verdict == Verdict::kOk && b.back().verdict == Verdict::kOk) {
      diffs.push_back(b.back().delay_s - a.back().delay_s);
    }
  }
  syncwave::RepeatConfig loose;
  loose.max_spread_s = 1.0;  // report the loopbacks' own spread, do not refuse on it
  const syncwave::ReceiverMeasurement ma = syncwave::combine_repeats(a, loose);
  const syncwave::ReceiverMeasurement mb = syncwave::combine_repeats(b, loose);
  auto spread = [](const std::vector<double>& v) {
    return (*std::max_element(v.begin(), v.end()) - *std::min_element(v.begin(), v.end())) * 1000;
  };
  std::printf(
      "  A: %s, median %.3f ms, spread %.3f ms (clicks: spread %.3f ms)\n"
      "  B: %s, median %.3f ms, spread %.3f ms (clicks: spread %.3f ms)\n",
      syncwave::verdict_name(ma.verdict), ma.delay_s * 1000, ma.spread_s * 1000, spread(clicks_a),
      syncwave::verdict_name(mb.verdict), mb.delay_s * 1000, mb.spread_s * 1000, spread(clicks_b));
  // On a loaded machine a starved player or recorder can glitch (a gap shifts what
  // follows): allow one round of the four to be lost to that.
  ASSERT_GE(errors.size(), static_cast<size_t>(2 * kRepeats - 2)) << "probes not measured";
  double worst = 0;
  size_t within = 0;
  std::vector<double> abs_errors;
  for (double e : errors) {
    worst = std::max(worst, std::abs(e));
    within += std::abs(e) < 0.5;
    abs_errors.push_back(std::abs(e));
  }
  const double d = median(diffs);
  std::printf(
      "  sweep against click: worst error %.4f ms over %zu probes\n"
      "  B - A: median %.3f ms over %zu rounds (loopbacks asked for 160 - 40 = 120 ms)\n",
      worst, errors.size(), d * 1000, diffs.size());
  if (adaptive) {
    // The path moved between sweep and click: only reported; B - A of the medians
    // stays near the target (measured: see docs/synchronization.md).
    EXPECT_NEAR(d * 1000, 120.0, 25.0);
  } else {
    EXPECT_LT(median(abs_errors), 0.05);
    EXPECT_GE(within, static_cast<size_t>(2 * kRepeats - 2)) << "worst " << worst << " ms";
    EXPECT_NEAR(d * 1000, 120.0, 20.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Loopbacks, PulseCalibration, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "Adaptive" : "HeldLatency");
                         });
