// SPDX-License-Identifier: LGPL-2.1-or-later
// Least-squares line through a set of points. Pure C++, header-only.
//
//   Line l = fit_line(points, [](const P& p) { return x; }, [](const P& p) { return y; });
//   y(x) = l.y_mean + l.slope * (x - l.x_mean)
//
// The sums are taken around the means, so x and y may be large (ns on a clock) as
// long as their spread is not: callers pass x relative to a reference point.
#pragma once

#include <cmath>
#include <cstddef>

namespace syncwave {

struct Line {
  double x_mean = 0.0;
  double y_mean = 0.0;
  double slope = 0.0;
  bool has_slope = false;  // false with fewer than two distinct x
  double at(double x) const { return y_mean + slope * (x - x_mean); }
};

template <typename Points, typename X, typename Y>
Line fit_line(const Points& points, X x_of, Y y_of) {
  Line l;
  size_t n = 0;
  for (const auto& p : points) {
    l.x_mean += x_of(p);
    l.y_mean += y_of(p);
    n++;
  }
  if (n == 0) return l;
  l.x_mean /= (double)n;
  l.y_mean /= (double)n;
  double sxx = 0.0, sxy = 0.0;
  for (const auto& p : points) {
    const double dx = x_of(p) - l.x_mean;
    sxx += dx * dx;
    sxy += dx * (y_of(p) - l.y_mean);
  }
  if (sxx > 0.0) {
    l.slope = sxy / sxx;
    l.has_slope = std::isfinite(l.slope);
    if (!l.has_slope) l.slope = 0.0;
  }
  return l;
}

}  // namespace syncwave
