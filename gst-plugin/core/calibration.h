// SPDX-License-Identifier: LGPL-2.1-or-later
// Acoustic calibration, the measurement (issue 15): a probe signal, where it arrives in
// a microphone's recording, and whether that can be trusted. Pure C++: no GStreamer, no
// clock is read; the samples and the times are passed in. Decisions over repeats and
// receivers are in calibration_plan.h.
//
//   probe (LogSweep) ──► receiver plays it at shared-clock time P
//                               │ air
//   microphone recording, its first sample at shared-clock time R
//        │
//        ▼  measure_arrival(probe, recording, offset = P − R)
//   segment around the expected place ─► remove DC ─► correlate with the sweep's
//   inverse filter (Farina) via FFT ─► impulse response h and its envelope |h + iH{h}|
//        ─► noise floor (median of the envelope) ─► peaks ─► direct path
//        ─► sub-sample position ─► Arrival {delay, peak-to-noise, second peak, verdict}
//
// The probe is an exponential (logarithmic) sine sweep from f1 to f2 over T seconds,
//     x(t) = level · sin(2π f1 L (e^(t/L) − 1)),   L = T / ln(f2 / f1),
// with raised-cosine fades at both ends. Its inverse filter is the sweep reversed in
// time with an amplitude proportional to the instantaneous frequency (+6 dB/octave,
// which undoes the sweep's pink spectrum): correlating a recording with the sweep
// weighted that way gives the room's impulse response, band-limited to f1..f2, with
// the direct path as a compact pulse. Two things make the sweep better than noise or an
// MLS here: the processing gain (about 10·log10(T·(f2 − f1)), 39 dB for 0.5 s up to
// 16 kHz) and harmonic distortion of the loudspeaker, which a sweep moves to *before* the
// linear response (the k-th harmonic at −L·ln k) instead of spreading it as noise. Those
// images are recognised and never taken for the direct path.
//
// Normalisation: h is scaled so that the probe itself, recorded at the level it was
// played, gives a peak of 1. The envelope's height is thus the path's gain, and the
// noise floor is in the same unit.
//
// The direct path is the EARLIEST peak of the envelope that is
//   - a peak: the largest value within ±peak_guard_s (0.5 ms), so that the pulse's own
//     sidelobes (spaced 1/bandwidth apart, well under 0.5 ms) are never peaks;
//   - within direct_window_db (20 dB) of the strongest peak: a later reflection may be
//     louder than the direct sound (a loudspeaker pointing away from the microphone,
//     at a wall), but it always arrives later;
//   - at least min_peak_to_noise_db (20 dB) above the noise floor;
//   - not a harmonic image (k = 2..5) of a stronger peak.
// The sub-sample position is the maximum of the analytic signal's magnitude
// interpolated between the samples (Interpolation::kBandLimited: the exact band-limited
// interpolation, evaluated from the spectrum; the parabolic fits are kept to compare).
//
// Verdicts (the first that applies):
//   kNoRecording  the recording does not cover the probe plus the search window;
//   kNotHeard     the recording is (nearly) silent (RMS below min_level_dbfs), or
//                 nothing in it correlates with the probe (no peak heard_db above the
//                 noise floor: the probe was not played, or not into this room);
//   kTooNoisy     something of the probe is there, but no peak is min_peak_to_noise_db
//                 above the noise;
//   kAmbiguous    the direct path has a rival: it is (within ambiguity_db, 3 dB) the
//                 strongest arrival and another peak more than peak_guard_s away is
//                 too (two sources of similar strength, e.g. two loudspeakers of one
//                 receiver at different distances, or a reflection as strong as the
//                 direct sound: which one the listener hears as "the" sound is not
//                 clear), or an earlier peak missed the direct window (or the noise
//                 criterion) by less than ambiguity_db (the choice hinges on a few dB).
//                 A direct path clearly weaker than a later reflection is not
//                 ambiguous: that is a loudspeaker pointing away, and arrivals of
//                 similar height after its direct sound are its reflections;
//   kOk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace syncwave {

struct SweepConfig {
  uint32_t rate = 48000;    // Hz, the rate the probe is played and recorded at
  double duration_s = 0.5;  // T, fades included
  double f_start_hz = 100;  // f1
  double f_end_hz = 16000;  // f2, at most 0.45 · rate (lowered to that)
  double level = 0.5;       // peak amplitude, full scale = 1 (0.5 = −6 dBFS)
  double fade_in_s = 0.02;  // raised-cosine fades (two periods of f1 at the start)
  double fade_out_s = 0.005;
};

// The probe: deterministic, a pure function of its config.
class LogSweep {
 public:
  explicit LogSweep(const SweepConfig& config = SweepConfig());

