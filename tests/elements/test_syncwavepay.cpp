// syncwavepay through GstHarness: caps in and out, header cadence and repeat, packet
// splitting at the mtu, timestamps from running time, caps change, Opus pass-through,
// stats, and the sender clock served on time-provider-port.
#include <gst/audio/audio.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/net/gstnet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "udp_port.h"
#include "wire_format.h"

namespace wire = syncwave::wire;

namespace {

class GstEnv : public ::testing::Environment {
 public:
  void SetUp() override { gst_init(nullptr, nullptr); }
};
const auto* const kGstEnv = ::testing::AddGlobalTestEnvironment(new GstEnv);

std::string raw_caps(int rate, int channels) {
  return "audio/x-raw,format=F32LE,layout=interleaved,rate=" + std::to_string(rate) +
         ",channels=" + std::to_string(channels);
}

GstBuffer* make_audio(size_t frames, int channels, GstClockTime pts, float start = 0.0f) {
  std::vector<float> v(frames * channels);
  for (size_t i = 0; i < v.size(); i++) v[i] = start + static_cast<float>(i) * 1e-4f;
  GstBuffer* b = gst_buffer_new_memdup(v.data(), v.size() * sizeof(float));
  GST_BUFFER_PTS(b) = pts;
  return b;
}

std::vector<uint8_t> bytes_of(GstBuffer* b) {
  std::vector<uint8_t> v(gst_buffer_get_size(b));
  gst_buffer_extract(b, 0, v.data(), v.size());
  return v;
}

// Pulls every datagram the harness holds.
std::vector<std::vector<uint8_t>> pull_all(GstHarness* h,
                                           std::vector<GstClockTime>* pts = nullptr) {
  std::vector<std::vector<uint8_t>> out;
  GstBuffer* b;
  while ((b = gst_harness_try_pull(h)) != nullptr) {
    out.push_back(bytes_of(b));
    if (pts) pts->push_back(GST_BUFFER_PTS(b));
    gst_buffer_unref(b);
  }
  return out;
}

guint64 stat(GstElement* e, const char* field) {
  GstStructure* s = nullptr;
  g_object_get(e, "stats", &s, NULL);
  guint64 v = 0;
  gst_structure_get_uint64(s, field, &v);
  gst_structure_free(s);
  return v;
}

bool is_header(const std::vector<uint8_t>& d) {
  return wire::parse(d.data(), d.size()).kind == wire::Kind::kHeader;
}

}  // namespace

TEST(SyncWavePay, CapsInAndOut) {
  GstHarness* h = gst_harness_new("syncwavepay");
  gst_harness_set_src_caps_str(h, raw_caps(48000, 2).c_str());
  ASSERT_EQ(gst_harness_push(h, make_audio(480, 2, 0)), GST_FLOW_OK);
  GstCaps* caps = gst_pad_get_current_caps(h->sinkpad);
  ASSERT_NE(caps, nullptr);
  EXPECT_TRUE(gst_structure_has_name(gst_caps_get_structure(caps, 0), "application/x-syncwave"));
  gst_caps_unref(caps);

  // The sink template takes F32LE interleaved up to 64 channels, and Opus family 0.
  GstPad* sink = gst_element_get_static_pad(h->element, "sink");
  GstCaps* tmpl = gst_pad_get_pad_template_caps(sink);
  auto accepts = [&](const char* s) {
    GstCaps* c = gst_caps_from_string(s);
    bool r = gst_caps_can_intersect(tmpl, c);
    gst_caps_unref(c);
    return r;
  };
  EXPECT_TRUE(accepts(raw_caps(384000, 64).c_str()));
  EXPECT_FALSE(accepts(raw_caps(48000, 65).c_str()));
  EXPECT_FALSE(accepts("audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2"));
  EXPECT_TRUE(accepts("audio/x-opus,channel-mapping-family=0,channels=2,rate=48000"));
  EXPECT_FALSE(accepts("audio/x-opus,channel-mapping-family=1,channels=6,rate=48000"));
  gst_caps_unref(tmpl);
  gst_object_unref(sink);
  gst_harness_teardown(h);
}

