// SPDX-License-Identifier: LGPL-2.1-or-later
// The clock string a receiver is configured with (syncwavesink `clock`, launcher
// `--clock`), parsed into a plain struct. Pure C++: no GStreamer, no GLib.
//
//   auto                      net clock of the locked sender, port 5556, else system
//   system                    host clock (REALTIME), synchronized by NTP/PTP already
//   net://HOST:PORT           GstNetClientClock (also net:HOST[:PORT], port 5556)
//   ptp://DOMAIN              GstPtpClock (also ptp, ptp:DOMAIN, domain 0..255)
//   ntp://HOST:PORT           GstNtpClock (also ntp:HOST[:PORT], port 123)
//
// HOST may be a name, an IPv4 address or a bracketed IPv6 address ([::1]:5556).
// Errors are returned as values; nothing here throws.

#pragma once

#include <cstdint>
#include <string>

namespace syncwave {

constexpr uint16_t kDefaultNetClockPort = 5556;
constexpr uint16_t kDefaultNtpPort = 123;
constexpr int kMaxPtpDomain = 255;

enum class ClockKind { kAuto, kSystem, kNet, kPtp, kNtp };

enum class ClockSpecError {
  kNone = 0,
  kEmpty,               // empty string
  kUnknownScheme,       // not one of auto/system/net/ptp/ntp
  kMissingHost,         // net/ntp without a host
  kBadPort,             // port not a number in 1..65535
  kBadDomain,           // PTP domain not a number in 0..255
  kBadHost,             // host with spaces, an unclosed '[' or trailing junk
  kUnexpectedArgument,  // auto/system followed by ':...'
};

struct ClockSpec {
  ClockKind kind = ClockKind::kAuto;
  std::string host;    // kNet, kNtp (without IPv6 brackets)
  uint16_t port = 0;   // kNet, kNtp
  int ptp_domain = 0;  // kPtp

  bool operator==(const ClockSpec& o) const {
    return kind == o.kind && host == o.host && port == o.port && ptp_domain == o.ptp_domain;
  }
};

struct ClockSpecResult {
  ClockSpecError error = ClockSpecError::kNone;
  ClockSpec spec;
  bool ok() const { return error == ClockSpecError::kNone; }
};

// Parses a clock string. Leading/trailing whitespace is ignored; the scheme is
// case-insensitive.
ClockSpecResult parse_clock_spec(const std::string& text);

// The canonical string for a spec: "auto", "system", "net://h:p", "ptp://d", "ntp://h:p".
std::string to_string(const ClockSpec& spec);

const char* clock_spec_error_name(ClockSpecError e);

}  // namespace syncwave