  // False when the config cannot make a sweep (rate outside 8000..384000 Hz, duration
  // under 10 ms or over 60 s, f1 <= 0, f2 <= f1 after clamping, a level outside (0, 1],
  // NaN anywhere). Fades longer than half the sweep are shortened to half.
  bool valid() const { return !samples_.empty(); }
  const SweepConfig& config() const { return config_; }  // f_end_hz as clamped
  uint32_t rate() const { return config_.rate; }
  // The samples to play (mono; every channel of a receiver plays the same).
  const std::vector<float>& samples() const { return samples_; }
  // The correlation filter: the sweep weighted by its instantaneous frequency,
  // scaled so that correlating samples() with it gives 1 at lag 0.
  const std::vector<double>& matched_filter() const { return matched_; }
  // L = T / ln(f2/f1): the k-th harmonic's response appears L·ln(k) before the linear one.
  double sweep_constant_s() const { return sweep_constant_s_; }
  double harmonic_lead_s(int k) const;

 private:
  SweepConfig config_;
  double sweep_constant_s_ = 0;
  std::vector<float> samples_;
  std::vector<double> matched_;
};

enum class Verdict {
  kOk,
  kNoRecording,     // the recording does not cover what is needed
  kNotHeard,        // silence, or nothing correlated with the probe
  kTooNoisy,        // the probe is there but not clearly above the noise
  kAmbiguous,       // two candidate arrivals of similar height
  kSpreadTooLarge,  // (over repeats, calibration_plan.h) the repeats disagree
};
// "ok", "no-recording", "not-heard", "too-noisy", "ambiguous", "spread-too-large".
const char* verdict_name(Verdict v);
// A sentence for the user: what was wrong and what to try.
const char* verdict_advice(Verdict v);

enum class Interpolation {
  kNone,               // the sample with the largest envelope
  kParabolicReal,      // parabola through |h| at the three samples around its peak
  kParabolicEnvelope,  // parabola through the envelope at the three samples
  kBandLimited,        // the envelope's maximum, band-limited interpolation (default)
};

struct AnalysisConfig {
  // Where the arrival is looked for, relative to the probe's start on the shared
  // clock: a microphone whose capture time is stamped late can make it look early.
  double earliest_s = -0.02;
  double latest_s = 0.5;         // covers a Bluetooth speaker (150–300 ms)
  double peak_guard_s = 0.0005;  // peaks closer than this to a larger one are part of it
  double direct_window_db = 20;  // the direct path may be this much weaker than the strongest peak
  double min_peak_to_noise_db = 20;  // below: kTooNoisy
  double heard_db = 15;              // no peak this far above the noise: kNotHeard
  double ambiguity_db = 3;           // a rival this close in height: kAmbiguous
  double min_level_dbfs = -100;      // recording RMS below: kNotHeard (silence)
  int harmonics = 5;                 // harmonic images 2..harmonics are recognised
  Interpolation interpolation = Interpolation::kBandLimited;
};

struct Arrival {
  Verdict verdict = Verdict::kNotHeard;
  // Direct-path arrival minus the probe's start, seconds (NaN when no peak was found;
  // set, as the best guess, for kTooNoisy and kAmbiguous too).
  double delay_s = 0;
  double gain = 0;              // envelope height of the direct peak (1: heard at the level played)
  double peak_to_noise_db = 0;  // the direct peak over the noise floor (the strongest when none)
  // The strongest other peak relative to the direct one, dB (> 0: a louder later
  // reflection); -infinity when there is none heard_db above the noise.
  double second_peak_db = 0;
  double second_peak_delay_s = 0;  // NaN when none
  double strongest_delay_s = 0;    // the strongest peak (== delay_s unless a reflection is louder)
  double noise_floor = 0;          // median of the envelope over the search window
  double level_dbfs = 0;           // RMS of the analysed part of the recording (-inf: silence)
  size_t non_finite_samples = 0;   // NaN/inf in the recording, counted and read as 0
};

// Measures where `probe` arrives in `recording` (mono, probe.rate(), `frames` samples).
// `probe_offset_s`: the probe's start minus the recording's first sample, both on the
// shared clock (any real number; the fractional part of a sample counts). The
// recording must cover [offset + earliest_s, offset + latest_s + T]. Never throws;
// empty or invalid input gives kNoRecording or kNotHeard.
Arrival measure_arrival(const LogSweep& probe, const float* recording, size_t frames,
                        double probe_offset_s, const AnalysisConfig& config = AnalysisConfig());

// The impulse response and its envelope over the search window (for diagnostics and
// tests): sample i is at delay first_delay_s + i / rate (first_delay_s is earliest_s
// rounded down to the recording's sample grid). Empty when the recording does not
// cover the window.
struct ImpulseResponse {
  double first_delay_s = 0;
  std::vector<double> response;
  std::vector<double> envelope;
};
ImpulseResponse impulse_response(const LogSweep& probe, const float* recording, size_t frames,
                                 double probe_offset_s,
                                 const AnalysisConfig& config = AnalysisConfig());

}  // namespace syncwave
