// SPDX-License-Identifier: LGPL-2.1-or-later
#include "device_list.h"

namespace syncwave {
namespace launcher {

namespace {

bool is_monitor_of(const AudioDevice& d, const std::string& sink) {
  return d.source && d.monitor && !sink.empty() &&
         (d.monitor_of == sink || (d.monitor_of.empty() && d.name == sink + ".monitor"));
}

}  // namespace

void apply_server_defaults(std::vector<AudioDevice>* devices, const ServerDefaults& server) {
  if (server.sink.empty()) return;
  bool have_monitor = false;
  for (AudioDevice& d : *devices) {
    d.is_default = d.source ? d.name == server.source : d.name == server.sink;
    if (d.source && !server.sink_monitor.empty() && d.name == server.sink_monitor) {
      d.monitor = true;
      d.monitor_of = server.sink;
      have_monitor = true;
    }
  }
  if (have_monitor || server.sink_monitor.empty()) return;
  AudioDevice m;
  m.name = server.sink_monitor;
  m.description =
      "Monitor of " + (server.sink_description.empty() ? server.sink : server.sink_description);
  m.source = true;
  m.monitor = true;
  m.is_default = server.source == server.sink_monitor;
  m.monitor_of = server.sink;
  m.api = "pulse";
  devices->push_back(m);
}

const AudioDevice* choose_loopback(const std::vector<AudioDevice>& devices,
                                   const std::string& default_sink) {
  if (!default_sink.empty()) {
    for (const AudioDevice& d : devices)
      if (is_monitor_of(d, default_sink)) return &d;
    return nullptr;
  }
  for (const AudioDevice& d : devices)
    if (!d.source && d.is_default)
      if (const AudioDevice* m = choose_loopback(devices, d.name)) return m;
  const AudioDevice* only_monitor = nullptr;
  int monitors = 0;
  for (const AudioDevice& d : devices) {
    if (!d.source || !d.monitor) continue;
    monitors++;
    only_monitor = &d;
  }
  if (monitors == 1) return only_monitor;
  // Several monitors and no default output known: the default source if it is one.
  for (const AudioDevice& d : devices)
    if (d.source && d.monitor && d.is_default) return &d;
  return nullptr;
}

const AudioDevice* choose_loopback(const std::vector<AudioDevice>& devices) {
  return choose_loopback(devices, "");
}

std::string format_device_list(const std::vector<AudioDevice>& devices) {
  const AudioDevice* loopback = choose_loopback(devices);
  std::string out;
  for (int pass = 0; pass < 2; pass++) {
    const bool sources = pass == 1;
    out +=
        sources ? "Sources (send --source=device:NAME):\n" : "Outputs (receive --device=NAME):\n";
    int n = 0;
    for (const AudioDevice& d : devices) {
      if (d.source != sources) continue;
      n++;
      out += "  " + d.name;
      std::string tags;
      if (d.is_default) tags += "default";
      if (&d == loopback)
        tags += std::string(tags.empty() ? "" : ", ") + "loopback";
      else if (d.monitor)
        tags += std::string(tags.empty() ? "" : ", ") + "monitor";
      if (!tags.empty()) out += "  [" + tags + "]";
      out += "\n";
      if (!d.description.empty() && d.description != d.name) out += "      " + d.description + "\n";
    }
    if (n == 0) out += "  (none)\n";
  }
  out += loopback ? "Loopback (send --source=loopback): " + loopback->name + "\n"
                  : "Loopback (send --source=loopback): none found\n";
  return out;
}

}  // namespace launcher
}  // namespace syncwave
