// SPDX-License-Identifier: LGPL-2.1-or-later
// The impairment model driven with numbers: each impairment does what it says, at
// the rate it says, the same way for the same seed, and the counters add up.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "impair_model.h"

using namespace syncwave::impair;

namespace {

constexpr uint64_t kInterval = 10000;  // one packet every 10 ms

// Feeds n packets (payload = little-endian index) every `interval` µs and collects every
// delivery in the order the relay would send them.
std::vector<Delivery> run(ImpairModel& m, int n, uint64_t interval = kInterval, size_t size = 8) {
  std::vector<Delivery> out;
  uint64_t t = 1000000;
  for (int i = 0; i < n; i++) {
    std::vector<uint8_t> p(size, 0);
    for (int b = 0; b < 4 && b < static_cast<int>(size); b++)
      p[b] = (static_cast<uint32_t>(i) >> (8 * b)) & 0xff;
    m.arrive(t, std::move(p));
    for (auto& d : m.pop_due(t)) out.push_back(std::move(d));
    t += interval;
  }
  for (auto& d : m.pop_due(UINT64_MAX - 1)) out.push_back(std::move(d));
  return out;
}

// Binomial tolerance: 6 standard deviations.
double tol(double p, int n) {
  return 6.0 * std::sqrt(p * (1 - p) * n) + 1;
}

void expect_counters_add_up(const ImpairModel& m) {
  const Counters& c = m.counters();
  EXPECT_EQ(c.received + c.duplicated, c.forwarded + c.lost() + m.pending());
}

}  // namespace

TEST(ImpairSettings, ParsesEveryKey) {
  Settings s;
  std::string err;
  ASSERT_TRUE(apply_settings(&s,
                             "loss=10%,burst=0.01:0.25:0.9,reorder=5%:25ms,duplicate=0.02,"
                             "delay=30ms,jitter=500us,jitter-dist=pareto,rate=2mbit,queue=16k,"
                             "outage=2s+300ms",
                             &err))
      << err;
  EXPECT_DOUBLE_EQ(s.loss, 0.1);
  EXPECT_DOUBLE_EQ(s.burst_enter, 0.01);
  EXPECT_DOUBLE_EQ(s.burst_exit, 0.25);
  EXPECT_DOUBLE_EQ(s.burst_loss, 0.9);
  EXPECT_DOUBLE_EQ(s.reorder, 0.05);
  EXPECT_EQ(s.reorder_delay_us, 25000u);
  EXPECT_DOUBLE_EQ(s.duplicate, 0.02);
  EXPECT_EQ(s.delay_us, 30000u);
  EXPECT_EQ(s.jitter_us, 500u);
  EXPECT_EQ(s.jitter_dist, JitterDist::kPareto);
  EXPECT_EQ(s.rate_bps, 2000000u);
  EXPECT_EQ(s.queue_limit_bytes, 16384u);
  ASSERT_EQ(s.outages.size(), 1u);
  EXPECT_EQ(s.outages[0].start_us, 2000000u);
  EXPECT_EQ(s.outages[0].duration_us, 300000u);

  Settings d;
  ASSERT_TRUE(apply_setting(&d, "delay", "20", &err));
  EXPECT_EQ(d.delay_us, 20000u);  // bare numbers are milliseconds
  ASSERT_TRUE(apply_setting(&d, "rate", "800", &err));
  EXPECT_EQ(d.rate_bps, 800000u);  // bare rates are kbit/s
}

