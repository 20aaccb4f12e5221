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
  points_.clear();
  pending_.clear();
  line_ = Mapping();
}

int64_t WallClockMap::to_wall(int64_t clock_ns) const {
  return valid_ ? line_.at(clock_ns) : clock_ns;
}

void WallClockMap::add(int64_t clock_before_ns, int64_t wall_ns, int64_t clock_after_ns) {
  stats_.readings++;
  const int64_t width = clock_after_ns - clock_before_ns;
  if (width < 0 || width > config_.max_read_ns) {
    stats_.slow_reads++;
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

}  // namespace syncwave
