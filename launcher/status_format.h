// SPDX-License-Identifier: LGPL-2.1-or-later
// What syncwave-launch shows once a second: one stats sample, written as a JSON
// object (--stats-json) or as the terminal status line with level meters. Pure C++:
// the runtime fills a StatsSample from the elements' `stats` properties and the
// level element's messages.

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace syncwave {
namespace launcher {

struct ChannelLevel {
  double peak_db = -200.0;
  double rms_db = -200.0;
};

struct StatsSample {
  double time_s = 0.0;  // since start
  std::string command;  // "send" or "receive"
  std::string state;    // "sending", "waiting", "receiving", "synced", ...
  std::optional<uint64_t> packets;
  std::optional<uint64_t> bytes;
  std::optional<double> bitrate_kbps;  // over the last second
  std::optional<uint64_t> lost;
  std::optional<uint64_t> late;         // packets that arrived after their time (dropped)
  std::optional<uint64_t> late_output;  // buffers that reached the device too late
  std::optional<uint64_t> concealed;    // losses concealed (raw: continuation, Opus: PLC/FEC)
  std::optional<uint64_t> underruns;    // the audio device ran dry
  std::optional<uint64_t> duplicates;
  std::optional<double> jitter_us;
  std::optional<double> transit_us;  // sender capture time to arrival
  std::optional<double> buffer_ms;   // jitter buffer level
  std::optional<double> clock_offset_us;
  std::optional<double> drift_ppm;
  std::optional<int> latency_ms;
  std::optional<int> targets;  // send
  std::string sender;          // receive: the sender locked onto
  std::string clock;           // receive: the clock in use (syncwavesink)
  std::vector<std::string> other_senders;
  std::vector<ChannelLevel> levels;  // one per channel
};

// One line, no newline: {"time":1.0,"command":"receive",...}. Unknown values are null.
std::string stats_json(const StatsSample& sample);

// The status line, no newline. `meter_width` characters per channel bar (0: no bars,
// numbers only).
std::string status_line(const StatsSample& sample, int meter_width);

// "[#####+++     ]": '#' up to the RMS level, '+' up to the peak, on a -60..0 dBFS scale.
std::string level_bar(const ChannelLevel& level, int width);

// Escapes a string for a JSON string literal (without the quotes).
std::string json_escape(const std::string& s);

}  // namespace launcher
}  // namespace syncwave
