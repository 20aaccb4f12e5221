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

// The loopback source: the monitor of the default output; else the only monitor;
// else none (nullptr). Never a hard-coded name.
const AudioDevice* choose_loopback(const std::vector<AudioDevice>& devices);

// The `devices` listing: outputs, then sources, names first, markers for the default
// and for the loopback source.
std::string format_device_list(const std::vector<AudioDevice>& devices);

}  // namespace launcher
}  // namespace syncwave