TEST(ImpairSettings, RejectsBadValues) {
  Settings s;
  std::string err;
  EXPECT_FALSE(apply_setting(&s, "loss", "1.5", &err));
  EXPECT_FALSE(apply_setting(&s, "loss", "-1%", &err));
  EXPECT_FALSE(apply_setting(&s, "loss", "abc", &err));
  EXPECT_FALSE(apply_setting(&s, "delay", "10 parsecs", &err));
  EXPECT_FALSE(apply_setting(&s, "jitter-dist", "cauchy", &err));
  EXPECT_FALSE(apply_setting(&s, "outage", "300ms", &err));
  EXPECT_FALSE(apply_setting(&s, "burst", "0.1:0.2:0.3:0.4", &err));
  EXPECT_FALSE(apply_setting(&s, "colour", "blue", &err));
  EXPECT_NE(err.find("colour"), std::string::npos);
  EXPECT_FALSE(apply_settings(&s, "loss", &err));
  EXPECT_FALSE(apply_setting(&s, "delay", "1e300", &err));
}

TEST(ImpairModel, NoImpairmentIsTransparent) {
  ImpairModel m(Settings(), 1);
  auto out = run(m, 1000);
  ASSERT_EQ(out.size(), 1000u);
  for (size_t i = 0; i < out.size(); i++) {
    EXPECT_EQ(out[i].seq, i);
    EXPECT_EQ(out[i].due_us, 1000000 + i * kInterval);
    EXPECT_EQ(out[i].data[0], i & 0xff);
  }
  EXPECT_EQ(m.counters().lost(), 0u);
  EXPECT_EQ(m.counters().reordered, 0u);
  EXPECT_EQ(m.counters().forwarded_bytes, 8000u);
  expect_counters_add_up(m);
}

TEST(ImpairModel, SameSeedReplaysIdenticallyOtherSeedDoesNot) {
  Settings s;
  ASSERT_TRUE(
      apply_settings(&s, "loss=10%,reorder=5%,duplicate=2%,delay=30ms,jitter=20ms", nullptr));
  ImpairModel a(s, 42), b(s, 42), c(s, 43);
  auto oa = run(a, 5000), ob = run(b, 5000), oc = run(c, 5000);
  ASSERT_EQ(oa.size(), ob.size());
  for (size_t i = 0; i < oa.size(); i++) {
    EXPECT_EQ(oa[i].seq, ob[i].seq);
    EXPECT_EQ(oa[i].due_us, ob[i].due_us);
    EXPECT_EQ(oa[i].duplicate, ob[i].duplicate);
  }
  bool differs = oa.size() != oc.size();
  for (size_t i = 0; !differs && i < oa.size(); i++) differs = oa[i].seq != oc[i].seq;
  EXPECT_TRUE(differs);
}

TEST(ImpairModel, DecisionsDoNotDependOnArrivalTimes) {
  // The loss pattern for packet N is a function of seed and N only.
  Settings s;
  s.loss = 0.3;
  ImpairModel a(s, 9), b(s, 9);
  auto oa = run(a, 2000, 10000), ob = run(b, 2000, 2500);
  ASSERT_EQ(oa.size(), ob.size());
  for (size_t i = 0; i < oa.size(); i++) EXPECT_EQ(oa[i].seq, ob[i].seq);
}

TEST(ImpairModel, RandomLossRate) {
  Settings s;
  s.loss = 0.1;
  ImpairModel m(s, 7);
  const int n = 100000;
  auto out = run(m, n);
  EXPECT_NEAR(static_cast<double>(m.counters().lost_random), 0.1 * n, tol(0.1, n));
  EXPECT_EQ(out.size(), n - m.counters().lost_random);
  expect_counters_add_up(m);
}

TEST(ImpairModel, GilbertElliottBursts) {
  Settings s;
  s.burst_enter = 0.01;  // mean good run 100 packets
  s.burst_exit = 0.25;   // mean bad run 4 packets
  s.burst_loss = 1.0;
  ImpairModel m(s, 3);
  const int n = 200000;
  auto out = run(m, n);
  // Stationary loss = enter / (enter + exit) = 0.0385.
  const double expected = 0.01 / 0.26;
  EXPECT_NEAR(static_cast<double>(m.counters().lost_burst) / n, expected, 0.006);
  // Losses come in runs with a mean length of 1/exit = 4.
  std::vector<bool> got(n, false);
  for (const auto& d : out) got[d.seq] = true;
  int runs = 0, lost = 0;
  for (int i = 0; i < n; i++) {
    if (!got[i]) {
      lost++;
      if (i == 0 || got[i - 1]) runs++;
    }
  }
  ASSERT_GT(runs, 0);
  EXPECT_NEAR(static_cast<double>(lost) / runs, 4.0, 0.5);
  expect_counters_add_up(m);
}

