// SPDX-License-Identifier: LGPL-2.1-or-later
// "HOST:PORT" as users write it (syncwavejitter `sender`, syncwavesink `clock=net://...`,
// the launcher's --target/--from/--multicast), parsed into a plain struct. Pure C++: no
// GStreamer, no GLib, no DNS: a host name stays a name, to be resolved by the caller off
// the streaming path.
//
//   192.168.1.20        IPv4, no port            [fe80::1%eth0]:5555   IPv6 with a port
//   192.168.1.20:5555   IPv4 and port            ::1                   IPv6, no port
//   kitchen.local:6000  host name and port       [::1]                 IPv6, no port
//
// A port is a decimal number in 1..65535 (no sign, no spaces, no leading '+'). A host is
// at most 253 characters: letters, digits, '.', '-', '_' for names; an IPv4 address has
// four numbers 0..255; an IPv6 address is hex digits and ':' (an embedded IPv4 tail and a
// %zone allowed). Errors are returned as values; nothing here throws.
#pragma once

#include <cstdint>
#include <string>

namespace syncwave {

enum class HostKind { kName, kIPv4, kIPv6 };

enum class HostPortError {
  kNone = 0,
  kEmpty,        // nothing at all
  kMissingHost,  // ":5555", "[]:5555"
  kBadHost,      // characters a host cannot have, an unclosed '[', junk after ']'
  kBadPort,      // not a number in 1..65535 (also "host:" with nothing after it)
};

struct HostPort {
  std::string host;   // without IPv6 brackets
  uint16_t port = 0;  // 0: none given
  HostKind kind = HostKind::kName;

  bool has_port() const { return port != 0; }
  bool operator==(const HostPort& o) const {
    return host == o.host && port == o.port && kind == o.kind;
  }
};

struct HostPortResult {
  HostPortError error = HostPortError::kNone;
  HostPort value;
  bool ok() const { return error == HostPortError::kNone; }
};

// Parses "HOST", "HOST:PORT", "[V6]", "[V6]:PORT" or a bare IPv6 address.
HostPortResult parse_host_port(const std::string& text);

// Parses a decimal port in 1..65535; false on anything else.
bool parse_port(const std::string& text, uint16_t* port);

// The address kind of a host without brackets (kName when it is neither literal).
HostKind host_kind(const std::string& host);

// "HOST:PORT", with brackets around an IPv6 host; "HOST" alone when port is 0.
std::string format_host_port(const std::string& host, uint16_t port);

// A short English description of an error ("port must be a number in 1..65535").
const char* host_port_error_message(HostPortError error);

}  // namespace syncwave
