// TimestampAligner: continuous timeline under jittery sender timestamps, gaps,
// steps back, input DISCONT and missing input PTS. Time is plain numbers.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>

#include "timestamp_aligner.h"

using syncwave::TimestampAligner;

namespace {

constexpr uint64_t kMs = 1000000;
constexpr uint64_t kBase = 1700000000000000000ull;  // a sender time in 2023, ns

}  // namespace

TEST(TimestampAligner, FirstPacketAnchorsOnInputPts) {
  TimestampAligner a;
  a.set_rate(48000);
  auto o = a.push(kBase, 480, 5 * kMs, false);
  EXPECT_TRUE(o.discont);
  EXPECT_TRUE(o.reanchored);
  EXPECT_EQ(o.pts_ns, static_cast<int64_t>(5 * kMs));
  EXPECT_EQ(o.duration_ns, 10 * kMs);
}

TEST(TimestampAligner, JitteryTimestampsStayContiguous) {
  TimestampAligner a;
  a.set_rate(44100);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> jitter_us(-8000, 8000);
  const uint64_t frames = 441;  // 10 ms
  int64_t expected_pts = 0;
  uint64_t total = 0;
  for (int i = 0; i < 2000; i++) {
    const uint64_t true_ns = kBase + total * 1000000000ull / 44100;
    const uint64_t stamped = true_ns + static_cast<int64_t>(jitter_us(rng)) * 1000;
    // The input PTS (arrival) jitters too; only the first one matters.
    auto o = a.push(stamped, frames, static_cast<int64_t>(i * 10 * kMs + 3 * kMs), false);
    if (i == 0) {
      expected_pts = o.pts_ns;
    } else {
      EXPECT_FALSE(o.discont) << "packet " << i;
    }
    EXPECT_EQ(o.pts_ns, expected_pts) << "packet " << i;
    expected_pts += static_cast<int64_t>(o.duration_ns);
    total += frames;
  }
  // Sample-exact: the end equals the sample count at the rate.
  EXPECT_EQ(static_cast<uint64_t>(expected_pts), 3 * kMs + total * 1000000000ull / 44100);
}

TEST(TimestampAligner, RealGapIsDiscontAndKeepsOffset) {
  TimestampAligner a;
  a.set_rate(48000);
  a.push(kBase, 480, 0, false);
  a.push(kBase + 10 * kMs, 480, 10 * kMs, false);
  // 100 ms later than expected: a gap.
  auto o = a.push(kBase + 120 * kMs, 480, 121 * kMs, false);
  EXPECT_TRUE(o.discont);
  EXPECT_FALSE(o.reanchored);
  EXPECT_EQ(o.pts_ns, static_cast<int64_t>(120 * kMs));
  auto n = a.push(kBase + 130 * kMs + 2 * kMs, 480, 135 * kMs, false);
  EXPECT_FALSE(n.discont);
  EXPECT_EQ(n.pts_ns, static_cast<int64_t>(130 * kMs));
}

TEST(TimestampAligner, JitterJustBelowThresholdIsAbsorbed) {
  TimestampAligner a(40 * kMs);
  a.set_rate(48000);
  a.push(kBase, 480, 0, false);
  auto o = a.push(kBase + 10 * kMs + 39 * kMs, 480, -1, false);
  EXPECT_FALSE(o.discont);
  EXPECT_EQ(o.pts_ns, static_cast<int64_t>(10 * kMs));
  auto p = a.push(kBase + 20 * kMs + 40 * kMs, 480, -1, false);
  EXPECT_TRUE(p.discont);
}

TEST(TimestampAligner, InputPtsFarOffReanchors) {
  TimestampAligner a;
  a.set_rate(48000);
  a.push(kBase, 480, 0, false);
  // The sender restarted on another timebase: its timestamps jump back by an hour
  // while the input PTS continues.
  auto o = a.push(kBase - 3600000 * kMs, 480, 10 * kMs, false);
  EXPECT_TRUE(o.discont);
  EXPECT_TRUE(o.reanchored);
  EXPECT_EQ(o.pts_ns, static_cast<int64_t>(10 * kMs));
}

