// SPDX-License-Identifier: LGPL-2.1-or-later
// syncwavedecodebin through GstHarness: raw audio passes untouched; Opus is decoded with
// every output on its packet's time (also after a DISCONT, where opusdec itself stamps a
// frame late); in-band FEC is decided from the first packet's TOC and announced through
// notify::fec-hold; a GAP in a FEC stream is rebuilt in its place; the stream switches back
// to raw; input the decoder drops leaves a bounded queue.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "wire_format.h"

namespace {

class GstEnv : public ::testing::Environment {
 public:
  void SetUp() override { gst_init(nullptr, nullptr); }
};
const auto* const kGstEnv = ::testing::AddGlobalTestEnvironment(new GstEnv);

constexpr GstClockTime kFrame = 20 * GST_MSECOND;

bool have(const char* factory) {
  GstElementFactory* f = gst_element_factory_find(factory);
  if (f) gst_object_unref(f);
  return f != nullptr;
}

// 20 ms Opus packets of a 440 Hz tone from opusenc. fec: SILK/hybrid frames with
// in-band FEC (mono, a voice-like bitrate); otherwise CELT (stereo 128 kb/s, music).
std::vector<std::vector<uint8_t>> encode(int packets, bool fec) {
  std::vector<std::vector<uint8_t>> out;
  GstHarness* enc = gst_harness_new("opusenc");
  const int channels = fec ? 1 : 2;
  if (fec)
    g_object_set(enc->element, "inband-fec", TRUE, "packet-loss-percentage", 10, "frame-size",
                 20, "bitrate", 24000, NULL);
  else
    g_object_set(enc->element, "frame-size", 20, "bitrate", 128000, NULL);
  gchar* caps = g_strdup_printf(
      "audio/x-raw, format=S16LE, layout=interleaved, rate=48000, channels=%d", channels);
  gst_harness_set_src_caps_str(enc, caps);
  g_free(caps);
  int n = 0;
  for (int p = 0; p < packets + 2; p++) {
    std::vector<gint16> pcm(960 * channels);
    for (size_t i = 0; i < pcm.size(); i += channels, n++)
      for (int c = 0; c < channels; c++)
        pcm[i + c] = (gint16)(12000 * std::sin(2 * M_PI * 440 * n / 48000.0));
    GstBuffer* b = gst_buffer_new_memdup(pcm.data(), pcm.size() * 2);
    GST_BUFFER_PTS(b) = p * kFrame;
    GST_BUFFER_DURATION(b) = kFrame;
    if (gst_harness_push(enc, b) != GST_FLOW_OK) break;
    while (GstBuffer* o = gst_harness_try_pull(enc)) {
      GstMapInfo m;
      gst_buffer_map(o, &m, GST_MAP_READ);
      out.emplace_back(m.data, m.data + m.size);
      gst_buffer_unmap(o, &m);
      gst_buffer_unref(o);
    }
  }
  gst_harness_teardown(enc);
  return out;
}

GstHarness* new_bin() {
  GstHarness* h = gst_harness_new("syncwavedecodebin");
  gst_harness_set_sink_caps_str(h, "audio/x-raw, format=F32LE, layout=interleaved");
  return h;
}

void set_opus_caps(GstHarness* h, int channels) {
  gchar* caps = g_strdup_printf(
      "audio/x-opus, channel-mapping-family=0, rate=48000, channels=%d", channels);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
}

GstBuffer* packet(const std::vector<uint8_t>& data, GstClockTime pts, bool discont = false) {
  GstBuffer* b = gst_buffer_new_memdup(data.data(), data.size());
  GST_BUFFER_PTS(b) = pts;
  GST_BUFFER_DURATION(b) = kFrame;
  if (discont) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
  return b;
}

std::string decoder_of(GstHarness* h) {
  gchar* d = nullptr;
  g_object_get(h->element, "decoder", &d, NULL);
  std::string s = d ? d : "";
  g_free(d);
  return s;
}

guint64 switches_of(GstHarness* h) {
  guint64 n = 0;
  g_object_get(h->element, "switches", &n, NULL);
  return n;
}

guint fec_hold_of(GstHarness* h) {
  guint ms = 0;
  g_object_get(h->element, "fec-hold", &ms, NULL);
  return ms;
}

double rms_of(GstBuffer* b) {
  std::vector<float> v(gst_buffer_get_size(b) / 4);
  gst_buffer_extract(b, 0, v.data(), v.size() * 4);
  double sum = 0;
  for (float x : v) sum += (double)x * x;
  return v.empty() ? 0 : std::sqrt(sum / v.size());
}

void count_notify(GObject*, GParamSpec*, gpointer user_data) { (*static_cast<int*>(user_data))++; }

TEST(SyncWaveDecodeBin, RawPassesUntouched) {
  GstHarness* h = new_bin();
  gst_harness_set_src_caps_str(
      h, "audio/x-raw, format=F32LE, layout=interleaved, rate=48000, channels=2");
  std::vector<float> samples(480 * 2);
  for (size_t i = 0; i < samples.size(); i++) samples[i] = 0.001f * (float)i - 0.4f;
  for (int i = 0; i < 3; i++) {
    GstBuffer* b = gst_buffer_new_memdup(samples.data(), samples.size() * 4);
    GST_BUFFER_PTS(b) = 1 * GST_SECOND + i * 10 * GST_MSECOND;
    GST_BUFFER_DURATION(b) = 10 * GST_MSECOND;
    ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
  }
  for (int i = 0; i < 3; i++) {
    GstBuffer* b = gst_harness_pull(h);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(GST_BUFFER_PTS(b), 1 * GST_SECOND + i * 10 * GST_MSECOND);
    std::vector<float> got(samples.size());
    ASSERT_EQ(gst_buffer_get_size(b), samples.size() * 4);
    gst_buffer_extract(b, 0, got.data(), got.size() * 4);
    EXPECT_EQ(std::memcmp(got.data(), samples.data(), got.size() * 4), 0);
    gst_buffer_unref(b);
  }
  EXPECT_EQ(decoder_of(h), "none");
  EXPECT_EQ(switches_of(h), 0u);
  EXPECT_EQ(fec_hold_of(h), 0u);
  gst_harness_teardown(h);
}

// CELT (music) packets: decoded one for one, each output on its packet's time, also
// across a DISCONT where the timeline jumps by 100 ms; no FEC hold.
TEST(SyncWaveDecodeBin, OpusOutputKeepsEveryPacketsTime) {
  if (!have("opusenc") || !have("opusdec")) GTEST_SKIP() << "GStreamer opus plugin missing";
  std::vector<std::vector<uint8_t>> opus = encode(12, false);
  ASSERT_GE(opus.size(), 10u);
  ASSERT_FALSE(syncwave::wire::opus_packet_may_carry_fec(opus[1].data(), opus[1].size()));
  GstHarness* h = new_bin();
  int fec_notifies = 0;
  g_signal_connect(h->element, "notify::fec-hold", G_CALLBACK(count_notify), &fec_notifies);
  set_opus_caps(h, 2);
  std::vector<GstClockTime> in;
  GstClockTime t = 5 * GST_SECOND;
  for (size_t i = 1; i < 10; i++) {
    const bool jump = i == 6;
    if (jump) t += 100 * GST_MSECOND;
    in.push_back(t);
    ASSERT_EQ(gst_harness_push(h, packet(opus[i], t, i == 1 || jump)), GST_FLOW_OK);
    t += kFrame;
  }
  std::vector<GstClockTime> out;
  while (GstBuffer* b = gst_harness_try_pull(h)) {
    EXPECT_EQ(gst_buffer_get_size(b), 960u * 2 * 4);
    out.push_back(GST_BUFFER_PTS(b));
    gst_buffer_unref(b);
  }
  EXPECT_EQ(out, in);
  EXPECT_EQ(decoder_of(h), "opus");
  EXPECT_EQ(switches_of(h), 1u);
  EXPECT_EQ(fec_hold_of(h), 0u);
  EXPECT_GE(fec_notifies, 2) << "at the switch and when the first packet decided";
  gst_harness_teardown(h);
}

// SILK/hybrid packets with in-band FEC: the hold (one frame) is announced before the
// first packet reaches the decoder; a lost packet (a GAP event in its place) comes out
// rebuilt, as loud as the tone, and the timeline stays contiguous.
TEST(SyncWaveDecodeBin, FecStreamAnnouncesItsHoldAndRebuildsAGap) {
  if (!have("opusenc") || !have("opusdec")) GTEST_SKIP() << "GStreamer opus plugin missing";
  std::vector<std::vector<uint8_t>> opus = encode(12, true);
  ASSERT_GE(opus.size(), 10u);
  ASSERT_TRUE(syncwave::wire::opus_packet_may_carry_fec(opus[2].data(), opus[2].size()));
  GstHarness* h = new_bin();
  set_opus_caps(h, 1);
  guint hold_seen = 0;
  g_signal_connect(h->element, "notify::fec-hold",
                   G_CALLBACK(+[](GObject* o, GParamSpec*, gpointer p) {
                     g_object_get(o, "fec-hold", static_cast<guint*>(p), NULL);
                   }),
                   &hold_seen);
  constexpr int kLost = 6, kN = 10;
  const GstClockTime t0 = 2 * GST_SECOND;
  for (int i = 2; i < kN; i++) {
    const GstClockTime pts = t0 + i * kFrame;
    if (i == kLost) {
      ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_gap(pts, kFrame)));
      continue;
    }
    ASSERT_EQ(gst_harness_push(h, packet(opus[i], pts, i == 2)), GST_FLOW_OK);
    if (i == 2) EXPECT_EQ(hold_seen, 20u) << "announced before the first output";
  }
  EXPECT_EQ(fec_hold_of(h), 20u);
  std::vector<GstBuffer*> out;
  while (GstBuffer* b = gst_harness_try_pull(h)) out.push_back(b);
  // All but the last packet (held until the next item comes), the lost one included.
  ASSERT_EQ(out.size(), (size_t)(kN - 2 - 1));
  for (size_t k = 0; k < out.size(); k++)
    EXPECT_EQ(GST_BUFFER_PTS(out[k]), t0 + (2 + k) * kFrame) << "output " << k;
  double loud = 0;
  for (size_t k = 1; k < out.size(); k++)
    if ((int)k + 2 != kLost) loud = std::max(loud, rms_of(out[k]));
  EXPECT_GT(rms_of(out[kLost - 2]), 0.5 * loud) << "the lost packet is rebuilt from FEC";
  for (GstBuffer* b : out) gst_buffer_unref(b);
  gst_harness_teardown(h);
}

