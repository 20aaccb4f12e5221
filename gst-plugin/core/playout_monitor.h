// SPDX-License-Identifier: LGPL-2.1-or-later
// Whether a receiver's audio reaches its output on time, and what latency its path
// needs. Pure C++: no GStreamer, no GLib; every time is passed in (nanoseconds on
// the shared clock).
//
// A receiver plays the sample captured at T when the shared clock reads T + latency.
// Two things can make it miss that moment:
//   - the packet arrives too late (transit = arrival - T above the latency): a slow
//     path, a sender pipeline that holds its packets, a jittery Wi-Fi link;
//   - it arrives in time but reaches the output too late: a decoder that holds a
//     packet for in-band FEC, a device that wants its data some milliseconds ahead.
// The monitor sees both: every packet's transit at arrival, and every buffer's
// margin when it reaches the output (its deadline minus now, < 0 when late). From
// the last `window_ns` of each it keeps histograms (1 ms bins, O(1) per packet) and
// tells the element:
//
//   on_arrival(now, transit) ──┐
//   on_output(now, margin) ────┼──► evaluate(now, latency) ──► keep, or play at L'
//                              └──► health(now): no audio / on time / late
//
// The decision. The path's need is the larger of
//     p99(transit) + give_up + guard        (packets arrive in time for the jitter buffer)
//     L - p02(margin) + guard               (buffers reach the output with a margin)
// (the margins hold what happens after the jitter buffer: decoding, an FEC hold, the
// output's own timing; before any buffer reached the output, `default_overhead_ns`
// stands in for them), rounded up to `grid_ns` so that receivers on similar paths pick
// the same value.
//
// When more than `late_fraction` of the window's packets or buffers were late, the
// latency rises to max(need, L + grid), at most once per `settle_ns` so that each rise
// is measured before the next; after `fast_settle_ns`, and from the transits alone,
// when more than half of the packets arrive late, for then nothing is heard. A raise
// that did not halve the late fraction is followed by at most one more: when latency
// does not help (buffers late for another reason), raising stops. With `auto_latency`
// the first decision, after `settle_ns` of packets, sets L = need whatever it was
// (lower or higher), and later ones only raise it. For half of `settle_ns` after a
// change the output's margins are ignored: buffers already on their way were placed
// for the old latency. A raised latency is never lowered: a path that was slow once
// is likely to be slow again, and every change is a glitch.
#pragma once

#include <array>
#include <cstdint>

namespace syncwave {

class PlayoutMonitor {
 public:
  struct Config {
    int64_t window_ns = 2'000'000'000;     // percentiles over this much of the past
    int64_t settle_ns = 1'000'000'000;     // observation before (and between) changes
    int64_t fast_settle_ns = 250'000'000;  // the same when most packets are late
    int64_t guard_ns = 10'000'000;         // headroom on top of the measured need
    int64_t grid_ns = 10'000'000;          // latencies chosen are multiples of this
    int64_t min_latency_ns = 20'000'000;   // auto never goes below this
    int64_t max_latency_ns = 5'000'000'000;
    int64_t default_overhead_ns = 20'000'000;  // when no buffer reached the output yet
    int64_t max_overhead_ns = 250'000'000;     // a larger raise at once is a measurement gone wrong
    double late_fraction = 0.02;           // of the window, before the latency moves
    uint32_t min_late = 5;                 // and at least this many (not a one-off)
    int64_t on_time_ns = 500'000'000;      // an on-time buffer this recent: "on time"
  };

  enum class Health { kNoAudio, kOnTime, kLate };

  struct Decision {
    bool change = false;
    int64_t latency_ns = 0;        // the latency to play at (== current when !change)
    int64_t need_ns = 0;           // what the path needs (0 when not known yet)
    int64_t transit_p99_ns = -1;   // -1 when no packet in the window
    double late_fraction = 0;      // packets or buffers late in the window (the larger)
  };

  PlayoutMonitor() : PlayoutMonitor(Config()) {}
  explicit PlayoutMonitor(const Config& config);

  // A packet arrived `transit_ns` after its capture time. `give_up_ns`: how long before
  // its playout time the receiver had given up on this packet if it was not there yet
  // (syncwavejitter reports a missing packet lost `loss-margin` before its time: for a
  // decoder that holds, opusdec with in-band FEC, always; otherwise when a later packet
  // arrived first, so for a packet that arrives out of order); a packet arriving later
  // is late, and the path needs that much more latency. 0: a packet is late only after
  // its playout time. The need adds the largest give-up of the window's arrivals, not
  // the last one's: on a reordering path in-order and out-of-order packets alternate.
  void on_arrival(int64_t now_ns, int64_t transit_ns, int64_t latency_ns, int64_t give_up_ns = 0);
  // A buffer reached the output `margin_ns` before its deadline (< 0: late).
  void on_output(int64_t now_ns, int64_t margin_ns);

  Decision evaluate(int64_t now_ns, int64_t latency_ns, bool auto_latency);
  Health health(int64_t now_ns) const;

  // Forget what was measured (a new stream, a latency change).
  void reset_window();
  void reset();

  // Percentile q (0..1) of the transit / margin in the window, ns; -1 / INT64_MIN
  // when empty.
  int64_t transit_percentile(int64_t now_ns, double q);
  int64_t margin_percentile(int64_t now_ns, double q);

  uint64_t late_arrivals() const { return late_arrivals_total_; }
  uint64_t late_outputs() const { return late_outputs_total_; }
  uint64_t changes() const { return changes_; }

 private:
  static constexpr int kBins = 2048;  // 1 ms each
  static constexpr int kSlots = 4;    // the window in four parts
  struct Histogram {
    std::array<uint32_t, kBins> bins{};
    uint32_t count = 0;
    uint32_t late = 0;
    int64_t give_up_max = 0;  // transit series: the largest give-up of its arrivals
  };
  struct Series {
    std::array<Histogram, kSlots> slots;
    int64_t slot_start_ns = INT64_MIN;
    int current = 0;
  };

  void advance(Series* s, int64_t now_ns);
  void add(Series* s, int64_t now_ns, int bin, bool late);
  static int64_t percentile(const Series& s, double q, int64_t bin_origin_ms);
  static uint32_t count(const Series& s);
  static uint32_t late(const Series& s);
  static int64_t give_up_max(const Series& s);

  Config config_;
  Series transit_;  // bin = transit ms (clamped to 0..2047)
  Series margin_;   // bin = margin ms + 1024
  int64_t last_change_ns_ = INT64_MIN;
  int64_t first_arrival_ns_ = INT64_MIN;
  int64_t last_on_time_ns_ = INT64_MIN;
  int64_t last_late_ns_ = INT64_MIN;
  int64_t ignore_output_until_ns_ = INT64_MIN;
  bool auto_decided_ = false;
  double last_raise_late_ = -1;  // late fraction that led to the last raise
  bool futile_ = false;          // raises stopped helping
  uint64_t late_arrivals_total_ = 0;
  uint64_t late_outputs_total_ = 0;
  uint64_t changes_ = 0;
};

}  // namespace syncwave
