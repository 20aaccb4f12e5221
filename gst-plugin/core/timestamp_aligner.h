// SPDX-License-Identifier: LGPL-2.1-or-later
// Sample timeline of the depayloader: where each received sample goes, as a function
// of the stream, the same for every receiver whenever it joined.
//
// A sender stamps each packet with the sender time of its first sample. An original
// SyncWave sender (or any callback-driven capture) stamps when its callback runs, so
// the stamps are late by a varying 0..R ms (scheduling), and a receiver that anchored
// its timeline on the first stamp it saw would place the stream up to R ms off, by a
// different amount in every receiver. Instead the timeline is a line fitted to
// (cumulative sample count, stamp) over a long window:
//
//   stamp_i = S0 + nominal * frames_i + r_i           nominal = 1e9 / rate ns/frame
//   line(f) = S0 + nominal * f + c + d * (f - f_mid)
//
//   d  drift of the sender's sample clock against its stamps (ns/frame): the slope
//      between the lower edges of r in the window's two halves (refined once),
//      shrunk towards 0 while the window is too short to tell drift from jitter
//      (prior: |drift| of the order of 30 ppm)
//   c  a low quantile (0.2 %; the minimum under 500 points) of r - d * (f - f_mid): the
//      stamps' lower edge. Stamps are late, never early, so the edge is the capture
//      time itself, and the order statistic of a bounded jitter converges as 1/n
//      (the mean only as 1/sqrt(n)): receivers that joined at different packets agree
//      to a few µs within a second or two. The quantile instead of the minimum keeps
//      one early outlier from moving the line.
//
// Every receiver counts the same frames (lost packets included: the jitter buffer's
// loss events advance the count, see push(observed = false)), so receivers see the
// same points shifted by a constant count, and fit the same line. When a receiver's
// count slips against the stamps (a loss reported for what was only jitter, then the
// packet dropped as late), its newest second of stamps stands above the line: the
// fit restarts on that second (a slip, see kSlipWindowNs), and the receiver is back
// on the stream's line within about a second.
//
// output pts of a packet = the end of the previous one (line(frames before it) +
// offset when the line moved by half a packet or more, and after an anchor), end =
// line(frames up to its end) + offset: consecutive packets are contiguous, the line's
// refinement (µs once converged) goes into the durations.
//
// Discontinuity: a stamp more than `threshold` from the line, for `discont wait` of
// sender time (at once when the wait is 0 or the deviation is 1 s or more), restarts
// the timeline at that packet with an empty window, like audiobasesink's alignment
// threshold and discont-wait. The wait covers the backlog an original sender sends
// after a stall, all stamped late; stamps that deviate are not fitted. An input
// DISCONT, reset() and a rate change restart at once.
//
// offset maps sender time to the output timeline: offset = input PTS - sender time,
// taken when the timeline is anchored (first packet, reset(), an input DISCONT) and
// kept across restarts unless the input PTS disagrees by more than the resync
// threshold (a sender restarted on another timebase). Without input PTS the output
// continues where the previous packet ended.
//
// Pure C++: no GStreamer; all times in nanoseconds, passed in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace syncwave {

class TimestampAligner {
 public:
  static constexpr uint64_t kDefaultThresholdNs = 40000000;          // 40 ms
  static constexpr uint64_t kDefaultResyncThresholdNs = 1000000000;  // 1 s
  // The fit's window: the newest points covering this much sender time ...
  static constexpr uint64_t kWindowNs = 10000000000ull;  // 10 s
  // ... and at most this many (the fit is O(points) per packet).
  static constexpr size_t kMaxPoints = 4096;
  // Quantile of the residuals taken as the stamps' lower edge.
  static constexpr double kEdgeQuantile = 0.002;
  // The full fit runs on every packet for the first kAlwaysRefitPoints, then once per
  // kRefitNs of sender time (a new lower stamp moves the line at once in between).
  static constexpr size_t kAlwaysRefitPoints = 256;
  static constexpr uint64_t kRefitNs = 50000000;  // 50 ms
  // Slip detection: the lower edge of the newest kSlipWindowNs of stamps (at least
  // kSlipMinPoints) above the window's by more than kSlipMarginNs (or ten times
  // what a minimum of that many points strays) restarts the fit there.
  static constexpr uint64_t kSlipWindowNs = 1000000000ull;  // 1 s
  static constexpr size_t kSlipMinPoints = 32;
  static constexpr uint64_t kSlipMarginNs = 500000;  // 0.5 ms
  // Prior spread of the sender's drift, in ppm (shrinks the slope of short windows).
  static constexpr double kDriftPriorPpm = 30.0;

