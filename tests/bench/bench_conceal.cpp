// SPDX-License-Identifier: LGPL-2.1-or-later
// Raw loss concealment: the old fade concealer against the pitch-period continuation of
// core/raw_concealer, on synthesized signals (no external files), at random packet loss.
//
//   build/tests/bench/bench-conceal [seconds=60] [seed=1]
//
// Each signal is 48 kHz stereo F32, cut into packets of 10 ms or 5 ms; each packet is
// lost with probability p (independently, a fixed seed), and the stream is played the
// way gstsyncwavedepay plays it: a lost packet is conceal()ed, a good one goes through
// apply_fade_in() and then observe(). Figures, per run:
//   - SNR of the concealed spans: 10 log10(sum ref^2 / sum (out - ref)^2) over the frames
//     of lost packets plus the 5 ms after each loss (the crossfade or fade-in), both
//     channels. 0 dB is what silence scores; higher is closer to the original.
//   - Holes per minute: 5 ms windows, one every 1 ms, where the original's RMS is above
//     -50 dBFS and the output's RMS is more than 20 dB below the original's; a run of such
//     windows counts once (one hole).
//   - Dips per minute: the same, more than 6 dB below the original.
//   - Worst seam step: the largest sample-to-sample step of the output within 1 ms of a
//     loss start or end, over the largest step of the original signal anywhere (1.0 =
//     no larger than the signal's own steepest slope; a click is far above 1).
//   - us/loss: CPU time of the concealer per lost packet (conceal + crossfade).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "raw_concealer.h"

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kRate = 48000;
constexpr int kChannels = 2;
constexpr size_t kFade = kRate / 200;  // 5 ms, as the depayloader configures

// The concealer this replaces (gst-plugin/core/raw_concealer.cpp before issue 11), kept
// here for comparison only: the last `fade` frames mirrored under a raised-cosine fade,
// then silence; the next packet faded in over `fade` frames.
class OldFadeConcealer {
 public:
  OldFadeConcealer(int channels, size_t fade)
      : ch_(channels), fade_(fade), hist_(channels * fade), fade_in_pos_(fade) {}
  void observe(const uint8_t* data, size_t frames) {
    const float* f = reinterpret_cast<const float*>(data);  // little-endian host
    const size_t take = std::min(frames, fade_);
    const size_t keep = std::min(hist_frames_, fade_ - take);
    std::memmove(hist_.data(), hist_.data() + (hist_frames_ - keep) * ch_,
                 keep * ch_ * sizeof(float));
    std::memcpy(hist_.data() + keep * ch_, f + (frames - take) * ch_, take * ch_ * sizeof(float));
    hist_frames_ = keep + take;
  }
  void conceal(uint8_t* out, size_t frames) {
    float* o = reinterpret_cast<float*>(out);
    const size_t len = std::min(hist_frames_, fade_);
    for (size_t i = 0; i < frames; i++) {
      const float g = gain(i, len);
      for (int c = 0; c < ch_; c++)
        o[i * ch_ + c] = g > 0 ? g * hist_[(hist_frames_ - 1 - i) * ch_ + c] : 0.0f;
    }
    hist_frames_ = 0;
    fade_in_pos_ = 0;
  }
  bool fade_in_pending() const { return fade_in_pos_ < fade_; }
  void apply_fade_in(uint8_t* data, size_t frames) {
    float* f = reinterpret_cast<float*>(data);
    for (size_t i = 0; i < frames && fade_in_pos_ < fade_; i++, fade_in_pos_++) {
      const float g = 1.0f - gain(fade_in_pos_, fade_);
      for (int c = 0; c < ch_; c++) f[i * ch_ + c] *= g;
    }
  }

 private:
  static float gain(size_t i, size_t len) {
    if (i >= len) return 0.0f;
    return static_cast<float>(0.5 * (1.0 + std::cos(kPi * (i + 0.5) / len)));
  }
  int ch_;
  size_t fade_;
  std::vector<float> hist_;
  size_t hist_frames_ = 0;
  size_t fade_in_pos_;
};

using Signal = std::vector<float>;  // interleaved stereo

