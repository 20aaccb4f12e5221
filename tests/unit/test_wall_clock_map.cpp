// SPDX-License-Identifier: LGPL-2.1-or-later
// WallClockMap in simulated time. A true timeline t (ns) gives the wall clock
// (epoch-sized) and a pipeline clock that may start late (stands still first), drift by
// some ppm, and step. The element's reading is simulated: clock, wall, clock, with a few
// µs between reads and, sometimes, a preemption. Checked: the mapped time of each
// buffer's capture instant against the true wall time, smoothness, re-anchoring.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "wall_clock_map.h"

namespace syncwave {
namespace {

constexpr int64_t kUs = 1'000;
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;
constexpr int64_t kWall0 = 1'795'590'000'000'000'000;  // epoch ns

struct Sim {
  std::mt19937 rng{11};
  double ppm = 0;               // the pipeline clock runs this fast
  int64_t clock0 = 5 * kS;      // its time at t = start
  int64_t start = -10 * kS;     // stands still before this t
  int64_t step_at = INT64_MAX;  // steps by step_ns from this t on
  int64_t step_ns = 0;
  int64_t wall_step_at = INT64_MAX;
  int64_t wall_step_ns = 0;
  double preempt_prob = 0.0;  // chance a read pair is interrupted for 0.5-5 ms
  int64_t clock(int64_t t) const {
    int64_t c = clock0;
    if (t > start) c += (t - start) + (int64_t)std::llround((double)(t - start) * ppm * 1e-6);
    if (t >= step_at) c += step_ns;
    return c;
  }
  int64_t wall(int64_t t) const { return kWall0 + t + (t >= wall_step_at ? wall_step_ns : 0); }
  // One bracketed reading starting at t.
  void read(WallClockMap& m, int64_t t) {
    std::uniform_int_distribution<int64_t> gap(200, 3 * kUs);
    std::uniform_real_distribution<double> u(0, 1);
    std::uniform_int_distribution<int64_t> preempt(500 * kUs, 5 * kMs);
    int64_t t1 = t + gap(rng);
    if (u(rng) < preempt_prob) t1 += preempt(rng);
    int64_t t2 = t1 + gap(rng);
    if (u(rng) < preempt_prob) t2 += preempt(rng);
    m.add(clock(t), wall(t1), clock(t2));
  }
};

// Runs buffers of `period` from t0 to t1: a reading when each arrives, then the mapped
// stamp of its capture instant (one period earlier). Returns the largest |error| after
// `settle`, and the largest deviation of stamp differences from the true ones.
struct Result {
  int64_t max_err = 0;
  int64_t max_jerk = 0;
};
Result run(Sim& s, WallClockMap& m, int64_t t0, int64_t t1, int64_t settle,
           int64_t period = 10 * kMs) {
  Result r;
  bool have_prev = false;
  int64_t prev_stamp = 0, prev_true = 0;
  for (int64_t t = t0; t < t1; t += period) {
    s.read(m, t);
    const int64_t capture = t - period;
    const int64_t stamp = m.to_wall(s.clock(capture));
    const int64_t truth = s.wall(capture);
    if (t >= settle) {
      r.max_err = std::max<int64_t>(r.max_err, std::llabs(stamp - truth));
      if (have_prev)
        r.max_jerk =
            std::max<int64_t>(r.max_jerk, std::llabs((stamp - prev_stamp) - (truth - prev_true)));
      have_prev = true;
    }
    prev_stamp = stamp;
    prev_true = truth;
  }
  return r;
}

TEST(WallClockMap, IdentityBeforeTheFirstReading) {
  WallClockMap m;
  EXPECT_FALSE(m.valid());
  EXPECT_EQ(m.to_wall(123), 123);
}

TEST(WallClockMap, ConstantOffsetIsExactFromTheFirstReading) {
  Sim s;
  WallClockMap m;
  Result r = run(s, m, 1 * kS, 11 * kS, 0);
  EXPECT_LE(r.max_err, 3 * kUs);
  EXPECT_LE(r.max_jerk, 1 * kUs);
  EXPECT_EQ(m.stats().reanchors, 0u);
}

TEST(WallClockMap, FollowsDriftSmoothly) {
  for (double ppm : {100.0, -100.0, 300.0, -300.0}) {
    SCOPED_TRACE(ppm);
    Sim s;
    s.ppm = ppm;
    s.preempt_prob = 0.01;
    WallClockMap m;
    // Two minutes: the window slides many times; error stays at the read noise.
    Result r = run(s, m, 0, 120 * kS, 1 * kS);
    EXPECT_LE(r.max_err, 20 * kUs);
    EXPECT_LE(r.max_jerk, 5 * kUs);
    EXPECT_NEAR(m.mapping().slope, -ppm * 1e-6 / (1 + ppm * 1e-6), 5e-6);
    EXPECT_EQ(m.stats().reanchors, 0u);
    EXPECT_GT(m.stats().slow_reads, 0u);
  }
}

// An audio clock stands still until its device runs (pulsesrc's, ~1 s after PLAYING),
// then runs at the card's rate. Readings taken while it stands still must not bias what
// follows: the map re-anchors after step_confirm readings.
TEST(WallClockMap, ClockThatStartsLate) {
  Sim s;
  s.start = 1 * kS;
  s.ppm = 250;
  WallClockMap m;
  run(s, m, 0, 1 * kS, 0);  // readings while it stands still
  Result r = run(s, m, 1 * kS, 30 * kS, 1 * kS + 50 * kMs);
  // The first 200 ms after the start are fitted as an offset only (250 ppm: 25 µs).
  EXPECT_LE(r.max_err, 30 * kUs);
  EXPECT_GE(m.stats().reanchors, 1u);
}

// A net client clock that resynchronises steps; so does a wall clock set by NTP.
TEST(WallClockMap, ReanchorsOnAStepOfEitherClock) {
  {
    Sim s;
    s.step_at = 5 * kS;
    s.step_ns = 40 * kMs;
    WallClockMap m;
    Result before = run(s, m, 0, 5 * kS, 0);
    EXPECT_LE(before.max_err, 5 * kUs);
    // The first step_confirm readings after the step still use the old line.
    Result after = run(s, m, 5 * kS, 15 * kS, 5 * kS + 50 * kMs);
    EXPECT_LE(after.max_err, 5 * kUs);
    EXPECT_EQ(m.stats().reanchors, 1u);
  }
  {
    Sim s;
    s.wall_step_at = 5 * kS;
    s.wall_step_ns = -2 * kS;
    WallClockMap m;
    run(s, m, 0, 5 * kS, 0);
    Result after = run(s, m, 5 * kS, 15 * kS, 5 * kS + 50 * kMs);
    EXPECT_LE(after.max_err, 5 * kUs);
    EXPECT_EQ(m.stats().reanchors, 1u);
  }
}

// One reading off the line (a narrow bracket, yet 10 ms off) is not a discontinuity.
TEST(WallClockMap, IgnoresALoneOutlier) {
  Sim s;
  WallClockMap m;
  run(s, m, 0, 2 * kS, 0);
  const int64_t t = 2 * kS;
  m.add(s.clock(t), s.wall(t) + 10 * kMs, s.clock(t) + 1 * kUs);
  Result r = run(s, m, 2 * kS + 10 * kMs, 4 * kS, 0);
  EXPECT_LE(r.max_err, 5 * kUs);
  EXPECT_EQ(m.stats().outliers, 1u);
  EXPECT_EQ(m.stats().reanchors, 0u);
}

// A fifth of the readings interrupted between their reads (wide bracket): not used.
TEST(WallClockMap, BusyMachine) {
  Sim s;
  s.ppm = -150;
  s.preempt_prob = 0.2;
  WallClockMap m;
  Result r = run(s, m, 0, 60 * kS, 1 * kS);
  EXPECT_LE(r.max_err, 20 * kUs);
  EXPECT_LE(r.max_jerk, 5 * kUs);
  EXPECT_GT(m.stats().slow_reads, 1000u);
}

// Issue 18: on a busy machine the very first reading can be interrupted. The stamps
// before the first usable reading are then still wall times (off by at most half the
// bracket), not the pipeline clock's own time, which a receiver takes for a clock that
// does not follow the sender (more than 10 s away: slave timing, a restart).
TEST(WallClockMap, InterruptedFirstReadingStillGivesWallTime) {
  WallClockMap m;
  const int64_t offset = 1'700'000'000 * kS;  // wall - monotonic
  const int64_t t = 5 * kS;
  m.add(t, t + 4 * kMs + offset, t + 8 * kMs);  // 8 ms between the two clock reads
  EXPECT_FALSE(m.valid());
  EXPECT_EQ(m.stats().slow_reads, 1u);
  EXPECT_LE(std::llabs(m.to_wall(t) - (t + offset)), 4 * kMs);
  // The first usable reading takes over exactly.
  m.add(t + 10 * kMs, t + 10 * kMs + offset, t + 10 * kMs + 20 * kUs);
  EXPECT_TRUE(m.valid());
  EXPECT_LE(std::llabs(m.to_wall(t + 10 * kMs) - (t + 10 * kMs + offset)), 20 * kUs);
  m.reset();
  EXPECT_EQ(m.to_wall(123), 123);
}

TEST(WallClockMap, ResetForgets) {
  Sim s;
  WallClockMap m;
  run(s, m, 0, 1 * kS, 0);
  EXPECT_TRUE(m.valid());
  m.reset();
  EXPECT_FALSE(m.valid());
  s.clock0 = 100 * kS;
  Result r = run(s, m, 1 * kS, 2 * kS, 0);
  EXPECT_LE(r.max_err, 5 * kUs);
  EXPECT_EQ(m.stats().reanchors, 0u);
}

}  // namespace
}  // namespace syncwave

