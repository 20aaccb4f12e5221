// SPDX-License-Identifier: LGPL-2.1-or-later
// TimestampAligner: continuous timeline under jittery sender timestamps, gaps,
// steps back, input DISCONT and missing input PTS. Time is plain numbers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "timestamp_aligner.h"

using syncwave::TimestampAligner;

namespace {

constexpr uint64_t kMs = 1000000;
constexpr uint64_t kBase = 1700000000000000000ull;  // a sender time in 2023, ns
// Input PTS = stamp - kPtsBase (a base time 1 s before the stream, so that early
// jittered stamps stay positive).
constexpr uint64_t kPtsBase = kBase - 1000 * kMs;

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

TEST(TimestampAligner, OddRateDurationsTile) {
  TimestampAligner a;
  a.set_rate(44100);
  int64_t next = 0;
  uint64_t frames = 0;
  for (int i = 0; i < 100; i++) {
    // Perfect stamps, rounded to the wire's microseconds.
    const uint64_t stamp_us = (frames * 1000000ull + 22050) / 44100;
    auto o = a.push(kBase + stamp_us * 1000, 313, 0, false);
    if (i > 0) {
      EXPECT_LE(std::llabs(o.pts_ns - next), 1000) << i;
    }
    next = o.pts_ns + static_cast<int64_t>(o.duration_ns);
    frames += 313;
  }
  EXPECT_LE(std::llabs(next - static_cast<int64_t>(31300ull * 1000000000ull / 44100)), 1000);
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

// ---- Receivers that agree whatever the stamps -------------------------------------

namespace {

// A sender of `frames`-frame packets at 48 kHz whose stamps are the true capture time
// of the first sample, times (1 + drift), plus a jitter drawn from [lo_us, hi_us].
struct JitteredStream {
  uint64_t frames = 240;  // 5 ms
  double drift_ppm = 0.0;
  int lo_us = 0, hi_us = 4000;
  uint32_t seed = 1;
  std::vector<uint64_t> stamps_ns;  // as on the wire: whole microseconds

  void make(size_t packets) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> jitter(lo_us, hi_us);
    stamps_ns.resize(packets);
    for (size_t k = 0; k < packets; k++) {
      const double true_us = (double)(k * frames) * 1e6 / 48000.0 * (1.0 + drift_ppm * 1e-6);
      stamps_ns[k] = kBase + (uint64_t)(std::llround(true_us) + jitter(rng)) * 1000;
    }
  }
  uint64_t true_ns(size_t k) const {
    return kBase +
           (uint64_t)std::llround((double)(k * frames) * 1e9 / 48000.0 * (1.0 + drift_ppm * 1e-6));
  }
};

// Output PTS of every packet from `first` on, for a receiver whose input PTS is the
// stamp minus one base time (syncwavejitter's synced mode).
std::vector<int64_t> receive(const JitteredStream& s, size_t first) {
  TimestampAligner a;
  a.set_rate(48000);
  a.set_discont_wait(1000 * kMs);
  std::vector<int64_t> pts(s.stamps_ns.size(), 0);
  for (size_t k = first; k < s.stamps_ns.size(); k++) {
    auto o = a.push(s.stamps_ns[k], s.frames, (int64_t)(s.stamps_ns[k] - kPtsBase), false);
    EXPECT_TRUE(k == first || !o.discont) << "packet " << k;
    pts[k] = o.pts_ns;
  }
  EXPECT_EQ(a.slips(), 0u) << "jitter taken for a slip";
  return pts;
}

struct Stats {
  double median_us = 0, p95_us = 0, max_us = 0;
};

Stats diff_stats(const std::vector<int64_t>& a, const std::vector<int64_t>& b, size_t from) {
  std::vector<double> d;
  for (size_t k = from; k < a.size(); k++) d.push_back(std::fabs((double)(a[k] - b[k])) / 1000.0);
  std::sort(d.begin(), d.end());
  Stats s;
  s.median_us = d[d.size() / 2];
  s.p95_us = d[d.size() * 95 / 100];
  s.max_us = d.back();
  return s;
}

constexpr double kSampleUs = 1e6 / 48000.0;

}  // namespace

// Two receivers of a callback-jittered sender (0-4 ms late), the second joining 1.5 s
// after the first: from 2 s after it joined, the targets (median <= 1 sample, p95 <=
// 4, max <= 0.25 ms); once the joiner's window is full (10 s), every sample within
// one sample.
TEST(TimestampAligner, ReceiversJoiningLateAgree) {
  for (uint32_t seed = 1; seed <= 5; seed++) {
    JitteredStream s;
    s.seed = seed;
    s.make(200 * 16);  // 16 s
    const size_t join = 300, settle = 400, converged = 2000;
    auto a = receive(s, 0);
    auto b = receive(s, join);
    const Stats st = diff_stats(a, b, join + settle);
    EXPECT_LE(st.median_us, kSampleUs) << "seed " << seed;
    EXPECT_LE(st.p95_us, 4 * kSampleUs) << "seed " << seed;
    EXPECT_LE(st.max_us, 250.0) << "seed " << seed;
    EXPECT_LE(diff_stats(a, b, join + converged).max_us, kSampleUs) << "seed " << seed;
    // Both place the stream on its capture times (the stamps' lower edge), not on
    // the late stamps' average.
    EXPECT_LE(std::llabs(b.back() - (int64_t)(s.true_ns(b.size() - 1) - kPtsBase)), 50000);
    std::printf("seed %u: from 2 s median %.1f us, p95 %.1f us, max %.1f us\n", seed, st.median_us,
                st.p95_us, st.max_us);
  }
}

// Stamps that jitter both ways (+-5 ms around the capture time) and three receivers
// joining at different times.
TEST(TimestampAligner, SymmetricJitterThreeReceiversAgree) {
  JitteredStream s;
  s.lo_us = -5000;
  s.hi_us = 5000;
  s.frames = 480;  // 10 ms
  s.make(100 * 40);
  auto a = receive(s, 0);
  auto b = receive(s, 170);
  auto c = receive(s, 1234);
  const Stats ab = diff_stats(a, b, 170 + 200);
  const Stats ac = diff_stats(a, c, 1234 + 200);
  EXPECT_LE(ab.p95_us, 4 * kSampleUs);
  EXPECT_LE(ab.max_us, 250.0);
  EXPECT_LE(ac.p95_us, 4 * kSampleUs);
  EXPECT_LE(ac.max_us, 250.0);
  EXPECT_LE(diff_stats(a, c, 1234 + 1000).max_us, kSampleUs);  // 10 s: the same window
  std::printf("a-b: median %.1f p95 %.1f max %.1f us; a-c: median %.1f p95 %.1f max %.1f us\n",
              ab.median_us, ab.p95_us, ab.max_us, ac.median_us, ac.p95_us, ac.max_us);
}

// Perfect stamps stay exact, whichever packet a receiver starts from.
TEST(TimestampAligner, PerfectStampsStayExact) {
  for (uint64_t frames : {240ull, 480ull, 960ull}) {
    JitteredStream s;
    s.frames = frames;
    s.lo_us = s.hi_us = 0;
    s.make(3000);
    for (size_t first : {0ul, 7ul, 1001ul}) {
      auto p = receive(s, first);
      for (size_t k = first; k < p.size(); k++)
        ASSERT_EQ(p[k], (int64_t)(s.stamps_ns[k] - kPtsBase)) << frames << " " << first << " " << k;
    }
  }
}

// The sender's sample clock runs +-200 ppm against its stamps: the timeline follows
// (no discontinuity over 3 minutes, where a nominal-rate timeline would be 36 ms
// off), and two receivers still agree.
TEST(TimestampAligner, DriftIsFollowed) {
  for (double ppm : {200.0, -200.0}) {
    JitteredStream s;
    s.drift_ppm = ppm;
    s.frames = 480;     // 10 ms
    s.make(100 * 180);  // 3 minutes
    auto a = receive(s, 0);
    auto b = receive(s, 100 * 100);
    for (size_t k = 1000; k < a.size(); k += 97) {
      const int64_t truth = (int64_t)(s.true_ns(k) - kPtsBase);
      ASSERT_LE(std::llabs(a[k] - truth), 200000) << ppm << " packet " << k;
    }
    const Stats st = diff_stats(a, b, 100 * 100 + 100 * 10);
    EXPECT_LE(st.max_us, 4 * kSampleUs) << ppm;
    TimestampAligner probe;
    probe.set_rate(48000);
    for (size_t k = 0; k < 100 * 60; k++) probe.push(s.stamps_ns[k], s.frames, -1, false);
    EXPECT_NEAR(probe.drift_ppm(), ppm, 20.0);
  }
}

// A real discontinuity (the sender paused 3 s, or restarted) re-anchors every
// receiver at the same packet: from there on they fit the same points.
TEST(TimestampAligner, DiscontinuityReanchorsReceiversAlike) {
  JitteredStream s;
  s.make(200 * 20);
  for (size_t k = 2000; k < s.stamps_ns.size(); k++) s.stamps_ns[k] += 3000 * kMs;
  TimestampAligner a, b;
  for (TimestampAligner* x : {&a, &b}) {
    x->set_rate(48000);
    x->set_discont_wait(1000 * kMs);
  }
  for (size_t k = 0; k < s.stamps_ns.size(); k++) {
    const int64_t in_pts = (int64_t)(s.stamps_ns[k] - kPtsBase);
    auto oa = a.push(s.stamps_ns[k], s.frames, in_pts, false);
    if (k < 1500) continue;
    auto ob = b.push(s.stamps_ns[k], s.frames, in_pts, false);
    if (k == 2000) {
      EXPECT_TRUE(oa.discont);
      EXPECT_TRUE(ob.discont);
    } else if (k > 1500) {
      EXPECT_FALSE(oa.discont) << k;
      EXPECT_FALSE(ob.discont) << k;
    }
    if (k >= 2000) {
      EXPECT_EQ(oa.pts_ns, ob.pts_ns) << k;
    }
  }
}

// Lost packets (loss events, observed = false) advance the count without a point:
// the receiver that lost them still agrees with one that did not.
TEST(TimestampAligner, LossEventsKeepTheCount) {
  JitteredStream s;
  s.make(200 * 10);
  auto a = receive(s, 0);
  TimestampAligner b;
  b.set_rate(48000);
  b.set_discont_wait(1000 * kMs);
  std::vector<int64_t> pb(s.stamps_ns.size(), 0);
  for (size_t k = 100; k < s.stamps_ns.size(); k++) {
    const bool lost = k % 10 == 3;
    auto o = b.push(s.stamps_ns[k], s.frames, (int64_t)(s.stamps_ns[k] - kPtsBase), false, !lost);
    pb[k] = o.pts_ns;
  }
  EXPECT_LE(diff_stats(a, pb, 1000).max_us, kSampleUs);
}

// A slip: one receiver's jitter buffer reported a 3 ms loss for what was only jitter
// and then dropped the packet as late, so its count is 2 ms short against the
// stamps. Its next stamps stand above its line; within about a second it is back on
// the stream's line, with the receiver that saw everything.
TEST(TimestampAligner, SlipIsFollowedWithinASecond) {
  JitteredStream s;
  s.make(200 * 12);
  auto a = receive(s, 0);
  TimestampAligner b;
  b.set_rate(48000);
  b.set_discont_wait(1000 * kMs);
  std::vector<int64_t> pb(s.stamps_ns.size(), 0);
  for (size_t k = 0; k < s.stamps_ns.size(); k++) {
    const int64_t in_pts = (int64_t)(s.stamps_ns[k] - kPtsBase);
    if (k == 1000) b.push(s.stamps_ns[k] - 3 * kMs, 144, in_pts, false, false);  // "loss"
    if (k == 1000) continue;  // ... and the packet dropped as late
    pb[k] = b.push(s.stamps_ns[k], s.frames, in_pts, false).pts_ns;
  }
  EXPECT_EQ(b.slips(), 1u);
  const Stats st = diff_stats(a, pb, 1001 + 300);
  EXPECT_LE(st.p95_us, 4 * kSampleUs);
  EXPECT_LE(st.max_us, 250.0);
  std::printf("after the slip (from 1.5 s): median %.1f p95 %.1f max %.1f us\n", st.median_us,
              st.p95_us, st.max_us);
}

// Hostile stamps with the largest threshold: every value is fitted, nothing
// overflows, durations stay bounded.
TEST(TimestampAligner, HostileStampsWithHugeThreshold) {
  TimestampAligner a(UINT64_MAX / 2);
  a.set_rate(48000);
  std::mt19937_64 rng(9);
  for (int i = 0; i < 3000; i++) {
    const uint64_t stamp = (i % 3 == 0) ? rng() : (i % 3 == 1 ? 0 : UINT64_MAX);
    auto o =
        a.push(stamp, rng() % 5000, (i % 5) ? (int64_t)(rng() >> 2) : -1, i % 97 == 0, i % 7 != 0);
    EXPECT_LE(o.duration_ns, 1ull << 62);
  }
}
