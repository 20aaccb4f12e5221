// SPDX-License-Identifier: LGPL-2.1-or-later
// The drift controller driven in simulated time: a device whose crystal is off by
// some ppm consumes resampled audio, and the controller must keep it in place
// against the shared clock, smoothly, for hours.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>

#include "drift_controller.h"

using namespace syncwave;

namespace {

// A device playing resampled audio. Stream ("content") time advances by
// (1 + ppm) / ratio per second of shared clock: a fast device eats the stream faster
// unless the controller stretches it. The phase error is content played minus the
// shared clock (positive: the device plays ahead).
struct SimResult {
  double max_abs_error_ms = 0;    // over the whole run after settle_s
  double final_abs_error_us = 0;  // at the end
  double final_drift_ppm = 0;
  double max_ratio_step_ppm = 0;  // largest change of the ratio between two updates
  double max_abs_ratio_ppm = 0;
  double max_buffer_dev_ms = 0;  // |error| over the whole run: the buffer level swing
};

struct SimOptions {
  double device_ppm = 0;
  double seconds = 600;
  double step_s = 0.01;      // one update per 10 ms buffer
  double step_jitter_s = 0;  // ± uniform jitter of the update instants
  double settle_s = 60;
  double device_noise_ms = 0;    // jitter of the device position reading
  double device_quantum_ms = 0;  // granularity of the device position (ring segments)
  double error_noise_us = 0;     // jitter of the phase error reading
  bool has_device = true;
  double initial_error_ms = 0;
};

SimResult simulate(DriftController& c, const SimOptions& o) {
  SimResult r;
  std::mt19937 rng(42);
  std::normal_distribution<double> dev_noise(0, o.device_noise_ms * 1e-3);
  std::normal_distribution<double> err_noise(0, o.error_noise_us * 1e-6);
  std::uniform_real_distribution<double> step_jit(-o.step_jitter_s, o.step_jitter_s);
  const double eps = o.device_ppm * 1e-6;
  double t = 0;                                // shared clock, s
  double content = o.initial_error_ms * 1e-3;  // stream time the device is at, s
  double prev_ratio = c.ratio();
  const int64_t t0 = 1'700'000'000'000'000'000;  // an epoch-like shared clock origin
  long steps = static_cast<long>(o.seconds / o.step_s);
  for (long i = 0; i < steps; i++) {
    const double dt = o.step_s + (o.step_jitter_s > 0 ? step_jit(rng) : 0.0);
    t += dt;
    content += dt * (1.0 + eps) / c.ratio();
    double device = t * (1.0 + eps);
    if (o.device_quantum_ms > 0) {
      double q = o.device_quantum_ms * 1e-3;
      device = std::floor(device / q) * q;
    }
    device += dev_noise(rng);
    double error = content - t + err_noise(rng);
    c.update(t0 + static_cast<int64_t>(t * 1e9), static_cast<int64_t>(device * 1e9), o.has_device,
             static_cast<int64_t>(error * 1e9));
    double step = std::fabs(c.ratio() - prev_ratio) * 1e6;
    prev_ratio = c.ratio();
    r.max_ratio_step_ppm = std::max(r.max_ratio_step_ppm, step);
    r.max_abs_ratio_ppm = std::max(r.max_abs_ratio_ppm, std::fabs(c.ratio() - 1.0) * 1e6);
    double abs_err = std::fabs(content - t);
    r.max_buffer_dev_ms = std::max(r.max_buffer_dev_ms, abs_err * 1e3);
    if (t >= o.settle_s) r.max_abs_error_ms = std::max(r.max_abs_error_ms, abs_err * 1e3);
  }
  r.final_abs_error_us = std::fabs(content - t) * 1e6;
  r.final_drift_ppm = c.drift_ppm();
  return r;
}

}  // namespace

TEST(DriftController, StartsNeutral) {
  DriftController c;
  EXPECT_DOUBLE_EQ(c.ratio(), 1.0);
  EXPECT_DOUBLE_EQ(c.drift_ppm(), 0.0);
  EXPECT_EQ(c.corrections(), 0u);
}

TEST(DriftController, HundredPpmFastConverges) {
  DriftController c;
  SimOptions o;
  o.device_ppm = 100;
  SimResult r = simulate(c, o);
  EXPECT_NEAR(r.final_drift_ppm, 100, 2);
  EXPECT_NEAR((c.ratio() - 1.0) * 1e6, 100, 2);
  EXPECT_LT(r.final_abs_error_us, 20);
  EXPECT_LT(r.max_abs_error_ms, 0.1);
  EXPECT_LT(r.max_buffer_dev_ms, 2.0);  // the transient before it converges
  EXPECT_GT(c.corrections(), 0u);
}

