// SPDX-License-Identifier: LGPL-2.1-or-later
// Maps sender time to receiver time from packet arrivals, with skew estimation.
//
// After GStreamer's rtpjitterbuffer.c calculate_skew(): for every packet,
// delta = (arrival - base arrival) - (send - base send). Network jitter only ever
// makes a packet later, so the minimum of delta over a sliding window (512 packets
// or 2 s) is the clean offset; the skew follows that minimum slowly, and the
// smoothed arrival time of a packet is base arrival + (send - base send) + skew.
// That is what syncwavejitter's `slave` mode uses as output time: smooth, follows
// the sender's rate, but not synchronized across receivers.
//
// It also measures, for statistics in any mode:
//   - offset: arrival - send, minimum-filtered (transit time plus clock offset);
//   - drift: the slope of that offset over send time, in ppm, from a least-squares
//     fit over per-second minima (known after kMinDriftSpan of stream);
//   - jitter: RFC 3550 interarrival jitter.
//
// Plain C++: times are passed in, nothing reads a clock.

#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>

namespace syncwave {

class SkewEstimator {
 public:
  static constexpr size_t kWindowPackets = 512;
  static constexpr uint64_t kWindowTime = 2'000'000'000;       // ns
  static constexpr uint64_t kResyncThreshold = 1'000'000'000;  // ns
  static constexpr uint64_t kDriftBin = 1'000'000'000;         // ns of send time per point
  static constexpr size_t kMaxDriftPoints = 300;
  static constexpr uint64_t kMinDriftSpan = 10'000'000'000;  // ns

  SkewEstimator() { reset(); }

  // Forgets everything; the next update() takes a new base.
  void reset();

  // Feeds one packet: its send time on the sender's timeline and its arrival time
  // on the receiver's, both in ns. Returns the smoothed arrival time of `send_ns`
  // (kTimeNone when an argument is kTimeNone).
  uint64_t update(uint64_t send_ns, uint64_t recv_ns);

  // Smoothed arrival time for a send time, without feeding anything (kTimeNone
  // before the first update()).
  uint64_t map(uint64_t send_ns) const;

  bool has_base() const { return has_base_; }
  // Current skew (ns): how much later than the base packet the clean path is.
  int64_t skew_ns() const { return skew_; }
  // Minimum-filtered arrival - send (ns), valid when has_base().
  int64_t offset_ns() const;
  bool has_drift() const;
  // Receiver time gained per sender time, in parts per million (positive when
  // the receiver's clock runs fast relative to the sender's).
  double drift_ppm() const;
  uint64_t jitter_ns() const { return static_cast<uint64_t>(jitter_); }
  // How many times the mapping was re-based (sender restart, time jump).
  uint64_t resyncs() const { return resyncs_; }

 private:
  void resync(uint64_t send_ns, uint64_t recv_ns);
  void update_window(int64_t delta, uint64_t send_diff);
  void update_drift(int64_t delta, uint64_t send_diff);

  bool has_base_ = false;
  uint64_t base_send_ = 0;
  uint64_t base_recv_ = 0;
  int64_t skew_ = 0;

  std::array<int64_t, kWindowPackets> window_{};
  size_t window_pos_ = 0;
  size_t window_size_ = 0;
  bool window_filling_ = true;
  int64_t window_min_ = 0;

  // Drift: per-bin minimum of delta, then a line through the bins.
  bool bin_open_ = false;
  uint64_t bin_start_ = 0;
  int64_t bin_min_ = 0;
  struct Point {
    double x;  // send_diff, ns
    double y;  // minimum delta, ns
  };
  std::deque<Point> drift_points_;

  bool has_prev_ = false;
  uint64_t prev_send_ = 0;
  uint64_t prev_recv_ = 0;
  double jitter_ = 0;

  uint64_t resyncs_ = 0;
};

}  // namespace syncwave
