// The GStreamer side of syncwave-launch: checks what can only be checked on this
// machine (ports, hosts, devices, files), runs a pipeline description, shows the
// status line and --stats-json once a second, turns SIGINT/SIGTERM and --duration
// into EOS so files are finalized, and maps errors to one sentence and exit code 1.

#pragma once

#include <string>

#include "options.h"
#include "pipeline_builder.h"

namespace syncwave {
namespace launcher {

// Fills `env` for options.command (loopback device, broadcast address, file URI,
// which SyncWave elements exist) and checks ports, host names, files and devices.
// On a runtime problem returns false with one sentence saying what to do.
bool prepare_environment(const Options& options, BuildEnvironment* env, std::string* error);

// Runs `description` until EOS, an error, a signal or --duration. Returns the exit
// code (0 or 1).
int run_pipeline(const Options& options, const std::string& description);

}  // namespace launcher
}  // namespace syncwave
