// SPDX-License-Identifier: LGPL-2.1-or-later
#include "audio_analysis.h"

#include <cmath>

namespace syncwave_test {

namespace {
constexpr double kPi = 3.14159265358979323846;
}  // namespace

std::vector<float> make_tone(double freq, double amplitude, uint32_t rate, uint16_t channels,
                             size_t frames, uint64_t start_frame) {
  std::vector<float> out(frames * channels);
  for (size_t i = 0; i < frames; i++) {
    const double t = static_cast<double>(start_frame + i) / rate;
    const float v = static_cast<float>(amplitude * std::sin(2.0 * kPi * freq * t));
    for (uint16_t c = 0; c < channels; c++) out[i * channels + c] = v;
  }
  return out;
}

double rms(const float* samples, size_t frames, uint16_t channels, uint16_t channel) {
  if (frames == 0 || channels == 0) return 0.0;
  double sum = 0.0;
  for (size_t i = 0; i < frames; i++) {
    const double v = samples[i * channels + channel];
    sum += v * v;
  }
  return std::sqrt(sum / frames);
}

double tone_amplitude(const float* samples, size_t frames, uint16_t channels, uint32_t rate,
                      double freq, uint16_t channel) {
  if (frames < 2 || channels == 0 || rate == 0) return 0.0;
  const double w = 2.0 * kPi * freq / rate;
  const double coeff = 2.0 * std::cos(w);
  double s1 = 0.0, s2 = 0.0, window_sum = 0.0;
  for (size_t i = 0; i < frames; i++) {
    const double hann = 0.5 * (1.0 - std::cos(2.0 * kPi * i / (frames - 1)));
    window_sum += hann;
    const double s = samples[i * channels + channel] * hann + coeff * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  const double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return 2.0 * std::sqrt(std::fmax(power, 0.0)) / window_sum;
}

double strongest_frequency(const float* samples, size_t frames, uint16_t channels, uint32_t rate,
                           const std::vector<double>& candidates, uint16_t channel) {
  double best = 0.0, best_amp = -1.0;
  for (double f : candidates) {
    const double a = tone_amplitude(samples, frames, channels, rate, f, channel);
    if (a > best_amp) {
      best_amp = a;
      best = f;
    }
  }
  return best;
}

}  // namespace syncwave_test
