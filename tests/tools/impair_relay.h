// SPDX-License-Identifier: LGPL-2.1-or-later
// The UDP side of syncwave-impair: receives datagrams on one socket and forwards
// each to every destination through that destination's ImpairModel, sending each
// copy when it falls due. One thread; ppoll() with microsecond timeouts. Linux/POSIX.
//
//   sender ──udp──> [listen socket] ──> model(dest 1) ──> dest 1
//                                   └──> model(dest 2) ──> dest 2 ...
//
// Used by the syncwave-impair program and, in-process, by the scenario tests.

#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "impair_model.h"

namespace syncwave {
namespace impair {

class Relay {
 public:
  Relay();
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Binds the listening socket (port 0 picks a free port; read it with port()).
  bool open(const std::string& host, uint16_t port, std::string* error);
  // Adds a destination with its own model and seed. Call before run().
  bool add_destination(const std::string& host, uint16_t port, const Settings& settings,
                       uint64_t seed, std::string* error);

  uint16_t port() const { return port_; }
  size_t destination_count() const;

  // Forwards until stop(). After every wake(), on_wake runs in the relay's thread;
  // returning false stops the relay.
  void run(const std::function<bool()>& on_wake = nullptr);
  // Thread-safe.
  void stop();
  // Async-signal-safe: interrupts the wait so that on_wake runs.
  void wake();

  // Thread-safe snapshot of every counter, as a JSON object.
  std::string stats_json() const;
  // Thread-safe snapshot of one destination's counters.
  Counters counters(size_t destination) const;
  uint64_t received() const;
  // Keeps, per destination, the arrival index of every datagram sent, in sending
  // order (for tests: what the receiver saw, independent of scheduling).
  void set_recording(bool on);
  std::vector<uint64_t> sent_order(size_t destination) const;

 private:
  struct Destination;
  void receive_all(uint64_t now_us);
  void send_due(uint64_t now_us);

  int fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::string listen_host_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex lock_;
  uint64_t received_ = 0;
  uint64_t send_errors_ = 0;
  bool recording_ = false;
  std::vector<std::unique_ptr<Destination>> destinations_;
  std::vector<uint8_t> buffer_;
};

// Microseconds on CLOCK_MONOTONIC.
uint64_t monotonic_us();

}  // namespace impair
}  // namespace syncwave
