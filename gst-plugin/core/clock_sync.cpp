// SPDX-License-Identifier: LGPL-2.1-or-later
#include "clock_sync.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "line_fit.h"

namespace syncwave {

void ClockSync::reset() {
  window_.clear();
  synced_ = false;
  have_base_ = false;
  base_offset_ = 0;
  t_ref_ = 0;
  offset_ = 0.0;
  slope_ = 0.0;
  rate_fitted_ = false;
  min_rtt_ = 0;
  residual_ns_ = 0.0;
  off_estimate_ = 0;
}

int64_t ClockSync::remote_at(int64_t local) const {
  const double rel = offset_ + slope_ * (double)(local - t_ref_);
  return local + base_offset_ + (int64_t)std::llround(rel);
}

bool ClockSync::add(int64_t t1_local, int64_t remote, int64_t t2_local) {
  exchanges_++;
  const int64_t rtt = t2_local - t1_local;
  if (rtt < 0 || rtt > config_.max_rtt_ns || (!window_.empty() && t1_local < window_.back().mid)) {
    dropped_++;
    return false;
  }
  const int64_t mid = t1_local + rtt / 2;
  if (synced_) {
    /* A short round trip far from the estimate: the remote clock jumped. */
    const int64_t off = remote - remote_at(mid);
    if (std::llabs(off) > config_.jump_ns && rtt <= 2 * min_rtt_ + config_.rtt_margin_ns) {
      if (++off_estimate_ < config_.jump_count) {
        dropped_++;
        return false;
      }
      restarts_++;
      reset();
    } else {
      off_estimate_ = 0;
    }
  }
  if (!have_base_) {
    base_offset_ = remote - mid;
    have_base_ = true;
  }
  window_.push_back({mid, remote - mid - base_offset_, rtt});
  while (window_.size() > config_.max_exchanges ||
         (window_.size() > 1 && mid - window_.front().mid > config_.window_ns))
    window_.pop_front();
  refit();
  return true;
}

void ClockSync::refit() {
  min_rtt_ = window_.front().rtt;
  for (const Exchange& e : window_) min_rtt_ = std::min(min_rtt_, e.rtt);
  const int64_t limit = min_rtt_ + min_rtt_ / 2 + config_.rtt_margin_ns;
  std::vector<const Exchange*> trusted;
  for (const Exchange& e : window_)
    if (e.rtt <= limit) trusted.push_back(&e);
  /* trusted is never empty: the shortest round trip is in it. */
  t_ref_ = trusted.back()->mid;
  const size_t n = trusted.size();
  rate_fitted_ = false;
  slope_ = 0.0;
  if (trusted.back()->mid - trusted.front()->mid >= config_.min_span_ns && n >= 8) {
    const Line line = fit_line(
        trusted, [&](const Exchange* e) { return (double)(e->mid - t_ref_); },
        [](const Exchange* e) { return (double)e->offset; });
    if (line.has_slope) {
      slope_ = std::clamp(line.slope, -config_.max_rate_deviation, config_.max_rate_deviation);
      rate_fitted_ = true;
      offset_ = line.y_mean - slope_ * line.x_mean;
    }
  }
  if (!rate_fitted_) {
    std::vector<int64_t> offsets;
    offsets.reserve(n);
    for (const Exchange* e : trusted) offsets.push_back(e->offset);
    std::nth_element(offsets.begin(), offsets.begin() + n / 2, offsets.end());
    offset_ = (double)offsets[n / 2];
  }
  double sq = 0;
  for (const Exchange* e : trusted) {
    const double d = (double)e->offset - (offset_ + slope_ * (double)(e->mid - t_ref_));
    sq += d * d;
  }
  residual_ns_ = std::sqrt(sq / (double)n);
  synced_ = true;
}

}  // namespace syncwave