TEST(SyncWavePay, FiveHeadersThenAudioThenPeriodicHeader) {
  GstHarness* h = gst_harness_new("syncwavepay");
  g_object_set(h->element, "header-interval", 10u, NULL);
  gst_harness_set_src_caps_str(h, raw_caps(48000, 2).c_str());
  for (int i = 0; i < 25; i++)
    ASSERT_EQ(gst_harness_push(h, make_audio(100, 2, i * GST_MSECOND * 100 / 48)), GST_FLOW_OK);
  auto d = pull_all(h);
  ASSERT_EQ(d.size(), 5u + 25u + 2u);
  const auto expected = wire::serialize_header({48000, 2, wire::Compression::kRaw});
  for (int i = 0; i < 5; i++)
    EXPECT_EQ(d[i], std::vector<uint8_t>(expected.begin(), expected.end())) << i;
  // Then 10 audio packets, one header, 10 packets, one header, 5 packets.
  std::string pattern;
  for (auto& p : d) pattern += is_header(p) ? 'H' : 'a';
  EXPECT_EQ(pattern, "HHHHH" + std::string(10, 'a') + "H" + std::string(10, 'a') + "H" +
                         std::string(5, 'a'));
  EXPECT_EQ(stat(h->element, "headers"), 7u);
  EXPECT_EQ(stat(h->element, "packets"), 25u);
  EXPECT_EQ(stat(h->element, "bytes"), 7u * 12u + 25u * (11u + 800u));
  gst_harness_teardown(h);
}

TEST(SyncWavePay, HeaderRepeatProperty) {
  GstHarness* h = gst_harness_new("syncwavepay");
  g_object_set(h->element, "header-repeat", 2u, NULL);
  gst_harness_set_src_caps_str(h, raw_caps(44100, 1).c_str());
  gst_harness_push(h, make_audio(10, 1, 0));
  auto d = pull_all(h);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_TRUE(is_header(d[0]));
  EXPECT_TRUE(is_header(d[1]));
  EXPECT_FALSE(is_header(d[2]));
  gst_harness_teardown(h);
}

// Splitting: every datagram <= mtu, whole frames, payloads concatenate to the input,
// timestamps advance by the frames of the packets before.
TEST(SyncWavePay, SplitsAtMtuIntoWholeFrames) {
  const guint mtus[] = {1400, 500, 267, 1500, 9000};
  const int channel_counts[] = {1, 2, 3, 5, 7, 64};
  for (guint mtu : mtus) {
    for (int ch : channel_counts) {
      const size_t frame = 4 * ch;
      if (wire::kAudioHeaderSize + frame > mtu) continue;
      SCOPED_TRACE("mtu " + std::to_string(mtu) + " channels " + std::to_string(ch));
      GstHarness* h = gst_harness_new("syncwavepay");
      g_object_set(h->element, "mtu", mtu, NULL);
      GstClock* clock = GST_CLOCK(
          g_object_new(GST_TYPE_SYSTEM_CLOCK, "clock-type", GST_CLOCK_TYPE_REALTIME, NULL));
      gst_element_set_clock(h->element, clock);
      gst_element_set_base_time(h->element, 1000 * GST_SECOND);
      gst_harness_set_src_caps_str(h, raw_caps(44100, ch).c_str());
      const size_t frames = 1031;  // prime, so the last packet is short
      GstBuffer* in = make_audio(frames, ch, 2 * GST_SECOND);
      const auto input = bytes_of(in);
      ASSERT_EQ(gst_harness_push(h, in), GST_FLOW_OK);
      std::vector<GstClockTime> pts;
      auto d = pull_all(h, &pts);
      std::vector<uint8_t> joined;
      size_t frames_before = 0;
      size_t max_frames = (mtu - wire::kAudioHeaderSize) / frame;
      for (size_t i = 0; i < d.size(); i++) {
        EXPECT_LE(d[i].size(), mtu);
        auto r = wire::parse(d[i].data(), d[i].size());
        if (r.kind == wire::Kind::kHeader) continue;
        ASSERT_EQ(r.kind, wire::Kind::kRawAudio);
        EXPECT_EQ(r.audio.size % frame, 0u);
        const size_t n = r.audio.size / frame;
        EXPECT_TRUE(n == max_frames || frames_before + n == frames);
        // (base + running time + offset) / 1000 with offset 0 (realtime clock).
        const guint64 expect_us = (1000 * GST_SECOND + 2 * GST_SECOND +
                                   gst_util_uint64_scale(frames_before, GST_SECOND, 44100)) /
                                  1000;
        EXPECT_EQ(r.audio.timestamp_us, expect_us);
        EXPECT_EQ(pts[i], 2 * GST_SECOND + gst_util_uint64_scale(frames_before, GST_SECOND, 44100));
        joined.insert(joined.end(), r.audio.data, r.audio.data + r.audio.size);
        frames_before += n;
      }
      EXPECT_EQ(joined, input);
      gst_harness_teardown(h);
      gst_object_unref(clock);
    }
  }
}

