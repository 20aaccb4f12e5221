// SPDX-License-Identifier: LGPL-2.1-or-later
// The drift resampler: exact on a ramp, frame count follows the ratio, continuous
// across buffers and ratio changes.

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "fractional_resampler.h"

using syncwave::FractionalResampler;

namespace {

std::vector<float> ramp(size_t start, size_t frames, int channels) {
  std::vector<float> v(frames * channels);
  for (size_t i = 0; i < frames; i++)
    for (int c = 0; c < channels; c++)
      v[i * channels + c] = static_cast<float>(start + i) + c * 0.5f;
  return v;
}

}  // namespace

TEST(FractionalResampler, UnityRatioIsAnExactCopy) {
  FractionalResampler r(2);
  std::vector<float> out;
  for (size_t b = 0; b < 10; b++) {
    auto in = ramp(1 + b * 480, 480, 2);
    r.process(in.data(), 480, &out);
  }
  // No delay: output frame k is input frame k; the last two wait for more input.
  ASSERT_EQ(out.size() / 2, 4800u - 2);
  for (size_t i = 0; i < out.size() / 2; i++) {
    EXPECT_FLOAT_EQ(out[i * 2], static_cast<float>(i + 1)) << i;
    EXPECT_FLOAT_EQ(out[i * 2 + 1], static_cast<float>(i + 1) + 0.5f) << i;
  }
}

TEST(FractionalResampler, FrameCountFollowsTheRatio) {
  for (double ppm : {100.0, -100.0, 1000.0, -1000.0}) {
    FractionalResampler r(1);
    r.set_ratio(1.0 + ppm * 1e-6);
    std::vector<float> out;
    size_t in_frames = 0, produced = 0;
    for (size_t b = 0; b < 1000; b++) {
      auto in = ramp(1 + in_frames, 480, 1);
      produced += r.process(in.data(), 480, &out);
      in_frames += 480;
    }
    double expected = in_frames * (1.0 + ppm * 1e-6);
    EXPECT_NEAR(static_cast<double>(produced), expected, 3.0) << ppm;
    EXPECT_EQ(produced, out.size());
  }
}

TEST(FractionalResampler, RampStaysARampAcrossBuffersAndRatioChanges) {
  // Small values keep float32 exact enough to see a 1e-3 step error.
  FractionalResampler r(1);
  std::vector<float> out;
  size_t in_frames = 0;
  for (size_t b = 0; b < 200; b++) {
    r.set_ratio(1.0 + (static_cast<double>(b % 7) - 3.0) * 3e-4);
    std::vector<float> in(480);
    for (size_t i = 0; i < 480; i++) in[i] = static_cast<float>(in_frames + i) * 1e-3f;
    r.process(in.data(), 480, &out);
    in_frames += 480;
  }
  // Every output step is one input step scaled by 1/ratio: never 0 or 2 (no repeated
  // or dropped frame), never outside the ratio range.
  for (size_t i = 2; i < out.size(); i++) {
    double step = (out[i] - out[i - 1]) / 1e-3;
    EXPECT_GT(step, 0.95) << i;  // float32 resolution at ~100 is ~1 % of a step
    EXPECT_LT(step, 1.05) << i;
  }
}

TEST(FractionalResampler, SineStaysClean) {
  // A 1 kHz sine resampled by 500 ppm stays a sine: amplitude within 0.1 %.
  FractionalResampler r(1);
  r.set_ratio(1.0005);
  std::vector<float> out;
  const double w = 2 * M_PI * 1000.0 / 48000.0;
  for (size_t b = 0; b < 100; b++) {
    std::vector<float> in(480);
    for (size_t i = 0; i < 480; i++) in[i] = static_cast<float>(std::sin(w * (b * 480 + i)));
    r.process(in.data(), 480, &out);
  }
  float peak = 0;
  for (size_t i = 100; i < out.size(); i++) peak = std::max(peak, std::fabs(out[i]));
  EXPECT_NEAR(peak, 1.0f, 1e-3f);
}

TEST(FractionalResampler, RefusesNonsenseRatios) {
  FractionalResampler r(1);
  r.set_ratio(1.001);
  r.set_ratio(0.0);
  r.set_ratio(NAN);
  r.set_ratio(5.0);
  EXPECT_DOUBLE_EQ(r.ratio(), 1.001);
}
