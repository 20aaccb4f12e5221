// SPDX-License-Identifier: LGPL-2.1-or-later
// Issue 18: several senders on one port, judged from what a real PulseAudio null sink
// plays. The receiver is the line users write, `udpsrc port=P ! syncwavesink
// clock=system device=NULLSINK`; the senders are users' gst-launch lines,
// `audiotestsrc is-live=true ! ... ! syncwavepay ! udpsink host=127.0.0.1 port=P` with
// udpsink's defaults, each a pipeline of its own (its own socket, so its own source
// port), in raw 48 kHz stereo, raw 44.1 kHz mono and Opus, each at its own pitch.
//
// The first sender started is played. While the others run, the recording of the
// null sink's monitor must carry its pitch in every 20 ms window (no change of pitch)
// and no 5 ms window below half its level (no hole; at most 3 short ones tolerated for
// the output's underruns on a loaded machine). When it stops, the hand-over to
// the next sender is measured as the silence between the last window of the first
// pitch and the first of the next one: the jitter's rule is 500 ms of silence (see
// docs/synchronization.md) and the output places the new sender's content at once on
// its own timeline (measured 500-520 ms in all); asserted as the issue asks, heard
// within 1 s after the timeout, plus 500 ms for a loaded machine.
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "audio_analysis.h"
#include "gst_test_util.h"
#include "pulse_daemon.h"
#include "timing.h"
#include "udp_port.h"

