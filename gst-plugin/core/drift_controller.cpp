// SPDX-License-Identifier: LGPL-2.1-or-later
#include "drift_controller.h"

#include <algorithm>
#include <cmath>

#include "line_fit.h"

namespace syncwave {

DriftController::DriftController() : DriftController(Config{}) {}

DriftController::DriftController(const Config& config) : config_(config) {}

void DriftController::reset() {
  points_.clear();
  started_ = false;
  last_clock_ns_ = 0;
  err_f_ = 0.0;
  integral_ = 0.0;
  ff_ = 0.0;
  ff_valid_ = false;
  u_ = 0.0;
  resets_++;
}

// Least-squares slope of (device - clock) against clock over the window, relative
// to the first point so that the sums stay small.
bool DriftController::estimate_rate(double* slope) const {
  if (points_.size() < 8) return false;
  const Point& first = points_.front();
  const Point& last = points_.back();
  double span = (last.clock_ns - first.clock_ns) * 1e-9;
  if (span < config_.rate_min_span_s) return false;
  const Line line = fit_line(
      points_, [&](const Point& p) { return (p.clock_ns - first.clock_ns) * 1e-9; },
      [&](const Point& p) {
        return ((p.device_ns - first.device_ns) - (p.clock_ns - first.clock_ns)) * 1e-9;
      });
  if (!line.has_slope) return false;
  *slope = line.slope;
  return true;
}

void DriftController::update(int64_t clock_ns, int64_t device_ns, bool has_device,
                             int64_t phase_error_ns) {
  double err = phase_error_ns * 1e-9;
  if (std::fabs(err) > config_.reset_error_s) {
    // A jump this large is a stream restart or a resync by the sink, not drift.
    uint64_t corrections = corrections_;
    reset();
    corrections_ = corrections;
    return;
  }
  if (!started_) {
    started_ = true;
    last_clock_ns_ = clock_ns;
    err_f_ = err;
    if (has_device) points_.push_back({clock_ns, device_ns});
    return;
  }
  double dt = (clock_ns - last_clock_ns_) * 1e-9;
  if (dt <= 0) return;  // the clock did not advance: nothing to integrate
  last_clock_ns_ = clock_ns;

  // Rate estimate from the device's own position.
  if (has_device) {
    const int64_t min_gap =
        static_cast<int64_t>(config_.rate_window_s * 1e9 / std::max<size_t>(config_.max_points, 1));
    if (points_.empty() || clock_ns - points_.back().clock_ns >= min_gap) {
      points_.push_back({clock_ns, device_ns});
    }
    const int64_t window = static_cast<int64_t>(config_.rate_window_s * 1e9);
    while (points_.size() > 2 &&
           (clock_ns - points_.front().clock_ns > window || points_.size() > config_.max_points)) {
      points_.pop_front();
    }
    double slope = 0;
    if (config_.feed_forward && estimate_rate(&slope)) {
      const double max = config_.max_ppm * 1e-6;
      slope = std::clamp(slope, -max, max);
      ff_valid_ = true;
      double a = dt / (config_.rate_tau_s + dt);
      ff_ += a * (slope - ff_);
    }
  }

  // PI on the low-passed phase error.
  double a = dt / (config_.error_tau_s + dt);
  err_f_ += a * (err - err_f_);
  const double max = config_.max_ppm * 1e-6;
  integral_ += config_.ki * err_f_ * dt;
  integral_ = std::clamp(integral_, -max - ff_, max - ff_);  // anti-windup
  double target = std::clamp(ff_ + integral_ + config_.kp * err_f_, -max, max);

  // Slew limit: the ratio glides, it never steps.
  double step = config_.max_slew_ppm_per_s * 1e-6 * dt;
  double next = u_ + std::clamp(target - u_, -step, step);
  if (next != u_) corrections_++;
  u_ = next;
}

}  // namespace syncwave
