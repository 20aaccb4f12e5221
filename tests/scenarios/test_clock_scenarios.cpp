// SPDX-License-Identifier: LGPL-2.1-or-later
// Scenarios that need hours of stream time, run on a GstTestClock through GstHarness
// (syncwavejitter ! syncwavedepay): a sender that comes back an hour later, and a
// soak with a 200 ppm clock difference between sender and receiver. Time moves only
// when the test says so; the datagrams are the original sender's (raw float32 10 ms
// packets carrying the self-describing ramp of scenario_util.h).

#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cinttypes>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "scenario_util.h"
#include "wire_format.h"

using namespace syncwave;
using namespace syncwave::scenario;

namespace {

constexpr uint64_t kT0Us = 1700000000000000ull;  // sender timebase at the start

class Chain {
 public:
  explicit Chain(const std::string& jitter_props) {
    const std::string desc =
        "syncwavejitter name=jitter " + jitter_props + " ! syncwavedepay name=depay";
    h_ = gst_harness_new_parse(desc.c_str());
    gst_harness_use_testclock(h_);
    gst_harness_set_src_caps_str(h_, "application/x-syncwave");
  }
  ~Chain() { gst_harness_teardown(h_); }

  void set_time(GstClockTime t) {
    now_ = t;
    gst_harness_set_time(h_, t);
    release_due();
    collect();
  }

  // Lets the jitter's thread finish pushing: collects until nothing new arrives
  // for 50 ms (real time; used once at the end of a test).
  void settle() {
    size_t seen = out_.size();
    for (int quiet = 0; quiet < 5;) {
      g_usleep(10000);
      release_due();
      collect();
      quiet = out_.size() == seen ? quiet + 1 : 0;
      seen = out_.size();
    }
  }
  GstClockTime now() const { return now_; }

  void push(const std::vector<uint8_t>& bytes, GstClockTime arrival) {
    GstBuffer* b = gst_buffer_new_allocate(nullptr, bytes.size(), nullptr);
    gst_buffer_fill(b, 0, bytes.data(), bytes.size());
    GST_BUFFER_DTS(b) = GST_BUFFER_PTS(b) = arrival;
    EXPECT_EQ(gst_harness_push(h_, b), GST_FLOW_OK);
    release_due();
    collect();
  }

  // Releases every clock wait due now. The jitter's thread registers its next wait
  // asynchronously: yield to it a few times rather than sleep.
  void release_due() {
    GstTestClock* tc = gst_harness_get_testclock(h_);
    for (int i = 0; i < 1000; i++) {
      bool pending = false;
      for (int y = 0; y < 8 && !pending; y++) {
        pending = gst_test_clock_peek_id_count(tc) > 0;
        if (!pending) g_thread_yield();
      }
      if (!pending) break;
      GstClockID id = gst_test_clock_process_next_clock_id(tc);
      if (!id) break;
      gst_clock_id_unref(id);
    }
    gst_object_unref(tc);
  }

  void collect() {
    while (GstBuffer* b = gst_harness_try_pull(h_)) {
      OutBuffer o;
      o.pts = GST_BUFFER_PTS(b);
      o.duration = GST_BUFFER_DURATION(b);
      o.discont = GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT);
      o.rate = 48000;
      o.channels = 2;
      GstMapInfo map;
      if (gst_buffer_map(b, &map, GST_MAP_READ)) {
        // Keep only the first and last frame: hours of audio would not fit.
        const size_t floats = map.size / 4;
        if (floats >= 2) {
          o.samples.resize(4);
          std::memcpy(o.samples.data(), map.data, 8);
          std::memcpy(o.samples.data() + 2, map.data + map.size - 8, 8);
          frames_ += floats / 2;
        }
        gst_buffer_unmap(b, &map);
      }
      gst_buffer_unref(b);
      out_.push_back(std::move(o));
    }
    while (GstEvent* e = gst_harness_try_pull_event(h_)) gst_event_unref(e);
  }

  GstStructure* stats(const char* name) {
    GstElement* e = gst_bin_get_by_name(GST_BIN(h_->element), name);
    GstStructure* s = nullptr;
    g_object_get(e, "stats", &s, nullptr);
    gst_object_unref(e);
    return s;
  }

