// SPDX-License-Identifier: LGPL-2.1-or-later
#include "wall_clock_map.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "line_fit.h"

namespace syncwave {

int64_t WallClockMap::Mapping::at(int64_t clock_ns) const {
  return clock_ns + offset_ns + (int64_t)std::llround(slope * (double)(clock_ns - ref_clock_ns));
}

void WallClockMap::reset() {
  valid_ = false;
  have_rough_ = false;
  rough_offset_ns_ = 0;
  points_.clear();
  pending_.clear();
  line_ = Mapping();
}

int64_t WallClockMap::to_wall(int64_t clock_ns) const {
  if (valid_) return line_.at(clock_ns);
  return have_rough_ ? clock_ns + rough_offset_ns_ : clock_ns;
}

void WallClockMap::add(int64_t clock_before_ns, int64_t wall_ns, int64_t clock_after_ns) {
  stats_.readings++;
  const int64_t width = clock_after_ns - clock_before_ns;
  if (width < 0 || width > config_.max_read_ns) {
    stats_.slow_reads++;
    if (!valid_ && width >= 0) {
      have_rough_ = true;
      rough_offset_ns_ = wall_ns - (clock_before_ns + width / 2);
    }
    return;
  }
  const Point p{clock_before_ns + width / 2, wall_ns - (clock_before_ns + width / 2)};
  if (!valid_) {
    points_.assign(1, p);
    valid_ = true;
    refit();
    return;
  }
  const int64_t residual = p.y - (line_.at(p.x) - p.x);
  if (std::llabs(residual) <= config_.step_ns) {
    if (!pending_.empty()) {
      stats_.outliers += pending_.size();
      pending_.clear();
    }
    points_.push_back(p);
    while (points_.size() > config_.max_points ||
           (points_.size() > 1 && points_.front().x < p.x - config_.window_ns))
      points_.pop_front();
    refit();
    return;
  }
  // Off the line: an outlier, or the first reading after a discontinuity.
  if (!pending_.empty() && std::llabs(p.y - pending_.front().y) > config_.step_ns) {
    stats_.outliers += pending_.size();
    pending_.clear();
  }
  pending_.push_back(p);
  if (pending_.size() >= std::max(1u, config_.step_confirm)) {
    points_.assign(pending_.begin(), pending_.end());
    pending_.clear();
    stats_.reanchors++;
    refit();
  }
}

void WallClockMap::refit() {
  // Fit in doubles relative to the newest point, so that epoch-sized values keep their
  // nanoseconds.
  const Point ref = points_.back();
  struct Rel {
    double x, y;
  };
  std::vector<Rel> rel;
  rel.reserve(points_.size());
  for (const Point& p : points_) rel.push_back({(double)(p.x - ref.x), (double)(p.y - ref.y)});
  const double span = (double)(points_.back().x - points_.front().x);

  auto fit = [&](const std::vector<Rel>& pts) {
    syncwave::Line l = fit_line(
        pts, [](const Rel& r) { return r.x; }, [](const Rel& r) { return r.y; });
    if (!l.has_slope || span < (double)config_.min_slope_span_ns) l.slope = 0.0;
    l.slope = std::clamp(l.slope, -config_.max_slope, config_.max_slope);
    return l;
  };
  syncwave::Line l = fit(rel);
  // Drop the points off the line (readings delayed between their reads) and refit.
  std::vector<Rel> kept;
  kept.reserve(rel.size());
  for (const Rel& r : rel)
    if (std::fabs(r.y - l.at(r.x)) <= (double)config_.outlier_ns) kept.push_back(r);
  if (!kept.empty() && kept.size() < rel.size()) l = fit(kept);

  line_.ref_clock_ns = ref.x;
  line_.offset_ns = ref.y + (int64_t)std::llround(l.at(0.0));
  line_.slope = l.slope;
}

void LiveStampCheck::reset() {
  judged_ = false;
  correction_ns_ = 0;
  bad_ = 0;
  min_age_ns_ = 0;
}

bool LiveStampCheck::in_bounds(int64_t age_ns, int64_t duration_ns) const {
  return age_ns >= -(duration_ns + config_.max_ahead_ns) &&
         age_ns <= latency_ns_ + config_.max_age_ns;
}

int64_t LiveStampCheck::check(int64_t stamp_ns, int64_t duration_ns, int64_t now_ns, bool recheck) {
  const int64_t plain_age = now_ns - (stamp_ns + duration_ns);
  if (recheck && correction_ns_ != 0) {
    // The mapping moved, so the old correction means nothing: start from this buffer.
    correction_ns_ = in_bounds(plain_age, duration_ns) ? 0 : plain_age;
    bad_ = 0;
    corrections_++;
  }
  if (in_bounds(plain_age - correction_ns_, duration_ns)) {
    bad_ = 0;
    judged_ = true;
    return stamp_ns + correction_ns_;
  }
  if (bad_ == 0 || plain_age < min_age_ns_) min_age_ns_ = plain_age;
  if (bad_ == 0 || plain_age > max_age_ns_) max_age_ns_ = plain_age;
  bad_++;
  // The first buffer has no history to weigh it against: judged alone.
  if (bad_ >= std::max(1u, config_.confirm) || !judged_) {
    judged_ = true;
    bad_ = 0;
    // Ages that fall buffer after buffer are a backlog being caught up (a stalled
    // thread), not stamps off the clock: wait for them to settle.
    if (max_age_ns_ - min_age_ns_ > config_.spread_ns) return stamp_ns + correction_ns_;
    correction_ns_ = in_bounds(min_age_ns_, duration_ns) ? 0 : min_age_ns_;
    corrections_++;
  }
  return stamp_ns + correction_ns_;
}

}  // namespace syncwave
