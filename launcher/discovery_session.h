// SPDX-License-Identifier: LGPL-2.1-or-later
// What send, receive and list do with discovery (discovery.h), on the GLib main loop:
//
//   send      announces itself; with no --target/--broadcast/--multicast it follows
//             the receivers found: each one that appears is added to the multiudpsink
//             named "net" (signal "add"), each one that goes is removed; the capture
//             and the encoder never stop.
//   receive   announces itself, and its state when it changes; --from=NAME waits
//             for the sender of that name (find_sender).
//   list      browses both roles for a while and prints what it found.

#pragma once

#include <memory>
#include <string>

#include "discovery.h"
#include "options.h"
#include "runner.h"

namespace syncwave {
namespace launcher {

class DiscoverySession {
 public:
  // `discovery` may be null (no daemon): then nothing is announced or followed.
  DiscoverySession(const Options& options, std::unique_ptr<Discovery> discovery);
  ~DiscoverySession();
  DiscoverySession(const DiscoverySession&) = delete;
  DiscoverySession& operator=(const DiscoverySession&) = delete;

  bool active() const { return discovery_ != nullptr; }
  // Announces this sender or receiver and, for a sender without destinations, starts
  // following the receivers.
  void start();
  // Hooks for run_pipeline: the multiudpsink to fill, the state to announce, the
  // number of destinations to show.
  RunHooks hooks();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Discovery* discovery_ = nullptr;
};

// receive --from=NAME: browses senders for up to `timeout_s` and returns the address
// of the one called NAME ("" when none was found; then *problem says why).
std::string find_sender(Discovery* discovery, const std::string& name, double timeout_s,
                        std::string* problem);

// `control` without --sender: browses senders for up to `timeout_s` and returns the
// addresses of all found, this computer's first ("127.0.0.1" for those).
std::vector<std::string> find_senders(Discovery* discovery, double timeout_s);

// `calibrate` without addresses: browses for up to `timeout_s` and returns the receivers
// found (this computer's at 127.0.0.1), by name.
std::vector<Peer> find_receivers(Discovery* discovery, double timeout_s);

// `list`: browses for options.list.timeout_s and prints one line per service (or JSON).
// Returns the exit code.
int run_list(const Options& options);

// The name announced: --name, else the host name.
std::string announced_name(const std::string& option_name);

}  // namespace launcher
}  // namespace syncwave
