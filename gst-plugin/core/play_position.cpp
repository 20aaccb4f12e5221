// SPDX-License-Identifier: LGPL-2.1-or-later
#include "play_position.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "line_fit.h"

namespace syncwave {

void PlayPositionFit::reset(double nominal_rate) {
  nominal_rate_ = nominal_rate > 0 ? nominal_rate : 48000.0;
  window_.clear();
  valid_ = false;
  slope_fitted_ = false;
  t_ref_ = 0;
  offset_ = 0.0;
  slope_ = nominal_rate_ / 1e9;
  residual_ns_ = 0.0;
  off_line_ = 0;
  reports_ = 0;
  dropped_ = 0;
  restarts_ = 0;
}

void PlayPositionFit::restart() {
  if (window_.empty() && !valid_) return;
  restarts_++;
  window_.clear();
  valid_ = false;
  slope_fitted_ = false;
  off_line_ = 0;
}

double PlayPositionFit::position_at(int64_t t_ns) const {
  return predict(t_ns);
}

double PlayPositionFit::drift_ppm() const {
  if (!slope_fitted_) return 0.0;
  return (slope_ * 1e9 / nominal_rate_ - 1.0) * 1e6;
}

void PlayPositionFit::add(int64_t t_ns, double position) {
  reports_++;
  if (valid_) {
    const double off_ns = (position - predict(t_ns)) / slope_;
    const double limit = std::max(config_.jump_ns, config_.jump_residuals * residual_ns_);
    if (std::fabs(off_ns) > limit) {
      if (++off_line_ < config_.restart_count) {
        dropped_++;
        return;
      }
      /* The device jumped: what was fitted no longer holds. */
      restart();
    }
  }
  off_line_ = 0;
  if (!window_.empty() && t_ns <= window_.back().t_ns) {
    dropped_++; /* reports come in time order; one that does not is not trusted */
    return;
  }
  window_.push_back({t_ns, position});
  while (window_.size() > config_.max_reports ||
         (window_.size() > 2 && t_ns - window_.front().t_ns > config_.window_ns))
    window_.pop_front();
  refit();
}

void PlayPositionFit::refit() {
  for (int pass = 0; pass < 2; pass++) {
    const size_t n = window_.size();
    if (n == 0) {
      valid_ = false;
      return;
    }
    t_ref_ = window_.back().t_ns;
    const double nominal_slope = nominal_rate_ / 1e9;
    const Line line = fit_line(
        window_, [&](const Report& r) { return (double)(r.t_ns - t_ref_); },
        [](const Report& r) { return r.position; });
    slope_ = nominal_slope;
    slope_fitted_ = false;
    if (window_.back().t_ns - window_.front().t_ns >= config_.min_span_ns && line.has_slope &&
        std::fabs(line.slope / nominal_slope - 1.0) <= config_.max_rate_deviation) {
      slope_ = line.slope;
      slope_fitted_ = true;
    }
    offset_ = line.y_mean - slope_ * line.x_mean;
    valid_ = true;

    /* Distance of each report from the line, in ns. */
    std::vector<double> dist(n);
    double sq = 0;
    for (size_t i = 0; i < n; i++) {
      dist[i] = std::fabs((window_[i].position - predict(window_[i].t_ns)) / slope_);
      sq += dist[i] * dist[i];
    }
    residual_ns_ = std::sqrt(sq / (double)n);
    if (pass == 1 || n < 8) return;
    std::vector<double> sorted(dist);
    std::nth_element(sorted.begin(), sorted.begin() + n / 2, sorted.end());
    const double mad = sorted[n / 2];
    const double limit = std::max(config_.outlier_ns, config_.outlier_mads * 1.4826 * mad);
    std::deque<Report> kept;
    for (size_t i = 0; i < n; i++) {
      if (dist[i] <= limit)
        kept.push_back(window_[i]);
      else
        dropped_++;
    }
    if (kept.size() == n) return;
    window_.swap(kept);
  }
}

}  // namespace syncwave
