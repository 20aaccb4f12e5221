// SPDX-License-Identifier: LGPL-2.1-or-later
#include "skew_estimator.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "line_fit.h"
#include "time_units.h"

namespace syncwave {
namespace {

int64_t clamp_i64(uint64_t v) {
  return v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(v);
}

// a - b, saturated to the int64 range.
int64_t sat_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r))
    return b < 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return r;
}

}  // namespace

void SkewEstimator::reset() {
  has_base_ = false;
  base_send_ = 0;
  base_recv_ = 0;
  skew_ = 0;
  window_pos_ = 0;
  window_size_ = 0;
  window_filling_ = true;
  window_min_ = 0;
  bin_open_ = false;
  drift_points_.clear();
  has_prev_ = false;
  jitter_ = 0;
}

void SkewEstimator::resync(uint64_t send_ns, uint64_t recv_ns) {
  if (has_base_) resyncs_++;
  has_base_ = true;
  base_send_ = send_ns;
  base_recv_ = recv_ns;
  skew_ = 0;
  window_pos_ = 0;
  window_size_ = 0;
  window_filling_ = true;
  window_min_ = 0;
  bin_open_ = false;
  drift_points_.clear();
  has_prev_ = false;
}

uint64_t SkewEstimator::update(uint64_t send_ns, uint64_t recv_ns) {
  if (!time_valid(send_ns) || !time_valid(recv_ns)) return kTimeNone;
  if (!has_base_ || send_ns < base_send_) resync(send_ns, recv_ns);

  uint64_t send_diff = send_ns - base_send_;
  int64_t delta = sat_sub(time_diff(recv_ns, base_recv_), clamp_i64(send_diff));

  // The two timelines moved apart too fast: the sender restarted its timestamps
  // or a clock jumped. Take a new base.
  int64_t change = sat_sub(delta, skew_);
  if (change > static_cast<int64_t>(kResyncThreshold) ||
      change < -static_cast<int64_t>(kResyncThreshold)) {
    resync(send_ns, recv_ns);
    send_diff = 0;
    delta = 0;
  }

  // RFC 3550 interarrival jitter over packets in send order.
  if (has_prev_ && send_ns > prev_send_) {
    int64_t d = time_diff(recv_ns, prev_recv_) - time_diff(send_ns, prev_send_);
    double ad = std::fabs(static_cast<double>(d));
    jitter_ += (ad - jitter_) / 16.0;
  }
  if (!has_prev_ || send_ns > prev_send_) {
    has_prev_ = true;
    prev_send_ = send_ns;
    prev_recv_ = recv_ns;
  }

  update_window(delta, send_diff);
  update_drift(delta, send_diff);
  return map(send_ns);
}

void SkewEstimator::update_window(int64_t delta, uint64_t send_diff) {
  size_t pos = window_pos_;
  if (window_filling_) {
    window_[pos++] = delta;
    if (pos == 1 || delta < window_min_) window_min_ = delta;
    if (send_diff >= kWindowTime || pos >= kWindowPackets) {
      window_size_ = pos;
      skew_ = window_min_;
      window_filling_ = false;
    } else {
      // How full the window is, by time or by count; the fuller, the more the
      // minimum is trusted (parabolic weight, as rtpjitterbuffer does).
      int64_t perc_time = static_cast<int64_t>(send_diff / (kWindowTime / 100));
      int64_t perc_window = static_cast<int64_t>(pos * 100 / kWindowPackets);
      int64_t perc = std::max(perc_time, perc_window);
      perc = perc * perc;
      skew_ = (perc * window_min_ + (10000 - perc) * skew_) / 10000;
      window_size_ = pos + 1;
    }
  } else {
    int64_t old = window_[pos];
    window_[pos++] = delta;
    if (delta <= window_min_) {
      window_min_ = delta;
    } else if (old == window_min_) {
      int64_t min = std::numeric_limits<int64_t>::max();
      for (size_t i = 0; i < window_size_; i++) {
        if (window_[i] == old) {
          min = old;
          break;
        }
        min = std::min(min, window_[i]);
      }
      window_min_ = min;
    }
    skew_ = (window_min_ + 124 * skew_) / 125;
  }
  if (pos >= window_size_) pos = 0;
  window_pos_ = pos;
}

void SkewEstimator::update_drift(int64_t delta, uint64_t send_diff) {
  if (!bin_open_) {
    bin_open_ = true;
    bin_start_ = send_diff - send_diff % kDriftBin;
    bin_min_ = delta;
    return;
  }
  if (send_diff < bin_start_) return;  // reordered into a closed bin
  if (send_diff < bin_start_ + kDriftBin) {
    bin_min_ = std::min(bin_min_, delta);
    return;
  }
  drift_points_.push_back(
      {static_cast<double>(bin_start_ + kDriftBin / 2), static_cast<double>(bin_min_)});
  if (drift_points_.size() > kMaxDriftPoints) drift_points_.pop_front();
  bin_start_ = send_diff - send_diff % kDriftBin;
  bin_min_ = delta;
}

uint64_t SkewEstimator::map(uint64_t send_ns) const {
  if (!has_base_ || !time_valid(send_ns)) return kTimeNone;
  int64_t send_diff = time_diff(send_ns, base_send_);
  return time_add_signed(time_add_signed(base_recv_, send_diff), skew_);
}

int64_t SkewEstimator::offset_ns() const {
  if (!has_base_) return 0;
  return time_diff(base_recv_, base_send_) + skew_;
}

bool SkewEstimator::has_drift() const {
  if (drift_points_.size() < 3) return false;
  return drift_points_.back().x - drift_points_.front().x >= static_cast<double>(kMinDriftSpan);
}

double SkewEstimator::drift_ppm() const {
  if (!has_drift()) return 0.0;
  const Line line = fit_line(
      drift_points_, [](const Point& p) { return p.x; }, [](const Point& p) { return p.y; });
  return line.slope * 1e6;
}

}  // namespace syncwave
