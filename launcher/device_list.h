// SPDX-License-Identifier: LGPL-2.1-or-later
// Audio devices as syncwave-launch shows and selects them. Pure C++: the runtime
// fills the list from GstDeviceMonitor (device_monitor.h); choosing the loopback
// source and formatting the listing are tested on plain data.

#pragma once

#include <string>
#include <vector>

namespace syncwave {
namespace launcher {

struct AudioDevice {
  std::string name;         // what --source=device:NAME and --device=NAME take
  std::string description;  // human-readable
  bool source = false;      // capture (Audio/Source) or output (Audio/Sink)
  bool monitor = false;     // a source that captures what an output plays
  bool is_default = false;  // the server's default source / output
  std::string monitor_of;   // monitor: the name of its output, when known
  std::string api;          // "pulse", "wasapi2", ...
};

// What the sound server itself says (libpulse's server info, which PulseAudio and
// PipeWire's pulse server both answer); empty names when no server answered.
struct ServerDefaults {
  std::string sink;          // default_sink_name: the default output
  std::string source;        // default_source_name
  std::string sink_monitor;  // the default output's monitor_source_name
  std::string sink_description;
};

// Puts the server's word into a GstDeviceMonitor list: exactly the server's default
// output and source are marked is_default (GStreamer 1.22's pulse provider leaves
// is-default unset, and a device list is a snapshot), the default output's monitor
// gets its monitor_of, and it is added when the list lacks it. No server (empty sink):
// unchanged. probe_audio_devices() applies it, so the runtime's choose_loopback(list)
// follows the server.
void apply_server_defaults(std::vector<AudioDevice>* devices, const ServerDefaults& server);

// The loopback source, always a monitor, never a hard-coded name:
// - the server's default output `default_sink` known (its name, as PulseAudio and
//   PipeWire's node.name spell it): its monitor (monitor_of, else "NAME.monitor"),
//   or none when the list has no such monitor;
// - unknown (empty): the monitor of the output marked is_default when the list has
//   it; else the only monitor; else the default source if it is a monitor; else none.
const AudioDevice* choose_loopback(const std::vector<AudioDevice>& devices,
                                   const std::string& default_sink);
// The same with the default output taken from the is_default markers.
const AudioDevice* choose_loopback(const std::vector<AudioDevice>& devices);

// The `devices` listing: outputs, then sources, names first, markers for the default
// and for the loopback source.
std::string format_device_list(const std::vector<AudioDevice>& devices);

}  // namespace launcher
}  // namespace syncwave
