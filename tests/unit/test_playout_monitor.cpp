// SPDX-License-Identifier: LGPL-2.1-or-later
// PlayoutMonitor: lateness at arrival and at the output, the latency a path needs,
// when the latency moves (fixed and auto), and the health the status line shows.
// Simulated time: packets every 10 ms with chosen transits and output margins.
#include <gtest/gtest.h>

#include <random>

#include "playout_monitor.h"

namespace syncwave {
namespace {

constexpr int64_t kMs = 1'000'000;

struct Sim {
  PlayoutMonitor m;
  int64_t now = 1'000'000 * kMs;
  int64_t latency = 60 * kMs;
  bool auto_latency = false;
  std::vector<int64_t> changes;

  // `ms` of packets, each with this transit; the ones in time reach the output
  // `overhead` after arrival (margin = latency - transit - overhead).
  void run(int ms, int64_t transit, int64_t overhead, int64_t jitter = 0, unsigned seed = 1) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int64_t> j(0, jitter);
    for (int t = 0; t < ms; t += 10) {
      now += 10 * kMs;
      const int64_t tr = transit + (jitter ? j(rng) : 0);
      m.on_arrival(now, tr, latency);
      if (tr <= latency) m.on_output(now + overhead, latency - tr - overhead);
      PlayoutMonitor::Decision d = m.evaluate(now, latency, auto_latency);
      if (d.change) {
        latency = d.latency_ns;
        changes.push_back(latency);
      }
    }
  }
};

TEST(PlayoutMonitor, AFastPathKeepsItsLatency) {
  Sim s;
  s.run(5000, 20 * kMs, 5 * kMs, 4 * kMs);
  EXPECT_TRUE(s.changes.empty());
  EXPECT_EQ(s.latency, 60 * kMs);
  EXPECT_EQ(s.m.health(s.now), PlayoutMonitor::Health::kOnTime);
  EXPECT_EQ(s.m.late_arrivals(), 0u);
}

TEST(PlayoutMonitor, PacketsLaterThanTheLatencyRaiseItOnceToWhatThePathNeeds) {
  // The README's sender into a 60 ms receiver: packets 62 ms after capture.
  Sim s;
  s.run(1500, 62 * kMs, 5 * kMs, 2 * kMs);
  ASSERT_EQ(s.changes.size(), 1u);
  // 64 (p99 transit) + 20 (overhead unknown: nothing reached the output) + 10 guard.
  EXPECT_GE(s.latency, 80 * kMs);
  EXPECT_LE(s.latency, 100 * kMs);
  EXPECT_EQ(s.latency % (10 * kMs), 0);
  const uint64_t late_before = s.m.late_arrivals();
  s.run(5000, 62 * kMs, 5 * kMs, 2 * kMs);
  EXPECT_EQ(s.changes.size(), 1u) << "stays once the path fits";
  EXPECT_EQ(s.m.late_arrivals(), late_before);
  EXPECT_EQ(s.m.health(s.now), PlayoutMonitor::Health::kOnTime);
}

// A receiver that gives up on a packet `give_up` before its playout time (syncwavejitter
// reporting it lost unheard, for opusdec's FEC hold): arriving after that is late, and
// the path needs the give-up time on top of its transit.
TEST(PlayoutMonitor, PacketsLaterThanTheGiveUpTimeAreLateAndRaiseTheLatency) {
  PlayoutMonitor m;
  int64_t now = 1'000'000 * kMs;
  const int64_t latency = 120 * kMs, give_up = 58 * kMs;
  PlayoutMonitor::Decision last;
  bool changed = false;
  for (int i = 0; i < 200 && !changed; i++) {
    now += 10 * kMs;
    m.on_arrival(now, 70 * kMs, latency, give_up);  // within the latency, after the give-up
    last = m.evaluate(now, latency, false);
    changed = last.change;
  }
  EXPECT_TRUE(changed);
  // 70 + 58 + guard 10 + the default overhead (no buffer reached the output), on the grid.
  EXPECT_EQ(last.latency_ns, 160 * kMs);
  EXPECT_GT(m.late_arrivals(), 0u);
  // Without a give-up time the same packets are in time.
  PlayoutMonitor plain;
  for (int i = 0; i < 200; i++) {
    now += 10 * kMs;
    plain.on_arrival(now, 70 * kMs, latency);
    EXPECT_FALSE(plain.evaluate(now, latency, false).change);
  }
  EXPECT_EQ(plain.late_arrivals(), 0u);
}

// A reordering path (issue 16: a relay with 30 +- 10 ms of delay, latency 60): the
// jitter gives up on a missing packet 30 ms before its time once a later one has come,
// so the packets that arrive out of order after that are dropped; the in-order ones
// between them are not. Every fourth packet here comes out of order, all 40.5 ms after
// capture, and the monitor decides after an in-order one: the latency must rise to
// where the out-of-order packets arrive before the give-up time (41 + 30 + guard), not
// by one step (70 ms, at which they would still be dropped).
TEST(PlayoutMonitor, OutOfOrderPacketsLaterThanTheGiveUpRaiseItPastTheGiveUp) {
  PlayoutMonitor m;
  int64_t now = 1'000'000 * kMs;
  const int64_t latency = 60 * kMs, give_up = 30 * kMs;
  PlayoutMonitor::Decision last;
  bool changed = false;
  for (int i = 0; i < 400 && !changed; i++) {
    now += 5 * kMs;
    const bool out_of_order = i % 4 == 0;
    const int64_t transit = 40 * kMs + 500'000;
    m.on_arrival(now, transit, latency, out_of_order ? give_up : 0);
    if (out_of_order) continue;  // dropped by the jitter: never reaches the output
    m.on_output(now, latency - transit);
    last = m.evaluate(now, latency, false);
    changed = last.change;
  }
  ASSERT_TRUE(changed);
  // p99 41 + give-up 30 + guard 10 = 81, on the grid.
  EXPECT_EQ(last.latency_ns, 90 * kMs);
  EXPECT_GE(last.latency_ns - give_up, 41 * kMs);
  EXPECT_GT(m.late_arrivals(), 0u);
}

TEST(PlayoutMonitor, LatenessAtTheOutputCountsToo) {
  // Packets arrive in time (102 ms of 120) but a decoder holding a frame for FEC
  // makes them 20 ms late at the output: the case that played silence.
  Sim s;
  s.latency = 120 * kMs;
  s.run(200, 102 * kMs, 38 * kMs);
  EXPECT_EQ(s.m.health(s.now), PlayoutMonitor::Health::kLate);
  s.run(1300, 102 * kMs, 38 * kMs);
  ASSERT_GE(s.changes.size(), 1u);
  // Margins of -20 ms: need = 120 - (-20) + 10 = 150.
  EXPECT_EQ(s.changes[0], 150 * kMs);
  s.run(3000, 102 * kMs, 38 * kMs);
  EXPECT_EQ(s.changes.size(), 1u);
  EXPECT_EQ(s.m.health(s.now), PlayoutMonitor::Health::kOnTime);
}

TEST(PlayoutMonitor, AnOccasionalLatePacketDoesNotMoveTheLatency) {
  Sim s;
  for (int i = 0; i < 50; i++) {
    s.run(990, 20 * kMs, 5 * kMs);
    s.run(10, 70 * kMs, 5 * kMs);  // one late packet a second: 1 %
  }
  EXPECT_TRUE(s.changes.empty());
  EXPECT_EQ(s.m.late_arrivals(), 50u);
}

TEST(PlayoutMonitor, AutoPicksTheSmallestLatencyOnTheGridAndThenOnlyRaises) {
  Sim s;
  s.auto_latency = true;
  s.run(3000, 12 * kMs, 4 * kMs, 3 * kMs);
  ASSERT_EQ(s.changes.size(), 1u);
  // p99 transit 16 + overhead (60 - 14 - 42 = 4, medians) + 10 guard = 30.
  EXPECT_GE(s.latency, 30 * kMs);
  EXPECT_LE(s.latency, 40 * kMs);
  // The path gets slower: raised, never lowered afterwards.
  s.run(3000, 60 * kMs, 4 * kMs, 3 * kMs);
  ASSERT_GE(s.changes.size(), 2u);
  const int64_t raised = s.latency;
  EXPECT_GE(raised, 70 * kMs);
  s.run(5000, 12 * kMs, 4 * kMs, 3 * kMs);
  EXPECT_EQ(s.latency, raised);
}

// The grid makes receivers whose needs differ by a millisecond or two agree (unless
// the two needs straddle a multiple of 10 ms).
TEST(PlayoutMonitor, TwoReceiversOnSimilarPathsPickTheSameAutoLatency) {
  Sim a, b;
  a.auto_latency = b.auto_latency = true;
  a.run(3000, 20 * kMs, 5 * kMs, 4 * kMs, 1);
  b.run(3000, 21 * kMs, 5 * kMs, 4 * kMs, 2);
  EXPECT_EQ(a.latency, b.latency);
}

TEST(PlayoutMonitor, WhenNothingIsHeardItActsWithinAQuarterSecond) {
  Sim s;
  s.run(400, 90 * kMs, 5 * kMs);
  ASSERT_EQ(s.changes.size(), 1u);
  EXPECT_GE(s.latency, 100 * kMs);
}

TEST(PlayoutMonitor, RaisesAreSpacedBySettle) {
  Sim s;
  s.latency = 20 * kMs;
  // A path far slower than one raise can fix: every raise waits for a second of data.
  s.run(3500, 400 * kMs, 5 * kMs);
  ASSERT_GE(s.changes.size(), 1u);
  EXPECT_LE(s.changes.size(), 3u);
  EXPECT_GE(s.latency, 400 * kMs);
}

TEST(PlayoutMonitor, StopsRaisingWhenRaisingDoesNotHelp) {
  // One buffer in ten reaches the output late whatever the latency (a cause latency
  // cannot fix): at most two raises, not one a second.
  PlayoutMonitor m;
  int64_t now = 0, latency = 60 * kMs;
  int changes = 0;
  for (int i = 0; i < 1000; i++) {  // ten seconds
    now += 10 * kMs;
    m.on_arrival(now, 20 * kMs, latency);
    m.on_output(now, i % 10 == 0 ? -5 * kMs : 20 * kMs);
    PlayoutMonitor::Decision d = m.evaluate(now, latency, false);
    if (d.change) {
      latency = d.latency_ns;
      changes++;
    }
  }
  EXPECT_GE(changes, 1);
  EXPECT_LE(changes, 2);
}

TEST(PlayoutMonitor, HealthIsNoAudioBeforeAnythingAndAfterSilence) {
  Sim s;
  EXPECT_EQ(s.m.health(s.now), PlayoutMonitor::Health::kNoAudio);
  s.run(500, 20 * kMs, 5 * kMs);
  EXPECT_EQ(s.m.health(s.now), PlayoutMonitor::Health::kOnTime);
  EXPECT_EQ(s.m.health(s.now + 2000 * kMs), PlayoutMonitor::Health::kNoAudio);
}

TEST(PlayoutMonitor, PercentilesOfTheWindow) {
  PlayoutMonitor m;
  int64_t now = 0;
  for (int i = 0; i < 100; i++) m.on_arrival(now += kMs, (i < 99 ? 10 : 50) * kMs, 60 * kMs);
  EXPECT_EQ(m.transit_percentile(now, 0.5), 11 * kMs);  // upper edge of the 10 ms bin
  EXPECT_EQ(m.transit_percentile(now, 1.0), 51 * kMs);
  // Out of the window two seconds later.
  EXPECT_EQ(m.transit_percentile(now + 3000 * kMs, 0.5), -1);
}

TEST(PlayoutMonitor, AbsurdValuesAreClampedNotOutOfBounds) {
  PlayoutMonitor m;
  m.on_arrival(0, INT64_MAX, 60 * kMs);
  m.on_arrival(1, INT64_MIN, 60 * kMs);
  m.on_output(2, INT64_MAX);
  m.on_output(3, INT64_MIN + 1);
  PlayoutMonitor::Decision d = m.evaluate(4, 60 * kMs, false);
  EXPECT_FALSE(d.change);
  EXPECT_GE(d.transit_p99_ns, 0);
  // Time going backwards restarts the window instead of indexing before it.
  m.on_arrival(-5'000'000'000'000, 10 * kMs, 60 * kMs);
  EXPECT_EQ(m.transit_percentile(-5'000'000'000'000, 1.0), 11 * kMs);
}

}  // namespace
}  // namespace syncwave
