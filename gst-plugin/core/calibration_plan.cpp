// SPDX-License-Identifier: LGPL-2.1-or-later
#include "calibration_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace syncwave {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Higher: reported first when repeats fail in equal numbers.
int severity(Verdict v) {
  switch (v) {
    case Verdict::kNoRecording:
      return 5;
    case Verdict::kNotHeard:
      return 4;
    case Verdict::kTooNoisy:
      return 3;
    case Verdict::kAmbiguous:
      return 2;
    case Verdict::kSpreadTooLarge:
      return 1;
    case Verdict::kOk:
      return 0;
  }
  return 0;
}

}  // namespace

ProbeSchedule plan_probes(size_t receivers, const LogSweep& probe, const AnalysisConfig& analysis,
                          const ScheduleConfig& config) {
  ProbeSchedule s;
  if (receivers == 0 || config.repeats == 0 || !probe.valid()) return s;
  const double window = std::max(0.0, analysis.latest_s - analysis.earliest_s);
  const int harmonics = std::max(1, std::min(analysis.harmonics, 16));
  const double images = probe.harmonic_lead_s(harmonics);
  const double tail = std::isfinite(config.tail_s) ? std::max(0.0, config.tail_s) : 0.0;
  const double spacing = window + std::max(tail, images);
  const double lead = std::isfinite(config.lead_s) ? std::max(0.0, config.lead_s) : 0.0;
  const double t = static_cast<double>(probe.samples().size()) / probe.rate();
  double at = lead;
  for (size_t r = 0; r < config.repeats; r++) {
    for (size_t i = 0; i < receivers; i++) {
      s.slots.push_back({i, r, at});
      at += spacing;
    }
  }
  s.duration_s = s.slots.back().start_s + t + std::max(0.0, analysis.latest_s);
  return s;
}

ReceiverMeasurement combine_repeats(const std::vector<Arrival>& repeats,
                                    const RepeatConfig& config) {
  ReceiverMeasurement m;
  m.repeats = repeats.size();
  m.delay_s = kNaN;
  if (repeats.empty()) {
    m.verdict = Verdict::kNotHeard;
    return m;
  }
  int counts[6] = {0, 0, 0, 0, 0, 0};
  std::vector<double> delays;
  m.min_peak_to_noise_db = std::numeric_limits<double>::infinity();
  m.max_second_peak_db = -std::numeric_limits<double>::infinity();
  for (const Arrival& a : repeats) {
    counts[static_cast<int>(a.verdict)]++;
    m.min_peak_to_noise_db = std::min(m.min_peak_to_noise_db, a.peak_to_noise_db);
    m.max_second_peak_db = std::max(m.max_second_peak_db, a.second_peak_db);
    if (a.verdict == Verdict::kOk && std::isfinite(a.delay_s)) {
      m.ok++;
      delays.push_back(a.delay_s);
    }
  }
  if (!delays.empty()) {
    std::sort(delays.begin(), delays.end());
    m.spread_s = delays.back() - delays.front();
  }
  if (m.ok < m.repeats) {
    Verdict worst = Verdict::kNotHeard;
    int best_count = -1;
    for (Verdict v :
         {Verdict::kNoRecording, Verdict::kNotHeard, Verdict::kTooNoisy, Verdict::kAmbiguous}) {
      const int n = counts[static_cast<int>(v)];
      if (n > best_count || (n == best_count && severity(v) > severity(worst))) {
        worst = v;
        best_count = n;
      }
    }
    // An "ok" verdict with a non-finite delay cannot happen; count it as not heard.
    m.verdict = best_count > 0 ? worst : Verdict::kNotHeard;
    return m;
  }
  const size_t n = delays.size();
  m.delay_s = n % 2 ? delays[n / 2] : 0.5 * (delays[n / 2 - 1] + delays[n / 2]);
  m.verdict = m.spread_s > config.max_spread_s ? Verdict::kSpreadTooLarge : Verdict::kOk;
  return m;
}

const char* change_name(Change c) {
  switch (c) {
    case Change::kApplied:
      return "applied";
    case Change::kUnchanged:
      return "unchanged";
    case Change::kRefused:
      return "refused";
    case Change::kOutOfRange:
      return "out-of-range";
    case Change::kNoReference:
      return "no-reference";
  }
  return "unknown";
}

std::vector<DelayPlan> align_delays(const std::vector<ReceiverDelay>& receivers, Target target,
                                    size_t reference) {
  std::vector<DelayPlan> plans(receivers.size());
  auto trusted = [](const ReceiverDelay& r) {
    return r.measurement.verdict == Verdict::kOk && std::isfinite(r.measurement.delay_s);
  };
  bool have_target = false;
  double arrival = 0;
  if (target == Target::kReference) {
    if (reference < receivers.size() && trusted(receivers[reference])) {
      have_target = true;
      arrival = receivers[reference].measurement.delay_s;
    }
  } else {
    for (const ReceiverDelay& r : receivers) {
      if (!trusted(r)) continue;
      if (!have_target || r.measurement.delay_s > arrival) arrival = r.measurement.delay_s;
      have_target = true;
    }
  }
  for (size_t i = 0; i < receivers.size(); i++) {
    const ReceiverDelay& r = receivers[i];
    DelayPlan& p = plans[i];
    p.new_delay_ms = r.current_delay_ms;
    p.exact_delay_s = kNaN;
    if (!trusted(r)) {
      p.change = Change::kRefused;
      continue;
    }
    if (!have_target) {
      p.change = Change::kNoReference;
      continue;
    }
    p.exact_delay_s = r.current_delay_ms / 1000.0 + (arrival - r.measurement.delay_s);
    const double ms = std::round(p.exact_delay_s * 1000.0);
    if (ms == r.current_delay_ms) {
      p.change = Change::kUnchanged;  // even outside [min, max]: it plays with it now
      p.residual_s = ms / 1000.0 - p.exact_delay_s;
      continue;
    }
    if (!(ms >= r.min_delay_ms) || !(ms <= r.max_delay_ms)) {
      p.change = Change::kOutOfRange;
      continue;
    }
    p.change = Change::kApplied;
    p.new_delay_ms = static_cast<int>(ms);
    p.residual_s = ms / 1000.0 - p.exact_delay_s;
  }
  return plans;
}

}  // namespace syncwave
