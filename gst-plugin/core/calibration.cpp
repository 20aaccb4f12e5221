// SPDX-License-Identifier: LGPL-2.1-or-later
#include "calibration.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>

#include "fft.h"

namespace syncwave {

namespace {

using cplx = std::complex<double>;

constexpr double kPi = 3.14159265358979323846;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
// Recordings longer than this (samples) are not analysed: nothing sensible is that long.
constexpr double kMaxSamples = 1e10;

double db(double ratio) {
  if (!(ratio > 0)) return -kInf;
  return 20.0 * std::log10(ratio);
}

double from_db(double d) {
  return std::pow(10.0, d / 20.0);
}

bool finite(double v) {
  return std::isfinite(v);
}

// peak_guard_s in samples: at least 1, at most 0.1 s (a config value that does not
// fit in size_t must not reach the cast).
size_t guard_samples(const AnalysisConfig& config, double rate) {
  const double g = finite(config.peak_guard_s) ? config.peak_guard_s : 0.0;
  return std::max<size_t>(1, static_cast<size_t>(std::min(0.1, std::max(0.0, g)) * rate));
}

// The correlation of one segment of the recording with the probe's filter.
struct Correlation {
  size_t s0 = 0;     // segment start, recording samples
  size_t n_hi = 0;   // last lag of the search window (lags 0..n_hi)
  size_t n_end = 0;  // lags 0..n_end-1 are computed (n_hi plus the guard, where there)
  size_t fft_size = 0;
  size_t top_bin = 0;          // the spectrum above this bin is (nearly) empty
  std::vector<cplx> spectrum;  // analytic spectrum (negative frequencies zero)
  std::vector<cplx> analytic;  // its inverse: real part h, magnitude the envelope
  double level_dbfs = -kInf;
  size_t non_finite = 0;
};

bool correlate(const LogSweep& probe, const float* recording, size_t frames, double offset_s,
               const AnalysisConfig& config, Correlation* out) {
  if (!probe.valid() || recording == nullptr || frames == 0) return false;
  if (!finite(offset_s) || !finite(config.earliest_s) || !finite(config.latest_s) ||
      !(config.latest_s > config.earliest_s)) {
    return false;
  }
  const double rate = probe.rate();
  const size_t m = probe.matched_filter().size();
  const double lo = std::floor((offset_s + config.earliest_s) * rate);
  const double hi_lag = std::floor((offset_s + config.latest_s) * rate);
  if (!(lo >= 0) || !(hi_lag < kMaxSamples)) return false;
  const double hi = hi_lag + static_cast<double>(m);  // one past the last sample needed
  if (hi > static_cast<double>(frames)) return false;
  const size_t s0 = static_cast<size_t>(lo);
  const size_t n_hi = static_cast<size_t>(hi_lag) - s0;
  if (n_hi < 2) return false;
  const size_t guard = guard_samples(config, rate);
  // The segment: up to `guard` more where the recording has it, for peaks at the edge.
  const size_t len = std::min(frames - s0, n_hi + 1 + guard + m);
  const size_t p = next_power_of_two(len + m);
  if (p == 0) return false;

  std::vector<cplx> x(p, cplx(0, 0));
  double sum = 0;
  size_t bad = 0;
  for (size_t i = 0; i < len; i++) {
    const double v = recording[s0 + i];
    if (finite(v)) {
      x[i] = cplx(v, 0);
      sum += v;
    } else {
      bad++;
    }
  }
  const double mean = sum / static_cast<double>(len);
  double energy = 0;
  for (size_t i = 0; i < len; i++) {
    // Non-finite samples stay 0; the rest lose the DC offset.
    if (finite(static_cast<double>(recording[s0 + i]))) x[i] -= mean;
    energy += std::norm(x[i]);
  }
  out->level_dbfs = db(std::sqrt(energy / static_cast<double>(len)));
  out->non_finite = bad;

  std::vector<cplx> g(p, cplx(0, 0));
  const std::vector<double>& filter = probe.matched_filter();
  for (size_t i = 0; i < m; i++) g[i] = cplx(filter[i], 0);

  Fft fft(p);
  fft.forward(&x);
  fft.forward(&g);
  // r[n] = sum_k x[n + k] g[k]  <=>  R = X · conj(G); analytic: keep k = 0 and p/2,
  // double 1..p/2-1, zero the negative frequencies.
  for (size_t k = 0; k < p; k++) {
    // x · conj(g), in real arithmetic (see fft.cpp)
    cplx c(x[k].real() * g[k].real() + x[k].imag() * g[k].imag(),
           x[k].imag() * g[k].real() - x[k].real() * g[k].imag());
    if (k == 0 || k == p / 2) {
      // as is
    } else if (k < p / 2) {
      c *= 2.0;
    } else {
      c = cplx(0, 0);
    }
    x[k] = c;
  }
  out->spectrum = x;
  fft.inverse(&x);
  out->analytic = std::move(x);
  out->s0 = s0;
  out->n_hi = n_hi;
  out->n_end = std::min(len, n_hi + 1 + guard);
  out->fft_size = p;
  // The probe has no energy above f2 but for its fade's spill: stop at 1.25 f2.
  out->top_bin =
      std::min(p / 2, static_cast<size_t>(std::ceil(1.25 * probe.config().f_end_hz / rate * p)));
  return true;
}

// |analytic signal|^2 at fractional lag tau, from the analytic spectrum: the exact
// band-limited (periodic) interpolation.
double envelope_power_at(const Correlation& c, double tau) {
  const size_t p = c.fft_size;
  const double a = 2.0 * kPi * tau / static_cast<double>(p);
  const double wr = std::cos(a), wi = std::sin(a);
  double zr = 1, zi = 0, sr = 0, si = 0;
  for (size_t k = 0; k <= c.top_bin; k++) {
    const double xr = c.spectrum[k].real(), xi = c.spectrum[k].imag();
    sr += xr * zr - xi * zi;
    si += xr * zi + xi * zr;
    const double nr = zr * wr - zi * wi;
    zi = zr * wi + zi * wr;
    zr = nr;
    if ((k & 1023) == 1023) {  // re-anchor the rotation now and then
      const double ak = a * static_cast<double>(k + 1);
      zr = std::cos(ak);
      zi = std::sin(ak);
    }
  }
  return (sr * sr + si * si) / (static_cast<double>(p) * static_cast<double>(p));
}

double parabola_offset(double ym, double y0, double yp) {
  const double d = ym - 2.0 * y0 + yp;
  if (!(d < 0)) return 0;  // not a maximum (flat, or NaN)
  const double off = 0.5 * (ym - yp) / d;
  return std::max(-0.5, std::min(0.5, off));
}

// Sub-sample position of the peak near lag i, in lags.
double refine(const Correlation& c, const std::vector<double>& env, size_t i, Interpolation how) {
  const size_t last = c.n_end - 1;
  if (i == 0 || i >= last) return static_cast<double>(i);
  switch (how) {
    case Interpolation::kNone:
      return static_cast<double>(i);
    case Interpolation::kParabolicEnvelope:
      return static_cast<double>(i) + parabola_offset(env[i - 1], env[i], env[i + 1]);
    case Interpolation::kParabolicReal: {
      size_t j = i;
      for (size_t k = i - 1; k <= i + 1; k++) {
        if (std::abs(c.analytic[k].real()) > std::abs(c.analytic[j].real())) j = k;
      }
      if (j == 0 || j >= last) return static_cast<double>(j);
      return static_cast<double>(j) + parabola_offset(std::abs(c.analytic[j - 1].real()),
                                                      std::abs(c.analytic[j].real()),
                                                      std::abs(c.analytic[j + 1].real()));
    }
    case Interpolation::kBandLimited: {
      // Golden-section search for the maximum on [i - 1, i + 1]: the envelope's main
      // lobe is several samples wide, so it has one maximum there.
      const double phi = 0.5 * (std::sqrt(5.0) - 1.0);
      double a = static_cast<double>(i) - 1.0;
      double b = static_cast<double>(i) + 1.0;
      double x1 = b - phi * (b - a);
      double x2 = a + phi * (b - a);
      double f1 = envelope_power_at(c, x1);
      double f2 = envelope_power_at(c, x2);
      for (int it = 0; it < 28; it++) {  // the bracket shrinks to 2 · 0.618^28 = 3e-6 samples
        if (f1 < f2) {
          a = x1;
          x1 = x2;
          f1 = f2;
          x2 = a + phi * (b - a);
          f2 = envelope_power_at(c, x2);
        } else {
          b = x2;
          x2 = x1;
          f2 = f1;
          x1 = b - phi * (b - a);
          f1 = envelope_power_at(c, x1);
        }
      }
      return 0.5 * (a + b);
    }
  }
  return static_cast<double>(i);
}

}  // namespace

LogSweep::LogSweep(const SweepConfig& config) : config_(config) {
  const double rate = config.rate;
  config_.f_end_hz = std::min(config.f_end_hz, 0.45 * rate);
  const double t = config.duration_s;
  const double f1 = config.f_start_hz;
  const double f2 = config_.f_end_hz;
  if (config.rate < 8000 || config.rate > 384000 || !finite(t) || t < 0.01 || t > 60 ||
      !finite(f1) || !(f1 > 0) || !finite(f2) || !(f2 > f1) || !finite(config.level) ||
      !(config.level > 0) || config.level > 1 || !finite(config.fade_in_s) ||
      !finite(config.fade_out_s)) {
    return;
  }
  const size_t n = static_cast<size_t>(std::llround(t * rate));
  const double l = t / std::log(f2 / f1);
  sweep_constant_s_ = l;
  const size_t fade_in =
      std::min(n / 2, static_cast<size_t>(std::min(t, std::max(0.0, config.fade_in_s)) * rate));
  const size_t fade_out =
      std::min(n / 2, static_cast<size_t>(std::min(t, std::max(0.0, config.fade_out_s)) * rate));
  samples_.resize(n);
  std::vector<double> x(n);
  std::vector<double> weight(n);
  for (size_t i = 0; i < n; i++) {
    const double ti = static_cast<double>(i) / rate;
    const double phase = 2.0 * kPi * f1 * l * (std::exp(ti / l) - 1.0);
    double fade = 1.0;
    if (i < fade_in) fade = 0.5 * (1.0 - std::cos(kPi * static_cast<double>(i) / fade_in));
    const size_t from_end = n - 1 - i;
    if (from_end < fade_out) {
      fade *= 0.5 * (1.0 - std::cos(kPi * static_cast<double>(from_end) / fade_out));
    }
    samples_[i] = static_cast<float>(config.level * fade * std::sin(phase));
    x[i] = samples_[i];                      // what is played, float as it is
    weight[i] = std::exp(ti / l) * f1 / f2;  // instantaneous frequency / f2
  }
  matched_.resize(n);
  double norm = 0;
  for (size_t i = 0; i < n; i++) {
    matched_[i] = x[i] * weight[i];
    norm += x[i] * matched_[i];
  }
  if (!(norm > 0)) {
    samples_.clear();
    matched_.clear();
    return;
  }
  for (double& v : matched_) v /= norm;
}

double LogSweep::harmonic_lead_s(int k) const {
  if (k < 2) return 0;
  return sweep_constant_s_ * std::log(static_cast<double>(k));
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kNoRecording:
      return "no-recording";
    case Verdict::kNotHeard:
      return "not-heard";
    case Verdict::kTooNoisy:
      return "too-noisy";
    case Verdict::kAmbiguous:
      return "ambiguous";
    case Verdict::kSpreadTooLarge:
      return "spread-too-large";
  }
  return "unknown";
}