Signal tone(size_t frames) {
  Signal s(frames * kChannels);
  for (size_t i = 0; i < frames; i++) {
    s[i * 2] = static_cast<float>(0.5 * std::sin(2 * kPi * 440.0 * i / kRate));
    s[i * 2 + 1] = static_cast<float>(0.4 * std::sin(2 * kPi * 440.0 * i / kRate + 1.0));
  }
  return s;
}

// A melody (eighth notes at 120 bpm, A minor pentatonic) over a bass line (one note a
// second), each note six partials at 1/k with 5.5 Hz vibrato of +-0.6 %, a 10 ms attack
// and an exponential decay; the bass sits more in the left channel, the melody in the right.
Signal melody(size_t frames) {
  const double tune[] = {440.0, 523.25, 587.33, 659.25, 783.99, 659.25, 587.33, 523.25,
                         440.0, 392.0,  440.0,  523.25, 659.25, 587.33, 523.25, 493.88};
  const double bass[] = {110.0, 87.31, 130.81, 98.0};
  Signal s(frames * kChannels);
  double ph_m = 0, ph_b = 0;
  for (size_t i = 0; i < frames; i++) {
    const double t = static_cast<double>(i) / kRate;
    const size_t note = static_cast<size_t>(t / 0.25);
    const double tn = t - note * 0.25;
    const size_t bnote = static_cast<size_t>(t);
    const double tb = t - bnote;
    const double vib = 1.0 + 0.006 * std::sin(2 * kPi * 5.5 * t);
    ph_m += 2 * kPi * tune[note % 16] * vib / kRate;
    ph_b += 2 * kPi * bass[bnote % 4] / kRate;
    const double env_m = std::min(1.0, tn / 0.01) * std::exp(-tn * 4.0);
    const double env_b = std::min(1.0, tb / 0.01) * std::exp(-tb * 1.5);
    double m = 0, b = 0;
    for (int k = 1; k <= 6; k++) {
      m += std::sin(k * ph_m) / k;
      b += std::sin(k * ph_b + 0.3 * k) / k;
    }
    m *= 0.25 * env_m;
    b *= 0.3 * env_b;
    s[i * 2] = static_cast<float>(0.7 * b + 0.3 * m);
    s[i * 2 + 1] = static_cast<float>(0.3 * b + 0.7 * m);
  }
  return s;
}

Signal noise(size_t frames) {
  std::mt19937 rng(99);
  std::normal_distribution<float> n(0.0f, 0.15f);
  Signal s(frames * kChannels);
  for (float& v : s) v = n(rng);
  return s;
}

struct Result {
  double snr_db = 0;
  double holes_per_min = 0;
  double dips_per_min = 0;
  double worst_seam = 0;
  double us_per_loss = 0;
  size_t losses = 0;
};

