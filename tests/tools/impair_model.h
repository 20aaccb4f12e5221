// SPDX-License-Identifier: LGPL-2.1-or-later
// The impairment model of syncwave-impair: what a bad network does to a stream of
// datagrams, as a plain class that takes time as an argument.
//
//   arrive(now, bytes) ──> outage? ──> random loss ──> burst loss (Gilbert-Elliott)
//        ──> bandwidth cap (drop-tail queue) ──> delay + jitter (+ reorder hold-back)
//        ──> duplicate? ──> pending, ordered by due time ──> pop_due(now)
//
// Every packet draws the same number of random numbers whatever happens to it, so
// the loss, reorder and duplicate decisions for packet N depend only on the seed and
// N: a scenario replays identically. Only the outage windows and the bandwidth cap
// look at arrival times.
//
// No GLib, no sockets: the relay feeds it, the unit tests drive it with numbers.

#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace syncwave {
namespace impair {

enum class JitterDist {
  kUniform,  // delay + U(-jitter, +jitter)
  kNormal,   // delay + N(0, jitter), clipped to +-4 jitter
  kPareto,   // delay + long tail: Pareto (alpha 2.5) with mean `jitter`, capped at 50 jitter
};

// A window during which everything is dropped, relative to the first packet seen.
struct Outage {
  uint64_t start_us = 0;
  uint64_t duration_us = 0;
};

struct Settings {
  double loss = 0.0;  // independent random loss, probability per packet
  // Gilbert-Elliott burst loss: per-packet probability to enter the bad state and to
  // leave it, and the loss probability while in it (the good state loses nothing
  // beyond `loss`). burst_enter 0 disables it.
  double burst_enter = 0.0;
  double burst_exit = 1.0;
  double burst_loss = 1.0;
  double reorder = 0.0;               // probability that a packet is held back ...
  uint64_t reorder_delay_us = 20000;  // ... by this much extra delay
  double duplicate = 0.0;             // probability that a packet is sent twice
  uint64_t delay_us = 0;              // base one-way delay
  uint64_t jitter_us = 0;             // jitter amplitude (see JitterDist)
  JitterDist jitter_dist = JitterDist::kUniform;
  uint64_t rate_bps = 0;               // bandwidth cap in bit/s, 0 = none
  uint64_t queue_limit_bytes = 65536;  // bottleneck queue; overflow is dropped
  std::vector<Outage> outages;
};

// Parses one setting "key=value" (keys as the command-line options: loss, burst,
// reorder, duplicate, delay, jitter, jitter-dist, rate, queue, outage). Probabilities
// take "0.1" or "10%", times "20" (ms), "20ms", "500us" or "1s", rates "800" (kbit/s),
// "800kbit", "2mbit". Returns false with a message for a bad key or value.
bool apply_setting(Settings* s, const std::string& key, const std::string& value,
                   std::string* error);
// "key=value,key=value,..." applied in order.
bool apply_settings(Settings* s, const std::string& list, std::string* error);

struct Counters {
  uint64_t received = 0;  // packets offered to the model
  uint64_t received_bytes = 0;
  uint64_t forwarded = 0;  // packets handed out by pop_due (duplicates included)
  uint64_t forwarded_bytes = 0;
  uint64_t lost_random = 0;
  uint64_t lost_burst = 0;
  uint64_t lost_outage = 0;
  uint64_t dropped_queue = 0;  // bandwidth cap queue overflow
  uint64_t duplicated = 0;     // extra copies created
  uint64_t held_back = 0;      // packets given the reorder hold-back delay
  uint64_t reordered = 0;      // packets forwarded after a packet that arrived later
  uint64_t delay_sum_us = 0;   // sum of (due - arrival) over forwarded packets
  uint64_t delay_max_us = 0;

  uint64_t lost() const { return lost_random + lost_burst + lost_outage + dropped_queue; }
};

struct Delivery {
  uint64_t seq = 0;     // arrival index at the model (0-based)
  uint64_t due_us = 0;  // when it leaves the relay
  bool duplicate = false;
  std::vector<uint8_t> data;
};

class ImpairModel {
 public:
  ImpairModel(const Settings& settings, uint64_t seed);

  // Offers a datagram that arrived at `now_us` (any monotonic microsecond clock).
  void arrive(uint64_t now_us, const uint8_t* data, size_t size);
  void arrive(uint64_t now_us, std::vector<uint8_t> data);

  // Due time of the earliest pending delivery, or UINT64_MAX when none.
  uint64_t next_due() const;
  // Removes and returns every delivery due at or before `now_us`, in due order
  // (ties in arrival order).
  std::vector<Delivery> pop_due(uint64_t now_us);
  size_t pending() const { return pending_.size(); }

  const Counters& counters() const { return counters_; }
  const Settings& settings() const { return settings_; }
  // The counters as a JSON object.
  std::string counters_json() const;

 private:
  double uniform();  // [0, 1)
  int64_t jitter_sample_us(double u1, double u2) const;
  bool in_outage(uint64_t now_us) const;
  void schedule(uint64_t seq, uint64_t due_us, bool duplicate, uint64_t arrival_us,
                std::vector<uint8_t> data);

  struct Pending {
    uint64_t arrival_us;
    Delivery delivery;
  };

  Settings settings_;
  std::mt19937_64 rng_;
  Counters counters_;
  uint64_t next_seq_ = 0;
  bool have_first_ = false;
  uint64_t first_us_ = 0;
  bool burst_bad_ = false;
  uint64_t link_free_us_ = 0;
  uint64_t max_popped_seq_ = 0;
  bool popped_any_ = false;
  uint64_t insert_order_ = 0;
  // Keyed by (due, insertion order) so ties leave in arrival order.
  std::map<std::pair<uint64_t, uint64_t>, Pending> pending_;
};

}  // namespace impair
}  // namespace syncwave