const char* verdict_advice(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "measured";
    case Verdict::kNoRecording:
      return "the microphone's recording does not cover the test signal: it started late or "
             "stopped early";
    case Verdict::kNotHeard:
      return "the test signal was not heard: is this receiver playing, loud enough, in the "
             "room of the microphone?";
    case Verdict::kTooNoisy:
      return "the test signal is too weak against the noise: turn the receiver up, bring the "
             "microphone closer, or make the room quieter";
    case Verdict::kAmbiguous:
      return "two arrivals of similar strength (two loudspeakers, a strong reflection): move "
             "the microphone closer to this receiver's loudspeaker";
    case Verdict::kSpreadTooLarge:
      return "the repeated measurements disagree by more than the limit: something moved or "
             "the room is noisy; try again";
  }
  return "";
}

ImpulseResponse impulse_response(const LogSweep& probe, const float* recording, size_t frames,
                                 double probe_offset_s, const AnalysisConfig& config) {
  ImpulseResponse ir;
  Correlation c;
  if (!correlate(probe, recording, frames, probe_offset_s, config, &c)) return ir;
  ir.first_delay_s = static_cast<double>(c.s0) / probe.rate() - probe_offset_s;
  ir.response.resize(c.n_hi + 1);
  ir.envelope.resize(c.n_hi + 1);
  for (size_t i = 0; i <= c.n_hi; i++) {
    ir.response[i] = c.analytic[i].real();
    ir.envelope[i] = std::abs(c.analytic[i]);
  }
  return ir;
}