// Opus, then raw again at another rate and channel count: opusdec is taken out, raw
// passes, and the stream's switches are counted.
TEST(SyncWaveDecodeBin, SwitchesBackToRaw) {
  if (!have("opusenc") || !have("opusdec")) GTEST_SKIP() << "GStreamer opus plugin missing";
  std::vector<std::vector<uint8_t>> opus = encode(6, false);
  ASSERT_GE(opus.size(), 5u);
  GstHarness* h = new_bin();
  set_opus_caps(h, 2);
  for (size_t i = 1; i < 5; i++)
    ASSERT_EQ(gst_harness_push(h, packet(opus[i], i * kFrame)), GST_FLOW_OK);
  int decoded = 0;
  while (GstBuffer* b = gst_harness_try_pull(h)) {
    decoded++;
    gst_buffer_unref(b);
  }
  EXPECT_EQ(decoded, 4);
  gst_harness_set_src_caps_str(
      h, "audio/x-raw, format=F32LE, layout=interleaved, rate=44100, channels=1");
  std::vector<float> half(441, -0.5f);
  GstBuffer* b = gst_buffer_new_memdup(half.data(), half.size() * 4);
  GST_BUFFER_PTS(b) = GST_SECOND;
  ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
  GstBuffer* o = gst_harness_pull(h);
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(GST_BUFFER_PTS(o), GST_SECOND);
  ASSERT_EQ(gst_buffer_get_size(o), half.size() * 4);
  float first = 0;
  gst_buffer_extract(o, 0, &first, 4);
  EXPECT_FLOAT_EQ(first, -0.5f);
  gst_buffer_unref(o);
  EXPECT_EQ(decoder_of(h), "none");
  EXPECT_EQ(switches_of(h), 2u);
  EXPECT_EQ(fec_hold_of(h), 0u);
  gst_harness_teardown(h);
}

