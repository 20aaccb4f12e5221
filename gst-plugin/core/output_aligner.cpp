// SPDX-License-Identifier: LGPL-2.1-or-later
#include "output_aligner.h"

#include <cmath>

namespace syncwave {

OutputAligner::OutputAligner() : OutputAligner(Config{}) {}

OutputAligner::OutputAligner(const Config& config) : config_(config) {}

void OutputAligner::reset() {
  state_ = State::kSettling;
  have_k0_ = false;
  k0_ = 0;
  count_ = 0;
  sum_ns_ = 0.0;
  far_count_ = 0;
  have_level_ = false;
  jump_count_ = 0;
}

OutputAligner::Jump OutputAligner::jump(double error_ns, double rate) {
  Jump j;
  const bool settled = have_k0_ && state_ != State::kSettling;
  if (!settled || !std::isfinite(error_ns) || !(rate > 0) ||
      error_ns <= -(double)config_.max_step_ns || error_ns >= (double)config_.max_gap_ns) {
    reset();
    return j;
  }
  const int64_t frames = std::llround(error_ns * rate / 1e9);
  j.placed = true;
  if (frames > 0) j.gap_frames = frames;
  if (frames < 0) j.drop_frames = -frames;
  jumps_++;
  // Measured again from the next reading: one reading placed the new content to a few
  // frames; the average of the next ones decides whether a fine step is needed.
  state_ = State::kMeasuring;
  count_ = 0;
  sum_ns_ = 0.0;
  far_count_ = 0;
  have_level_ = false;
  jump_count_ = 0;
  return j;
}

OutputAligner::Result OutputAligner::observe(int64_t device_ns, int64_t k0, double error_ns,
                                             double rate) {
  Result r;
  if (!std::isfinite(error_ns) || rate <= 0) return r;
  if (have_k0_ && k0 != k0_) {
    // The sink put the stream somewhere else (it dropped late data, or resynced):
    // everything measured so far is about a placement that no longer exists.
    state_ = State::kSettling;
    count_ = 0;
    sum_ns_ = 0.0;
    far_count_ = 0;
  }
  have_k0_ = true;
  k0_ = k0;

  switch (state_) {
    case State::kSettling:
      if (device_ns < config_.settle_ns) return r;
      state_ = State::kMeasuring;
      count_ = 0;
      sum_ns_ = 0.0;
      [[fallthrough]];
    case State::kMeasuring: {
      sum_ns_ += error_ns;
      if (++count_ < config_.observations) return r;
      const double mean = sum_ns_ / count_;
      count_ = 0;
      sum_ns_ = 0.0;
      far_count_ = 0;
      have_level_ = false;
      jump_count_ = 0;
      if (std::fabs(mean) < config_.step_threshold_ns || std::fabs(mean) > config_.max_step_ns) {
        state_ = State::kTracking;
        r.error_valid = true;
        r.error_ns = error_ns;
        return r;
      }
      // Ahead (mean > 0): the content heard is newer than due; inserting frames
      // delays everything written from now on. Behind: drop.
      r.step_frames = std::llround(mean * rate / 1e9);
      if (r.step_frames == 0) {
        state_ = State::kTracking;
        return r;
      }
      steps_++;
      last_step_frames_ = r.step_frames;
      state_ = State::kTracking;
      far_count_ = 0;
      return r;
    }
    case State::kTracking:
      if (have_level_ && std::fabs(error_ns - level_ns_) > config_.jump_ns) {
        if (++jump_count_ >= config_.jump_count) {
          // The error moved at once, not by drift: the device jumped. Measure and
          // step rather than resample for seconds.
          state_ = State::kMeasuring;
          count_ = 0;
          sum_ns_ = 0.0;
          far_count_ = 0;
          have_level_ = false;
          jump_count_ = 0;
          return r;
        }
      } else {
        jump_count_ = 0;
        level_ns_ = have_level_ ? level_ns_ + 0.1 * (error_ns - level_ns_) : error_ns;
        have_level_ = true;
      }
      if (std::fabs(error_ns) > config_.reacquire_ns) {
        if (++far_count_ >= config_.reacquire_count) {
          // The device jumped (an underrun, the server changed its latency): measure
          // and step again rather than glide for minutes.
          state_ = State::kMeasuring;
          count_ = 0;
          sum_ns_ = 0.0;
          far_count_ = 0;
        }
        return r;
      }
      far_count_ = 0;
      r.error_valid = true;
      r.error_ns = error_ns;
      return r;
  }
  return r;
}

}  // namespace syncwave
