// SPDX-License-Identifier: LGPL-2.1-or-later
// The GStreamer side of syncwave-launch: checks what can only be checked on this
// machine (ports, hosts, devices, files), runs a pipeline description, shows the
// status line and --stats-json once a second, turns SIGINT/SIGTERM and --duration
// into EOS so files are finalized, and maps errors to one sentence and exit code 1.

#pragma once

#include <functional>
#include <string>

#include "options.h"
#include "pipeline_builder.h"
#include "status_format.h"

typedef struct _GstElement GstElement;

namespace syncwave {
namespace launcher {

// Fills `env` for options.command (loopback device, broadcast address, file URI,
// which SyncWave elements exist) and checks ports, host names, files and devices.
// On a runtime problem returns false with one sentence saying what to do.
bool prepare_environment(const Options& options, BuildEnvironment* env, std::string* error);

// What else runs with the pipeline (discovery: the receivers a sender follows, the
// state a receiver announces).
struct RunHooks {
  // The pipeline is built and about to start.
  std::function<void(GstElement* pipeline)> started;
  // Once a second with the sample about to be shown; may fill in what it knows
  // (the number of destinations).
  std::function<void(StatsSample* sample)> tick;
};

// Runs `description` until EOS, an error, a signal or --duration. Returns the exit
// code (0 or 1).
int run_pipeline(const Options& options, const std::string& description,
                 const RunHooks& hooks = RunHooks{});

// A line of its own above the status line (a receiver joined, the default output
// changed): on a terminal the status line is cleared first.
void print_event_line(const std::string& text);

}  // namespace launcher
}  // namespace syncwave
