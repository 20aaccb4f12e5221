// SPDX-License-Identifier: LGPL-2.1-or-later
// Preset pipelines: files NAME.preset in pipelines/ (installed to the data dir).
//
// A preset is a GKeyFile:
//
//   [preset]
//   description=One line shown by `syncwave-launch presets`
//   [send]
//   codec=opus                         any `send` option, as on the command line
//   pipeline={capture} ! {meter} ! {encode} ! {transmit}
//   [receive]
//   latency=150                        any `receive` option
//   pipeline={receive} ! {playout}
//
// `pipeline` is a gst-launch template: {name} placeholders are replaced by the
// fragments and values the launcher computes from the options (pipeline_builder.h
// lists them). Option keys are defaults: the config file and the command line win.

#pragma once

#include <map>
#include <string>
#include <vector>

#include "options.h"

namespace syncwave {
namespace launcher {

struct Preset {
  std::string name;
  std::string path;
  std::string description;
  Assignments send;  // option defaults for `send`
  Assignments receive;
  std::string send_template;  // empty: the built-in default
  std::string receive_template;
};

constexpr const char* kPresetExtension = ".preset";

// Directories searched for presets, first match wins: $SYNCWAVE_PIPELINES_DIR,
// $XDG_CONFIG_HOME/syncwave/pipelines, the installed data dir, the source tree.
std::vector<std::string> preset_directories();

// Loads and checks one preset file (every option key valid for its group, every
// placeholder known). On error returns false with one sentence in `error`.
bool load_preset_file(const std::string& path, Preset* preset, std::string* error);

bool find_preset(const std::vector<std::string>& dirs, const std::string& name, Preset* preset,
                 std::string* error);

// Every preset in `dirs` (a name found twice: the first), sorted by name. Files that
// fail to load are reported in `errors` and skipped.
std::vector<Preset> list_presets(const std::vector<std::string>& dirs,
                                 std::vector<std::string>* errors);

// Replaces each {name} ([a-z_]+ between braces) with values.at(name). Anything else in
// braces (caps sets such as "{ F32LE, S16LE }") is left alone. Unknown placeholder:
// false, with its name in `error`.
bool expand_template(const std::string& tmpl, const std::map<std::string, std::string>& values,
                     std::string* out, std::string* error);

// The placeholder names used in a template, in order of appearance.
std::vector<std::string> template_placeholders(const std::string& tmpl);

}  // namespace launcher
}  // namespace syncwave
