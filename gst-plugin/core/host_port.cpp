// SPDX-License-Identifier: LGPL-2.1-or-later
#include "host_port.h"

#include <cctype>

namespace syncwave {

namespace {

constexpr size_t kMaxHost = 253;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_ipv4(const std::string& s) {
  int parts = 0;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = i;
    unsigned v = 0;
    while (j < s.size() && is_digit(s[j]) && j - i < 3) v = v * 10 + (s[j++] - '0');
    if (j == i || v > 255 || (j < s.size() && s[j] != '.')) return false;
    parts++;
    if (j == s.size()) break;
    i = j + 1;
    if (i == s.size()) return false;  // trailing dot
  }
  return parts == 4;
}

bool is_ipv6(const std::string& s) {
  std::string addr = s;
  const size_t pct = s.find('%');
  if (pct != std::string::npos) {
    const std::string zone = s.substr(pct + 1);
    if (zone.empty()) return false;
    for (char c : zone)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
        return false;
    addr = s.substr(0, pct);
  }
  if (addr.find(':') == std::string::npos || addr.size() < 2) return false;
  // An embedded IPv4 tail (::ffff:192.0.2.1) counts as two groups.
  const size_t last_colon = addr.rfind(':');
  const std::string tail = addr.substr(last_colon + 1);
  if (tail.find('.') != std::string::npos) {
    if (!is_ipv4(tail)) return false;
    return is_ipv6(addr.substr(0, last_colon + 1) + "0:0");
  }
  const std::string& head = addr;
  int groups = 0;
  bool double_colon = false;
  size_t i = 0;
  if (head.compare(0, 2, "::") == 0) {
    double_colon = true;
    i = 2;
  } else if (!head.empty() && head[0] == ':') {
    return false;
  }
  while (i < head.size()) {
    size_t j = i;
    while (j < head.size() && std::isxdigit(static_cast<unsigned char>(head[j]))) j++;
    if (j - i > 4) return false;
    if (j == i) return false;
    groups++;
    if (j == head.size()) break;
    if (head[j] != ':') return false;
    if (j + 1 < head.size() && head[j + 1] == ':') {
      if (double_colon) return false;
      double_colon = true;
      j++;
    } else if (j + 1 == head.size()) {
      return false;  // a single trailing ':'
    }
    i = j + 1;
  }
  return double_colon ? groups <= 7 : groups == 8;
}

bool is_name(const std::string& s) {
  if (s.front() == '.' || s.front() == '-') return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
      return false;
  // Dotted numbers that are not an IPv4 address ("999.1.1.1", "1.2.3") are no name.
  bool numeric = true;
  for (char c : s)
    if (!is_digit(c) && c != '.') numeric = false;
  return !numeric;
}

HostPortError check_host(const std::string& host, bool bracketed, HostKind* kind) {
  if (host.empty()) return HostPortError::kMissingHost;
  if (host.size() > kMaxHost) return HostPortError::kBadHost;
  if (bracketed) {
    if (!is_ipv6(host)) return HostPortError::kBadHost;
    *kind = HostKind::kIPv6;
    return HostPortError::kNone;
  }
  if (is_ipv4(host)) {
    *kind = HostKind::kIPv4;
  } else if (is_ipv6(host)) {
    *kind = HostKind::kIPv6;
  } else if (is_name(host)) {
    *kind = HostKind::kName;
  } else {
    return HostPortError::kBadHost;
  }
  return HostPortError::kNone;
}

}  // namespace

bool parse_port(const std::string& text, uint16_t* port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned v = 0;
  for (char c : text) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v < 1 || v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

HostKind host_kind(const std::string& host) {
  if (is_ipv4(host)) return HostKind::kIPv4;
  if (is_ipv6(host)) return HostKind::kIPv6;
  return HostKind::kName;
}

HostPortResult parse_host_port(const std::string& text) {
  HostPortResult r;
  if (text.empty()) {
    r.error = HostPortError::kEmpty;
    return r;
  }
  std::string host, port;
  bool has_port = false, bracketed = false;
  if (text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos) {
      r.error = HostPortError::kBadHost;
      return r;
    }
    bracketed = true;
    host = text.substr(1, close - 1);
    const std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        r.error = HostPortError::kBadHost;
        return r;
      }
      port = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = text.find(':');
    if (colon != std::string::npos && text.find(':', colon + 1) == std::string::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      has_port = true;
    } else {
      host = text;  // no colon, or a bare IPv6 address (no port)
    }
  }
  r.error = check_host(host, bracketed, &r.value.kind);
  if (r.error != HostPortError::kNone) return r;
  if (has_port && !parse_port(port, &r.value.port)) {
    r.error = HostPortError::kBadPort;
    return r;
  }
  r.value.host = host;
  return r;
}

std::string format_host_port(const std::string& host, uint16_t port) {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return port == 0 ? h : h + ":" + std::to_string(port);
}

const char* host_port_error_message(HostPortError error) {
  switch (error) {
    case HostPortError::kNone:
      return "ok";
    case HostPortError::kEmpty:
      return "empty";
    case HostPortError::kMissingHost:
      return "missing host";
    case HostPortError::kBadHost:
      return "malformed host";
    case HostPortError::kBadPort:
      return "port must be a number in 1..65535";
  }
  return "?";
}

}  // namespace syncwave