namespace {

using syncwave_test::have;
using syncwave_test::launch;

constexpr uint32_t kRate = 48000;  // the null sink's
constexpr size_t kWindow = 960;    // 20 ms: pitch
constexpr size_t kSub = 240;       // 5 ms: holes
constexpr double kAmplitude = 0.5;
// The jitter's hand-over timeout, the 1 s to be heard after it, and a margin
// (a real-time bound: tests/common/timing.h; Opus to raw took 2140 ms once under the
// sanitizers, 540 ms in the plain build).
const double kHandOverLimitMs = 500 + 1000 + 500;

enum class Format { kRaw48Stereo, kRaw44Mono, kOpus };

const char* format_name(Format f) {
  switch (f) {
    case Format::kRaw48Stereo:
      return "raw 48 kHz stereo";
    case Format::kRaw44Mono:
      return "raw 44.1 kHz mono";
    case Format::kOpus:
      return "Opus";
  }
  return "?";
}

// A sender as users write it.
std::string sender_line(Format f, double freq, uint16_t port) {
  std::string caps;
  switch (f) {
    case Format::kRaw48Stereo:
      caps = "audio/x-raw,format=F32LE,rate=48000,channels=2";
      break;
    case Format::kRaw44Mono:
      caps = "audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=44100,channels=1";
      break;
    case Format::kOpus:
      caps = "audioconvert ! opusenc";
      break;
  }
  char f_text[32];
  std::snprintf(f_text, sizeof f_text, "%.0f", freq);
  return std::string("audiotestsrc is-live=true freq=") + f_text + " volume=0.5 ! " + caps +
         " ! syncwavepay ! udpsink host=127.0.0.1 port=" + std::to_string(port);
}

struct SenderPlan {
  Format format;
  double freq;
  double start_s;
  double stop_s;
};

struct Outcome {
  std::string windows;      // one char per 20 ms window: '0'+sender index, '.' hole/silence
  double played_s = 0;      // how long the first sender was heard without a break
  int played_breaks = 0;    // windows of another pitch
  int played_holes = 0;     // windows with a 5 ms part below half level
  int longest_hole = 0;     // in windows
  double handover_ms = -1;  // silence between the first sender and the next, -1: none
  int next = -1;            // which sender took over
  guint64 underruns = 0;    // the output's (syncwavepulsesink): it was not scheduled
  guint64 alignment_steps = 0;  // the aligner's (one at the start, one per underrun)
};

// The windows, two seconds a line.
std::string show(const std::string& windows) {
  std::string s;
  for (size_t i = 0; i < windows.size(); i += 100)
    s += "\n  " + std::to_string(i / 50) + " s: " + windows.substr(i, 100);
  return s;
}

class MultiSender : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("syncwavepulsesink") || !have("pulsesrc"))
      GTEST_SKIP() << "built without libpulse / no pulsesrc";
    if (!syncwave_test::PulseDaemon::available()) GTEST_SKIP() << "pulseaudio not installed";
    ASSERT_TRUE(pulse_.start()) << pulse_.error() << pulse_.log();
    setenv("PULSE_SERVER", pulse_.server().c_str(), 1);
  }
  void TearDown() override { unsetenv("PULSE_SERVER"); }

  // Runs the plan (times in s from the receiver's start) and analyses the recording.
  Outcome run(const std::vector<SenderPlan>& plan, unsigned latency_ms = 0) {
    Outcome o;
    const uint16_t port = syncwave_test::free_udp_port();
    EXPECT_NE(port, 0);
    std::string rx_line = "udpsrc port=" + std::to_string(port) +
                          " ! syncwavesink name=rx clock=system device=" + pulse_.sink_name();
    if (latency_ms) rx_line += " latency=" + std::to_string(latency_ms);
    GstElement* rx = launch(rx_line);
    GstElement* mon = launch("pulsesrc device=" + pulse_.monitor_name() +
                             " ! audio/x-raw,format=F32LE,rate=48000,channels=2 ! "
                             "appsink name=cap sync=false max-buffers=0 emit-signals=false");
    if (!rx || !mon) return o;
    GstElement* cap = gst_bin_get_by_name(GST_BIN(mon), "cap");
    gst_element_set_state(rx, GST_STATE_PLAYING);
    gst_element_set_state(mon, GST_STATE_PLAYING);

    std::vector<float> rec;
    auto drain = [&] {
      while (GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(cap), 0)) {
        GstBuffer* b = gst_sample_get_buffer(s);
        const size_t n = gst_buffer_get_size(b) / 4, at = rec.size();
        rec.resize(at + n);
        gst_buffer_extract(b, 0, rec.data() + at, n * 4);
        gst_sample_unref(s);
      }
    };

    std::vector<GstElement*> senders(plan.size(), nullptr);
    double end_s = 0;
    for (const SenderPlan& p : plan) end_s = std::max(end_s, p.stop_s);
    const gint64 t0 = g_get_monotonic_time();
    for (;;) {
      const double t = (g_get_monotonic_time() - t0) / 1e6;
      for (size_t i = 0; i < plan.size(); i++) {
        if (!senders[i] && t >= plan[i].start_s && t < plan[i].stop_s) {
          senders[i] = launch(sender_line(plan[i].format, plan[i].freq, port));
          if (senders[i]) gst_element_set_state(senders[i], GST_STATE_PLAYING);
        }
        if (senders[i] && t >= plan[i].stop_s) {
          gst_element_set_state(senders[i], GST_STATE_NULL);
          gst_object_unref(senders[i]);
          senders[i] = nullptr;
        }
      }
      drain();
      // What gst-launch-1.0 does for every pipeline: latency and clock changes.
      std::vector<GstElement*> all = senders;
      all.push_back(rx);
      for (GstElement* p : all) {
        if (!p) continue;
        GstBus* bus = gst_element_get_bus(p);
        while (GstMessage* m = gst_bus_pop(bus)) {
          if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_LATENCY) gst_bin_recalculate_latency(GST_BIN(p));
          if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_CLOCK_LOST) {
            gst_element_set_state(p, GST_STATE_PAUSED);
            gst_element_set_state(p, GST_STATE_PLAYING);
          }
          gst_message_unref(m);
        }
        gst_object_unref(bus);
      }
      if (t >= end_s + 0.5) break;
      g_usleep(10000);
    }
    for (GstElement*& s : senders)
      if (s) {
        gst_element_set_state(s, GST_STATE_NULL);
        gst_object_unref(s);
      }
    drain();
    GstElement* sink = gst_bin_get_by_name(GST_BIN(rx), "rx");
    if (sink) {
      o.underruns = syncwave_test::stat(sink, "underruns");
      o.alignment_steps = syncwave_test::stat(sink, "alignment-steps");
      GstElement* jitter = gst_bin_get_by_name(GST_BIN(sink), "jitter");
      if (jitter) {
        foreign_ = syncwave_test::stat(jitter, "foreign-packets");
        sender_changes_ = syncwave_test::stat(jitter, "sender-changes");
        gst_object_unref(jitter);
      }
      gst_object_unref(sink);
    }
    gst_element_set_state(mon, GST_STATE_NULL);
    gst_element_set_state(rx, GST_STATE_NULL);
    gst_object_unref(cap);
    gst_object_unref(mon);
    gst_object_unref(rx);

    if (const char* dump = std::getenv("SYNCWAVE_MULTI_SENDER_DUMP")) {
      if (FILE* f = std::fopen(dump, "wb")) {
        std::fwrite(rec.data(), 4, rec.size(), f);
        std::fclose(f);
      }
    }
    // One char per 20 ms window.
    std::vector<double> freqs;
    for (const SenderPlan& p : plan) freqs.push_back(p.freq);
    const size_t frames = rec.size() / 2;
    for (size_t w = 0; w + kWindow <= frames; w += kWindow) {
      const float* x = rec.data() + w * 2;
      bool hole = false;
      for (size_t s = 0; s < kWindow; s += kSub)
        if (std::sqrt(2.0) * syncwave_test::rms(x + s * 2, kSub, 2, 0) < kAmplitude / 2)
          hole = true;
      if (hole) {
        o.windows += '.';
        continue;
      }
      const double f = syncwave_test::strongest_frequency(x, kWindow, 2, kRate, freqs, 0);
      for (size_t i = 0; i < freqs.size(); i++)
        if (f == freqs[i]) o.windows += static_cast<char>('0' + i);
    }
    // The first sender: from its first window, 1.5 s of settling (the output anchors
    // its phase after 1 s of device time), then to its last window.
    const size_t first = o.windows.find('0');
    const size_t last = o.windows.rfind('0');
    if (first == std::string::npos) return o;
    const size_t from = std::min(last, first + 75);
    int run = 0;
    for (size_t w = from; w <= last; w++) {
      if (o.windows[w] == '.') {
        o.played_holes++;
        o.longest_hole = std::max(o.longest_hole, ++run);
      } else {
        run = 0;
        if (o.windows[w] != '0') o.played_breaks++;
      }
    }
    o.played_s = (last - first + 1) * 0.02;
    // Hand-over: the first window of another sender after the first one's last.
    for (size_t w = last + 1; w < o.windows.size(); w++)
      if (o.windows[w] != '.' && o.windows[w] != '0') {
        o.next = o.windows[w] - '0';
        o.handover_ms = (w - last - 1) * 20.0;
        break;
      }
    return o;
  }

  syncwave_test::PulseDaemon pulse_;
  guint64 foreign_ = 0;
  guint64 sender_changes_ = 0;
};

