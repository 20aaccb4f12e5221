// SPDX-License-Identifier: LGPL-2.1-or-later
#include "fractional_resampler.h"

#include <cmath>

namespace syncwave {

namespace {
constexpr size_t kHistory = 3;  // frames kept from the previous input
}

FractionalResampler::FractionalResampler(int channels) : channels_(channels > 0 ? channels : 1) {}

void FractionalResampler::reset() {
  primed_ = false;
  pos_ = 0.0;
  buf_.clear();
}

void FractionalResampler::set_ratio(double ratio) {
  if (!(ratio > 0.5 && ratio < 2.0)) return;  // refuse nonsense, keep the last ratio
  ratio_ = ratio;
  step_ = 1.0 / ratio;
}

size_t FractionalResampler::process(const float* in, size_t frames, std::vector<float>* out) {
  if (frames == 0 || in == nullptr) return 0;
  const size_t ch = static_cast<size_t>(channels_);
  if (!primed_) {
    // History: the first frame repeated (the interpolation's left neighbours), so the
    // output starts exactly on the signal's first frame with no ramp from silence.
    buf_.assign(kHistory * ch, 0.0f);
    for (size_t h = 0; h < kHistory; h++)
      for (size_t c = 0; c < ch; c++) buf_[h * ch + c] = in[c];
    pos_ = static_cast<double>(kHistory);
    primed_ = true;
  }
  buf_.insert(buf_.end(), in, in + frames * ch);
  const size_t n = buf_.size() / ch;
  size_t produced = 0;
  // Frame i needs i-1 .. i+2.
  for (;;) {
    const double fl = std::floor(pos_);
    const size_t i = static_cast<size_t>(fl);
    if (i + 2 >= n) break;
    const float t = static_cast<float>(pos_ - fl);
    const float* xm1 = &buf_[(i - 1) * ch];
    const float* x0 = &buf_[i * ch];
    const float* x1 = &buf_[(i + 1) * ch];
    const float* x2 = &buf_[(i + 2) * ch];
    for (size_t c = 0; c < ch; c++) {
      const float c1 = 0.5f * (x1[c] - xm1[c]);
      const float c2 = xm1[c] - 2.5f * x0[c] + 2.0f * x1[c] - 0.5f * x2[c];
      const float c3 = 0.5f * (x2[c] - xm1[c]) + 1.5f * (x0[c] - x1[c]);
      out->push_back(((c3 * t + c2) * t + c1) * t + x0[c]);
    }
    produced++;
    pos_ += step_;
  }
  // Keep the last kHistory frames; move the read position with them.
  const size_t drop = n - kHistory;
  buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(drop * ch));
  pos_ -= static_cast<double>(drop);
  return produced;
}

}  // namespace syncwave