  std::vector<OutBuffer>& out() { return out_; }
  uint64_t frames() const { return frames_; }

 private:
  GstHarness* h_ = nullptr;
  GstClockTime now_ = 0;
  std::vector<OutBuffer> out_;
  uint64_t frames_ = 0;
};

std::vector<uint8_t> header48k() {
  wire::StreamHeader h;
  const auto b = wire::serialize_header(h);
  return std::vector<uint8_t>(b.begin(), b.end());
}

std::vector<uint8_t> ramp_packet(uint64_t first_sample, uint64_t ts_us) {
  std::vector<uint8_t> payload(kPacketFrames * 8);
  for (uint32_t f = 0; f < kPacketFrames; f++) {
    const float l = ramp_value(first_sample + f, 0), r = ramp_value(first_sample + f, 1);
    std::memcpy(&payload[f * 8], &l, 4);
    std::memcpy(&payload[f * 8 + 4], &r, 4);
  }
  return wire::serialize_audio(wire::PacketType::kRaw, ts_us, payload.data(), payload.size());
}

// The ramp index of a (first/last frame kept) buffer's first sample, or -1.
int64_t first_index(const OutBuffer& b) {
  return b.samples.empty() ? -1 : ramp_index(b.samples[0]);
}

std::string dump(GstStructure* s) {
  if (!s) return "(none)";
  gchar* t = gst_structure_to_string(s);
  std::string r = t;
  g_free(t);
  return r;
}

class ClockScenario : public ::testing::Test {
 protected:
  void SetUp() override {
    gst_init(nullptr, nullptr);
    std::string missing;
    if (!has_elements({"syncwavejitter", "syncwavedepay"}, &missing))
      GTEST_SKIP() << "element " << missing << " is not available yet";
  }
};

// Soak: `minutes` of stream time, the receiver's clock running `ppm` faster than
// the sender's, arrival jitter +-2 ms. No loss, nothing late, output contiguous,
// buffer level bounded, memory flat.
void soak(unsigned minutes, double ppm) {
  if (const char* m = g_getenv("SYNCWAVE_SOAK_MINUTES")) minutes = static_cast<unsigned>(atoi(m));
  Chain c("latency=60 mode=slave");
  const uint64_t packets = minutes * 60ull * 100;
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> jitter_us(-2000, 2000);
  const GstClockTime start = 10 * GST_SECOND;
  c.set_time(start);
  for (int i = 0; i < 5; i++) c.push(header48k(), start);
  double level_min = 1e9, level_max = -1e9;
  long rss_warm = 0;
  long heap_warm = 0;
  for (uint64_t k = 0; k < packets; k++) {
    const double ideal_ns = k * 1e7 * (1.0 + ppm * 1e-6);
    const GstClockTime arrival =
        start + static_cast<GstClockTime>(ideal_ns) + 3 * GST_MSECOND + jitter_us(rng) * 1000;
    if (arrival > c.now()) c.set_time(arrival);
    if (k > 0 && k % 1000 == 0) c.push(header48k(), c.now());
    c.push(ramp_packet(k * kPacketFrames, kT0Us + k * kPacketUs), c.now());
    if (k % 1000 == 0 && k >= 1000) {  // every 10 s after the first
      GstStructure* s = c.stats("jitter");
      double level = 0;
      gst_structure_get_double(s, "level-ms", &level);
      gst_structure_free(s);
      level_min = std::min(level_min, level);
      level_max = std::max(level_max, level);
      // Output is consumed as it comes: keep the history small.
      if (c.out().size() > 2) c.out().erase(c.out().begin(), c.out().end() - 1);
      if (k == 1000) {
        rss_warm = rss_kib();
        heap_warm = heap_in_use_kib();
      }
    }
  }
  c.set_time(c.now() + 100 * GST_MSECOND);
  c.settle();
  const long rss_end = rss_kib();
  const long heap_end = heap_in_use_kib();
  GstStructure* js = c.stats("jitter");
  SCOPED_TRACE("jitter " + dump(js));
  EXPECT_EQ(stat_u64(js, "lost"), 0u);
  EXPECT_EQ(stat_u64(js, "late"), 0u);
  EXPECT_EQ(stat_u64(js, "resets"), 0u);
  EXPECT_EQ(stat_u64(js, "pushed"), packets);
  double drift = 0;
  if (gst_structure_get_double(js, "drift-ppm", &drift)) EXPECT_NEAR(drift, ppm, 20.0);
  gst_structure_free(js);
  EXPECT_EQ(c.frames(), packets * kPacketFrames);
  // Bounded: the level wanders by less than the +-2 ms jitter plus a few ms, never
  // by the 200 ppm drift (12 ms per minute).
  EXPECT_LT(level_max - level_min, 10.0) << level_min << " .. " << level_max;
  EXPECT_GT(level_min, 0.0);
  // Memory flat: heap in use at the end within 1 MiB of what it was after the first
  // 10 s (RSS is printed too, but the allocator may keep memory after a burst).
  EXPECT_LT(heap_end - heap_warm, 1024) << heap_warm << " -> " << heap_end << " KiB";
  std::printf(
      "soak %u min at %+.0f ppm: level %.2f .. %.2f ms, heap in use %ld -> %ld KiB, "
      "RSS %ld -> %ld KiB\n",
      minutes, ppm, level_min, level_max, heap_warm, heap_end, rss_warm, rss_end);
}

}  // namespace