// The played stream stays whole while the others run; returns the outcome.
void expect_played_through(const Outcome& o, const std::vector<SenderPlan>& plan) {
  const SenderPlan& a = plan[0];
  double others_from = 1e9;
  for (size_t i = 1; i < plan.size(); i++) others_from = std::min(others_from, plan[i].start_s);
  // A window whose strongest pitch is another sender's. Under the sanitizers one such
  // window came with 34 output underruns (2026-12-02): a window cut by an underrun is not
  // a whole tone, so there it is a real-time bound; more than two is a mix anywhere.
  // (That nothing foreign reaches the stream is asserted exactly by element-syncwavejitter
  // and scenarios-network.)
  EXPECT_LE(o.played_breaks, 2) << "other pitches in the played stream" << show(o.windows);
  EXPECT_TIMELY(o.played_breaks == 0) << "other pitches in the played stream (" << o.underruns
                                      << " underruns)" << show(o.windows);
  // Holes: none is expected; on a loaded machine (parallel test runs) the output
  // underruns now and then, with or without other senders, so a few short ones are
  // tolerated, and two windows more for each underrun the output counted (its writer
  // thread was not scheduled in time; seen at load averages of 8-9 on the two cores).
  // The failure of issue 18 (silence while the other sends) is hundreds.
  const int tolerated = 3 + 2 * static_cast<int>(std::min<guint64>(o.underruns, 10));
  EXPECT_TIMELY(o.played_holes <= tolerated)
      << "holes in the played stream (" << o.underruns << " underruns)" << show(o.windows);
  // An underrun is as long as the writer thread was not scheduled: up to 120 ms seen.
  const int longest_tolerated = o.underruns > 0 ? 6 : 2;
  EXPECT_TIMELY(o.longest_hole <= longest_tolerated)
      << "a hole of more than " << longest_tolerated * 20 << " ms (" << o.underruns << " underruns)"
      << show(o.windows);
  std::printf(
      "played stream: %d windows of another pitch, %d with a hole (longest %d); output "
      "underruns %llu, alignment steps %llu%s\n",
      o.played_breaks, o.played_holes, o.longest_hole, (unsigned long long)o.underruns,
      (unsigned long long)o.alignment_steps, show(o.windows).c_str());
  // Heard at least from before the others started until it stopped (generous: the
  // receiver's first second and the tail are not counted). That it plays most of it is
  // judged everywhere; the whole of it is a real-time bound (under the sanitizers, 3.46 s
  // against 3.5 with 5 output underruns in one CI run).
  EXPECT_GT(o.played_s, (a.stop_s - others_from + 0.5) / 2) << show(o.windows);
  EXPECT_TIMELY(o.played_s > a.stop_s - others_from + 0.5)
      << o.played_s << " s (" << o.underruns << " underruns)" << show(o.windows);
}

}  // namespace