TEST(TimestampAligner, InputDiscontReanchors) {
  TimestampAligner a;
  a.set_rate(48000);
  a.push(kBase, 480, 0, false);
  auto o = a.push(kBase + 10 * kMs, 480, 50 * kMs, true);
  EXPECT_TRUE(o.discont);
  EXPECT_EQ(o.pts_ns, static_cast<int64_t>(50 * kMs));
}

TEST(TimestampAligner, WithoutInputPtsStartsAtZeroAndNeverGoesBack) {
  TimestampAligner a;
  a.set_rate(48000);
  auto o = a.push(kBase, 480, -1, false);
  EXPECT_EQ(o.pts_ns, 0);
  a.push(kBase + 10 * kMs, 480, -1, false);
  // Step back by a second: the output continues at 20 ms.
  auto b = a.push(kBase - 1000 * kMs, 480, -1, false);
  EXPECT_TRUE(b.discont);
  EXPECT_EQ(b.pts_ns, static_cast<int64_t>(20 * kMs));
}

TEST(TimestampAligner, ResetAndRateChangeReanchor) {
  TimestampAligner a;
  a.set_rate(48000);
  a.push(kBase, 480, 0, false);
  a.set_rate(44100);
  EXPECT_FALSE(a.anchored());
  auto o = a.push(kBase + 10 * kMs, 441, 70 * kMs, false);
  EXPECT_TRUE(o.discont);
  EXPECT_EQ(o.pts_ns, static_cast<int64_t>(70 * kMs));
  EXPECT_EQ(o.duration_ns, 10 * kMs);
  a.reset();
  EXPECT_TRUE(a.push(kBase + 20 * kMs, 441, 80 * kMs, false).discont);
}

TEST(TimestampAligner, OddRateDurationsSumExactly) {
  TimestampAligner a;
  a.set_rate(44100);
  uint64_t sum = 0;
  for (int i = 0; i < 100; i++) sum += a.push(kBase + i * 7 * kMs, 313, 0, false).duration_ns;
  EXPECT_EQ(sum, 31300ull * 1000000000ull / 44100);
}

// A sender stall: the backlog arrives stamped late, deviations fade within 200 ms;
// with a 1 s discont wait the timeline never breaks.
TEST(TimestampAligner, StallBurstIsWaitedOut) {
  TimestampAligner a;
  a.set_rate(48000);
  a.set_discont_wait(1000 * kMs);
  int64_t next = a.push(kBase, 480, 0, false).pts_ns + static_cast<int64_t>(10 * kMs);
  for (int i = 1; i < 100; i++) {
    uint64_t stamp = kBase + i * 10 * kMs;
    // Packets 10..29 were held by a 200 ms stall and sent back to back.
    if (i >= 10 && i < 30) stamp = kBase + 30 * 10 * kMs;
    auto o = a.push(stamp, 480, -1, false);
    EXPECT_FALSE(o.discont) << i;
    EXPECT_EQ(o.pts_ns, next) << i;
    next += static_cast<int64_t>(o.duration_ns);
  }
}

// A real gap (no loss event) keeps deviating: DISCONT once the wait is over, and the
// timeline lands back on the sender timestamps.
TEST(TimestampAligner, PersistentGapResyncsAfterTheWait) {
  TimestampAligner a;
  a.set_rate(48000);
  a.set_discont_wait(500 * kMs);
  a.push(kBase, 480, 0, false);
  int discont_at = -1;
  for (int i = 1; i < 200; i++) {
    const uint64_t stamp = kBase + (i + 20) * 10 * kMs;  // 200 ms lost after packet 0
    auto o = a.push(stamp, 480, -1, false);
    if (o.discont) {
      EXPECT_EQ(discont_at, -1);
      discont_at = i;
      EXPECT_EQ(o.pts_ns, static_cast<int64_t>(stamp - kBase));
    }
  }
  EXPECT_EQ(discont_at, 51);  // the first deviating packet plus 500 ms
  // A deviation of 1 s or more restarts at once.
  EXPECT_TRUE(a.push(kBase + 5000 * kMs, 480, -1, false).discont);
}