Arrival measure_arrival(const LogSweep& probe, const float* recording, size_t frames,
                        double probe_offset_s, const AnalysisConfig& config) {
  Arrival a;
  a.delay_s = kNaN;
  a.second_peak_db = -kInf;
  a.second_peak_delay_s = kNaN;
  a.strongest_delay_s = kNaN;
  a.level_dbfs = -kInf;
  a.peak_to_noise_db = -kInf;

  Correlation c;
  if (!correlate(probe, recording, frames, probe_offset_s, config, &c)) {
    a.verdict = Verdict::kNoRecording;
    return a;
  }
  a.level_dbfs = c.level_dbfs;
  a.non_finite_samples = c.non_finite;
  const double rate = probe.rate();
  auto delay_of = [&](double lag) {
    return (static_cast<double>(c.s0) + lag) / rate - probe_offset_s;
  };
  if (!(c.level_dbfs >= config.min_level_dbfs)) {
    a.verdict = Verdict::kNotHeard;
    return a;
  }

  std::vector<double> env(c.n_end);
  for (size_t i = 0; i < c.n_end; i++) env[i] = std::abs(c.analytic[i]);

  // Noise floor: the median of the envelope over the search window. Arrivals are a
  // few narrow peaks, so they barely move it.
  {
    std::vector<double> w(env.begin(), env.begin() + c.n_hi + 1);
    std::nth_element(w.begin(), w.begin() + w.size() / 2, w.end());
    a.noise_floor = w[w.size() / 2];
  }
  const double noise = a.noise_floor;
  auto over_noise_db = [&](double v) { return noise > 0 ? db(v / noise) : 300.0; };

  // Peaks: strict local maxima that are the largest value within +-guard.
  const size_t guard = guard_samples(config, rate);
  std::vector<size_t> peaks;
  for (size_t i = 1; i <= c.n_hi && i + 1 < c.n_end; i++) {
    const double v = env[i];
    if (!(v > 0) || !(v > env[i - 1]) || !(v >= env[i + 1])) continue;
    const size_t from = i > guard ? i - guard : 0;
    const size_t to = std::min(c.n_end - 1, i + guard);
    bool largest = true;
    for (size_t j = from; j <= to && largest; j++) {
      if (env[j] > v) largest = false;
    }
    if (largest) peaks.push_back(i);
  }
  if (peaks.empty()) {
    a.verdict = Verdict::kNotHeard;
    return a;
  }
  size_t strongest = peaks[0];
  for (size_t i : peaks) {
    if (env[i] > env[strongest]) strongest = i;
  }
  a.strongest_delay_s = delay_of(static_cast<double>(strongest));

  // Only peaks heard_db over the noise take part from here on (the rest is noise,
  // and there can be thousands of those in a long window).
  std::vector<size_t> heard;
  for (size_t i : peaks) {
    if (over_noise_db(env[i]) >= config.heard_db) heard.push_back(i);
  }
  // Harmonic images: a peak L·ln(k) before a stronger one.
  const int harmonics = std::max(1, std::min(config.harmonics, 16));
  auto is_image = [&](size_t i) {
    for (size_t s : heard) {
      if (s <= i || !(env[s] > env[i])) continue;
      const double gap = static_cast<double>(s - i);
      for (int k = 2; k <= harmonics; k++) {
        if (std::abs(gap - probe.harmonic_lead_s(k) * rate) <= static_cast<double>(guard)) {
          return true;
        }
      }
    }
    return false;
  };
  std::vector<size_t> real_peaks;
  for (size_t i : heard) {
    if (!is_image(i)) real_peaks.push_back(i);
  }

  if (over_noise_db(env[strongest]) < config.heard_db) {
    a.verdict = Verdict::kNotHeard;
    a.peak_to_noise_db = over_noise_db(env[strongest]);
    return a;
  }
  const double threshold = std::max(env[strongest] * from_db(-config.direct_window_db),
                                    noise * from_db(config.min_peak_to_noise_db));
  size_t direct = strongest;
  bool found = false;
  for (size_t i : real_peaks) {  // in time order
    if (env[i] >= threshold) {
      direct = i;
      found = true;
      break;
    }
  }

  // The strongest other peak, and rivals.
  bool ambiguous = false;
  const bool direct_on_top = db(env[strongest] / env[direct]) <= config.ambiguity_db;
  double second = -1;
  size_t second_at = 0;
  for (size_t i : real_peaks) {
    if (i == direct) continue;
    const size_t gap = i > direct ? i - direct : direct - i;
    if (gap <= guard) continue;
    if (env[i] > second) {
      second = env[i];
      second_at = i;
    }
    if (direct_on_top && db(env[strongest] / env[i]) <= config.ambiguity_db) {
      ambiguous = true;  // the two strongest arrivals, the direct one of them, alike
    }
    if (i < direct && env[i] >= threshold * from_db(-config.ambiguity_db)) {
      ambiguous = true;  // an earlier peak that nearly qualified
    }
  }
  if (second > 0) {
    a.second_peak_db = db(second / env[direct]);
    a.second_peak_delay_s = delay_of(static_cast<double>(second_at));
  }

  const double pos = refine(c, env, direct, config.interpolation);
  a.delay_s = delay_of(pos);
  a.gain = config.interpolation == Interpolation::kBandLimited
               ? std::sqrt(envelope_power_at(c, pos))
               : env[direct];
  a.peak_to_noise_db = over_noise_db(env[direct]);
  if (!found) {
    a.verdict = Verdict::kTooNoisy;
  } else if (ambiguous) {
    a.verdict = Verdict::kAmbiguous;
  } else {
    a.verdict = Verdict::kOk;
  }
  return a;
}

}  // namespace syncwave
