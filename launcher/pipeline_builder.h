// SPDX-License-Identifier: LGPL-2.1-or-later
// The one place where syncwave-launch turns options into gst-launch pipelines.
//
// Everything the runtime found out about the machine (loopback device, platform,
// which SyncWave elements exist) comes in as BuildEnvironment, so the strings are
// unit-tested for every platform. The runtime parses exactly the description built
// here, and --print shows it as a gst-launch-1.0 command line.
//
// Send template placeholders (fragments):
//   {capture}   source, conversion to F32LE 48 kHz stereo (pacing for files)
//   {meter}     level name=meter (peak/RMS for the status line and --stats-json)
//   {encode}    [opusenc name=encoder ! ] syncwavepay name=pay time-provider-port=...
//   {transmit}  multiudpsink name=net clients=... (one socket, every target)
// Receive template placeholders:
//   {receive}   udpsrc name=src port=... caps=application/x-syncwave
//   {playout}   one syncwavesink per --device (name=out0, out1, ...) and the monitor
//               (syncwavesink name=monitor audio-sink="audioconvert ! level name=meter
//               ! record or fakesink"), behind tee name=rx when there is more than one
//               branch. --silent: the monitor only.
// Values usable in both: {port} {latency} {bitrate_bps} {frame_ms} {clock_port}
//   {clients} {rate} {channels}

#pragma once

#include <map>
#include <string>
#include <vector>

#include "device_list.h"
#include "options.h"
#include "preset.h"

namespace syncwave {
namespace launcher {

enum class Platform { kLinux, kWindows, kMacOS };

struct BuildEnvironment {
  Platform platform = Platform::kLinux;
  std::string loopback_device;    // Linux: the default sink's monitor source
  std::string broadcast_address;  // --broadcast: the subnet's broadcast address
  std::string file_uri;           // --source=file:PATH as an absolute file:// URI
  // Target host names resolved by the runtime (IPv4 preferred), so that the packets go
  // where the status line says; names missing here are passed on as given.
  std::map<std::string, std::string> resolved_hosts;
  // receive --from=NAME: the address of the sender of that name found by discovery,
  // played instead of --from (empty: --from as given).
  std::string from_address;
  bool from_unresolved = false;  // --from is no host name: a sender's name
  bool have_syncwavesink = true;    // else a playback chain of standard elements
  bool have_syncwavejitter = true;  // in the monitor branch
};

constexpr const char* kDefaultSendTemplate = "{capture} ! {meter} ! {encode} ! {transmit}";
constexpr const char* kDefaultReceiveTemplate = "{receive} ! {playout}";

std::vector<std::string> known_placeholders(Command command);

// Builds the pipeline description for `send` or `receive`. `preset` may be null.
// Returns false with one sentence in `error` (a preset template that does not expand).
bool build_pipeline(const Options& options, const BuildEnvironment& env, const Preset* preset,
                    std::string* description, std::string* error);

// The destinations of a send pipeline as "host:port" (targets, broadcast, multicast).
std::vector<std::string> send_clients(const SendOptions& send, const BuildEnvironment& env);

// A short pipeline that tries one device (devices --print): a source is metered into
// fakesink for 5 s, an output plays a tone for 2 s.
std::string device_test_description(const AudioDevice& device, Platform platform);

// A property value as gst_parse_launch reads it: bare when safe, else double-quoted.
std::string gst_quote(const std::string& value);

// Splits a description at spaces outside double quotes.
std::vector<std::string> split_description(const std::string& description);

// "gst-launch-1.0 -e ..." with each token quoted for a POSIX shell, so that it runs
// as printed and builds the same pipeline.
std::string gst_launch_command(const std::string& description);

}  // namespace launcher
}  // namespace syncwave
