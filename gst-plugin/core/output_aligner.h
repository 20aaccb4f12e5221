// SPDX-License-Identifier: LGPL-2.1-or-later
// Absolute placement of a stream on an audio output: which content the device plays
// now, against which content the shared clock says it should play. Pure C++: no
// GStreamer, no GLib; time and positions are passed in.
//
// The receiver writes its output frames 0, 1, 2, ... contiguously into the device;
// the audio sink put output frame 0 at device index k0 (the sink chooses it from its
// own clock calibration, which at the start of a stream is often milliseconds off:
// PulseAudio's stream clock stands still until the stream is uncorked). The device
// reports the index it plays now (PulseAudio: pa_stream_get_time, the play position
// with the server's latency taken off). So the output frame heard now is
// device_index - k0, its content is known from what was written, and
//
//     error = content heard now - content due now      (> 0: the device is ahead)
//
// is an absolute measurement: not a change since some anchor, but the offset a
// listener hears between this output and the shared clock.
//
// The error is taken at the write position: the frame about to be written will be
// heard (device index - play position) / rate from now, so
//
//     error = content of that frame - content due when it is heard
//
// which moves at once with every frame dropped, inserted or resampled, whereas the
// error at the play position only shows them after the device's queue (tens to
// hundreds of ms): a loop on the latter has that queue as a dead time in it.
//
// The aligner turns those observations into two kinds of correction:
//   - a step, once, when the output is first measured (and again if the device
//     jumps, e.g. after an underrun): the average error over `observations`
//     readings, taken after the device has run `settle_ns`, is removed by inserting
//     (device ahead) or dropping (device behind) that many frames at the write
//     position. A stream joined late or placed badly is in place within a fraction
//     of a second instead of the minutes a rate correction of ±1000 ppm would take.
//   - from then on, the error itself, for the drift controller (a PI loop on the
//     resampling ratio).
//
//   observe() ──► settling ──► measuring ──┬──► step ──► tracking
//                    ▲             ▲       └───────────► tracking
//                    │             └── the error left its recent level by `jump_ns`
//                    │                 for `jump_count` readings (the device jumped:
//                    │                 an underrun), or stayed beyond `reacquire_ns`
//                    │                 for `reacquire_count` readings
//                    └── k0 changed (the sink re-placed the stream)
//
// When the content jumps while the output runs on (another sender took over, a sender
// came back after an outage), jump() places the new content at once from one reading:
// the device's position is still known, so the output keeps its timeline and leaves a
// gap (or drops late content) instead of starting a new timeline that the audio sink
// places from its own clock calibration. That calibration is taken once, when the
// sink starts, and is off by as long as the device stalled then (1.9 s on a freshly
// started PulseAudio null sink): a new timeline placed by it was heard that much late,
// silence until the aligner dropped it again.
#pragma once

#include <cstdint>

namespace syncwave {

class OutputAligner {
 public:
  struct Config {
    int64_t settle_ns = 300'000'000;      // device time before the first measurement
    int observations = 24;                // readings averaged for a step decision
    int64_t step_threshold_ns = 60'000;   // smaller errors are left to the drift loop
    int64_t reacquire_ns = 3'000'000;     // an error this large while tracking ...
    int reacquire_count = 8;              // ... this many readings in a row: measure again
    int64_t jump_ns = 150'000;            // the error this far from its recent level ...
    int jump_count = 3;                   // ... this many readings in a row: the device
                                          // jumped (an underrun): measure and step again
    int64_t max_step_ns = 2'000'000'000;  // larger errors are not this output's to fix
    int64_t max_gap_ns = 60'000'000'000;  // jump(): new content further ahead than this
                                          // starts a new timeline instead of a gap
  };

  struct Result {
    bool error_valid = false;  // error_ns is for the drift loop
    double error_ns = 0.0;
    int64_t step_frames = 0;  // > 0: insert this many frames now; < 0: drop -step_frames
  };

  // What to do with content that jumped (jump()).
  struct Jump {
    bool placed = false;      // false: start a new output timeline (the sink places it)
    int64_t gap_frames = 0;   // > 0: leave this many output frames empty before it
    int64_t drop_frames = 0;  // > 0: drop this many frames of it (it is late)
  };

  OutputAligner();
  explicit OutputAligner(const Config& config);

  // One observation, made just before the next output frame is written:
  //   device_ns  how long the device has played (its clock, for settling)
  //   k0         device index of output frame 0 (changes when the sink re-places)
  //   error_ns   content of the next frame minus the content due when it is heard
  //   rate       frames per second
  Result observe(int64_t device_ns, int64_t k0, double error_ns, double rate);

  // The content jumped; `error_ns` is the new content's error at the write position
  // (as for observe(): > 0 it is due later than it would be heard). Placed when the
  // device has settled and the error is within (-max_step_ns, max_gap_ns): the caller
  // keeps its output timeline, skips or drops the frames returned, and the aligner
  // measures again (without settling: the device did not move). Otherwise, or with
  // garbage, not placed: the aligner starts over as after reset().
  Jump jump(double error_ns, double rate);

  void reset();

  uint64_t steps() const { return steps_; }
  uint64_t jumps() const { return jumps_; }  // content jumps placed by jump()
  int64_t last_step_frames() const { return last_step_frames_; }
  bool tracking() const { return state_ == State::kTracking; }
  const Config& config() const { return config_; }

 private:
  enum class State { kSettling, kMeasuring, kTracking };

  Config config_;
  State state_ = State::kSettling;
  bool have_k0_ = false;
  int64_t k0_ = 0;
  int count_ = 0;
  double sum_ns_ = 0.0;
  int far_count_ = 0;
  bool have_level_ = false;  // level_ns_: the recent error (exponential average)
  double level_ns_ = 0.0;
  int jump_count_ = 0;
  uint64_t steps_ = 0;
  uint64_t jumps_ = 0;
  int64_t last_step_frames_ = 0;
};

}  // namespace syncwave
