// SPDX-License-Identifier: LGPL-2.1-or-later
// SkewEstimator: smooth mapping from jittery arrivals, drift, offset, jitter,
// resync on jumps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "jitter_buffer.h"
#include "skew_estimator.h"
#include "time_units.h"

using namespace syncwave;

namespace {
constexpr uint64_t kMs = kNsPerMs;
constexpr uint64_t kSend0 = 1'700'000'000'000'000'000ull;  // epoch ns
constexpr uint64_t kRecv0 = 5 * kNsPerSec;                 // running time
}  // namespace

TEST(SkewEstimator, ConstantDelayMapsExactly) {
  SkewEstimator s;
  for (int i = 0; i < 1000; i++) {
    uint64_t send = kSend0 + i * 10 * kMs;
    uint64_t recv = kRecv0 + i * 10 * kMs;
    EXPECT_EQ(s.update(send, recv), recv);
  }
  EXPECT_EQ(s.offset_ns(), time_diff(kRecv0, kSend0));
  EXPECT_EQ(s.jitter_ns(), 0u);
  EXPECT_EQ(s.resyncs(), 0u);
}

TEST(SkewEstimator, JitteryArrivalsGiveSmoothTimes) {
  SkewEstimator s;
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint64_t> jitter(0, 8 * kMs);
  uint64_t prev = 0;
  for (int i = 0; i < 3000; i++) {
    uint64_t send = kSend0 + i * 10 * kMs;
    uint64_t recv = kRecv0 + i * 10 * kMs + 2 * kMs + jitter(rng);
    uint64_t out = s.update(send, recv);
    if (i > 0) {
      EXPECT_GT(out, prev);
    }
    if (i > 300) {
      // After the window filled: steps of 10 ms within 100 µs, and never later
      // than the clean path (the fastest arrivals).
      EXPECT_NEAR(static_cast<double>(out - prev), 10e6, 100e3) << i;
      EXPECT_LE(out, kRecv0 + i * 10 * kMs + 2 * kMs + kMs) << i;
    }
    prev = out;
  }
  // Uniform 0..8 ms: mean |D| of the difference of two uniforms is 8/3 ms.
  EXPECT_NEAR(static_cast<double>(s.jitter_ns()), 8e6 / 3, 1.5e6);
}

TEST(SkewEstimator, MeasuresDrift) {
  for (double ppm : {100.0, -100.0, 0.0}) {
    SkewEstimator s;
    std::mt19937 rng(3);
    std::uniform_int_distribution<uint64_t> jitter(0, 5 * kMs);
    EXPECT_FALSE(s.has_drift());
    for (int i = 0; i < 6000; i++) {  // 60 s
      uint64_t send_diff = i * 10 * kMs;
      uint64_t recv = kRecv0 + static_cast<uint64_t>(send_diff * (1.0 + ppm * 1e-6)) + jitter(rng);
      s.update(kSend0 + send_diff, recv);
    }
    ASSERT_TRUE(s.has_drift());
    EXPECT_NEAR(s.drift_ppm(), ppm, 5.0);
  }
}

TEST(SkewEstimator, ResyncsWhenTheSenderJumps) {
  SkewEstimator s;
  for (int i = 0; i < 100; i++) s.update(kSend0 + i * 10 * kMs, kRecv0 + i * 10 * kMs);
  // Sender restarted: its timestamps are 30 s later, arrivals continue.
  uint64_t recv = kRecv0 + 100 * 10 * kMs;
  EXPECT_EQ(s.update(kSend0 + 30 * kNsPerSec, recv), recv);
  EXPECT_EQ(s.resyncs(), 1u);
  EXPECT_EQ(s.update(kSend0 + 30 * kNsPerSec + 10 * kMs, recv + 10 * kMs), recv + 10 * kMs);
  // Backwards as well.
  EXPECT_EQ(s.update(kSend0, recv + 20 * kMs), recv + 20 * kMs);
  EXPECT_EQ(s.resyncs(), 2u);
}

TEST(SkewEstimator, SurvivesHostileTimes) {
  SkewEstimator s;
  EXPECT_EQ(s.map(kSend0), kTimeNone);
  EXPECT_EQ(s.update(kTimeNone, 0), kTimeNone);
  s.update(kTimeMax, 0);
  s.update(0, kTimeMax);
  s.update(kTimeMax, kTimeMax);
  s.update(1, 1);
  EXPECT_EQ(s.update(2, 2), 2u);
}

// Slave mode over an hour of stream time: the receiver's clock runs 200 ppm fast or
// slow against the sender's, arrivals jitter by up to 8 ms. The smoothed times
// follow, nothing is ever late at a 60 ms latency, and how far ahead of playout the
// data is stays bounded (it does not creep by 200 ppm * 1 h = 720 ms).
TEST(SkewEstimator, SlaveModeSoakWithClockDifference) {
  for (double ppm : {200.0, -200.0}) {
    SkewEstimator s;
    JitterBuffer jb;
    std::mt19937 rng(5);
    std::uniform_int_distribution<uint64_t> jitter(0, 8 * kMs);
    uint64_t min_ahead = UINT64_MAX, max_ahead = 0;
    const int packets = 360000;  // 1 h of 10 ms packets
    for (int i = 0; i < packets; i++) {
      const uint64_t send = kSend0 + static_cast<uint64_t>(i) * 10 * kMs;
      const double local = static_cast<double>(i) * 10e6 * (1.0 + ppm * 1e-6);
      const uint64_t recv = kRecv0 + static_cast<uint64_t>(local) + 2 * kMs + jitter(rng);
      const uint64_t pts = s.update(send, recv);
      ASSERT_EQ(jb.insert(send / 1000, 10 * kMs, pts, recv, jitter_payload_none()),
                JitterVerdict::kAccepted)
          << ppm << " ppm, packet " << i;
      JitterOutput o;
      while (jb.pop(recv, &o)) {
      }
      if (i > 1000) {
        const uint64_t ahead = jb.level_ns(recv);
        min_ahead = std::min(min_ahead, ahead);
        max_ahead = std::max(max_ahead, ahead);
      }
    }
    EXPECT_EQ(jb.stats().late, 0u);
    EXPECT_EQ(jb.stats().lost, 0u);
    // Between latency + packet - jitter - a little skew lag, and latency + packet.
    EXPECT_GT(min_ahead, 60 * kMs);
    EXPECT_LT(max_ahead, 71 * kMs);
    EXPECT_NEAR(s.drift_ppm(), ppm, 5.0);
  }
}