TEST(DriftController, HundredPpmSlowConverges) {
  DriftController c;
  SimOptions o;
  o.device_ppm = -100;
  SimResult r = simulate(c, o);
  EXPECT_NEAR(r.final_drift_ppm, -100, 2);
  EXPECT_LT(r.final_abs_error_us, 20);
  EXPECT_LT(r.max_abs_error_ms, 0.1);
  EXPECT_LT(r.max_buffer_dev_ms, 2.0);
}

TEST(DriftController, ConvergesWithoutDeviceObservations) {
  // An output without a clock of its own: the PI loop alone absorbs the drift.
  DriftController c;
  SimOptions o;
  o.device_ppm = 100;
  o.has_device = false;
  o.settle_s = 300;
  SimResult r = simulate(c, o);
  EXPECT_NEAR(r.final_drift_ppm, 100, 5);
  EXPECT_LT(r.final_abs_error_us, 50);
  EXPECT_LT(r.max_buffer_dev_ms, 5.0);
  EXPECT_DOUBLE_EQ(c.measured_drift_ppm(), 0.0);
}

TEST(DriftController, RatioGlidesAndStaysBounded) {
  DriftController c;
  SimOptions o;
  o.device_ppm = 100;
  o.seconds = 120;
  SimResult r = simulate(c, o);
  const double slew = c.config().max_slew_ppm_per_s * o.step_s;
  EXPECT_LE(r.max_ratio_step_ppm, slew + 1e-6);
  EXPECT_LE(r.max_abs_ratio_ppm, c.config().max_ppm + 1e-6);
}

TEST(DriftController, ClampsAnImpossibleDrift) {
  // 5000 ppm is beyond any real crystal: the ratio saturates at the bound, never beyond.
  DriftController c;
  SimOptions o;
  o.device_ppm = 5000;
  o.seconds = 60;
  SimResult r = simulate(c, o);
  EXPECT_LE(r.max_abs_ratio_ppm, c.config().max_ppm + 1e-6);
  EXPECT_NEAR((c.ratio() - 1.0) * 1e6, c.config().max_ppm, 1e-3);
}

TEST(DriftController, RemovesAnInitialOffset) {
  DriftController c;
  SimOptions o;
  o.initial_error_ms = 3;
  o.seconds = 300;
  SimResult r = simulate(c, o);
  EXPECT_LT(r.final_abs_error_us, 20);
  EXPECT_LT(r.max_buffer_dev_ms, 3.5);
}

TEST(DriftController, NoisyQuantizedDeviceStaysInSyncForHours) {
  // Three hours of updates every 10 ± 3 ms with a device position read in 10 ms
  // segments plus 1 ms of noise, and 50 µs of noise on the phase error: the buffer
  // level stays within a few ms and the estimate stays on the true drift, fast and slow.
  for (double ppm : {100.0, -100.0}) {
    DriftController c;
    SimOptions o;
    o.device_ppm = ppm;
    o.seconds = 3 * 3600;
    o.settle_s = 120;
    o.device_quantum_ms = 10;
    o.step_jitter_s = 0.003;
    o.device_noise_ms = 1;
    o.error_noise_us = 50;
    SimResult r = simulate(c, o);
    EXPECT_LT(r.max_abs_error_ms, 0.5) << ppm;
    EXPECT_LT(r.max_buffer_dev_ms, 3.0) << ppm;
    EXPECT_NEAR(r.final_drift_ppm, ppm, 25) << ppm;  // instantaneous, with the noise
    EXPECT_LE(r.max_abs_ratio_ppm, c.config().max_ppm) << ppm;
  }
}

TEST(DriftController, LargeJumpResets) {
  DriftController c;
  SimOptions o;
  o.device_ppm = 100;
  o.seconds = 60;
  simulate(c, o);
  EXPECT_GT(c.drift_ppm(), 50);
  uint64_t resets = c.resets();
  c.update(1'000'000'000'000, 0, false, 2'000'000'000);  // the stream jumped by 2 s
  EXPECT_EQ(c.resets(), resets + 1);
  EXPECT_DOUBLE_EQ(c.ratio(), 1.0);
}

TEST(DriftController, ClockStandingStillChangesNothing) {
  DriftController c;
  c.update(1000, 1000, true, 100000);
  double r = c.ratio();
  c.update(1000, 1000, true, 100000);
  c.update(900, 900, true, 100000);
  EXPECT_DOUBLE_EQ(c.ratio(), r);
}
