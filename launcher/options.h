// SPDX-License-Identifier: LGPL-2.1-or-later
// syncwave-launch options: what every command can be told, as plain structs.
//
// Options arrive as ordered (name, value) assignments from four layers, applied in
// this order so that the later one wins:
//
//   built-in defaults < preset ([send]/[receive] keys) < config file < command line
//
// apply_option() is the single place that validates a value; the command line, the
// config file and the presets all go through it, so a bad value is reported the same
// way wherever it comes from. No GStreamer here: everything is unit-tested.

#pragma once

#include <string>
#include <utility>
#include <vector>

namespace syncwave {
namespace launcher {

enum class Command { kNone, kSend, kReceive, kDevices, kPresets, kList, kControl, kCalibrate };

// Exit codes of syncwave-launch.
constexpr int kExitOk = 0;
constexpr int kExitRuntimeError = 1;
constexpr int kExitUsageError = 2;

constexpr int kDefaultPort = 5555;
constexpr int kDefaultClockPort = 5556;
// The control page and API (send, TCP) and the receivers' reports to it (UDP).
constexpr int kDefaultControlPort = 5580;
constexpr int kDefaultBitrateKbps = 128;
constexpr double kDefaultFrameMs = 10.0;
constexpr int kDefaultLatencyMs = 60;
constexpr int kDefaultTtl = 1;
constexpr int kSampleRate = 48000;
constexpr int kChannels = 2;
constexpr double kDefaultListTimeoutS = 2.0;

enum class SourceKind { kLoopback, kTest, kDevice, kFile };
enum class Codec { kRaw, kOpus };
enum class RecordFormat { kNone, kWav, kFlac, kOgg };

struct Endpoint {
  std::string host;
  int port = 0;  // 0: the command's --port
  bool operator==(const Endpoint& o) const { return host == o.host && port == o.port; }
};

// One local output of a receiver: --device, with the --delay and --volume after it.
struct Output {
  std::string device;  // empty: the platform's default output
  int delay_ms = 0;
  double volume = 1.0;
  bool named = false;  // set by --device
};

// Options every command takes.
struct CommonOptions {
  bool print = false;
  bool verbose = false;
  bool quiet = false;
  bool save_config = false;
  double duration_s = 0.0;  // 0: until interrupted (or end of file)
  std::string stats_json;   // "" off, "-" stdout, else a path
  std::string preset;
  // Secure streams (send and receive) and the control surface's authentication (send,
  // receive, control): --secret, or the first line of --secret-file. Empty: plain SYNC v1
  // and an open control surface.
  std::string secret;
};

struct SendOptions {
  SourceKind source = SourceKind::kLoopback;
  std::string source_arg;  // device name or file path
  Codec codec = Codec::kOpus;
  int bitrate_kbps = kDefaultBitrateKbps;
  double frame_ms = kDefaultFrameMs;
  int fec_percent = 0;
  std::vector<Endpoint> targets;
  bool broadcast = false;
  Endpoint multicast;  // host empty: none
  int ttl = kDefaultTtl;
  int port = kDefaultPort;
  int clock_port = kDefaultClockPort;
  // The mDNS name announced (discovery.h); empty: the host name.
  std::string name;
  // The control page and API (docs/control.md); 0: off.
  int control_port = kDefaultControlPort;
  // Where it listens; empty: this machine's LAN (private) addresses and 127.0.0.1.
  std::vector<std::string> control_bind;
  // No --target, --broadcast or --multicast: send to every receiver discovered.
  bool discover() const { return targets.empty() && !broadcast && multicast.host.empty(); }
};

struct ReceiveOptions {
  int port = kDefaultPort;
  std::string bind;
  std::string multicast;
  int latency_ms = kDefaultLatencyMs;
  // --latency=auto: the receiver picks what its path needs (starting at latency_ms).
  bool auto_latency = false;
  std::string clock = "auto";          // as the user wrote it, validated
  int clock_port = kDefaultClockPort;  // where clock=auto asks the sender
  std::string from;
  std::vector<Output> outputs = {Output{}};
  bool silent = false;
  std::string record;
  RecordFormat record_format = RecordFormat::kNone;
  // The mDNS name announced (discovery.h); empty: the host name.
  std::string name;
  // The sender's control port this receiver reports to (docs/control.md); 0: off.
  int control_port = kDefaultControlPort;
};

// `list`: the senders and receivers discovered on the network.
struct ListOptions {
  bool json = false;
  double timeout_s = kDefaultListTimeoutS;  // how long to look
};

// `control NAME KEY=VALUE...`: one change to one receiver through a sender's control API.
struct ControlOptions {
  std::string receiver;               // its name
  std::vector<std::string> settings;  // "volume=0.25", "mute=false", ...
  std::string sender = "127.0.0.1";   // the sender serving the API (HOST, no port)
  int control_port = kDefaultControlPort;
  // --page-key: print the control page's key for the secret (#key=...) instead.
  bool page_key = false;
};

// `calibrate`: one receiver to measure, --receiver=NAME[@HOST[:PORT]].
struct CalibrateTarget {
  std::string name;
  Endpoint address;  // host empty: found by discovery; port 0: --port
};

// `calibrate` (docs/launcher.md): measures each receiver's acoustic delay with a
// microphone and sets its delay through the control back channel.
struct CalibrateOptions {
  std::string microphone;                  // a capture device; empty: the default input
  std::vector<CalibrateTarget> receivers;  // empty: every receiver discovered
  std::string reference;                   // --reference=NAME; empty: align to the latest
  bool dry_run = false;
  int repeats = 3;
  int port = kDefaultPort;                 // receivers' port when @HOST gives none
  int clock_port = kDefaultClockPort;      // the clock served to the receivers
  int control_port = kDefaultControlPort;  // where the receivers report (their --control-port)
};

struct Options {
  Command command = Command::kNone;
  CommonOptions common;
  SendOptions send;
  ReceiveOptions receive;
  ListOptions list;
  ControlOptions control;
  CalibrateOptions calibrate;
};

// An option as given: long name without dashes ("target") and its value ("" for
// flags). The order matters for repeatable options and for --device/--delay/--volume.
using Assignment = std::pair<std::string, std::string>;
using Assignments = std::vector<Assignment>;

const char* command_name(Command command);
Command command_from_name(const std::string& name);

// Whether `name` is an option of `command` (common options included), and whether it
// is a flag (takes no value).
bool is_known_option(Command command, const std::string& name);
bool is_flag_option(const std::string& name);

// Validates one assignment and stores it in `options`. On error returns false and sets
// `error` to one sentence naming the option and the value.
bool apply_option(Options& options, const std::string& name, const std::string& value,
                  std::string* error);

// Checks what only makes sense once every option is known (--fec without Opus, ...).
bool validate_options(const Options& options, std::string* error);

// Splits HOST[:PORT], with [v6]:PORT. Returns false on an empty host or a bad port.
bool parse_endpoint(const std::string& text, Endpoint* endpoint);

// "1.5" -> 1.5; false unless the whole string is a finite number.
bool parse_number(const std::string& text, double* value);
bool parse_int(const std::string& text, int* value);

}  // namespace launcher
}  // namespace syncwave
