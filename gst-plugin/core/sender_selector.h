// SPDX-License-Identifier: LGPL-2.1-or-later
// Which sender a receiver plays when several send to its port (syncwavejitter), with no
// sockets, threads or clocks: addresses and times are arguments.
//
//   offer(host, port, now) --> the played sender? ---------------------------> kPlay
//                              pinned and not matching? ---------------------> kForeign
//                              nobody played yet? ---> lock onto it ----------> kPlay
//                              played one silent > timeout? ---> take over ---> kTakeOver
//                              otherwise ------------------------------------> kForeign
//
// Rules (docs/synchronization.md, "Several senders on one port"):
// - The first sender heard is played (two starting at the same moment: the one whose
//   datagram arrives first). Every datagram of any other sender is foreign: counted,
//   and the caller drops it before it can touch caps, timeline, clock or jitter buffer.
//   Each foreign address is announced once (up to 256 addresses).
// - When the played sender has been silent for longer than `timeout` (500 ms), the next
//   matching sender heard takes over. A sender restarted on the same host comes back
//   from a new source port, and is followed by this rule.
// - pin(): only senders matching the pinned hosts (literal addresses, compared as text)
//   and port (0: any) are played; with an empty host list (a name that did not resolve
//   yet) nothing is played.
// Times are ns on any monotonic timebase; a time earlier than the last one heard (the
// caller's clock changed) counts as "just heard", never as a silence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "time_units.h"

namespace syncwave {

class SenderSelector {
 public:
  static constexpr uint64_t kDefaultTimeoutNs = 500 * kNsPerMs;
  static constexpr size_t kMaxAnnounced = 256;

  enum class Verdict { kPlay, kTakeOver, kForeign };
  struct Result {
    Verdict verdict = Verdict::kForeign;
    bool announce = false;  // kForeign: first datagram from this address
    bool first = false;     // kPlay: the first sender locked onto (nobody played before)
    std::string previous;   // kTakeOver: key() of the sender played until now
  };

  explicit SenderSelector(uint64_t timeout_ns = kDefaultTimeoutNs) : timeout_ns_(timeout_ns) {}

  void set_timeout(uint64_t timeout_ns) { timeout_ns_ = timeout_ns; }
  uint64_t timeout() const { return timeout_ns_; }

  // Plays only senders on one of `hosts` (text form of literal addresses) and `port`
  // (0: any). Returns true when the sender played now does not match: the caller
  // drains what it holds of it, and the next matching sender is locked onto.
  bool pin(const std::vector<std::string>& hosts, uint16_t port);
  // Any sender again (the one played now stays).
  void unpin();
  bool pinned() const { return pinned_; }
  bool matches(const std::string& host, uint16_t port) const;

  // A datagram from host:port arrived at now_ns. `valid`: it is a SyncWave datagram
  // (header or audio); only those lock onto or take over with a sender, so that a stray
  // datagram (a port scan) never silences the stream.
  Result offer(const std::string& host, uint16_t port, uint64_t now_ns, bool valid = true);

  // Forgets the played sender and the announced addresses (a new stream). Counts stay.
  void reset();

  bool locked() const { return locked_; }
  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  // "HOST:PORT" of the played sender ("[V6]:PORT"), "" when none.
  std::string key() const;
  uint64_t foreign_packets() const { return foreign_; }
  uint64_t changes() const { return changes_; }  // take-overs
  size_t foreign_senders() const { return announced_.size(); }

 private:
  uint64_t timeout_ns_;
  bool pinned_ = false;
  std::vector<std::string> pin_hosts_;
  uint16_t pin_port_ = 0;

  bool locked_ = false;
  std::string host_;
  uint16_t port_ = 0;
  uint64_t last_heard_ = kTimeNone;

  std::set<std::string> announced_;
  uint64_t foreign_ = 0;
  uint64_t changes_ = 0;
};

}  // namespace syncwave
