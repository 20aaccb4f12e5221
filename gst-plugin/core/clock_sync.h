// SPDX-License-Identifier: LGPL-2.1-or-later
// The remote clock, estimated from request/response exchanges (the GstNetTimeProvider
// protocol, or any NTP-like one). Pure C++: times are passed in.
//
// An exchange: the client reads its clock (t1), asks, the server answers with its
// clock (r), the client reads its clock again (t2). If the two legs took equally
// long, r was read at local time (t1 + t2) / 2, so
//
//     offset = r - (t1 + t2) / 2,      |error| <= (t2 - t1) / 2
//
// The error bound is the round trip: exchanges that waited in a queue (a busy host,
// a congested network) have long round trips and wrong offsets. As Snapcast and
// NTP do, only the exchanges whose round trip is close to the shortest one in the
// window are trusted. Over seconds the offset moves linearly (the two crystals' rate
// difference): once the trusted exchanges span `min_span_ns`, a least-squares line
// through them gives offset and rate; before that, the median of their offsets,
// rate 1. A remote clock that jumps (a restarted sender) is followed after
// `jump_count` exchanges in a row disagree with the estimate by more than `jump_ns`.
//
// GStreamer's GstNetClientClock polls once a second and feeds every exchange to a
// 32-point regression; on a loopback link its estimate wandered by up to a
// millisecond over the first seconds, which is what two receivers then disagreed by.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace syncwave {

class ClockSync {
 public:
  struct Config {
    size_t max_exchanges = 128;           // exchanges kept ...
    int64_t window_ns = 30'000'000'000;   // ... over at most this long
    int64_t max_rtt_ns = 1'000'000'000;   // longer round trips are not used at all
    int64_t rtt_margin_ns = 40'000;       // trusted: rtt <= 1.5 * shortest + margin
    int64_t min_span_ns = 1'000'000'000;  // trusted span before the rate is fitted
    double max_rate_deviation = 500e-6;   // a fitted rate further off is clamped
    int64_t jump_ns = 20'000'000;         // a trusted exchange this far off the estimate
    int jump_count = 3;                   // ... this many in a row: start again
  };

  ClockSync() = default;
  explicit ClockSync(const Config& config) : config_(config) {}

  void reset();
  // One exchange; returns true when it was used (not dropped as bogus).
  bool add(int64_t t1_local, int64_t remote, int64_t t2_local);

  bool synced() const { return synced_; }
  // The remote clock's time at local time `local` (valid once synced()).
  int64_t remote_at(int64_t local) const;
  // Remote rate / local rate - 1, in ppm (0 until fitted).
  double drift_ppm() const { return rate_fitted_ ? slope_ * 1e6 : 0.0; }
  bool rate_fitted() const { return rate_fitted_; }

  int64_t min_rtt_ns() const { return min_rtt_; }
  uint64_t exchanges() const { return exchanges_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t restarts() const { return restarts_; }
  // Spread of the trusted offsets around the estimate (root mean square), in ns.
  double residual_ns() const { return residual_ns_; }

 private:
  struct Exchange {
    int64_t mid;     // local time of the remote reading
    int64_t offset;  // remote - mid, relative to base_offset_
    int64_t rtt;
  };
  void refit();

  Config config_;
  std::deque<Exchange> window_;
  bool synced_ = false;
  bool have_base_ = false;
  int64_t base_offset_ = 0;  // the first offset: the rest are kept relative to it
  int64_t t_ref_ = 0;
  double offset_ = 0.0;  // relative offset at t_ref_, ns
  double slope_ = 0.0;   // offset change per ns of local time
  bool rate_fitted_ = false;
  int64_t min_rtt_ = 0;
  double residual_ns_ = 0.0;
  int off_estimate_ = 0;
  uint64_t exchanges_ = 0;
  uint64_t dropped_ = 0;
  uint64_t restarts_ = 0;
};

}  // namespace syncwave
