// SPDX-License-Identifier: LGPL-2.1-or-later
#include "status_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace syncwave {
namespace launcher {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  return fmt("%.3f", v);
}

template <typename T>
std::string json_opt(const std::optional<T>& v) {
  if (!v) return "null";
  if constexpr (std::is_floating_point<T>::value) {
    return json_number(*v);
  } else {
    return std::to_string(*v);
  }
}

double clamp_db(double db) {
  return std::isfinite(db) ? std::max(db, -200.0) : -200.0;
}

}  // namespace

std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string stats_json(const StatsSample& s) {
  std::string o = "{";
  o += "\"time\":" + json_number(s.time_s);
  o += ",\"command\":\"" + json_escape(s.command) + "\"";
  o += ",\"state\":\"" + json_escape(s.state) + "\"";
  o += ",\"packets\":" + json_opt(s.packets);
  o += ",\"bytes\":" + json_opt(s.bytes);
  o += ",\"bitrate_kbps\":" + json_opt(s.bitrate_kbps);
  o += ",\"lost\":" + json_opt(s.lost);
  o += ",\"late\":" + json_opt(s.late);
  o += ",\"late_output\":" + json_opt(s.late_output);
  o += ",\"concealed\":" + json_opt(s.concealed);
  o += ",\"underruns\":" + json_opt(s.underruns);
  o += ",\"duplicates\":" + json_opt(s.duplicates);
  o += ",\"jitter_us\":" + json_opt(s.jitter_us);
  o += ",\"transit_us\":" + json_opt(s.transit_us);
  o += ",\"buffer_ms\":" + json_opt(s.buffer_ms);
  o += ",\"clock_offset_us\":" + json_opt(s.clock_offset_us);
  o += ",\"drift_ppm\":" + json_opt(s.drift_ppm);
  o += ",\"latency_ms\":" + json_opt(s.latency_ms);
  if (s.targets) o += ",\"targets\":" + std::to_string(*s.targets);
  if (!s.clock.empty()) o += ",\"clock\":\"" + json_escape(s.clock) + "\"";
  if (s.command == "receive") {
    o += ",\"sender\":" +
         (s.sender.empty() ? std::string("null") : "\"" + json_escape(s.sender) + "\"");
    o += ",\"other_senders\":[";
    for (size_t i = 0; i < s.other_senders.size(); i++)
      o += (i ? ",\"" : "\"") + json_escape(s.other_senders[i]) + "\"";
    o += "]";
  }
  std::string peaks, rms;
  for (size_t i = 0; i < s.levels.size(); i++) {
    peaks += (i ? "," : "") + json_number(clamp_db(s.levels[i].peak_db));
    rms += (i ? "," : "") + json_number(clamp_db(s.levels[i].rms_db));
  }
  o += ",\"peak_db\":[" + peaks + "],\"rms_db\":[" + rms + "]";
  return o + "}";
}

std::string level_bar(const ChannelLevel& level, int width) {
  auto cells = [&](double db) {
    double x = (clamp_db(db) + 60.0) / 60.0;
    x = std::min(1.0, std::max(0.0, x));
    return static_cast<int>(std::lround(x * width));
  };
  int rms = cells(level.rms_db);
  int peak = std::max(rms, cells(level.peak_db));
  std::string bar = "[";
  for (int i = 0; i < width; i++) bar += i < rms ? '#' : (i < peak ? '+' : ' ');
  return bar + "]";
}

std::string status_line(const StatsSample& s, int meter_width) {
  std::string line = s.command + " " + fmt("%4.0fs", s.time_s) + " " + s.state;
  static const char* kNames[] = {"L", "R", "C", "LFE", "SL", "SR", "RL", "RR"};
  for (size_t i = 0; i < s.levels.size(); i++) {
    line += "  ";
    line +=
        i < 8 && s.levels.size() <= 8 && s.levels.size() > 1 ? kNames[i] : std::to_string(i + 1);
    if (meter_width > 0) line += level_bar(s.levels[i], meter_width);
    line += fmt(" %.0f dB", std::max(-99.0, clamp_db(s.levels[i].peak_db)));
  }
  if (s.bitrate_kbps) line += fmt("  %.0f kb/s", *s.bitrate_kbps);
  if (s.targets)
    line += "  " + std::to_string(*s.targets) + (*s.targets == 1 ? " target" : " targets");
  if (s.lost) line += "  lost " + std::to_string(*s.lost);
  if (s.late && *s.late) line += "  late " + std::to_string(*s.late);
  if (s.late_output && *s.late_output)
    line += "  late at output " + std::to_string(*s.late_output);
  if (s.concealed && *s.concealed) line += "  concealed " + std::to_string(*s.concealed);
  if (s.underruns && *s.underruns) line += "  underruns " + std::to_string(*s.underruns);
  if (s.latency_ms) line += "  latency " + std::to_string(*s.latency_ms) + " ms";
  if (s.transit_us) line += fmt("  transit %.1f ms", *s.transit_us / 1000.0);
  if (s.clock_offset_us) line += fmt("  offset %.0f us", *s.clock_offset_us);
  if (!s.sender.empty()) line += "  from " + s.sender;
  if (!s.other_senders.empty())
    line += " (+" + std::to_string(s.other_senders.size()) + " other sender" +
            (s.other_senders.size() > 1 ? "s" : "") + " not played)";
  return line;
}

}  // namespace launcher
}  // namespace syncwave
