#include "timestamp_aligner.h"

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
}

uint64_t TimestampAligner::frames_to_ns(uint64_t frames) const {
  return mul_div(frames, 1000000000ull, rate_);
}

uint64_t TimestampAligner::expected_sender_ns() const {
  return anchor_sender_ns_ + frames_to_ns(frames_since_anchor_);
}

void TimestampAligner::anchor(uint64_t sender_ns, int64_t offset_ns) {
  anchored_ = true;
  anchor_sender_ns_ = sender_ns;
  frames_since_anchor_ = 0;
  offset_ns_ = offset_ns;
}

TimestampAligner::Output TimestampAligner::push(uint64_t sender_ns, uint64_t frames,
                                                int64_t input_pts_ns, bool input_discont) {
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
  } else {
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
    }
  }

  const uint64_t start = frames_to_ns(frames_since_anchor_);
  const uint64_t end = frames_to_ns(frames_since_anchor_ + frames);
  frames_since_anchor_ += frames;
  out.pts_ns = static_cast<int64_t>(anchor_sender_ns_ + start) + offset_ns_;
  out.duration_ns = end - start;
  have_end_pts_ = true;
  end_pts_ns_ = out.pts_ns + static_cast<int64_t>(out.duration_ns);
  return out;
}

}  // namespace syncwave
