// SPDX-License-Identifier: LGPL-2.1-or-later
// Tone generation and analysis for tests: sine tones, RMS, Goertzel amplitude at one
// frequency, and the strongest of a set of candidate frequencies. Interleaved float32,
// host order; `channel` selects one channel of `channels`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace syncwave_test {

// `frames` frames of a sine of `freq` Hz and peak `amplitude` on every channel,
// starting at sample index `start_frame` (so consecutive calls continue the phase).
std::vector<float> make_tone(double freq, double amplitude, uint32_t rate, uint16_t channels,
                             size_t frames, uint64_t start_frame = 0);

// Root mean square of one channel.
double rms(const float* samples, size_t frames, uint16_t channels, uint16_t channel = 0);

// Peak amplitude of the sinusoid at `freq` in one channel (Goertzel, Hann window):
// a pure tone of peak A gives about A; other frequencies give about 0.
double tone_amplitude(const float* samples, size_t frames, uint16_t channels, uint32_t rate,
                      double freq, uint16_t channel = 0);

// The candidate with the largest tone_amplitude().
double strongest_frequency(const float* samples, size_t frames, uint16_t channels, uint32_t rate,
                           const std::vector<double>& candidates, uint16_t channel = 0);

}  // namespace syncwave_test
