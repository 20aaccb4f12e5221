// SPDX-License-Identifier: LGPL-2.1-or-later
// syncwave-launch's command line: `syncwave-launch COMMAND [OPTIONS]`, parsed with
// GOption into the command and the ordered option assignments (options.h validates
// them). Help texts with examples live here too.

#pragma once

#include <string>
#include <vector>

#include "options.h"

namespace syncwave {
namespace launcher {

struct CommandLine {
  Command command = Command::kNone;
  Assignments assignments;
  bool help = false;     // print help_text, exit 0
  bool version = false;  // print the version, exit 0
  std::string help_text;
  std::vector<std::string> positional;  // control: NAME KEY=VALUE...
};

// argv[1] is the command (or --help / --version). On a usage error returns false with
// one sentence in `error` (exit code 2).
bool parse_command_line(int argc, const char* const* argv, CommandLine* result, std::string* error);

std::string general_help();
std::string command_help(Command command);
std::string version_text();

}  // namespace launcher
}  // namespace syncwave