// Two senders, same format: B joins while A plays; A stops, B takes over.
TEST_F(MultiSender, TwoSameFormatTheFirstPlaysThenTheOtherTakesOver) {
  const std::vector<SenderPlan> plan = {{Format::kRaw48Stereo, 440, 0.0, 6.0},
                                        {Format::kRaw48Stereo, 880, 2.5, 8.5}};
  const Outcome o = run(plan);
  expect_played_through(o, plan);
  EXPECT_GT(foreign_, 0u);
  EXPECT_EQ(o.next, 1) << show(o.windows);
  EXPECT_GE(o.handover_ms, 0);
  // The jitter hands over 500 ms after the last datagram and the output places the new
  // content at once (measured 500-520 ms in all, 2026-12-02; 2.4 s before the output
  // kept its timeline across the hand-over).
  EXPECT_TIMELY(o.handover_ms < kHandOverLimitMs) << o.handover_ms << " ms" << show(o.windows);
  EXPECT_EQ(sender_changes_, 1u);
  RecordProperty("handover_ms", std::to_string(o.handover_ms));
  std::printf("hand-over silence: %.0f ms\n", o.handover_ms);
}

// Three senders, same format, started one after another; the first stops: one of
// the two others takes over, and plays on.
TEST_F(MultiSender, ThreeSameFormatHandOverToOneOfTheOthers) {
  const std::vector<SenderPlan> plan = {{Format::kRaw48Stereo, 440, 0.0, 6.0},
                                        {Format::kRaw48Stereo, 880, 2.5, 8.5},
                                        {Format::kRaw48Stereo, 660, 3.0, 8.5}};
  const Outcome o = run(plan);
  expect_played_through(o, plan);
  EXPECT_TRUE(o.next == 1 || o.next == 2) << show(o.windows);
  EXPECT_GE(o.handover_ms, 0);
  EXPECT_TIMELY(o.handover_ms < kHandOverLimitMs) << o.handover_ms << " ms" << show(o.windows);
  EXPECT_EQ(sender_changes_, 1u);
  std::printf("hand-over silence: %.0f ms (to sender %d)\n", o.handover_ms, o.next);
}

// In the tests below the others stop 300 ms after the played one, before the 500 ms
// hand-over timeout: a hand-over racing their stop would put a window or two of the
// next sender after the played one's end (hand-overs have tests of their own).
constexpr double kOthersStopAfter = 0.3;

// Other formats on the port: raw 44.1 kHz mono and Opus join a raw 48 kHz stereo
// stream, in both orders.
TEST_F(MultiSender, OtherFormatsJoiningDoNotTouchThePlayedStream) {
  for (const auto& order : {std::vector<Format>{Format::kRaw44Mono, Format::kOpus},
                            std::vector<Format>{Format::kOpus, Format::kRaw44Mono}}) {
    const std::vector<SenderPlan> plan = {{Format::kRaw48Stereo, 440, 0.0, 5.5},
                                          {order[0], 880, 2.5, 5.5 + kOthersStopAfter},
                                          {order[1], 660, 3.0, 5.5 + kOthersStopAfter}};
    const Outcome o = run(plan);
    SCOPED_TRACE(std::string("joining: ") + format_name(order[0]) + ", then " +
                 format_name(order[1]));
    expect_played_through(o, plan);
  }
}