TEST(SyncWavePay, TimestampsFollowRunningTimeNotArrival) {
  GstHarness* h = gst_harness_new("syncwavepay");
  gst_harness_use_testclock(h);
  gst_harness_set_src_caps_str(h, raw_caps(48000, 2).c_str());
  // Segment starting at 10 s: running time = pts - 10 s.
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  seg.start = 10 * GST_SECOND;
  seg.time = 10 * GST_SECOND;
  gst_harness_push_event(h, gst_event_new_segment(&seg));
  const gint64 before_us = g_get_real_time();
  gst_harness_push(h, make_audio(160, 2, 10 * GST_SECOND));  // one datagram each
  // The clock moves by 3 s before the next buffer: the timestamp does not care.
  gst_harness_set_time(h, 3 * GST_SECOND);
  gst_harness_push(h, make_audio(160, 2, 10 * GST_SECOND + 10 * GST_MSECOND));
  std::vector<uint64_t> ts;
  for (auto& d : pull_all(h)) {
    auto r = wire::parse(d.data(), d.size());
    if (r.kind == wire::Kind::kRawAudio) ts.push_back(r.audio.timestamp_us);
  }
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[1] - ts[0], 10000u);
  // Near the wall clock (offset sampled against the test clock).
  EXPECT_GE(static_cast<gint64>(ts[0]), before_us - 2000000);
  EXPECT_LE(static_cast<gint64>(ts[0]), g_get_real_time() + 2000000);
  gst_harness_teardown(h);
}

TEST(SyncWavePay, BufferWithoutPtsIsStampedFromTheClock) {
  GstHarness* h = gst_harness_new("syncwavepay");
  GstClock* clock =
      GST_CLOCK(g_object_new(GST_TYPE_SYSTEM_CLOCK, "clock-type", GST_CLOCK_TYPE_REALTIME, NULL));
  gst_element_set_clock(h->element, clock);
  gst_element_set_base_time(h->element, 0);
  gst_harness_set_src_caps_str(h, raw_caps(48000, 1).c_str());
  const guint64 before = g_get_real_time();
  gst_harness_push(h, make_audio(48, 1, GST_CLOCK_TIME_NONE));
  gst_harness_push(h, make_audio(48, 1, GST_CLOCK_TIME_NONE));
  const guint64 after = g_get_real_time();
  int audio = 0;
  for (auto& d : pull_all(h)) {
    auto r = wire::parse(d.data(), d.size());
    if (r.kind != wire::Kind::kRawAudio) continue;
    audio++;
    EXPECT_GE(r.audio.timestamp_us, before);
    EXPECT_LE(r.audio.timestamp_us, after);
  }
  EXPECT_EQ(audio, 2);
  gst_harness_teardown(h);
  gst_object_unref(clock);
}

TEST(SyncWavePay, CapsChangeSendsFiveNewHeaders) {
  GstHarness* h = gst_harness_new("syncwavepay");
  gst_harness_set_src_caps_str(h, raw_caps(48000, 2).c_str());
  gst_harness_push(h, make_audio(100, 2, 0));
  EXPECT_EQ(pull_all(h).size(), 6u);
  // Same caps again: nothing new.
  gst_harness_set_src_caps_str(h, raw_caps(48000, 2).c_str());
  gst_harness_push(h, make_audio(100, 2, GST_MSECOND));
  EXPECT_EQ(pull_all(h).size(), 1u);
  // Another rate and channel count: five headers announcing it.
  gst_harness_set_src_caps_str(h, raw_caps(44100, 1).c_str());
  gst_harness_push(h, make_audio(100, 1, 2 * GST_MSECOND));
  auto d = pull_all(h);
  ASSERT_EQ(d.size(), 6u);
  for (int i = 0; i < 5; i++) {
    auto r = wire::parse(d[i].data(), d[i].size());
    ASSERT_EQ(r.kind, wire::Kind::kHeader);
    EXPECT_EQ(r.header.sample_rate, 44100u);
    EXPECT_EQ(r.header.channels, 1u);
  }
  // And to Opus.
  gst_harness_set_src_caps_str(h, "audio/x-opus,channel-mapping-family=0,channels=2,rate=48000");
  const uint8_t opus[] = {0xfc, 0x01, 0x02, 0x03};  // CELT 20 ms stereo, code 0
  GstBuffer* b = gst_buffer_new_memdup(opus, sizeof opus);
  GST_BUFFER_PTS(b) = 3 * GST_MSECOND;
  gst_harness_push(h, b);
  d = pull_all(h);
  ASSERT_EQ(d.size(), 6u);
  auto r = wire::parse(d[0].data(), d[0].size());
  EXPECT_EQ(r.header.compression, wire::Compression::kOpus);
  EXPECT_EQ(stat(h->element, "headers"), 15u);
  gst_harness_teardown(h);
}

