// SPDX-License-Identifier: LGPL-2.1-or-later
#include "timestamp_aligner.h"

#include <algorithm>
#include <cmath>

namespace syncwave {

namespace {

uint64_t abs_diff(uint64_t a, uint64_t b) {
  return a > b ? a - b : b - a;
}

// Inputs are clamped so that every sum below stays far inside int64 (2^61 ns is
// 73 years past 2038; anything beyond is hostile or broken input).
constexpr uint64_t kMaxTimeNs = 1ull << 61;
constexpr uint64_t kMaxFrames = 1ull << 32;

// a * b / c without overflow for the magnitudes used here (frames * 1e9 / rate).
uint64_t mul_div(uint64_t a, uint64_t b, uint64_t c) {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b / c;
  return static_cast<uint64_t>(r);
}

}  // namespace

TimestampAligner::TimestampAligner(uint64_t threshold_ns) : threshold_ns_(threshold_ns) {}

void TimestampAligner::set_rate(uint32_t rate) {
  if (rate == 0) rate = 1;
  if (rate != rate_) {
    rate_ = rate;
    reset();
  }
}

void TimestampAligner::reset() {
  anchored_ = false;
  deviating_ = false;
  window_.clear();
}

double TimestampAligner::line_resid_at(double frame) const {
  // Clamped: hostile stamps (with a huge threshold) must not overflow the rounding.
  const double r = edge_ns_ + slope_ * (frame - mid_frame_);
  const double lim = (double)kMaxTimeNs;
  return std::isfinite(r) ? std::max(-lim, std::min(lim, r)) : 0.0;
}

uint64_t TimestampAligner::expected_sender_ns() const {
  const double r = line_resid_at((double)frames_since_anchor_);
  const int64_t t =
      (int64_t)(anchor_sender_ns_ + mul_div(frames_since_anchor_, 1000000000ull, rate_)) +
      (int64_t)std::llround(r);
  return t < 0 ? 0 : (uint64_t)t;
}

double TimestampAligner::drift_ppm() const {
  return slope_ / nominal_ns_per_frame() * 1e6;
}

void TimestampAligner::anchor(uint64_t sender_ns, int64_t offset_ns) {
  anchored_ = true;
  anchor_sender_ns_ = sender_ns;
  frames_since_anchor_ = 0;
  offset_ns_ = offset_ns;
  window_.clear();
  edge_ns_ = 0.0;
  slope_ = 0.0;
  mid_frame_ = 0.0;
}

void TimestampAligner::add_point(uint64_t frame, double resid_ns, uint64_t sender_ns) {
  window_.push_back(Point{frame, resid_ns});
  const uint64_t window_frames = mul_div(kWindowNs, rate_, 1000000000ull);
  while (window_.size() > kMaxPoints ||
         (window_.size() > 1 && frame - window_.front().frame > window_frames))
    window_.pop_front();
  // The full fit is O(points): on every packet while the window is young, then once
  // per kRefitNs of sender time. The period is cut by the stamps themselves, so every
  // receiver refits at the same packets. In between, a stamp below the line lowers
  // it at once (the edge of a bounded jitter is mostly its minimum).
  const uint64_t period = sender_ns / kRefitNs;
  if (window_.size() <= kAlwaysRefitPoints || period != refit_period_) {
    refit_period_ = period;
    refit();
  } else {
    const double r = resid_ns - slope_ * ((double)frame - mid_frame_);
    if (r < edge_ns_) edge_ns_ = r;
  }
}

// The k-th smallest of v (k = n * kEdgeQuantile): the lower edge of a set of residuals.
double TimestampAligner::lower_edge(std::vector<double>& v) {
  const size_t k = (size_t)((double)v.size() * kEdgeQuantile);
  std::nth_element(v.begin(), v.begin() + (long)k, v.end());
  return v[k];
}

void TimestampAligner::refit() {
  const size_t n = window_.size();
  if (n == 0) return;
  // Everything below is a function of the window's points only (and invariant to
  // where the count started): receivers holding the same points fit the same line.
  const double x0 = (double)window_.front().frame;
  double slope = 0.0;
  if (n >= 8) {
    // Slope: between the lower edges of the two halves of the window, refined once
    // on the residuals about the first estimate (a late stamp, a stall's backlog, do
    // not tilt it, as they would a least-squares slope). Shrunk towards 0 when the
    // edges are too uncertain to tell drift from jitter: edge noise ~ spread / points
    // for a bounded jitter, against the prior spread of drift.
    const size_t h = n / 2;
    double xa = 0.0, xb = 0.0;
    for (size_t i = 0; i < n; i++) (i < h ? xa : xb) += (double)window_[i].frame - x0;
    xa /= (double)h;
    xb /= (double)(n - h);
    const double dx = xb - xa;
    for (int iter = 0; iter < 2 && dx > 0.0; iter++) {
      lo_.clear();
      hi_.clear();
      for (size_t i = 0; i < n; i++) {
        const double r = window_[i].resid_ns - slope * ((double)window_[i].frame - x0);
        (i < h ? lo_ : hi_).push_back(r);
      }
      // Spread: median minus edge, over the first half.
      std::vector<double>& a = lo_;
      std::nth_element(a.begin(), a.begin() + (long)(a.size() / 2), a.end());
      const double median = a[a.size() / 2];
      const double ea = lower_edge(lo_);
      const double eb = lower_edge(hi_);
      const double raw = slope + (eb - ea) / dx;
      const double spread = std::max(0.0, 2.0 * (median - ea));
      const double edge_noise = spread * (1.0 + (double)h * kEdgeQuantile) / ((double)h + 1.0);
      const double slope_noise = 1.4142 * edge_noise / dx;
      const double prior = kDriftPriorPpm * 1e-6 * nominal_ns_per_frame();
      const double w = prior * prior / (prior * prior + slope_noise * slope_noise);
      slope = iter == 0 ? raw * w : slope + (raw - slope) * w;
      if (!std::isfinite(slope)) slope = 0.0;
    }
  }
  double mx = 0.0;
  for (const Point& p : window_) mx += (double)p.frame - x0;
  mx /= (double)n;
  slope_ = slope;
  mid_frame_ = x0 + mx;
  // Intercept: the lower edge of the residuals about that slope.
  scratch_.resize(n);
  size_t i = 0;
  for (const Point& p : window_)
    scratch_[i++] = p.resid_ns - slope * ((double)p.frame - mid_frame_);
  edge_ns_ = lower_edge(scratch_);

  // A slip: the newest second of stamps stands clearly above the edge of the whole
  // window (the count lost frames against the stamps: a loss reported for a gap that
  // was jitter, a late packet dropped, samples the sender skipped). The older points
  // describe a count that no longer holds: drop them, so the line follows the stamps
  // within a second instead of when they leave the window. (Stamps below the edge
  // move it at once.) The margin is well above what the minimum of a second of
  // bounded jitter strays from the true edge.
  const uint64_t recent_frames = mul_div(kSlipWindowNs, rate_, 1000000000ull);
  const uint64_t newest = window_.back().frame;
  if (newest - window_.front().frame > recent_frames) {
    recent_.clear();
    double spread_sum = 0.0;
    for (const Point& p : window_) {
      if (newest - p.frame > recent_frames) continue;
      const double r = p.resid_ns - slope * ((double)p.frame - mid_frame_);
      recent_.push_back(r);
      spread_sum += r - edge_ns_;
    }
    if (recent_.size() >= kSlipMinPoints) {
      const double m = (double)recent_.size();
      const double margin = std::max((double)kSlipMarginNs, 10.0 * 2.0 * (spread_sum / m) / m);
      if (lower_edge(recent_) - edge_ns_ > margin) {
        while (newest - window_.front().frame > recent_frames) window_.pop_front();
        slips_++;
        refit();
      }
    }
  }
}

TimestampAligner::Output TimestampAligner::push(uint64_t sender_ns, uint64_t frames,
                                                int64_t input_pts_ns, bool input_discont,
                                                bool observed) {
  Output out;
  if (sender_ns > kMaxTimeNs) sender_ns = kMaxTimeNs;
  if (frames > kMaxFrames) frames = kMaxFrames;
  if (input_pts_ns > static_cast<int64_t>(kMaxTimeNs)) input_pts_ns = kMaxTimeNs;
  const bool has_pts = input_pts_ns >= 0;
  const int64_t sender = static_cast<int64_t>(sender_ns);

  if (!anchored_ || input_discont) {
    int64_t offset;
    if (has_pts) {
      offset = input_pts_ns - sender;
      out.reanchored = true;
    } else if (have_end_pts_) {
      offset = end_pts_ns_ - sender;
    } else {
      offset = -sender;  // the timeline starts at 0
    }
    anchor(sender_ns, offset);
    out.discont = true;
    if (observed) add_point(0, 0.0, sender_ns);
  } else if (observed) {
    const uint64_t expected = expected_sender_ns();
    const uint64_t deviation = abs_diff(sender_ns, expected);
    bool restart = false;
    if (deviation < threshold_ns_) {
      deviating_ = false;
    } else if (discont_wait_ns_ == 0 || deviation >= resync_threshold_ns_) {
      restart = true;
    } else if (!deviating_) {
      deviating_ = true;
      deviating_since_ns_ = sender_ns;
    } else if (abs_diff(sender_ns, deviating_since_ns_) >= discont_wait_ns_) {
      restart = true;
    }
    if (restart) {
      deviating_ = false;
      // A real gap (or a step back): restart the timeline at this packet.
      int64_t offset = offset_ns_;
      const int64_t predicted = sender + offset;
      if (has_pts && static_cast<uint64_t>(predicted > input_pts_ns
                                               ? predicted - input_pts_ns
                                               : input_pts_ns - predicted) > resync_threshold_ns_) {
        offset = input_pts_ns - sender;
        out.reanchored = true;
      } else if (sender_ns < expected && !has_pts && have_end_pts_) {
        // Stepped back without input PTS: never go back in output time.
        offset = end_pts_ns_ - sender;
      }
      anchor(sender_ns, offset);
      out.discont = true;
      add_point(0, 0.0, sender_ns);
    } else if (!deviating_) {
      const double nominal =
          (double)(anchor_sender_ns_ + mul_div(frames_since_anchor_, 1000000000ull, rate_));
      add_point(frames_since_anchor_, (double)sender - nominal, sender_ns);
    }
  }

  // Place the packet on the line. The nominal part is exact integer arithmetic; the
  // fitted part is small (within the threshold of the nominal timeline).
  const uint64_t f0 = frames_since_anchor_;
  const uint64_t f1 = f0 + frames;
  const int64_t base = static_cast<int64_t>(anchor_sender_ns_) + offset_ns_;
  const int64_t start =
      base + (int64_t)mul_div(f0, 1000000000ull, rate_) + std::llround(line_resid_at((double)f0));
  const int64_t end =
      base + (int64_t)mul_div(f1, 1000000000ull, rate_) + std::llround(line_resid_at((double)f1));
  frames_since_anchor_ = f1;
  // Contiguous output: a packet starts where the previous one ended, unless the line
  // moved by half a packet or more since (then it starts on the line); its end is on
  // the line, so the line's refinement goes into the duration (ns to µs once
  // converged) and never shows as a gap or an overlap.
  out.pts_ns = start;
  if (have_end_pts_ && !out.discont && end > end_pts_ns_ &&
      (uint64_t)std::llabs(start - end_pts_ns_) < (uint64_t)(end - start) / 2 + 1)
    out.pts_ns = end_pts_ns_;
  out.duration_ns = end > out.pts_ns ? (uint64_t)(end - out.pts_ns) : 0;
  have_end_pts_ = true;
  end_pts_ns_ = out.pts_ns + (int64_t)out.duration_ns;
  return out;
}

}  // namespace syncwave