TEST(ImpairModel, ReorderHoldsBackAndCountsWhatLeftOutOfOrder) {
  Settings s;
  s.reorder = 0.05;
  s.reorder_delay_us = 25000;
  ImpairModel m(s, 11);
  const int n = 50000;
  auto out = run(m, n);
  EXPECT_NEAR(static_cast<double>(m.counters().held_back), 0.05 * n, tol(0.05, n));
  // Count, from the output alone, packets that left after a later one.
  uint64_t max_seq = 0, reordered = 0;
  for (size_t i = 0; i < out.size(); i++) {
    if (i > 0 && out[i].seq < max_seq) reordered++;
    max_seq = std::max(max_seq, out[i].seq);
  }
  EXPECT_EQ(m.counters().reordered, reordered);
  EXPECT_GT(reordered, 0.9 * m.counters().held_back);
  EXPECT_LE(reordered, m.counters().held_back);
  EXPECT_EQ(out.size(), static_cast<size_t>(n));
}

TEST(ImpairModel, DuplicatesAreCopiesOfTheSamePacket) {
  Settings s;
  s.duplicate = 0.02;
  ImpairModel m(s, 5);
  const int n = 50000;
  auto out = run(m, n);
  EXPECT_NEAR(static_cast<double>(m.counters().duplicated), 0.02 * n, tol(0.02, n));
  EXPECT_EQ(out.size(), n + m.counters().duplicated);
  size_t dups = 0;
  for (size_t i = 0; i < out.size(); i++) {
    if (out[i].duplicate) {
      dups++;
      ASSERT_GT(i, 0u);
      EXPECT_EQ(out[i - 1].seq, out[i].seq);
      EXPECT_EQ(out[i - 1].data, out[i].data);
    }
  }
  EXPECT_EQ(dups, m.counters().duplicated);
  EXPECT_EQ(m.counters().reordered, 0u);
  expect_counters_add_up(m);
}

TEST(ImpairModel, UniformJitterStaysInItsBand) {
  Settings s;
  s.delay_us = 30000;
  s.jitter_us = 10000;
  ImpairModel m(s, 2);
  const int n = 20000;
  std::vector<uint64_t> arrival(n);
  auto out = run(m, n);
  double sum = 0;
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const auto& d : out) {
    const uint64_t delay = d.due_us - (1000000 + d.seq * kInterval);
    lo = std::min(lo, delay);
    hi = std::max(hi, delay);
    sum += static_cast<double>(delay);
  }
  EXPECT_GE(lo, 20000u);
  EXPECT_LE(hi, 40000u);
  EXPECT_LT(lo, 20500u);  // the band is used to its edges
  EXPECT_GT(hi, 39500u);
  EXPECT_NEAR(sum / n, 30000.0, 200.0);
  EXPECT_EQ(m.counters().delay_max_us, hi);
  // +-10 ms jitter on a 10 ms cadence reorders some packets.
  EXPECT_GT(m.counters().reordered, 0u);
}

TEST(ImpairModel, NormalJitterIsClipped) {
  Settings s;
  s.delay_us = 50000;
  s.jitter_us = 5000;
  s.jitter_dist = JitterDist::kNormal;
  ImpairModel m(s, 2);
  auto out = run(m, 20000);
  double sum = 0, sq = 0;
  for (const auto& d : out) {
    const double delay = static_cast<double>(d.due_us - (1000000 + d.seq * kInterval));
    EXPECT_GE(delay, 30000.0);
    EXPECT_LE(delay, 70000.0);
    sum += delay;
    sq += delay * delay;
  }
  const double mean = sum / out.size();
  const double sd = std::sqrt(sq / out.size() - mean * mean);
  EXPECT_NEAR(mean, 50000.0, 200.0);
  EXPECT_NEAR(sd, 5000.0, 250.0);
}

