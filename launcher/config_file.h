// SPDX-License-Identifier: LGPL-2.1-or-later
// The config file $XDG_CONFIG_HOME/syncwave/syncwave.conf: a GKeyFile whose [send]
// and [receive] groups hold defaults for those commands, one key per long option:
//
//   [send]
//   target=192.168.1.20;192.168.1.21     repeatable options are lists
//   codec=opus
//   [receive]
//   device=alsa_output.usb;bluez_sink.speaker
//   delay=0;180                           the n-th delay/volume goes with the n-th device
//   latency=80
//   [room Kitchen]                        what the control page set (load_room)
//   volume=0.25
//
// Flags take true/false. The command line wins over the file; --save-config writes
// the options that were given explicitly (file and command line), never the defaults,
// so a preset chosen later still applies.

#pragma once

#include <string>
#include <vector>

#include "options.h"

namespace syncwave {
namespace launcher {

// $XDG_CONFIG_HOME/syncwave/syncwave.conf (~/.config when XDG_CONFIG_HOME is unset).
std::string config_file_path();

// Reads the group of `command`. A missing file is no error (no assignments). Every key
// is checked with apply_option(); a bad one fails with one sentence naming the file.
bool load_config(const std::string& path, Command command, Assignments* assignments,
                 std::string* error);

// Replaces the group of `command` with `assignments` (other groups and comments are
// kept), creating the directory when needed.
bool save_config(const std::string& path, Command command, const Assignments& assignments,
                 std::string* error);

// [room NAME]: what the control page set on the receiver NAME (volume, mute, delay,
// latency), kept so that it survives a restart (control_session.h). Values are the
// KEY=VALUE texts `syncwave-launch control` takes ("volume=0.25"); the caller validates
// them. A missing file or group gives none.
std::vector<std::string> load_room(const std::string& path, const std::string& name);

// Sets `values` (KEY=VALUE) in [room NAME], keeping its other keys and every other
// group and comment.
bool save_room(const std::string& path, const std::string& name,
               const std::vector<std::string>& values, std::string* error);

}  // namespace launcher
}  // namespace syncwave
