// SPDX-License-Identifier: LGPL-2.1-or-later
// Where an audio device plays, fitted from the audio server's reports. Pure C++: no
// GStreamer, no GLib; times and positions are passed in.
//
// An audio server tells, when asked, which frame of a stream its device plays at a
// given moment (PulseAudio: the read index minus the sink's latency, stamped with
// the server's clock at the moment it was taken). One report is exact to a few
// microseconds on an idle machine, but a busy one delays the server's timestamp
// after the snapshot, so single reports scatter by tens to hundreds of µs. The
// device's clock is a crystal: over seconds the play position is a straight line
// against the host's clock. This class fits that line by least squares over the
// last `window_ns` of reports, drops reports far off the line (a preempted server
// thread) and starts again when the device jumps (an underrun, a flush): the last
// `restart_count` reports all off the line by more than `jump_ns` (or
// `jump_residuals` times the fit's residual, on a noisy server).
//
//   add(t, position) ──► fit over the window ──► position_at(t), rate()
//
// Until the reports span `min_span_ns`, the slope is the nominal rate and only the
// offset is fitted (an offset from a few reports is good; a slope is not).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace syncwave {

class PlayPositionFit {
 public:
  struct Config {
    int64_t window_ns = 4'000'000'000;    // reports older than this are forgotten
    size_t max_reports = 512;             // and at most this many are kept
    int64_t min_span_ns = 1'000'000'000;  // span before the slope is fitted
    double outlier_ns = 80'000;           // a report this far off the line is dropped ...
    double outlier_mads = 4.0;            // ... or this many median deviations, if more
    double jump_ns = 150'000;             // a report this far off the line ...
    double jump_residuals = 10.0;         // ... (or this many residuals, if more) is a
    int restart_count = 3;                // jump candidate; this many in a row: start again
    double max_rate_deviation = 0.01;     // a fitted slope further off nominal is not used
  };

  PlayPositionFit() = default;
  explicit PlayPositionFit(const Config& config) : config_(config) {}

  // Forgets everything; positions are frames at `nominal_rate` frames per second.
  void reset(double nominal_rate);
  // Forgets the reports (the device jumped: an underrun, a flush), keeps the counters.
  void restart();

  // The device played frame `position` (fractional) at time `t_ns` of the host's clock.
  void add(int64_t t_ns, double position);

  bool valid() const { return valid_; }
  // The frame the device plays at `t_ns` (extrapolated from the fit).
  double position_at(int64_t t_ns) const;
  // The fitted rate in frames per second (the nominal rate until the slope is fitted).
  double rate() const { return valid_ ? slope_ * 1e9 : nominal_rate_; }
  // The fitted rate against the nominal one, in ppm (0 until the slope is fitted).
  double drift_ppm() const;

  uint64_t reports() const { return reports_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t restarts() const { return restarts_; }
  // Root mean square of the kept reports' distance from the line, in ns.
  double residual_ns() const { return residual_ns_; }

 private:
  struct Report {
    int64_t t_ns;
    double position;
  };
  void refit();
  double predict(int64_t t_ns) const { return offset_ + slope_ * (double)(t_ns - t_ref_); }

  Config config_;
  double nominal_rate_ = 48000.0;
  std::deque<Report> window_;
  bool valid_ = false;
  bool slope_fitted_ = false;
  int64_t t_ref_ = 0;    // the line is offset_ + slope_ * (t - t_ref_)
  double offset_ = 0.0;  // frames
  double slope_ = 0.0;   // frames per ns
  double residual_ns_ = 0.0;
  int off_line_ = 0;  // jump candidates in a row
  uint64_t reports_ = 0;
  uint64_t dropped_ = 0;
  uint64_t restarts_ = 0;
};

}  // namespace syncwave
