// SPDX-License-Identifier: LGPL-2.1-or-later
// Acoustic calibration, the decisions (issue 15): when each receiver plays its probe,
// what the repeats of one receiver say together, and the delays that make every
// receiver's sound arrive at the microphone together. Pure C++; the measurement
// itself is calibration.h.
//
//   plan_probes()         receivers × repeats ──► start times (round robin)
//   measure_arrival() ×R  (calibration.h)
//   combine_repeats()     R arrivals ──► median delay, spread, verdict
//   align_delays()        N receivers ──► new `delay` of each, or unchanged
//
// The delay convention is the launcher's `--delay=MS` and syncwavesink's `delay`
// property: signed whole milliseconds added to the latency, from −latency to 10000;
// positive plays later. A receiver measured with delay c whose sound arrives a after its
// probe's scheduled time gets c + (A − a), where A is the arrival all are aligned to:
//   - Target::kLatest (default): A = the latest trusted arrival. Every change is >= 0
//     (receivers are only ever delayed), so it can never fall below −latency, and the
//     latest receiver keeps its delay.
//   - Target::kReference (--reference=NAME): A = that receiver's arrival; it keeps its
//     delay and the others move either way (an earlier delay needs latency headroom:
//     a new delay below −latency is refused for that receiver, kOutOfRange).
// Only differences of arrivals enter, so whatever is common to every measurement (the
// microphone's own capture latency, an offset of its clock) cancels.
//
// The property takes whole milliseconds, so the delay applied is the exact one
// rounded to the nearest ms: up to 0.5 ms of `residual_s` remains, more than the
// measurement's own error.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "calibration.h"

namespace syncwave {

struct ProbeSchedule {
  struct Slot {
    size_t receiver = 0;
    size_t repeat = 0;
    double start_s = 0;  // after the schedule's start
  };
  std::vector<Slot> slots;  // in time order
  double duration_s = 0;    // until the last probe's search window has been recorded
};

struct ScheduleConfig {
  size_t repeats = 3;
  double lead_s = 0.2;  // silence before the first probe (the recording starts first)
  // Probes start `spacing` apart: at least the search window (latest − earliest) plus
  // `tail_s` for the room's reverberation, and never so close that one probe's harmonic
  // images fall into the previous probe's window. Probes of different receivers may
  // overlap in time (the sweep's deconvolution separates them: each compresses to its
  // own pulse), which is how four receivers × three repeats fit in under 10 s.
  double tail_s = 0.1;
};

// Round robin: receiver 0, 1, ..., N−1, then the next repeat. Empty for 0 receivers.
ProbeSchedule plan_probes(size_t receivers, const LogSweep& probe, const AnalysisConfig& analysis,
                          const ScheduleConfig& config = ScheduleConfig());

struct RepeatConfig {
  double max_spread_s = 0.001;  // repeats further apart (max − min): kSpreadTooLarge
};

struct ReceiverMeasurement {
  Verdict verdict = Verdict::kNotHeard;
  double delay_s = 0;   // median of the repeats (NaN unless every repeat is ok)
  double spread_s = 0;  // max − min of the repeats
  double min_peak_to_noise_db = 0;
  double max_second_peak_db = 0;  // the worst rival seen (dB relative to the direct path)
  size_t repeats = 0;
  size_t ok = 0;
};

// Every repeat must be kOk: otherwise the receiver's verdict is the most frequent of
// the repeats' failures (the most severe on a tie: no-recording, not-heard, too-noisy,
// ambiguous), and with all ok but a spread above the limit, kSpreadTooLarge.
// No repeats: kNotHeard.
ReceiverMeasurement combine_repeats(const std::vector<Arrival>& repeats,
                                    const RepeatConfig& config = RepeatConfig());

enum class Target { kLatest, kReference };

struct ReceiverDelay {
  std::string name;
  ReceiverMeasurement measurement;
  int current_delay_ms = 0;  // the delay it had while it was measured
  int min_delay_ms = -60;    // −latency
  int max_delay_ms = 10000;
};

enum class Change {
  kApplied,      // new_delay_ms differs from current
  kUnchanged,    // already aligned (to the ms)
  kRefused,      // this receiver's measurement is not trusted: nothing changes
  kOutOfRange,   // the delay needed is outside [min, max]: nothing changes
  kNoReference,  // the reference receiver was not measured (or is unknown): nothing changes
};
const char* change_name(Change c);

struct DelayPlan {
  Change change = Change::kRefused;
  int new_delay_ms = 0;      // == current unless kApplied
  double exact_delay_s = 0;  // current + (A − a), before rounding (NaN when not measured)
  double residual_s = 0;     // new − exact: what the ms grid leaves (0 unless applied/unchanged)
};

// One plan per receiver, in order. `reference` is an index into `receivers`
// (ignored for kLatest).
std::vector<DelayPlan> align_delays(const std::vector<ReceiverDelay>& receivers,
                                    Target target = Target::kLatest, size_t reference = 0);

}  // namespace syncwave
