#include "device_list.h"

namespace syncwave {
namespace launcher {

const AudioDevice* choose_loopback(const std::vector<AudioDevice>& devices) {
  const AudioDevice* default_sink = nullptr;
  for (const AudioDevice& d : devices)
    if (!d.source && d.is_default) default_sink = &d;
  const AudioDevice* only_monitor = nullptr;
  int monitors = 0;
  for (const AudioDevice& d : devices) {
    if (!d.source || !d.monitor) continue;
    monitors++;
    only_monitor = &d;
    if (default_sink &&
        (d.monitor_of == default_sink->name || d.name == default_sink->name + ".monitor"))
      return &d;
  }
  if (!default_sink && monitors == 1) return only_monitor;
  // Several monitors and no default output known: the default source if it is one.
  for (const AudioDevice& d : devices)
    if (d.source && d.monitor && d.is_default) return &d;
  if (monitors == 1) return only_monitor;
  return nullptr;
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
