// SPDX-License-Identifier: LGPL-2.1-or-later
// The control surface's logic, without HTTP or sockets: the table of receivers a sender
// knows (what each reported, when), the changes a client may ask for and their
// validation, the JSON the API returns, and a per-client rate limit. Time is passed in
// (microseconds, any monotonic origin); nothing here blocks or allocates without bound.
//
//   ReceiverTable table;
//   table.report(report, now_us);                 // a receiver's state arrived
//   std::string json = table.to_json(now_us);      // GET /api/receivers
//   ChangeRequest change;
//   std::string error;
//   if (!parse_change(body, &change, &error)) ...  // POST /api/receivers/NAME: 400 + error
//
// What a client can change is only this: volume, mute, delay, latency and the name.
// Nothing here can start a process or name a file (docs/control.md, "Safe by
// construction").
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace syncwave {
namespace control {

// Limits of the API (docs/control.md).
constexpr size_t kMaxBodyBytes = 1024;
constexpr size_t kMaxNameBytes = 63;
constexpr size_t kMaxReceivers = 256;
constexpr double kMaxVolume = 1.5;
constexpr int kMinLatencyMs = 5;
constexpr int kMaxLatencyMs = 5000;
constexpr int kMaxDelayMs = 2000;  // and down to -latency

// A receiver's name: 1-63 bytes of ASCII letters, digits, space, '-', '_' and '.' or
// UTF-8 letters beyond ASCII, not starting or ending with a space.
bool valid_name(const std::string& name);

// What a receiver reports about itself (the back channel, docs/control.md).
struct ReceiverReport {
  std::string name;
  std::string address;   // "HOST:PORT" it reports from
  std::string state;     // the status line's state: "synced", "late", "waiting", ...
  int latency_ms = 0;
  double sync_offset_us = 0;  // measured against the shared clock
  uint64_t lost = 0;
  uint64_t late = 0;
  std::vector<double> level_db;  // RMS per channel
  double volume = 1.0;
  bool mute = false;
  int delay_ms = 0;
  // With a secret: the control datagrams this receiver refused (control_auth.h). Sent
  // and listed as "control_refused" only when set, so plain reports are as before.
  std::optional<uint64_t> control_refused;
};

// A change one client asks for; unset fields stay as they are.
struct ChangeRequest {
  std::optional<double> volume;
  std::optional<bool> mute;
  std::optional<int> delay_ms;
  std::optional<int> latency_ms;
  std::optional<std::string> name;
  bool empty() const { return !volume && !mute && !delay_ms && !latency_ms && !name; }
};

// Parses a POST body: one flat JSON object with any of "volume" (number 0..1.5),
// "mute" (true/false), "delay_ms" (integer -latency..2000), "latency_ms" (integer
// 5..5000) and "name" (string, valid_name). Anything else (other keys, nesting,
// duplicates, wrong types, out-of-range values, more than kMaxBodyBytes, an empty
// object) is refused with one sentence in *error. `latency_ms_now` bounds delay_ms
// from below (the receiver's current latency).
bool parse_change(const std::string& body, int latency_ms_now, ChangeRequest* out,
                  std::string* error);

// The same from the shell: "volume=0.25", "mute=false", "delay=-150", "latency=80",
// "name=Kitchen" (syncwave-launch control NAME KEY=VALUE...).
bool parse_change_args(const std::vector<std::string>& args, int latency_ms_now,
                       ChangeRequest* out, std::string* error);

// The change as the JSON object parse_change accepts (what `control` sends).
std::string change_to_json(const ChangeRequest& c);

// JSON string literal of `s` (quotes, backslash, control characters escaped).
std::string json_string(const std::string& s);

// The back channel (UDP, docs/control.md): a receiver's report to the sender's control
// port is "SWCTL1 R " + report JSON; the sender's change to a receiver is
// "SWCTL1 S " + change JSON. Neither is ever part of the SYNC audio stream.
constexpr const char* kReportPrefix = "SWCTL1 R ";
constexpr const char* kChangePrefix = "SWCTL1 S ";
constexpr size_t kMaxDatagramBytes = 1400;
// With a secret each is "PREFIX TOKEN JSON" (control_auth.h), the token's METHOD being
// these, its PATH "" for a report (the name is in it) and the receiver's name for a change.
constexpr const char* kReportMethod = "SWCTL1-R";
constexpr const char* kChangeMethod = "SWCTL1-S";

// A report as one flat JSON object: name, state, latency_ms, sync_offset_us, lost, late,
// level_db (a string "L,R,...": dB per channel), volume, mute, delay_ms (and
// control_refused when set).
std::string report_to_json(const ReceiverReport& r);
// Parses a report (what report_to_json writes; unknown keys are ignored for newer
// receivers, wrong types and invalid names refused). `address` is not in it: the
// caller sets it from where the datagram came from.
bool parse_report(const std::string& json, ReceiverReport* out, std::string* error);

class ReceiverTable {
 public:
  // A receiver not heard from for this long is gone.
  explicit ReceiverTable(int64_t timeout_us = 5'000'000) : timeout_us_(timeout_us) {}

  // Adds or refreshes a receiver (by name). Returns false when the report is refused:
  // an invalid name, or a new name when kMaxReceivers are known.
  bool report(const ReceiverReport& r, int64_t now_us);
  // Drops receivers not heard from within the timeout; returns how many.
  size_t expire(int64_t now_us);
  const ReceiverReport* find(const std::string& name) const;
  size_t size() const { return receivers_.size(); }

  // {"receivers":[{...}, ...]}, by name; "age_ms" is the time since the last report.
  std::string to_json(int64_t now_us) const;

 private:
  struct Entry {
    ReceiverReport report;
    int64_t seen_us = 0;
  };
  int64_t timeout_us_;
  std::map<std::string, Entry> receivers_;
};

// A token bucket per client: `rate` requests per second, bursts of `burst`. Keeps at
// most `max_clients` (the least recently seen are forgotten first).
class RateLimiter {
 public:
  RateLimiter(double rate = 10.0, double burst = 20.0, size_t max_clients = 1024)
      : rate_(rate), burst_(burst), max_clients_(max_clients) {}
  // True when `client` may make a request now (and counts it).
  bool allow(const std::string& client, int64_t now_us);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_us = 0;
  };
  double rate_, burst_;
  size_t max_clients_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace control
}  // namespace syncwave
