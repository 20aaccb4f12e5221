// SPDX-License-Identifier: LGPL-2.1-or-later
// Asks the sound server (PulseAudio, or PipeWire's pulse server) through libpulse which
// output is the default, and follows it while sending.
//
// The launcher links libpulse when meson finds it (SYNCWAVE_HAVE_LIBPULSE); without
// it, query_server_defaults() answers false and the follower does nothing, so the
// device list's own markers decide (device_list.h).
//
// Following: the capture stream is pulsesrc's, in its own libpulse context. The
// follower subscribes to server events in a second context on the GLib main context
// that the runner's loop runs; when the default output changes it moves every source
// output of this process (its clients carry application.process.id) to the new
// default's monitor with pa_context_move_source_output_by_index and reports it. The
// server moves a stream without closing it: pulsesrc keeps running, the receivers hear
// the switch as a cut between the two outputs' sounds.
//
//   report(kind, text) on the main thread:
//     kStart   first server answer: which output is captured
//     kMoved   the default changed and the capture stream now reads its monitor
//     kProblem a move failed (the stream stays where it was)

#pragma once

#include <functional>
#include <memory>
#include <string>

#include "device_list.h"

namespace syncwave {
namespace launcher {

// True when built with libpulse.
bool have_sound_server_client();

// Connects without autospawning, reads the server info and the default output's
// monitor, disconnects. False when no server answers within `timeout_ms` (or no libpulse).
bool query_server_defaults(ServerDefaults* out, int timeout_ms = 2000);

class DefaultOutputFollower {
 public:
  enum class Event { kStart, kMoved, kProblem };
  using Report = std::function<void(Event, const std::string& text)>;

  // `capturing`: the monitor the pipeline was built with.
  DefaultOutputFollower(std::string capturing, Report report);
  ~DefaultOutputFollower();
  DefaultOutputFollower(const DefaultOutputFollower&) = delete;
  DefaultOutputFollower& operator=(const DefaultOutputFollower&) = delete;

  // Connects on the default GLib main context. False (nothing follows) without
  // libpulse or when the connection cannot even start.
  bool start();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// "Null Output (sink3)": how the launcher names an output to the user.
std::string output_label(const std::string& name, const std::string& description);

}  // namespace launcher
}  // namespace syncwave
