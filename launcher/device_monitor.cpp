// SPDX-License-Identifier: LGPL-2.1-or-later
#include "device_monitor.h"

#include <gst/gst.h>

#include <cstring>

#include "sound_server.h"

namespace syncwave {
namespace launcher {

namespace {

std::string structure_string(const GstStructure* s, const char* field) {
  if (!s || !gst_structure_has_field(s, field)) return "";
  const GValue* v = gst_structure_get_value(s, field);
  if (G_VALUE_HOLDS_STRING(v)) return g_value_get_string(v) ? g_value_get_string(v) : "";
  gchar* str = gst_value_serialize(v);
  std::string out = str ? str : "";
  g_free(str);
  return out;
}

AudioDevice describe(GstDevice* device) {
  AudioDevice d;
  gchar* display = gst_device_get_display_name(device);
  d.description = display ? display : "";
  g_free(display);
  d.source = gst_device_has_classes(device, "Audio/Source");
  GstStructure* props = gst_device_get_properties(device);
  // PulseAudio (and PipeWire's pulse server) devices know their server-side name.
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(device), "internal-name")) {
    gchar* name = nullptr;
    g_object_get(device, "internal-name", &name, nullptr);
    d.name = name ? name : "";
    g_free(name);
  }
  if (d.name.empty()) d.name = structure_string(props, "device.name");
  if (d.name.empty()) d.name = structure_string(props, "node.name");
  if (d.name.empty()) d.name = structure_string(props, "device.id");
  if (d.name.empty()) d.name = d.description;
  d.api = structure_string(props, "device.api");
  d.monitor = structure_string(props, "device.class") == "monitor";
  gboolean is_default = FALSE;
  if (props && gst_structure_get_boolean(props, "is-default", &is_default))
    d.is_default = is_default;
  // Windows: a render endpoint can be captured in loopback mode.
  if (props && gst_structure_has_field(props, "wasapi2.device.loopback")) d.monitor = true;
  if (d.monitor && d.name.size() > 8 && d.name.compare(d.name.size() - 8, 8, ".monitor") == 0)
    d.monitor_of = d.name.substr(0, d.name.size() - 8);
  if (props) gst_structure_free(props);
  return d;
}

}  // namespace

std::vector<AudioDevice> probe_audio_devices() {
  std::vector<AudioDevice> devices;
  GstDeviceMonitor* monitor = gst_device_monitor_new();
  gst_device_monitor_add_filter(monitor, "Audio/Source", nullptr);
  gst_device_monitor_add_filter(monitor, "Audio/Sink", nullptr);
  GList* list = gst_device_monitor_get_devices(monitor);
  for (GList* l = list; l; l = l->next) {
    GstDevice* device = GST_DEVICE(l->data);
    if (gst_device_has_classes(device, "Audio/Source") ||
        gst_device_has_classes(device, "Audio/Sink"))
      devices.push_back(describe(device));
  }
  g_list_free_full(list, gst_object_unref);
  gst_object_unref(monitor);
  // GstDeviceMonitor's is-default is a guess (unset on GStreamer 1.22's pulse provider):
  // the server says which output is the default.
  ServerDefaults server;
  if (query_server_defaults(&server)) apply_server_defaults(&devices, server);
  return devices;
}

}  // namespace launcher
}  // namespace syncwave
