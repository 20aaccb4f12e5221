// SPDX-License-Identifier: LGPL-2.1-or-later
#include "clock_spec.h"

#include <cctype>

#include "host_port.h"

namespace syncwave {

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) b++;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) e--;
  return s.substr(b, e - b);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Parses a decimal number in [lo, hi]; false on anything else (sign, junk, overflow).
bool parse_number(const std::string& s, long lo, long hi, long* out) {
  if (s.empty() || s.size() > 6) return false;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

// "HOST[:PORT]" or "[V6]:PORT" into host and port (default_port when absent), with the
// one parser of host_port.h.
ClockSpecError parse_host_port(const std::string& s, uint16_t default_port, std::string* host,
                               uint16_t* port) {
  const HostPortResult r = syncwave::parse_host_port(s);
  switch (r.error) {
    case HostPortError::kNone:
      break;
    case HostPortError::kEmpty:
    case HostPortError::kMissingHost:
      return ClockSpecError::kMissingHost;
    case HostPortError::kBadPort:
      return ClockSpecError::kBadPort;
    case HostPortError::kBadHost:
      return ClockSpecError::kBadHost;
  }
  *host = r.value.host;
  *port = r.value.has_port() ? r.value.port : default_port;
  return ClockSpecError::kNone;
}

}  // namespace

ClockSpecResult parse_clock_spec(const std::string& text) {
  ClockSpecResult r;
  std::string s = trim(text);
  if (s.empty()) {
    r.error = ClockSpecError::kEmpty;
    return r;
  }
  std::string scheme, rest;
  bool has_rest = false;
  size_t colon = s.find(':');
  if (colon == std::string::npos) {
    scheme = lower(s);
  } else {
    scheme = lower(s.substr(0, colon));
    rest = s.substr(colon + 1);
    if (rest.compare(0, 2, "//") == 0) rest = rest.substr(2);
    has_rest = true;
  }

  if (scheme == "auto" || scheme == "system") {
    if (has_rest && !rest.empty()) {
      r.error = ClockSpecError::kUnexpectedArgument;
      return r;
    }
    r.spec.kind = scheme == "auto" ? ClockKind::kAuto : ClockKind::kSystem;
    return r;
  }
  if (scheme == "ptp") {
    r.spec.kind = ClockKind::kPtp;
    long d = 0;
    if (has_rest && !rest.empty() && !parse_number(rest, 0, kMaxPtpDomain, &d)) {
      r.error = ClockSpecError::kBadDomain;
      return r;
    }
    r.spec.ptp_domain = static_cast<int>(d);
    return r;
  }
  if (scheme == "net" || scheme == "ntp") {
    r.spec.kind = scheme == "net" ? ClockKind::kNet : ClockKind::kNtp;
    uint16_t def = scheme == "net" ? kDefaultNetClockPort : kDefaultNtpPort;
    r.error = parse_host_port(rest, def, &r.spec.host, &r.spec.port);
    if (!r.ok()) r.spec = ClockSpec{};
    return r;
  }
  r.error = ClockSpecError::kUnknownScheme;
  return r;
}

std::string to_string(const ClockSpec& spec) {
  auto host = [&spec]() {
    return spec.host.find(':') != std::string::npos ? "[" + spec.host + "]" : spec.host;
  };
  switch (spec.kind) {
    case ClockKind::kAuto:
      return "auto";
    case ClockKind::kSystem:
      return "system";
    case ClockKind::kNet:
      return "net://" + host() + ":" + std::to_string(spec.port);
    case ClockKind::kPtp:
      return "ptp://" + std::to_string(spec.ptp_domain);
    case ClockKind::kNtp:
      return "ntp://" + host() + ":" + std::to_string(spec.port);
  }
  return "auto";
}

const char* clock_spec_error_name(ClockSpecError e) {
  switch (e) {
    case ClockSpecError::kNone:
      return "none";
    case ClockSpecError::kEmpty:
      return "empty clock string";
    case ClockSpecError::kUnknownScheme:
      return "unknown clock (expected auto, system, net://HOST:PORT, ptp://DOMAIN or "
             "ntp://HOST:PORT)";
    case ClockSpecError::kMissingHost:
      return "missing host";
    case ClockSpecError::kBadPort:
      return "port must be a number in 1..65535";
    case ClockSpecError::kBadDomain:
      return "PTP domain must be a number in 0..255";
    case ClockSpecError::kBadHost:
      return "malformed host";
    case ClockSpecError::kUnexpectedArgument:
      return "auto and system take no argument";
  }
  return "unknown error";
}

}  // namespace syncwave
