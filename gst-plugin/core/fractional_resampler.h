// SPDX-License-Identifier: LGPL-2.1-or-later
// Resampling by a ratio close to 1 for drift correction: interleaved float32,
// Catmull-Rom (cubic Hermite) interpolation, continuous across buffers and across
// ratio changes. Pure C++: no GStreamer, no GLib.
//
// ratio = output frames per input frame (1.0001: a device 100 ppm fast). Changing
// the ratio costs nothing and never steps the signal: the read position keeps
// advancing from where it was, only its speed changes. A linear signal comes out
// exactly linear (no ripple). There is no delay on the timeline (output frame k is
// input position k/ratio); the last two input frames wait for the next buffer as
// look-ahead.
//
// GstAudioResampler was the first choice; its variable-rate mode rebuilds filter
// tables on every rate update (about 1 ms per update, far more with large
// allocations), which a loop that moves the ratio every buffer cannot afford.

#pragma once

#include <cstddef>
#include <vector>

namespace syncwave {

class FractionalResampler {
 public:
  explicit FractionalResampler(int channels = 1);

  void reset();  // forget the history; the next input starts a new signal
  void set_ratio(double ratio);
  double ratio() const { return ratio_; }
  int channels() const { return channels_; }

  // Resamples `frames` interleaved frames and appends the result to `out`. Returns
  // the number of frames appended.
  size_t process(const float* in, size_t frames, std::vector<float>* out);

 private:
  int channels_;
  double ratio_ = 1.0;
  double step_ = 1.0;  // input frames per output frame
  double pos_ = 0.0;   // read position in buf_, frames
  bool primed_ = false;
  std::vector<float> buf_;  // 3 history frames + the current input
};

}  // namespace syncwave