// Packets that do not decode (garbage after the TOC byte) never crash the bin, and
// whatever opusdec makes of them, the queue of times waiting for output stays bounded:
// a good packet after 200 bad ones still comes out on its own time.
TEST(SyncWaveDecodeBin, UndecodablePacketsLeaveABoundedQueue) {
  if (!have("opusenc") || !have("opusdec")) GTEST_SKIP() << "GStreamer opus plugin missing";
  std::vector<std::vector<uint8_t>> opus = encode(4, false);
  ASSERT_GE(opus.size(), 3u);
  GstHarness* h = new_bin();
  set_opus_caps(h, 2);
  std::vector<uint8_t> bad = {0xfc, 0xff, 0xff, 0xff, 0x00, 0x01};
  for (int i = 0; i < 200; i++) gst_harness_push(h, packet(bad, i * kFrame));
  while (GstBuffer* b = gst_harness_try_pull(h)) gst_buffer_unref(b);
  // A new segment (as after a seek or a restarted sender) starts the queue again.
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&seg)));
  ASSERT_EQ(gst_harness_push(h, packet(opus[1], 10 * GST_SECOND, true)), GST_FLOW_OK);
  GstBuffer* last = nullptr;
  while (GstBuffer* b = gst_harness_try_pull(h)) {
    if (last) gst_buffer_unref(last);
    last = b;
  }
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(GST_BUFFER_PTS(last), 10 * GST_SECOND);
  gst_buffer_unref(last);
  gst_harness_teardown(h);
}

}  // namespace
