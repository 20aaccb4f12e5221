// SPDX-License-Identifier: LGPL-2.1-or-later
#include "config_file.h"

#include <glib.h>

#include <algorithm>
#include <map>
#include <vector>

namespace syncwave {
namespace launcher {

namespace {

bool is_list_key(const std::string& key) {
  return key == "target" || key == "device" || key == "delay" || key == "volume" ||
         key == "control-bind";
}

std::vector<std::string> string_list(GKeyFile* kf, const char* group, const char* key) {
  std::vector<std::string> values;
  gsize n = 0;
  gchar** list = g_key_file_get_string_list(kf, group, key, &n, nullptr);
  for (gsize i = 0; i < n; i++) values.emplace_back(list[i]);
  g_strfreev(list);
  return values;
}

}  // namespace

std::string config_file_path() {
  gchar* path = g_build_filename(g_get_user_config_dir(), "syncwave", "syncwave.conf", nullptr);
  std::string p = path;
  g_free(path);
  return p;
}

bool load_config(const std::string& path, Command command, Assignments* assignments,
                 std::string* error) {
  if (!g_file_test(path.c_str(), G_FILE_TEST_EXISTS)) return true;
  GKeyFile* kf = g_key_file_new();
  GError* err = nullptr;
  if (!g_key_file_load_from_file(kf, path.c_str(), G_KEY_FILE_KEEP_COMMENTS, &err)) {
    *error = "Config file " + path + " cannot be read (" + err->message + "): fix or delete it.";
    g_error_free(err);
    g_key_file_free(kf);
    return false;
  }
  const char* group = command_name(command);
  Options probe;
  probe.command = command;
  bool ok = true;
  if (g_key_file_has_group(kf, group)) {
    gsize n = 0;
    gchar** keys = g_key_file_get_keys(kf, group, &n, nullptr);
    Assignments result;
    std::vector<std::string> devices, delays, volumes;
    for (gsize i = 0; ok && i < n; i++) {
      std::string key = keys[i];
      std::vector<std::string> values;
      if (is_list_key(key)) {
        values = string_list(kf, group, keys[i]);
      } else {
        gchar* v = g_key_file_get_string(kf, group, keys[i], nullptr);
        values.emplace_back(v ? v : "");
        g_free(v);
      }
      for (const std::string& v : values) {
        std::string e;
        if (key == "print" || key == "save-config" || !apply_option(probe, key, v, &e)) {
          *error = "Config file " + path + " [" + group +
                   "]: " + (e.empty() ? "--" + key + " cannot be set in the config file." : e);
          ok = false;
          break;
        }
      }
      if (key == "device")
        devices = values;
      else if (key == "delay")
        delays = values;
      else if (key == "volume")
        volumes = values;
      else
        for (const std::string& v : values) result.emplace_back(key, v);
    }
    g_strfreev(keys);
    // Interleave so that the n-th delay and volume follow the n-th device.
    size_t outputs = std::max(devices.size(), std::max(delays.size(), volumes.size()));
    for (size_t i = 0; i < outputs; i++) {
      if (i < devices.size()) result.emplace_back("device", devices[i]);
      if (i < delays.size()) result.emplace_back("delay", delays[i]);
      if (i < volumes.size()) result.emplace_back("volume", volumes[i]);
    }
    if (ok) *assignments = result;
  }
  g_key_file_free(kf);
  return ok;
}

bool save_config(const std::string& path, Command command, const Assignments& assignments,
                 std::string* error) {
  GKeyFile* kf = g_key_file_new();
  if (g_file_test(path.c_str(), G_FILE_TEST_EXISTS))
    g_key_file_load_from_file(kf, path.c_str(), G_KEY_FILE_KEEP_COMMENTS, nullptr);
  const char* group = command_name(command);
  g_key_file_remove_group(kf, group, nullptr);

  std::map<std::string, std::string> single;
  std::vector<std::string> order;
  std::vector<std::string> targets;
  // Outputs as apply_option() builds them: --delay/--volume go with the last --device.
  struct Out {
    std::string device, delay = "0", volume = "1";
  };
  std::vector<Out> outputs(1);
  bool have_outputs = false, named = false;
  for (const Assignment& a : assignments) {
    const std::string& key = a.first;
    if (key == "print" || key == "save-config") continue;
    if (key == "target") {
      targets.push_back(a.second);
    } else if (key == "device") {
      have_outputs = true;
      if (outputs.size() == 1 && !named) {
        outputs[0].device = a.second;
      } else {
        outputs.push_back(Out{a.second});
      }
      named = true;
    } else if (key == "delay" || key == "volume") {
      have_outputs = true;
      (key == "delay" ? outputs.back().delay : outputs.back().volume) = a.second;
    } else {
      if (!single.count(key)) order.push_back(key);
      single[key] = a.second.empty() ? "true" : a.second;
    }
  }
  for (const std::string& key : order)
    g_key_file_set_string(kf, group, key.c_str(), single[key].c_str());
  auto set_list = [&](const char* key, const std::vector<std::string>& values) {
    std::vector<const gchar*> ptrs;
    for (const std::string& v : values) ptrs.push_back(v.c_str());
    g_key_file_set_string_list(kf, group, key, ptrs.data(), ptrs.size());
  };
  if (!targets.empty()) set_list("target", targets);
  if (have_outputs) {
    std::vector<std::string> devices, delays, volumes;
    for (const Out& o : outputs) {
      devices.push_back(o.device);
      delays.push_back(o.delay);
      volumes.push_back(o.volume);
    }
    if (named) set_list("device", devices);
    set_list("delay", delays);
    set_list("volume", volumes);
  }

  gchar* dir = g_path_get_dirname(path.c_str());
  g_mkdir_with_parents(dir, 0700);
  g_free(dir);
  GError* err = nullptr;
  bool ok = g_key_file_save_to_file(kf, path.c_str(), &err);
  if (!ok) {
    *error = "Cannot write the config file " + path + " (" + err->message +
             "): check that its directory is writable.";
    g_error_free(err);
  }
  g_key_file_free(kf);
  return ok;
}

namespace {
std::string room_group(const std::string& name) { return "room " + name; }
}  // namespace

std::vector<std::string> load_room(const std::string& path, const std::string& name) {
  std::vector<std::string> values;
  GKeyFile* kf = g_key_file_new();
  const std::string group = room_group(name);
  if (g_key_file_load_from_file(kf, path.c_str(), G_KEY_FILE_NONE, nullptr) &&
      g_key_file_has_group(kf, group.c_str())) {
    gsize n = 0;
    gchar** keys = g_key_file_get_keys(kf, group.c_str(), &n, nullptr);
    for (gsize i = 0; i < n; i++) {
      gchar* v = g_key_file_get_string(kf, group.c_str(), keys[i], nullptr);
      values.push_back(std::string(keys[i]) + "=" + (v ? v : ""));
      g_free(v);
    }
    g_strfreev(keys);
  }
  g_key_file_free(kf);
  return values;
}

bool save_room(const std::string& path, const std::string& name,
               const std::vector<std::string>& values, std::string* error) {
  GKeyFile* kf = g_key_file_new();
  if (g_file_test(path.c_str(), G_FILE_TEST_EXISTS))
    g_key_file_load_from_file(kf, path.c_str(), G_KEY_FILE_KEEP_COMMENTS, nullptr);
  const std::string group = room_group(name);
  for (const std::string& kv : values) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    g_key_file_set_string(kf, group.c_str(), kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str());
  }
  gchar* dir = g_path_get_dirname(path.c_str());
  g_mkdir_with_parents(dir, 0700);
  g_free(dir);
  GError* err = nullptr;
  const bool ok = g_key_file_save_to_file(kf, path.c_str(), &err);
  if (!ok) {
    *error = "Cannot write the config file " + path + " (" + err->message +
             "): check that its directory is writable.";
    g_error_free(err);
  }
  g_key_file_free(kf);
  return ok;
}

}  // namespace launcher
}  // namespace syncwave
