// SPDX-License-Identifier: LGPL-2.1-or-later
// Drift correction for one audio output: the device's crystal runs slightly fast or
// slow against the shared clock, and the receiver absorbs the difference by
// resampling. Pure C++: no GStreamer, no GLib; time is passed in.
//
//   observations ──► rate estimator (windowed least squares of device vs clock time)
//                        │ feed-forward ε̂
//   phase error  ──► low-pass ──► PI ──► + ──► bound (±max) ──► slew limit ──► ratio
//
// ratio() is the resampling ratio to apply: output (device) frames per input
// (stream) frame. A device that runs 100 ppm fast consumes 1.0001 s of frames per
// second of shared clock, so it needs ratio 1.0001 to stay in place.
//
// The phase error is how far ahead (positive) or behind (negative) the device plays
// compared with where the shared clock says it should be, in nanoseconds. The PI
// term drives it to zero; the integral also absorbs any bias in the estimate, so
// the buffer level stays bounded however long the stream runs. The ratio moves by
// at most max_slew_ppm_per_s: the pitch change is inaudible and no sample is ever
// dropped or repeated.
//
// Loop dynamics, linearized: de/dt = ε - u, u = ε̂ + Kp·e + Ki·∫e, so with ε̂ = 0 the
// natural frequency is √Ki and the damping Kp / (2√Ki). The defaults (Kp 0.15/s,
// Ki 0.01/s²) settle a 100 ppm step in about a minute with ~1 ms peak error, and
// the feed-forward from the rate estimate shortens that to a few seconds.

#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace syncwave {

class DriftController {
 public:
  struct Config {
    double kp = 0.15;                 // 1/s: ratio correction per second of phase error
    double ki = 0.01;                 // 1/s²
    double max_ppm = 1000.0;          // bound on |ratio - 1|
    double max_slew_ppm_per_s = 200;  // how fast the ratio may move
    double error_tau_s = 0.5;         // low-pass of the phase error
    double rate_window_s = 30.0;      // span of the least-squares rate estimate
    double rate_min_span_s = 2.0;     // no feed-forward before this much history
    double rate_tau_s = 10.0;         // low-pass of the rate estimate
    bool feed_forward = true;         // use the device/clock rate estimate
    size_t max_points = 512;          // observations kept for the rate estimate
    double reset_error_s = 0.5;       // |error| beyond this: the stream jumped, start over
  };

  DriftController();
  explicit DriftController(const Config& config);

  // One observation at shared-clock time clock_ns: the device has played device_ns
  // of audio since it started (its frame position / nominal rate), and the audio it
  // plays is phase_error_ns ahead of the shared clock (negative: behind). Either may
  // be left out: has_device false when the output has no clock of its own.
  void update(int64_t clock_ns, int64_t device_ns, bool has_device, int64_t phase_error_ns);

  // Forget everything (new stream, format change, flush).
  void reset();

  double ratio() const { return 1.0 + u_; }
  // Estimated device rate error in ppm (+ = device fast): the applied steady-state
  // correction, i.e. the feed-forward estimate plus the integral term.
  double drift_ppm() const { return (ff_ + integral_) * 1e6; }
  // The rate estimate from device observations alone (0 until enough history).
  double measured_drift_ppm() const { return ff_valid_ ? ff_ * 1e6 : 0.0; }
  double filtered_error_ns() const { return err_f_ * 1e9; }
  uint64_t corrections() const { return corrections_; }
  uint64_t resets() const { return resets_; }
  const Config& config() const { return config_; }

 private:
  struct Point {
    int64_t clock_ns;
    int64_t device_ns;
  };
  bool estimate_rate(double* slope) const;

  Config config_;
  std::deque<Point> points_;
  bool started_ = false;
  int64_t last_clock_ns_ = 0;
  double err_f_ = 0.0;     // s
  double integral_ = 0.0;  // fraction
  double ff_ = 0.0;        // fraction
  bool ff_valid_ = false;
  double u_ = 0.0;  // fraction, applied
  uint64_t corrections_ = 0;
  uint64_t resets_ = 0;
};

}  // namespace syncwave
