// SPDX-License-Identifier: LGPL-2.1-or-later
// ClockSync: a remote clock estimated from request/response exchanges. A simulated
// link delays each leg by a base delay plus queueing; the remote clock runs at an
// offset and a rate. Checked: the estimate at the exchanges with the shortest round
// trip, the rate, the jump to a restarted remote clock, bogus exchanges.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "clock_sync.h"

namespace syncwave {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kLocal0 = 1'000'000'000'000;           // local (monotonic) time
constexpr int64_t kRemote0 = 1'795'590'000'000'000'000;  // remote (epoch) time

struct Link {
  std::mt19937 rng{7};
  double ppm = 0;  // remote runs this fast
  int64_t offset = kRemote0 - kLocal0;
  int64_t base_ns = 30'000;          // each leg
  double queue_prob = 0.3;           // chance a leg waits in a queue ...
  int64_t queue_max_ns = 2'000'000;  // ... for up to this long
  int64_t remote_at(int64_t local) const {
    return local + offset + (int64_t)std::llround((double)(local - kLocal0) * ppm * 1e-6);
  }
  int64_t leg() {
    std::uniform_real_distribution<double> u(0, 1);
    int64_t d = base_ns + (int64_t)(u(rng) * 5'000);
    if (u(rng) < queue_prob) d += (int64_t)(u(rng) * (double)queue_max_ns);
    return d;
  }
  // One exchange starting at local time t1.
  void exchange(ClockSync* s, int64_t t1) {
    const int64_t there = t1 + leg();
    const int64_t t2 = there + leg();
    s->add(t1, remote_at(there), t2);
  }
};

TEST(ClockSync, NotSyncedBeforeAnExchange) {
  ClockSync s;
  EXPECT_FALSE(s.synced());
}

TEST(ClockSync, OneExchangeGivesTheOffsetToHalfTheRoundTrip) {
  ClockSync s;
  Link link;
  link.queue_prob = 0;
  link.exchange(&s, kLocal0);
  ASSERT_TRUE(s.synced());
  const int64_t err = s.remote_at(kLocal0 + kMs) - link.remote_at(kLocal0 + kMs);
  EXPECT_LE(std::llabs(err), 5'000);
}

TEST(ClockSync, TrustsTheShortestRoundTripsThroughQueueing) {
  // 30 % of the legs wait up to 2 ms; a mean of all offsets would be hundreds of µs
  // off. One second of 20 ms polls is within 5 µs.
  ClockSync s;
  Link link;
  for (int64_t t = kLocal0; t < kLocal0 + 1000 * kMs; t += 20 * kMs) link.exchange(&s, t);
  const int64_t now = kLocal0 + 1000 * kMs;
  EXPECT_LE(std::llabs(s.remote_at(now) - link.remote_at(now)), 5'000);
  EXPECT_LT(s.min_rtt_ns(), 80'000);
}

TEST(ClockSync, FitsTheRateOfADriftingRemote) {
  // 100 ppm: the offset moves 100 µs a second. After 10 s of polls the estimate is
  // within 5 µs and the rate within 2 ppm.
  ClockSync s;
  Link link;
  link.ppm = 100;
  int64_t t = kLocal0;
  for (; t < kLocal0 + 1000 * kMs; t += 20 * kMs) link.exchange(&s, t);
  for (; t < kLocal0 + 10'000 * kMs; t += 100 * kMs) link.exchange(&s, t);
  EXPECT_TRUE(s.rate_fitted());
  EXPECT_NEAR(s.drift_ppm(), 100, 2);
  EXPECT_LE(std::llabs(s.remote_at(t) - link.remote_at(t)), 5'000);
  // Extrapolated half a second ahead (the next polls may be lost).
  EXPECT_LE(std::llabs(s.remote_at(t + 500 * kMs) - link.remote_at(t + 500 * kMs)), 5'000);
}

TEST(ClockSync, FollowsARestartedRemoteClock) {
  ClockSync s;
  Link link;
  link.queue_prob = 0;
  int64_t t = kLocal0;
  for (; t < kLocal0 + 2000 * kMs; t += 20 * kMs) link.exchange(&s, t);
  link.offset += 3'600 * 1'000 * kMs;  // the sender came back an hour later
  link.exchange(&s, t);
  t += 20 * kMs;
  link.exchange(&s, t);
  t += 20 * kMs;
  EXPECT_EQ(s.restarts(), 0u);  // two exchanges are not enough to give up the estimate
  link.exchange(&s, t);
  EXPECT_EQ(s.restarts(), 1u);
  EXPECT_LE(std::llabs(s.remote_at(t) - link.remote_at(t)), 5'000);
}

TEST(ClockSync, DropsBogusExchanges) {
  ClockSync s;
  EXPECT_FALSE(s.add(kLocal0, kRemote0, kLocal0 - 1));              // negative round trip
  EXPECT_FALSE(s.add(kLocal0, kRemote0, kLocal0 + 2'000'000'000));  // 2 s round trip
  EXPECT_FALSE(s.synced());
  EXPECT_TRUE(s.add(kLocal0, kRemote0, kLocal0 + 50'000));
  EXPECT_FALSE(s.add(kLocal0 - kMs, kRemote0, kLocal0));  // older than the last
  EXPECT_EQ(s.dropped(), 3u);
  EXPECT_EQ(s.exchanges(), 4u);
}

}  // namespace
}  // namespace syncwave