TEST(ImpairModel, ParetoJitterHasALongTail) {
  Settings s;
  s.delay_us = 10000;
  s.jitter_us = 2000;
  s.jitter_dist = JitterDist::kPareto;
  ImpairModel m(s, 8);
  auto out = run(m, 50000);
  double sum = 0;
  size_t beyond_5x = 0;
  for (const auto& d : out) {
    const uint64_t delay = d.due_us - (1000000 + d.seq * kInterval);
    EXPECT_GE(delay, 10000u);  // never earlier than the base delay
    EXPECT_LE(delay, 10000u + 50 * 2000u);
    sum += static_cast<double>(delay - 10000);
    if (delay - 10000 > 5 * 2000) beyond_5x++;
  }
  EXPECT_NEAR(sum / out.size(), 2000.0, 200.0);  // mean excess = jitter
  EXPECT_GT(beyond_5x, 50u);                     // a uniform +-2 ms could never go beyond 10 ms
}

TEST(ImpairModel, BandwidthCapSpacesPacketsAndDropsOverflow) {
  Settings s;
  s.rate_bps = 1000000;         // 1 Mbit/s: a 1250-byte packet takes 10 ms
  s.queue_limit_bytes = 12500;  // 10 packets
  ImpairModel m(s, 1);
  // Offer 2 Mbit/s: one 1250-byte packet every 5 ms.
  auto out = run(m, 400, 5000, 1250);
  ASSERT_GT(out.size(), 10u);
  for (size_t i = 1; i < out.size(); i++) EXPECT_GE(out[i].due_us - out[i - 1].due_us, 10000u);
  // Half the offered load fits; the queue overflow is dropped and counted.
  EXPECT_NEAR(static_cast<double>(m.counters().dropped_queue), 200.0, 12.0);
  EXPECT_EQ(out.size() + m.counters().dropped_queue, 400u);
  // Under the cap nothing is dropped.
  ImpairModel slow(s, 1);
  auto out2 = run(slow, 400, 20000, 1250);
  EXPECT_EQ(out2.size(), 400u);
  EXPECT_EQ(slow.counters().dropped_queue, 0u);
}

TEST(ImpairModel, OutageDropsExactlyItsWindow) {
  Settings s;
  ASSERT_TRUE(apply_setting(&s, "outage", "2s+300ms", nullptr));
  ImpairModel m(s, 1);
  auto out = run(m, 500);  // 5 s at 10 ms
  EXPECT_EQ(m.counters().lost_outage, 30u);
  EXPECT_EQ(out.size(), 470u);
  for (const auto& d : out) EXPECT_TRUE(d.seq < 200 || d.seq >= 230) << d.seq;
}

TEST(ImpairModel, ScenarioMixCountsAddUp) {
  Settings s;
  ASSERT_TRUE(apply_settings(
      &s, "loss=10%,reorder=5%,duplicate=2%,delay=30ms,jitter=20ms,burst=0.005:0.3", nullptr));
  ImpairModel m(s, 1234);
  auto out = run(m, 30000);
  const Counters& c = m.counters();
  EXPECT_EQ(c.received, 30000u);
  EXPECT_EQ(out.size(), c.forwarded);
  expect_counters_add_up(m);
  EXPECT_EQ(m.pending(), 0u);
  // The JSON carries the same numbers.
  const std::string json = m.counters_json();
  EXPECT_NE(json.find("\"received\": 30000"), std::string::npos) << json;
  EXPECT_NE(json.find("\"duplicated\": " + std::to_string(c.duplicated)), std::string::npos);
  EXPECT_NE(json.find("\"lost\": " + std::to_string(c.lost())), std::string::npos);
}