template <class Concealer>
Result run(const Signal& in, size_t packet, double loss, uint32_t seed) {
  Concealer c(kChannels, kFade);
  const size_t frames = in.size() / kChannels;
  const size_t packets = frames / packet;
  std::mt19937 rng(seed);
  std::bernoulli_distribution lose(loss);
  std::vector<char> lost(packets);
  for (size_t p = 0; p < packets; p++) lost[p] = p > 10 && lose(rng);  // 100 ms+ of history
  Signal out(packets * packet * kChannels);
  std::vector<uint8_t> buf(packet * kChannels * 4), orig(buf.size());
  double cpu_ns = 0;
  Result r;
  for (size_t p = 0; p < packets; p++) {
    const float* src = in.data() + p * packet * kChannels;
    auto t0 = std::chrono::steady_clock::now();
    if (lost[p]) {
      c.conceal(buf.data(), packet);
      r.losses++;
    } else {
      std::memcpy(orig.data(), src, orig.size());
      buf = orig;
      if (c.fade_in_pending()) c.apply_fade_in(buf.data(), packet);
      c.observe(orig.data(), packet);
    }
    cpu_ns +=
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() *
        (lost[p] || (p > 0 && lost[p - 1]));
    std::memcpy(out.data() + p * packet * kChannels, buf.data(), buf.size());
  }
  const size_t n = packets * packet;
  // SNR over lost packets and the 5 ms after each loss.
  std::vector<char> scored(n);
  for (size_t p = 0; p < packets; p++) {
    if (!lost[p]) continue;
    for (size_t i = p * packet; i < std::min(n, (p + 1) * packet + kFade); i++) scored[i] = 1;
  }
  double s = 0, e = 0;
  for (size_t i = 0; i < n; i++) {
    if (!scored[i]) continue;
    for (int k = 0; k < kChannels; k++) {
      const double ref = in[i * kChannels + k], d = out[i * kChannels + k] - ref;
      s += ref * ref;
      e += d * d;
    }
  }
  r.snr_db = 10 * std::log10(s / std::max(e, 1e-30));
  // Holes and dips: 5 ms windows, every 1 ms; a run of qualifying windows is one event.
  const size_t win = kRate / 200, hop = kRate / 1000;
  size_t holes = 0, dips = 0;
  bool in_hole = false, in_dip = false;
  for (size_t w = 0; w + win <= n; w += hop) {
    double so = 0, sr = 0;
    for (size_t i = w * kChannels; i < (w + win) * kChannels; i++) {
      sr += double(in[i]) * in[i];
      so += double(out[i]) * out[i];
    }
    const bool audible = sr / (win * kChannels) >= 1e-5;  // original above -50 dBFS
    const bool hole = audible && so < 0.01 * sr, dip = audible && so < 0.25 * sr;
    holes += hole && !in_hole;
    dips += dip && !in_dip;
    in_hole = hole;
    in_dip = dip;
  }
  r.holes_per_min = holes * 60.0 * kRate / n;
  r.dips_per_min = dips * 60.0 * kRate / n;
  // Seam steps within 1 ms of each loss start and end, against the original's steepest.
  double natural = 0;
  for (size_t i = 1; i < n; i++)
    for (int k = 0; k < kChannels; k++)
      natural =
          std::max(natural, std::fabs(double(in[i * kChannels + k]) - in[(i - 1) * kChannels + k]));
  double seam = 0;
  const size_t ms = kRate / 1000;
  for (size_t p = 1; p < packets; p++) {
    if (lost[p] == lost[p - 1]) continue;  // a loss starts or ends at frame p * packet
    const size_t at = p * packet;
    for (size_t i = at > ms ? at - ms : 1; i < std::min(n, at + ms); i++)
      for (int k = 0; k < kChannels; k++)
        seam = std::max(seam,
                        std::fabs(double(out[i * kChannels + k]) - out[(i - 1) * kChannels + k]));
  }
  r.worst_seam = natural > 0 ? seam / natural : 0;
  r.us_per_loss = r.losses ? cpu_ns / 1000.0 / r.losses : 0;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 60.0;
  const uint32_t seed = argc > 2 ? static_cast<uint32_t>(std::atoi(argv[2])) : 1;
  const size_t frames = static_cast<size_t>(seconds * kRate);
  struct Named {
    const char* name;
    Signal s;
  };
  const Named signals[] = {
      {"tone 440 Hz", tone(frames)}, {"melody + bass", melody(frames)}, {"noise", noise(frames)}};
  std::printf("%.0f s per run, 48 kHz stereo, seed %u\n\n", seconds, seed);
  std::printf(
      "| signal | packet | loss | losses | SNR old dB | SNR new dB | holes/min old | holes/min "
      "new | dips/min old | dips/min new | seam step old | seam step new | us/loss new |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& sig : signals) {
    for (size_t packet_ms : {10, 5}) {
      for (double loss : {0.02, 0.10}) {
        const size_t packet = kRate / 1000 * packet_ms;
        const Result o = run<OldFadeConcealer>(sig.s, packet, loss, seed);
        const Result w = run<syncwave::RawConcealer>(sig.s, packet, loss, seed);
        std::printf(
            "| %s | %zu ms | %.0f %% | %zu | %.1f | %.1f | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f "
            "| %.0f |\n",
            sig.name, packet_ms, loss * 100, w.losses, o.snr_db, w.snr_db, o.holes_per_min,
            w.holes_per_min, o.dips_per_min, w.dips_per_min, o.worst_seam, w.worst_seam,
            w.us_per_loss);
      }
    }
  }
  return 0;
}