TEST(SyncWavePay, OpusPassThrough) {
  GstHarness* h = gst_harness_new("syncwavepay");
  gst_harness_set_src_caps_str(h, "audio/x-opus,channel-mapping-family=0,channels=1,rate=48000");
  // A code 3 packet: 3 CELT 10 ms frames, CBR.
  std::vector<uint8_t> opus = {0xf3, 0x03, 1, 2, 3, 4, 5, 6};
  GstBuffer* b = gst_buffer_new_memdup(opus.data(), opus.size());
  GST_BUFFER_PTS(b) = 0;
  ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
  std::vector<GstClockTime> pts;
  auto d = pull_all(h, &pts);
  ASSERT_EQ(d.size(), 6u);
  auto hr = wire::parse(d[0].data(), d[0].size());
  EXPECT_EQ(hr.header.channels, 1u);
  EXPECT_EQ(hr.header.compression, wire::Compression::kOpus);
  auto r = wire::parse(d[5].data(), d[5].size());
  ASSERT_EQ(r.kind, wire::Kind::kOpusAudio);
  EXPECT_EQ(std::vector<uint8_t>(r.audio.data, r.audio.data + r.audio.size), opus);

  // Invalid TOC (code 3 with zero frames) and oversized packets are dropped.
  const uint8_t bad[] = {0xf3, 0x00};
  gst_harness_push(h, gst_buffer_new_memdup(bad, sizeof bad));
  std::vector<uint8_t> huge(70000, 0);
  huge[0] = 0xf8;
  gst_harness_push(h, gst_buffer_new_memdup(huge.data(), huge.size()));
  EXPECT_EQ(pull_all(h).size(), 0u);
  EXPECT_EQ(stat(h->element, "dropped"), 2u);
  EXPECT_EQ(stat(h->element, "packets"), 1u);
  gst_harness_teardown(h);
}

// An encoder's first packet decodes to its look-ahead before the audio its timestamp
// is for (opusenc: a clipping meta of 312 samples, duration 3.5 ms of a 10 ms packet).
// The wire has no pre-skip, so the packet is stamped 6.5 ms earlier and the following
// packets continue the timeline without overlap.
TEST(SyncWavePay, OpusPreSkipMovesTheFirstTimestampBack) {
  GstHarness* h = gst_harness_new("syncwavepay");
  gst_harness_set_src_caps_str(h, "audio/x-opus,channel-mapping-family=0,channels=1,rate=48000");
  const std::vector<uint8_t> opus = {0xf0, 1, 2, 3};  // CELT FB 10 ms, one frame
  GstBuffer* b = gst_buffer_new_memdup(opus.data(), opus.size());
  GST_BUFFER_PTS(b) = 100 * GST_MSECOND;
  GST_BUFFER_DURATION(b) = 3500 * GST_USECOND;
  gst_buffer_add_audio_clipping_meta(b, GST_FORMAT_DEFAULT, 312, 0);
  ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
  b = gst_buffer_new_memdup(opus.data(), opus.size());
  GST_BUFFER_PTS(b) = 103500 * GST_USECOND;
  GST_BUFFER_DURATION(b) = 10 * GST_MSECOND;
  ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
  std::vector<uint64_t> ts;
  for (const auto& d : pull_all(h)) {
    auto r = wire::parse(d.data(), d.size());
    if (r.kind == wire::Kind::kOpusAudio) ts.push_back(r.audio.timestamp_us);
  }
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[1] - ts[0], 10000u);  // contiguous: 10 ms packets, no overlap
  gst_harness_teardown(h);
}

// The time provider serves pipeline clock + offset, i.e. wall-clock ns.
TEST(SyncWavePay, TimeProviderServesTheTimestampTimebase) {
  const uint16_t port = syncwave_test::free_udp_port();
  ASSERT_NE(port, 0);
  GstElement* pipeline = gst_parse_launch(
      "audiotestsrc is-live=true samplesperbuffer=480 ! audio/x-raw,format=F32LE,rate=48000,"
      "channels=2 ! syncwavepay name=pay ! fakesink name=sink sync=false",
      nullptr);
  ASSERT_NE(pipeline, nullptr);
  GstElement* pay = gst_bin_get_by_name(GST_BIN(pipeline), "pay");
  g_object_set(pay, "time-provider-port", static_cast<gint>(port), "time-provider-address",
               "127.0.0.1", NULL);
  ASSERT_NE(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_EQ(gst_element_get_state(pipeline, nullptr, nullptr, 5 * GST_SECOND),
            GST_STATE_CHANGE_SUCCESS);
  GstClock* client = gst_net_client_clock_new("client", "127.0.0.1", port, 0);
  ASSERT_TRUE(gst_clock_wait_for_sync(client, 10 * GST_SECOND));
  const gint64 diff = static_cast<gint64>(gst_clock_get_time(client)) - g_get_real_time() * 1000;
  EXPECT_LT(std::llabs(diff), 200 * static_cast<gint64>(GST_MSECOND));
  gst_object_unref(client);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pay);
  gst_object_unref(pipeline);
}