namespace syncwave {
namespace {

constexpr int64_t kMs2 = 1'000'000;

// Buffers of 10 ms arriving 2 ms after their end; stamps `off` from the truth.
struct LiveFeed {
  int64_t t = 1'795'590'000'000'000'000;
  int64_t stamp_of(int64_t off) const { return t + off; }
  int64_t arrival() const { return t + 12 * kMs2; }
  void next() { t += 10 * kMs2; }
};

TEST(LiveStampCheck, RightStampsPassUntouched) {
  LiveStampCheck c;
  LiveFeed f;
  for (int i = 0; i < 100; i++, f.next())
    EXPECT_EQ(c.check(f.stamp_of(0), 10 * kMs2, f.arrival()), f.stamp_of(0));
  // A synthetic live source pushes at the first sample's time: age -duration.
  for (int i = 0; i < 10; i++, f.next())
    EXPECT_EQ(c.check(f.stamp_of(0), 10 * kMs2, f.t), f.stamp_of(0));
  EXPECT_EQ(c.corrections(), 0u);
}

// pulsesrc as the pipeline clock: the first buffers' stamps are half a second behind.
TEST(LiveStampCheck, StampsFarBehindAreMovedToTheirArrival) {
  LiveStampCheck c;
  c.set_latency(10 * kMs2);
  LiveFeed f;
  // The first buffer is judged alone.
  EXPECT_EQ(c.check(f.stamp_of(-575 * kMs2), 10 * kMs2, f.arrival()), f.t + 2 * kMs2);
  f.next();
  for (int i = 0; i < 50; i++, f.next())
    EXPECT_EQ(c.check(f.stamp_of(-575 * kMs2), 10 * kMs2, f.arrival()), f.t + 2 * kMs2);
  EXPECT_EQ(c.corrections(), 1u);
  // The clock recovers and the mapping re-anchors: the correction goes at once.
  EXPECT_EQ(c.check(f.stamp_of(0), 10 * kMs2, f.arrival(), true), f.stamp_of(0));
  EXPECT_EQ(c.correction_ns(), 0);
}

// One buffer delayed by 300 ms (a stalled thread) does not move the stamps; a lasting
// offset does, by the smallest age seen.
TEST(LiveStampCheck, ALateBufferIsNotADiscontinuity) {
  LiveStampCheck c;
  LiveFeed f;
  for (int i = 0; i < 10; i++, f.next()) c.check(f.stamp_of(0), 10 * kMs2, f.arrival());
  EXPECT_EQ(c.check(f.stamp_of(0), 10 * kMs2, f.arrival() + 300 * kMs2), f.stamp_of(0));
  f.next();
  for (int i = 0; i < 10; i++, f.next())
    EXPECT_EQ(c.check(f.stamp_of(0), 10 * kMs2, f.arrival()), f.stamp_of(0));
  EXPECT_EQ(c.corrections(), 0u);
  // Stamps suddenly 1 s in the future, for good.
  int64_t last = 0;
  for (int i = 0; i < 10; i++, f.next())
    last = c.check(f.stamp_of(1000 * kMs2), 10 * kMs2, f.arrival() + (i % 3) * kMs2);
  EXPECT_EQ(c.corrections(), 1u);
  EXPECT_NEAR((double)(last - (f.t - 10 * kMs2)), 2.0 * kMs2, 2.0 * kMs2);
}

// A thread stalled for 400 ms, then the backlog arrives in a burst: ages fall from 400
// ms to 2 ms over 40 buffers. Not a discontinuity: no stamp moves.
TEST(LiveStampCheck, ABacklogAfterAStallIsNotADiscontinuity) {
  LiveStampCheck c;
  LiveFeed f;
  for (int i = 0; i < 10; i++, f.next()) c.check(f.stamp_of(0), 10 * kMs2, f.arrival());
  const int64_t burst_at = f.arrival() + 400 * kMs2;
  for (int i = 0; i < 40; i++, f.next()) {
    const int64_t arrival = std::max(burst_at + i * 100'000, f.arrival());
    EXPECT_EQ(c.check(f.stamp_of(0), 10 * kMs2, arrival), f.stamp_of(0)) << i;
  }
  EXPECT_EQ(c.corrections(), 0u);
}

}  // namespace
}  // namespace syncwave
