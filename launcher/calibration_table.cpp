// SPDX-License-Identifier: LGPL-2.1-or-later
// The table `calibrate` prints (calibrate.h); plain, unit-tested in launcher-units.
#include <cmath>
#include <cstdio>

#include "calibrate.h"

namespace syncwave {
namespace launcher {

namespace {

std::string ms(double seconds, int decimals) {
  if (!std::isfinite(seconds)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f ms", decimals, seconds * 1000);
  return buf;
}

std::string pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

std::string lpad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : std::string(width - s.size(), ' ') + s;
}

// The last column: what happened to the receiver's delay.
std::string applied_text(const CalibrationRow& r) {
  const std::string from = std::to_string(r.current_delay_ms);
  switch (r.plan.change) {
    case Change::kApplied: {
      const std::string move = from + " -> " + std::to_string(r.plan.new_delay_ms) + " ms";
      if (r.dry_run) return move + " (dry run: not applied)";
      return move + (r.confirmed ? "" : " (sent, not confirmed by the receiver)");
    }
    case Change::kUnchanged:
      return from + " ms (already aligned)";
    case Change::kRefused:
      return "unchanged (" + from + " ms): not trusted";
    case Change::kOutOfRange:
      return "unchanged (" + from + " ms): needs " + ms(r.plan.exact_delay_s, 0) +
             ", outside -latency..2000 ms";
    case Change::kNoReference:
      return "unchanged (" + from + " ms): the reference was not measured";
  }
  return "";
}

}  // namespace

std::string format_calibration_table(const std::vector<CalibrationRow>& rows) {
  size_t name_width = 8;
  for (const CalibrationRow& r : rows) name_width = std::max(name_width, r.name.size() + 2);
  std::string out = pad("receiver", name_width) + lpad("acoustic delay", 15) + lpad("spread", 11) +
                    "   delay applied\n";
  std::string notes;
  for (const CalibrationRow& r : rows) {
    const bool measured = r.problem.empty() && r.measurement.verdict == Verdict::kOk;
    const bool has_delay =
        r.problem.empty() && std::isfinite(r.acoustic_delay_s) && r.measurement.ok > 0;
    out +=
        pad(r.name, name_width) + lpad(has_delay ? ms(r.acoustic_delay_s, 2) : "-", 15) +
        lpad(r.problem.empty() && r.measurement.ok > 1 ? ms(r.measurement.spread_s, 3) : "-", 11) +
        "   " + (r.problem.empty() ? applied_text(r) : "unchanged: not measured") + "\n";
    if (!r.problem.empty()) {
      const char last = r.problem.back();
      notes += "  " + r.name + ": " + r.problem + (last == '?' || last == '.' ? "\n" : ".\n");
    } else if (!measured) {
      notes += "  " + r.name + ": " + verdict_name(r.measurement.verdict) + ", " +
               verdict_advice(r.measurement.verdict) + " (" + std::to_string(r.measurement.ok) +
               " of " + std::to_string(r.measurement.repeats) + " measurements ok";
      if (r.measurement.verdict == Verdict::kSpreadTooLarge)
        notes += ", spread " + ms(r.measurement.spread_s, 3) + " over the 1 ms limit";
      notes += "). Nothing was changed for it.\n";
    } else if (r.plan.change == Change::kOutOfRange) {
      notes += "  " + r.name + ": the delay it needs, " + ms(r.plan.exact_delay_s, 1) +
               ", is outside what it takes (from minus its latency to 2000 ms): raise its "
               "latency, or calibrate without --reference. Nothing was changed for it.\n";
    }
  }
  return out + notes;
}

}  // namespace launcher
}  // namespace syncwave
