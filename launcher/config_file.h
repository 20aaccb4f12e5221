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
//
// Flags take true/false. The command line wins over the file; --save-config writes
// the options that were given explicitly (file and command line), never the defaults,
// so a preset chosen later still applies.

#pragma once

#include <string>

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

}  // namespace launcher
}  // namespace syncwave