// The sender stops and comes back an hour of stream time later: the receiver picks
// the stream up again without being restarted, on the shared timeline.
TEST_F(ClockScenario, SenderBackAfterAnHour) {
  Chain c("latency=60");  // synced: the test clock reads the sender's timebase
  GstClockTime t = kT0Us * 1000;
  c.set_time(t);
  for (int i = 0; i < 5; i++) c.push(header48k(), t);
  auto run = [&](uint64_t first_packet, uint64_t count, uint64_t ts0_us) {
    for (uint64_t k = 0; k < count; k++) {
      const uint64_t ts = ts0_us + k * kPacketUs;
      c.set_time(ts * 1000 + 2 * GST_MSECOND);  // arrives 2 ms after capture
      c.push(ramp_packet((first_packet + k) * kPacketFrames, ts), c.now());
    }
  };
  run(0, 100, kT0Us);
  c.set_time(c.now() + 100 * GST_MSECOND);
  const size_t before = c.out().size();
  // An hour later (stream time), the same stream goes on.
  const uint64_t later_us = kT0Us + 3600ull * 1000000;
  c.set_time(later_us * 1000 - GST_SECOND);
  for (int i = 0; i < 5; i++) c.push(header48k(), c.now());
  run(100, 100, later_us);
  c.set_time(c.now() + 100 * GST_MSECOND);
  c.settle();

  GstStructure* js = c.stats("jitter");
  SCOPED_TRACE("jitter " + dump(js));
  EXPECT_EQ(stat_u64(js, "pushed"), 200u);
  EXPECT_EQ(stat_u64(js, "late"), 0u);
  gst_structure_free(js);
  // After the hour, the ramp continues from packet 100, on the sender's timeline
  // (PTS = capture time - base time, base time 0 here).
  bool found = false;
  for (size_t i = before; i < c.out().size(); i++) {
    const OutBuffer& b = c.out()[i];
    if (first_index(b) == static_cast<int64_t>((100 * kPacketFrames) % 48000) &&
        b.pts == later_us * 1000) {
      found = true;
    }
  }
  EXPECT_TRUE(found) << "the stream did not resume on its own timeline";
  // And every packet after the hour came out.
  uint64_t intact_after = 0;
  for (size_t i = before; i < c.out().size(); i++) {
    if (first_index(c.out()[i]) >= 0 && c.out()[i].pts >= later_us * 1000) intact_after++;
  }
  EXPECT_GE(intact_after, 100u);
}

// Ten minutes of stream time with a 200 ppm clock difference (suite 'scenarios').
TEST_F(ClockScenario, SoakTenMinutes200ppm) {
  soak(10, 200.0);
}

// The same, one hour and -200 ppm (suite 'long', not run by CI).
TEST_F(ClockScenario, LongSoakOneHourMinus200ppm) {
  soak(60, -200.0);
}
