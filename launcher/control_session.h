// SPDX-License-Identifier: LGPL-2.1-or-later
// The control surface at run time (docs/control.md):
//   - send: serves the page and API (control_server.h) on --control-port of its LAN
//     addresses (--control-bind overrides) and takes the receivers' reports on the
//     same UDP port; a change asked for over HTTP goes to that receiver as one datagram;
//   - receive: reports its state once a second to the played sender's control port and
//     applies the changes that sender sends back (volume, mute, delay, latency) to its
//     outputs, and keeps them in its config file under its name ([room NAME],
//     config_file.h): they are applied again when it starts, unless the command line
//     gives that option;
//   - calibrate: takes the receivers' reports on --control-port (as send does, without
//     the page and API) and sends each the delay it measured, by the same datagram as
//     a change asked for over HTTP.
// Nothing here is part of the SYNC audio stream. Runs on the default GMainContext.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "control_model.h"
#include "options.h"
#include "runner.h"

namespace syncwave {
namespace launcher {

class ControlSession {
 public:
  // `command_line`: the long options given on the command line ("volume", "delay",
  // "latency"): they win over what the control page saved.
  explicit ControlSession(const Options& options,
                          const std::vector<std::string>& command_line = {});
  ~ControlSession();
  ControlSession(const ControlSession&) = delete;
  ControlSession& operator=(const ControlSession&) = delete;

  // send: starts the HTTP server and the report socket; receive: opens the report
  // socket. False with one sentence (what to do) in *error.
  bool start(std::string* error);
  // `inner`'s hooks, then this session's.
  RunHooks hooks(RunHooks inner);

  // send, calibrate: the last report of receiver NAME, null when none came within 5 s.
  const control::ReceiverReport* receiver(const std::string& name);
  // send, calibrate: sends `change` to receiver NAME over the back channel (what POST
  // /api/receivers/NAME does). False with one sentence in *error.
  bool send_change(const std::string& name, const control::ChangeRequest& change,
                   std::string* error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The addresses the control page listens on by default: this machine's private
// (RFC 1918, link-local) IPv4 addresses and 127.0.0.1.
std::vector<std::string> default_control_addresses();

}  // namespace launcher
}  // namespace syncwave