  struct Output {
    int64_t pts_ns = 0;        // may be negative only if the input PTS was
    uint64_t duration_ns = 0;  // the packet's length on the timeline
    bool discont = false;      // first output after an anchor or a gap
    bool reanchored = false;   // offset was (re)taken from the input PTS
  };

  explicit TimestampAligner(uint64_t threshold_ns = kDefaultThresholdNs);

  void set_threshold(uint64_t threshold_ns) { threshold_ns_ = threshold_ns; }
  uint64_t threshold() const { return threshold_ns_; }
  // How long (sender time) a deviation must last before it is a discontinuity; 0 =
  // at once (the default).
  void set_discont_wait(uint64_t wait_ns) { discont_wait_ns_ = wait_ns; }
  uint64_t discont_wait() const { return discont_wait_ns_; }

  // Sample rate of the timeline; changing it re-anchors.
  void set_rate(uint32_t rate);
  uint32_t rate() const { return rate_; }

  // Forgets the timeline: the next push() anchors anew and is marked discont.
  void reset();
  bool anchored() const { return anchored_; }

  // One packet of `frames` samples whose first sample has sender time `sender_ns`.
  // input_pts_ns < 0 means the input buffer carried no PTS. input_discont forces a
  // new anchor. observed = false for frames that were not received (a loss): they
  // advance the count and are placed, but their stamp (a guess) is not fitted.
  // Times above 2^61 ns and more than 2^32 frames are clamped (hostile input cannot
  // overflow the arithmetic).
  Output push(uint64_t sender_ns, uint64_t frames, int64_t input_pts_ns, bool input_discont,
              bool observed = true);

  // Sender time the timeline gives the next sample (valid once anchored).
  uint64_t expected_sender_ns() const;
  // Fitted drift of the sender's sample clock against its stamps, in ppm.
  double drift_ppm() const;
  // Points in the fit's window.
  size_t points() const { return window_.size(); }
  // Slips found (the count lost against the stamps; the fit restarted on them).
  uint64_t slips() const { return slips_; }

 private:
  struct Point {
    uint64_t frame;   // frames since the anchor at the packet's first sample
    double resid_ns;  // stamp - (anchor + nominal * frame)
  };

  double nominal_ns_per_frame() const { return 1e9 / (double)rate_; }
  // Offset of the line from the nominal timeline at frame f, in ns.
  double line_resid_at(double frame) const;
  void anchor(uint64_t sender_ns, int64_t offset_ns);
  void add_point(uint64_t frame, double resid_ns, uint64_t sender_ns);
  void refit();
  static double lower_edge(std::vector<double>& v);

  uint64_t threshold_ns_;
  uint64_t resync_threshold_ns_ = kDefaultResyncThresholdNs;
  uint64_t discont_wait_ns_ = 0;
  bool deviating_ = false;           // a deviation is being waited out
  uint64_t deviating_since_ns_ = 0;  // sender time of its first packet
  uint32_t rate_ = 48000;
  bool anchored_ = false;
  // The timeline: sender time of the anchor sample plus frames since.
  uint64_t anchor_sender_ns_ = 0;
  uint64_t frames_since_anchor_ = 0;
  int64_t offset_ns_ = 0;
  bool have_end_pts_ = false;
  int64_t end_pts_ns_ = 0;  // output time where the last packet ended
  // The fit.
  std::deque<Point> window_;
  std::vector<double> scratch_, lo_, hi_, recent_;
  uint64_t slips_ = 0;
  uint64_t refit_period_ = 0;  // sender time / kRefitNs at the last full fit
  double edge_ns_ = 0.0;       // c
  double slope_ = 0.0;         // d, ns per frame
  double mid_frame_ = 0.0;     // f_mid
};

}  // namespace syncwave
