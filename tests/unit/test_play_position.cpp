// SPDX-License-Identifier: LGPL-2.1-or-later
// PlayPositionFit: the device's play position fitted from an audio server's reports.
// Reports are generated from a known line (offset, rate) with scatter, late outliers
// and jumps; the fit must find the line.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "play_position.h"

namespace syncwave {
namespace {

constexpr double kRate = 48000.0;
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kT0 = 5'000'000'000'000;  // an arbitrary host time

// The true play position of a device running `ppm` fast that played frame 0 at kT0.
double truth(int64_t t, double ppm) {
  return (double)(t - kT0) * 1e-9 * kRate * (1 + ppm * 1e-6);
}

TEST(PlayPositionFit, NotValidBeforeTheFirstReport) {
  PlayPositionFit f;
  f.reset(kRate);
  EXPECT_FALSE(f.valid());
  EXPECT_DOUBLE_EQ(f.rate(), kRate);
}

TEST(PlayPositionFit, OneReportGivesTheOffsetAtTheNominalRate) {
  PlayPositionFit f;
  f.reset(kRate);
  f.add(kT0 + 100 * kMs, 4800.0);
  ASSERT_TRUE(f.valid());
  EXPECT_NEAR(f.position_at(kT0 + 200 * kMs), 9600.0, 1e-6);
  EXPECT_DOUBLE_EQ(f.drift_ppm(), 0.0);
}

TEST(PlayPositionFit, FitsRateAndOffsetThroughScatter) {
  // 300 ppm fast, reports every 20 ms with ±20 µs of scatter: after 4 s the
  // position is right to a few µs and the rate to a few ppm.
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> scatter(-20e3, 20e3);  // ns
  PlayPositionFit f;
  f.reset(kRate);
  for (int64_t t = kT0; t < kT0 + 4000 * kMs; t += 20 * kMs)
    f.add(t, truth(t + (int64_t)scatter(rng), 300));
  const int64_t now = kT0 + 4010 * kMs;
  EXPECT_NEAR(f.position_at(now), truth(now, 300), 10e-6 * kRate);  // 10 µs
  EXPECT_NEAR(f.drift_ppm(), 300, 5);
  EXPECT_LT(f.residual_ns(), 20e3);
}

TEST(PlayPositionFit, DropsReportsStampedLateByABusyServer) {
  // Every 7th report was stamped 400 µs after its snapshot: the position then looks
  // 400 µs behind. Those reports are dropped; the line is not pulled.
  PlayPositionFit f;
  f.reset(kRate);
  int n = 0;
  for (int64_t t = kT0; t < kT0 + 3000 * kMs; t += 20 * kMs, n++)
    f.add(t, truth(n % 7 == 3 ? t - 400'000 : t, 0));
  const int64_t now = kT0 + 3000 * kMs;
  EXPECT_NEAR(f.position_at(now), truth(now, 0), 5e-6 * kRate);
  EXPECT_GT(f.dropped(), 15u);
  EXPECT_EQ(f.restarts(), 0u);
}

TEST(PlayPositionFit, FollowsAJumpAfterThreeReports) {
  // An underrun: the device stood still for 230 µs (11 frames at 48 kHz).
  PlayPositionFit f;
  f.reset(kRate);
  int64_t t = kT0;
  for (; t < kT0 + 2000 * kMs; t += 20 * kMs) f.add(t, truth(t, 0));
  const double jump = 11.0;
  f.add(t, truth(t, 0) - jump);
  t += 20 * kMs;
  f.add(t, truth(t, 0) - jump);
  t += 20 * kMs;
  // Two reports off the line are not trusted yet ...
  EXPECT_NEAR(f.position_at(t), truth(t, 0), 0.1);
  f.add(t, truth(t, 0) - jump);
  // ... the third starts the fit again.
  EXPECT_EQ(f.restarts(), 1u);
  EXPECT_NEAR(f.position_at(t + 10 * kMs), truth(t + 10 * kMs, 0) - jump, 0.1);
}

TEST(PlayPositionFit, RestartForgetsTheLine) {
  PlayPositionFit f;
  f.reset(kRate);
  f.add(kT0, 0.0);
  f.restart();
  EXPECT_FALSE(f.valid());
  EXPECT_EQ(f.restarts(), 1u);
  f.add(kT0 + 10 * kMs, 1000.0);
  EXPECT_NEAR(f.position_at(kT0 + 10 * kMs), 1000.0, 1e-9);
}

TEST(PlayPositionFit, IgnoresReportsOutOfTimeOrderAndAnImplausibleRate) {
  PlayPositionFit f;
  f.reset(kRate);
  f.add(kT0 + 100 * kMs, 4800.0);
  f.add(kT0 + 50 * kMs, 0.0);  // older than the last: dropped
  EXPECT_EQ(f.dropped(), 1u);
  // Reports at twice the nominal rate: the slope is not believed (> 1 %).
  PlayPositionFit g;
  g.reset(kRate);
  for (int64_t t = kT0; t < kT0 + 2000 * kMs; t += 20 * kMs) g.add(t, 2 * truth(t, 0));
  EXPECT_DOUBLE_EQ(g.drift_ppm(), 0.0);
}

}  // namespace
}  // namespace syncwave
