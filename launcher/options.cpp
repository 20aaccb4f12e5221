// SPDX-License-Identifier: LGPL-2.1-or-later
#include "options.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "discovery.h"
#include "host_port.h"

namespace syncwave {
namespace launcher {

namespace {

const std::set<std::string> kCommonOptions = {"print",    "verbose",    "quiet", "save-config",
                                              "duration", "stats-json", "preset"};
const std::set<std::string> kSendOptions = {"source", "codec",  "bitrate",   "frame-ms",
                                            "fec",    "target", "broadcast", "multicast",
                                            "ttl",    "port",   "clock-port", "name",
                                            "control-port", "control-bind"};
const std::set<std::string> kReceiveOptions = {"clock-port", "port",   "bind",   "multicast",
                                               "latency",    "clock",  "from",   "device",
                                               "delay",      "volume", "silent", "record",
                                               "name",       "control-port"};
const std::set<std::string> kListOptions = {"json", "timeout", "verbose", "quiet"};
const std::set<std::string> kCalibrateOptions = {
    "microphone", "receiver",     "reference", "dry-run", "repeats",     "port",
    "clock-port", "control-port", "verbose",   "quiet",   "secret",      "secret-file"};
const std::set<std::string> kControlOptions = {"sender", "control-port", "verbose", "quiet",
                                               "secret", "secret-file",  "page-key"};
// Secure streams and the control surface's authentication: options of send, receive,
// control and calibrate, stored in CommonOptions::secret.
const std::set<std::string> kSecretOptions = {"secret", "secret-file"};
const std::set<std::string> kFlagOptions = {"print",       "verbose",   "quiet",
                                            "save-config", "broadcast", "silent",
                                            "json",        "page-key",  "dry-run"};

std::string quoted(const std::string& s) {
  return "'" + s + "'";
}

bool fail(std::string* error, const std::string& name, const std::string& value,
          const std::string& expected) {
  if (error) *error = "--" + name + "=" + quoted(value) + " is invalid: " + expected + ".";
  return false;
}

bool parse_flag(const std::string& value, bool* out) {
  if (value.empty() || value == "true" || value == "1" || value == "yes") {
    *out = true;
    return true;
  }
  if (value == "false" || value == "0" || value == "no") {
    *out = false;
    return true;
  }
  return false;
}

bool int_in_range(const std::string& value, int lo, int hi, int* out) {
  int v = 0;
  if (!parse_int(value, &v) || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool valid_host(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    if (c == ' ' || c == '\t' || c == '/' || c == '"' || c == '\'' || c == ',' || c == '!' ||
        c == '\\')
      return false;
  }
  return true;
}

bool is_multicast_ipv4(const std::string& host) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  char tail = 0;
  if (std::sscanf(host.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4) return false;
  return a >= 224 && a <= 239 && b < 256 && c < 256 && d < 256;
}

// An IPv4 literal (a.b.c.d) or an IPv6 one (hex digits and colons).
bool is_ip_literal(const std::string& host) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  char tail = 0;
  if (std::sscanf(host.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4)
    return a < 256 && b < 256 && c < 256 && d < 256;
  if (host.find(':') == std::string::npos || host.size() > 45) return false;
  for (char ch : host)
    if (!(std::isxdigit(static_cast<unsigned char>(ch)) || ch == ':' || ch == '.')) return false;
  return true;
}

bool is_multicast_ipv6(const std::string& host) {
  return host.size() > 2 && (host[0] == 'f' || host[0] == 'F') &&
         (host[1] == 'f' || host[1] == 'F') && host.find(':') != std::string::npos;
}

bool valid_clock(const std::string& clock) {
  if (clock == "auto" || clock == "system" || clock == "ptp") return true;
  auto rest_after = [&](const std::string& scheme, std::string* rest) {
    for (const std::string& sep : {scheme + "://", scheme + ":"}) {
      if (clock.compare(0, sep.size(), sep) == 0) {
        *rest = clock.substr(sep.size());
        return true;
      }
    }
    return false;
  };
  std::string rest;
  if (rest_after("ptp", &rest)) {
    int domain = 0;
    return int_in_range(rest, 0, 255, &domain);
  }
  if (rest_after("net", &rest) || rest_after("ntp", &rest)) {
    Endpoint ep;
    return parse_endpoint(rest, &ep);
  }
  return false;
}

RecordFormat record_format_for(const std::string& path) {
  auto ends_with = [&](const char* ext) {
    std::string e(ext);
    if (path.size() <= e.size()) return false;
    std::string tail = path.substr(path.size() - e.size());
    for (char& ch : tail) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return tail == e;
  };
  if (ends_with(".wav")) return RecordFormat::kWav;
  if (ends_with(".flac")) return RecordFormat::kFlac;
  if (ends_with(".ogg")) return RecordFormat::kOgg;
  return RecordFormat::kNone;
}

bool apply_common(CommonOptions& o, const std::string& name, const std::string& value,
                  std::string* error) {
  if (name == "print" || name == "verbose" || name == "quiet" || name == "save-config") {
    bool v = false;
    if (!parse_flag(value, &v)) return fail(error, name, value, "expected true or false");
    if (name == "print") o.print = v;
    if (name == "verbose") o.verbose = v;
    if (name == "quiet") o.quiet = v;
    if (name == "save-config") o.save_config = v;
    return true;
  }
  if (name == "duration") {
    double d = 0;
    if (!parse_number(value, &d) || d <= 0 || d > 1e7)
      return fail(error, name, value, "expected a number of seconds greater than 0");
    o.duration_s = d;
    return true;
  }
  if (name == "stats-json") {
    if (value.empty()) return fail(error, name, value, "expected a file name or -");
    o.stats_json = value;
    return true;
  }
  if (name == "preset") {
    if (value.empty() || value.find('/') != std::string::npos || value[0] == '.')
      return fail(error, name, value, "expected a preset name (see 'syncwave-launch presets')");
    o.preset = value;
    return true;
  }
  return false;
}

bool apply_name(std::string* out, const std::string& value, std::string* error) {
  if (!valid_service_name(value, error)) return false;
  *out = value;
  return true;
}

bool apply_list(ListOptions& o, const std::string& name, const std::string& value,
                std::string* error) {
  if (name == "json") {
    if (!parse_flag(value, &o.json)) return fail(error, name, value, "expected true or false");
    return true;
  }
  if (name == "timeout") {
    double t = 0;
    if (!parse_number(value, &t) || t <= 0 || t > 3600)
      return fail(error, name, value, "expected a number of seconds greater than 0, at most 3600");
    o.timeout_s = t;
    return true;
  }
  return false;
}

bool apply_send(SendOptions& o, const std::string& name, const std::string& value,
                std::string* error) {
  if (name == "source") {
    if (value == "loopback") {
      o.source = SourceKind::kLoopback;
      o.source_arg.clear();
    } else if (value == "test") {
      o.source = SourceKind::kTest;
      o.source_arg.clear();
    } else if (value.compare(0, 7, "device:") == 0 && value.size() > 7) {
      o.source = SourceKind::kDevice;
      o.source_arg = value.substr(7);
    } else if (value.compare(0, 5, "file:") == 0 && value.size() > 5) {
      o.source = SourceKind::kFile;
      o.source_arg = value.substr(5);
    } else {
      return fail(error, name, value, "expected loopback, test, device:NAME or file:PATH");
    }
    return true;
  }
  if (name == "codec") {
    if (value == "raw") {
      o.codec = Codec::kRaw;
    } else if (value == "opus") {
      o.codec = Codec::kOpus;
    } else {
      return fail(error, name, value, "expected raw or opus");
    }
    return true;
  }
  if (name == "bitrate") {
    if (!int_in_range(value, 6, 510, &o.bitrate_kbps))
      return fail(error, name, value, "expected kilobits per second from 6 to 510");
    return true;
  }
  if (name == "frame-ms") {
    double f = 0;
    if (!parse_number(value, &f) || (f != 2.5 && f != 5 && f != 10 && f != 20))
      return fail(error, name, value, "expected 2.5, 5, 10 or 20");
    o.frame_ms = f;
    return true;
  }
  if (name == "fec") {
    if (!int_in_range(value, 0, 100, &o.fec_percent))
      return fail(error, name, value, "expected an expected-loss percentage from 0 to 100");
    return true;
  }
  if (name == "target") {
    Endpoint ep;
    if (!parse_endpoint(value, &ep)) return fail(error, name, value, "expected HOST or HOST:PORT");
    o.targets.push_back(ep);
    return true;
  }
  if (name == "broadcast") {
    if (!parse_flag(value, &o.broadcast)) return fail(error, name, value, "expected true or false");
    return true;
  }
  if (name == "multicast") {
    Endpoint ep;
    if (!parse_endpoint(value, &ep) || !(is_multicast_ipv4(ep.host) || is_multicast_ipv6(ep.host)))
      return fail(error, name, value,
                  "expected a multicast group such as 239.255.0.1 or 239.255.0.1:5555");
    o.multicast = ep;
    return true;
  }
  if (name == "ttl") {
    if (!int_in_range(value, 0, 255, &o.ttl))
      return fail(error, name, value, "expected a hop count from 0 to 255");
    return true;
  }
  if (name == "port") {
    if (!int_in_range(value, 1, 65535, &o.port))
      return fail(error, name, value, "expected a UDP port from 1 to 65535");
    return true;
  }
  if (name == "clock-port") {
    if (!int_in_range(value, 0, 65535, &o.clock_port))
      return fail(error, name, value, "expected a UDP port from 1 to 65535, or 0 for off");
    return true;
  }
  if (name == "name") return apply_name(&o.name, value, error);
  if (name == "control-port") {
    if (!int_in_range(value, 0, 65535, &o.control_port))
      return fail(error, name, value, "expected a TCP port from 1 to 65535, or 0 for off");
    return true;
  }
  if (name == "control-bind") {
    if (!is_ip_literal(value)) return fail(error, name, value, "expected an IP address of this machine");
    o.control_bind.push_back(value);
    return true;
  }
  return false;
}

bool apply_receive(ReceiveOptions& o, const std::string& name, const std::string& value,
                   std::string* error) {
  if (name == "port") {
    if (!int_in_range(value, 1, 65535, &o.port))
      return fail(error, name, value, "expected a UDP port from 1 to 65535");
    return true;
  }
  if (name == "bind") {
    if (!valid_host(value)) return fail(error, name, value, "expected a local address");
    o.bind = value;
    return true;
  }
  if (name == "multicast") {
    if (!(is_multicast_ipv4(value) || is_multicast_ipv6(value)))
      return fail(error, name, value, "expected a multicast group such as 239.255.0.1");
    o.multicast = value;
    return true;
  }
  if (name == "latency") {
    if (value == "auto") {
      o.auto_latency = true;
      return true;
    }
    o.auto_latency = false;
    if (!int_in_range(value, 1, 10000, &o.latency_ms))
      return fail(error, name, value, "expected milliseconds from 1 to 10000, or auto");
    return true;
  }
  if (name == "clock") {
    if (!valid_clock(value))
      return fail(error, name, value,
                  "expected auto, system, net:HOST[:PORT], ptp[:DOMAIN] or ntp:HOST[:PORT]");
    o.clock = value;
    return true;
  }
  if (name == "clock-port") {
    if (!int_in_range(value, 1, 65535, &o.clock_port))
      return fail(error, name, value, "expected the sender's clock port, 1 to 65535");
    return true;
  }
  if (name == "control-port") {
    if (!int_in_range(value, 0, 65535, &o.control_port))
      return fail(error, name, value, "expected the sender's control port, 1 to 65535, or 0 for off");
    return true;
  }
  if (name == "from") {
    // A host, or the name a sender announces (discovery.h).
    if (!parse_host_port(value).ok() && !valid_service_name(value, nullptr))
      return fail(error, name, value, "expected HOST, HOST:PORT or a sender's name");
    o.from = value;
    return true;
  }
  if (name == "device") {
    if (value.empty()) return fail(error, name, value, "expected a device name");
    if (o.outputs.size() == 1 && !o.outputs[0].named) {
      o.outputs[0].device = value;
      o.outputs[0].named = true;
    } else {
      Output out;
      out.device = value;
      out.named = true;
      o.outputs.push_back(out);
    }
    return true;
  }
  if (name == "delay") {
    int d = 0;
    if (!int_in_range(value, -10000, 10000, &d))
      return fail(error, name, value, "expected whole milliseconds from -latency to 10000");
    o.outputs.back().delay_ms = d;
    return true;
  }
  if (name == "volume") {
    double v = 0;
    if (!parse_number(value, &v) || v < 0 || v > 1.5)
      return fail(error, name, value, "expected a gain from 0 to 1.5");
    o.outputs.back().volume = v;
    return true;
  }
  if (name == "silent") {
    if (!parse_flag(value, &o.silent)) return fail(error, name, value, "expected true or false");
    return true;
  }
  if (name == "record") {
    RecordFormat f = record_format_for(value);
    if (f == RecordFormat::kNone)
      return fail(error, name, value, "expected a file name ending in .wav, .flac or .ogg");
    o.record = value;
    o.record_format = f;
    return true;
  }
  if (name == "name") return apply_name(&o.name, value, error);
  return false;
}

// --secret=PASSPHRASE, or --secret-file=PATH (its first line, without the line end).
bool apply_secret(CommonOptions& o, const std::string& name, const std::string& value,
                  std::string* error) {
  std::string secret = value;
  if (name == "secret-file") {
    std::FILE* f = value.empty() ? nullptr : std::fopen(value.c_str(), "rb");
    if (!f) return fail(error, name, value, "expected a readable file holding the passphrase");
    char line[4096];
    const bool got = std::fgets(line, sizeof line, f) != nullptr;
    std::fclose(f);
    secret = got ? line : "";
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    if (secret.empty())
      return fail(error, name, value, "expected the passphrase on the file's first line");
  }
  if (secret.empty()) return fail(error, name, "", "expected a passphrase");
  o.secret = secret;
  return true;
}

}  // namespace

const char* command_name(Command command) {
  switch (command) {
    case Command::kSend:
      return "send";
    case Command::kReceive:
      return "receive";
    case Command::kDevices:
      return "devices";
    case Command::kPresets:
      return "presets";
    case Command::kList:
      return "list";
    case Command::kControl:
      return "control";
    case Command::kCalibrate:
      return "calibrate";
    case Command::kNone:
      break;
  }
  return "";
}

Command command_from_name(const std::string& name) {
  if (name == "send") return Command::kSend;
  if (name == "receive") return Command::kReceive;
  if (name == "devices") return Command::kDevices;
  if (name == "presets") return Command::kPresets;
  if (name == "list") return Command::kList;
  if (name == "control") return Command::kControl;
  if (name == "calibrate") return Command::kCalibrate;
  return Command::kNone;
}

bool is_known_option(Command command, const std::string& name) {
  if (command == Command::kList) return kListOptions.count(name) > 0;
  if (command == Command::kControl) return kControlOptions.count(name) > 0;
  if (command == Command::kCalibrate) return kCalibrateOptions.count(name) > 0;
  if (kCommonOptions.count(name)) return true;
  if (kSecretOptions.count(name)) return command == Command::kSend || command == Command::kReceive;
  if (command == Command::kSend) return kSendOptions.count(name) > 0;
  if (command == Command::kReceive) return kReceiveOptions.count(name) > 0;
  return false;
}

bool is_flag_option(const std::string& name) {
  return kFlagOptions.count(name) > 0;
}

namespace {

bool apply_control(Options& options, const std::string& name, const std::string& value,
                   std::string* error) {
  ControlOptions& o = options.control;
  if (name == "verbose" || name == "quiet") return apply_common(options.common, name, value, error);
  if (kSecretOptions.count(name)) return apply_secret(options.common, name, value, error);
  if (name == "page-key") {
    if (!parse_flag(value, &o.page_key)) return fail(error, name, value, "expected true or false");
    return true;
  }
  if (name == "sender") {
    if (!valid_host(value) || value.find(':') != std::string::npos)
      return fail(error, name, value, "expected the sender's host (the port is --control-port)");
    o.sender = value;
    return true;
  }
  if (name == "control-port") {
    if (!int_in_range(value, 1, 65535, &o.control_port))
      return fail(error, name, value, "expected the sender's control port, 1 to 65535");
    return true;
  }
  return false;
}

// --receiver=NAME or NAME@HOST[:PORT] (the name before the last '@': a name may hold one).
bool apply_calibrate_receiver(CalibrateOptions& o, const std::string& value, std::string* error) {
  CalibrateTarget t;
  const size_t at = value.rfind('@');
  t.name = at == std::string::npos ? value : value.substr(0, at);
  if (!valid_service_name(t.name, nullptr) || t.name.size() > 63)
    return fail(error, "receiver", value,
                "expected a receiver's name (its --name), optionally NAME@HOST or NAME@HOST:PORT");
  if (at != std::string::npos && !parse_endpoint(value.substr(at + 1), &t.address))
    return fail(error, "receiver", value, "expected NAME@HOST or NAME@HOST:PORT after the name");
  for (const CalibrateTarget& other : o.receivers)
    if (other.name == t.name)
      return fail(error, "receiver", value, "that receiver is already named once");
  o.receivers.push_back(t);
  return true;
}

bool apply_calibrate(Options& options, const std::string& name, const std::string& value,
                     std::string* error) {
  CalibrateOptions& o = options.calibrate;
  if (name == "verbose" || name == "quiet") return apply_common(options.common, name, value, error);
  if (kSecretOptions.count(name)) return apply_secret(options.common, name, value, error);
  if (name == "microphone") {
    if (value.empty()) return fail(error, name, value, "expected a capture device (see 'devices')");
    o.microphone = value == "default" ? "" : value;
    return true;
  }
  if (name == "receiver") return apply_calibrate_receiver(o, value, error);
  if (name == "reference") {
    if (!valid_service_name(value, nullptr))
      return fail(error, name, value, "expected the name of one of the receivers");
    o.reference = value;
    return true;
  }
  if (name == "dry-run") {
    if (!parse_flag(value, &o.dry_run)) return fail(error, name, value, "expected true or false");
    return true;
  }
  if (name == "repeats") {
    if (!int_in_range(value, 2, 20, &o.repeats))
      return fail(error, name, value, "expected a number of measurements from 2 to 20");
    return true;
  }
  if (name == "port") {
    if (!int_in_range(value, 1, 65535, &o.port))
      return fail(error, name, value, "expected a UDP port from 1 to 65535");
    return true;
  }
  if (name == "clock-port") {
    if (!int_in_range(value, 1, 65535, &o.clock_port))
      return fail(error, name, value,
                  "expected the receivers' clock port (their --clock-port), 1 to 65535");
    return true;
  }
  if (name == "control-port") {
    if (!int_in_range(value, 1, 65535, &o.control_port))
      return fail(error, name, value,
                  "expected the receivers' control port (their --control-port), 1 to 65535");
    return true;
  }
  return false;
}

}  // namespace

bool apply_option(Options& options, const std::string& name, const std::string& value,
                  std::string* error) {
  if (!is_known_option(options.command, name)) {
    if (error)
      *error = std::string("--") + name + " is not an option of '" + command_name(options.command) +
               "'.";
    return false;
  }
  if (kCommonOptions.count(name)) return apply_common(options.common, name, value, error);
  if (options.command == Command::kList) return apply_list(options.list, name, value, error);
  if (options.command == Command::kControl) return apply_control(options, name, value, error);
  if (options.command == Command::kCalibrate) return apply_calibrate(options, name, value, error);
  if (kSecretOptions.count(name)) return apply_secret(options.common, name, value, error);
  if (options.command == Command::kSend) return apply_send(options.send, name, value, error);
  return apply_receive(options.receive, name, value, error);
}

bool validate_options(const Options& options, std::string* error) {
  const CommonOptions& c = options.common;
  if (c.verbose && c.quiet) {
    if (error) *error = "--verbose and --quiet cannot be used together.";
    return false;
  }
  if (options.command == Command::kSend) {
    const SendOptions& s = options.send;
    if (s.fec_percent > 0 && s.codec != Codec::kOpus) {
      if (error)
        *error = "--fec=" + std::to_string(s.fec_percent) +
                 " needs --codec=opus: raw audio has no forward error correction.";
      return false;
    }
  }
  if (options.command == Command::kCalibrate) {
    const CalibrateOptions& k = options.calibrate;
    bool known = k.reference.empty() || k.receivers.empty();
    for (const CalibrateTarget& t : k.receivers) known = known || t.name == k.reference;
    if (!known) {
      if (error)
        *error =
            "--reference='" + k.reference + "' is not one of the receivers given with --receiver.";
      return false;
    }
    if (k.receivers.size() == 1) {
      if (error)
        *error =
            "calibrate aligns receivers to each other: give at least two --receiver (or "
            "none, for every receiver found on the network).";
      return false;
    }
  }
  if (options.command == Command::kReceive) {
    const ReceiveOptions& r = options.receive;
    for (const Output& out : r.outputs) {
      if (out.delay_ms < -r.latency_ms) {
        if (error) {
          *error = "--delay=" + std::to_string(out.delay_ms) +
                   " is invalid: a device can be at most " + std::to_string(r.latency_ms) +
                   " ms early (--latency).";
        }
        return false;
      }
    }
    if (r.silent && (r.outputs.size() > 1 || r.outputs[0].named)) {
      if (error) *error = "--silent plays nothing, so it cannot be combined with --device.";
      return false;
    }
    if (!r.bind.empty() && !r.multicast.empty()) {
      if (error) *error = "--bind and --multicast cannot be used together.";
      return false;
    }
  }
  return true;
}

bool parse_endpoint(const std::string& text, Endpoint* endpoint) {
  // The one HOST:PORT parser of the project (gst-plugin/core/host_port.h).
  const HostPortResult r = parse_host_port(text);
  if (!r.ok()) return false;
  endpoint->host = r.value.host;
  endpoint->port = r.value.port;
  return true;
}

bool parse_number(const std::string& text, double* value) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || *end != '\0' || !std::isfinite(v)) return false;
  *value = v;
  return true;
}

bool parse_int(const std::string& text, int* value) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < -2147483647L || v > 2147483647L) return false;
  *value = static_cast<int>(v);
  return true;
}

}  // namespace launcher
}  // namespace syncwave