// The played one in another format: raw 44.1 kHz mono, with raw 48 kHz stereo and Opus
// joining.
TEST_F(MultiSender, PlayedMonoStreamKeepsPlayingWhileOthersSend) {
  const std::vector<SenderPlan> plan = {{Format::kRaw44Mono, 440, 0.0, 5.5},
                                        {Format::kOpus, 880, 2.5, 5.5 + kOthersStopAfter},
                                        {Format::kRaw48Stereo, 660, 3.0, 5.5 + kOthersStopAfter}};
  expect_played_through(run(plan), plan);
}

// The played one in Opus, raw streams joining. Opus from udpsink's default sync=true
// arrives later than the default 60 ms allow (issue 11, case 2): latency 150 here.
// (Was disabled: the Opus line went silent after ~2.5 s, with the jitter's
// clock-mismatch fallback involved. Switching to slave timing and back is a content
// jump each way, and every content jump started an output timeline that the audio sink
// placed 1.9 s late; the output now places content jumps itself. The fallback at the
// start of an Opus stream was seen once more, in a full run on the loaded machine, and
// the stream played on. Its cause is not pinned down; one way to get such a stamp,
// syncwavepay stamping with the pipeline clock's own time when its first clock reading
// was interrupted, is fixed.)
TEST_F(MultiSender, PlayedOpusStreamKeepsPlayingWhileOthersSend) {
  const std::vector<SenderPlan> plan = {{Format::kOpus, 440, 0.0, 5.5},
                                        {Format::kRaw48Stereo, 880, 2.5, 5.5 + kOthersStopAfter},
                                        {Format::kRaw44Mono, 660, 3.0, 5.5 + kOthersStopAfter}};
  expect_played_through(run(plan, 150), plan);
}

// Hand-over to a sender in another format, both ways. The jitter buffer hands over
// (the new sender's header, then its audio: element test
// NextSenderTakesOverWhenThePlayedOneStops); the output keeps the format the device was
// opened with and audioconvert/audioresample convert the new stream to it (before,
// the device was reopened in the new format and stayed silent: its new stream's clock
// started at 0 while the audio sink placed by the old one's).
TEST_F(MultiSender, HandOverToAnotherFormat) {
  for (const auto& formats : {std::vector<Format>{Format::kRaw48Stereo, Format::kRaw44Mono},
                              std::vector<Format>{Format::kRaw44Mono, Format::kRaw48Stereo}}) {
    SCOPED_TRACE(std::string(format_name(formats[0])) + " to " + format_name(formats[1]));
    const std::vector<SenderPlan> plan = {{formats[0], 440, 0.0, 5.0}, {formats[1], 880, 2.5, 7.5}};
    const Outcome o = run(plan);
    expect_played_through(o, plan);
    EXPECT_EQ(o.next, 1) << show(o.windows);
    EXPECT_GE(o.handover_ms, 0);
    EXPECT_TIMELY(o.handover_ms < kHandOverLimitMs) << o.handover_ms << " ms" << show(o.windows);
    EXPECT_EQ(sender_changes_, 1u);
    std::printf("hand-over silence (%s to %s): %.0f ms\n", format_name(formats[0]),
                format_name(formats[1]), o.handover_ms);
  }
}

// Hand-over between raw and Opus, both ways (latency 150: the Opus line's packets come
// later than the default 60 ms allow, see PlayedOpusStreamKeepsPlayingWhileOthersSend).
// The decoder is switched in or out at the new sender's caps; the output keeps its
// format and timeline.
TEST_F(MultiSender, HandOverBetweenRawAndOpus) {
  for (const auto& formats : {std::vector<Format>{Format::kRaw48Stereo, Format::kOpus},
                              std::vector<Format>{Format::kOpus, Format::kRaw48Stereo}}) {
    SCOPED_TRACE(std::string(format_name(formats[0])) + " to " + format_name(formats[1]));
    const std::vector<SenderPlan> plan = {{formats[0], 440, 0.0, 5.0}, {formats[1], 880, 2.5, 7.5}};
    const Outcome o = run(plan, 150);
    expect_played_through(o, plan);
    EXPECT_EQ(o.next, 1) << show(o.windows);
    EXPECT_GE(o.handover_ms, 0);
    EXPECT_TIMELY(o.handover_ms < kHandOverLimitMs) << o.handover_ms << " ms" << show(o.windows);
    EXPECT_EQ(sender_changes_, 1u);
    std::printf("hand-over silence (%s to %s): %.0f ms\n", format_name(formats[0]),
                format_name(formats[1]), o.handover_ms);
  }
}
