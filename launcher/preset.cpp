// SPDX-License-Identifier: LGPL-2.1-or-later
#include "preset.h"

#include <glib.h>

#include <algorithm>
#include <set>

#include "config.h"
#include "pipeline_builder.h"

namespace syncwave {
namespace launcher {

namespace {

bool is_placeholder_char(char c) {
  return (c >= 'a' && c <= 'z') || c == '_';
}

bool read_group(GKeyFile* kf, const char* group, Command command, const std::string& name,
                Assignments* options, std::string* tmpl, std::string* error) {
  if (!g_key_file_has_group(kf, group)) return true;
  gsize n = 0;
  gchar** keys = g_key_file_get_keys(kf, group, &n, nullptr);
  bool ok = true;
  Options probe;
  probe.command = command;
  for (gsize i = 0; ok && i < n; i++) {
    std::string key = keys[i];
    gchar* raw = g_key_file_get_value(kf, group, keys[i], nullptr);
    std::string value = raw ? raw : "";
    g_free(raw);
    if (key == "pipeline") {
      *tmpl = value;
      std::string expanded;
      std::map<std::string, std::string> values;
      for (const std::string& p : known_placeholders(command)) values[p] = "x";
      std::string err;
      if (!expand_template(value, values, &expanded, &err)) {
        *error = "Preset '" + name + "' [" + group + "] pipeline: " + err;
        ok = false;
      }
      continue;
    }
    gchar* str = g_key_file_get_string(kf, group, keys[i], nullptr);
    value = str ? str : "";
    g_free(str);
    std::string err;
    if (key == "preset" || !apply_option(probe, key, value, &err)) {
      *error = "Preset '" + name + "' [" + group + "] " +
               (key == "preset" ? "cannot name another preset." : err);
      ok = false;
      continue;
    }
    options->emplace_back(key, value);
  }
  g_strfreev(keys);
  return ok;
}

}  // namespace

std::vector<std::string> preset_directories() {
  std::vector<std::string> dirs;
  const char* env = g_getenv("SYNCWAVE_PIPELINES_DIR");
  if (env && *env) dirs.emplace_back(env);
  gchar* user = g_build_filename(g_get_user_config_dir(), "syncwave", "pipelines", nullptr);
  dirs.emplace_back(user);
  g_free(user);
  dirs.emplace_back(SYNCWAVE_DATADIR);
  dirs.emplace_back(SYNCWAVE_SOURCE_PIPELINES_DIR);
  return dirs;
}

bool load_preset_file(const std::string& path, Preset* preset, std::string* error) {
  gchar* base = g_path_get_basename(path.c_str());
  std::string name = base;
  g_free(base);
  const std::string ext = kPresetExtension;
  if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0)
    name.resize(name.size() - ext.size());

  GKeyFile* kf = g_key_file_new();
  GError* err = nullptr;
  if (!g_key_file_load_from_file(kf, path.c_str(), G_KEY_FILE_NONE, &err)) {
    *error = "Preset file " + path + " cannot be read: " + err->message + ".";
    g_error_free(err);
    g_key_file_free(kf);
    return false;
  }
  Preset p;
  p.name = name;
  p.path = path;
  gchar* desc = g_key_file_get_string(kf, "preset", "description", nullptr);
  if (!desc || !*desc) {
    g_free(desc);
    g_key_file_free(kf);
    *error = "Preset file " + path + " has no [preset] description.";
    return false;
  }
  p.description = desc;
  g_free(desc);
  bool ok =
      read_group(kf, "send", Command::kSend, name, &p.send, &p.send_template, error) &&
      read_group(kf, "receive", Command::kReceive, name, &p.receive, &p.receive_template, error);
  g_key_file_free(kf);
  if (ok) *preset = p;
  return ok;
}

bool find_preset(const std::vector<std::string>& dirs, const std::string& name, Preset* preset,
                 std::string* error) {
  for (const std::string& dir : dirs) {
    gchar* path = g_build_filename(dir.c_str(), (name + kPresetExtension).c_str(), nullptr);
    std::string p = path;
    g_free(path);
    if (g_file_test(p.c_str(), G_FILE_TEST_IS_REGULAR)) return load_preset_file(p, preset, error);
  }
  *error = "--preset='" + name + "' is invalid: no such preset (run 'syncwave-launch presets').";
  return false;
}

std::vector<Preset> list_presets(const std::vector<std::string>& dirs,
                                 std::vector<std::string>* errors) {
  std::vector<Preset> presets;
  std::set<std::string> seen;
  for (const std::string& dir : dirs) {
    GDir* d = g_dir_open(dir.c_str(), 0, nullptr);
    if (!d) continue;
    std::vector<std::string> files;
    while (const gchar* entry = g_dir_read_name(d)) {
      std::string f = entry;
      const std::string ext = kPresetExtension;
      if (f.size() > ext.size() && f.compare(f.size() - ext.size(), ext.size(), ext) == 0)
        files.push_back(f);
    }
    g_dir_close(d);
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) {
      std::string name = f.substr(0, f.size() - std::string(kPresetExtension).size());
      if (seen.count(name)) continue;
      seen.insert(name);
      gchar* path = g_build_filename(dir.c_str(), f.c_str(), nullptr);
      Preset p;
      std::string err;
      if (load_preset_file(path, &p, &err)) {
        presets.push_back(p);
      } else if (errors) {
        errors->push_back(err);
      }
      g_free(path);
    }
  }
  std::sort(presets.begin(), presets.end(),
            [](const Preset& a, const Preset& b) { return a.name < b.name; });
  return presets;
}

bool expand_template(const std::string& tmpl, const std::map<std::string, std::string>& values,
                     std::string* out, std::string* error) {
  std::string result;
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl[i] == '{') {
      size_t j = i + 1;
      while (j < tmpl.size() && is_placeholder_char(tmpl[j])) j++;
      if (j < tmpl.size() && tmpl[j] == '}' && j > i + 1) {
        std::string name = tmpl.substr(i + 1, j - i - 1);
        auto it = values.find(name);
        if (it == values.end()) {
          if (error) *error = "unknown placeholder {" + name + "}.";
          return false;
        }
        result += it->second;
        i = j + 1;
        continue;
      }
    }
    result += tmpl[i++];
  }
  *out = result;
  return true;
}

std::vector<std::string> template_placeholders(const std::string& tmpl) {
  std::vector<std::string> names;
  for (size_t i = 0; i < tmpl.size(); i++) {
    if (tmpl[i] != '{') continue;
    size_t j = i + 1;
    while (j < tmpl.size() && is_placeholder_char(tmpl[j])) j++;
    if (j < tmpl.size() && tmpl[j] == '}' && j > i + 1)
      names.push_back(tmpl.substr(i + 1, j - i - 1));
  }
  return names;
}

}  // namespace launcher
}  // namespace syncwave
