// SPDX-License-Identifier: LGPL-2.1-or-later
// The jitter buffer logic of syncwavejitter, with no pads, threads or clocks
// (after GStreamer's rtpjitterbuffer.c, the plain half of rtpjitterbuffer).
//
// Packets are identified by their sender timestamp (µs) and have a duration (ns)
// and an output time `pts` (ns of running time, computed by the caller: synced
// mode T*1000 - base_time, slave mode the skew estimator). A packet is due at
// pts + latency.
//
//   insert() --> duplicate? late? --> held (ordered by timestamp) --> pop()
//                                          |                           ^
//                       head == expected --+--> released at once ------+
//                       head after a gap   --+--> loss (one per missing packet) +
//                                                 head, at the gap's deadline
//
// `expected` is the timestamp the next packet should have, on a timeline fitted to
// the sender's stamps: the previous expected + the packet's duration, corrected by a
// fraction of each packet's deviation (a running mean for the first 32 packets after an
// anchor, then 1/32). A sender that stamps exactly keeps deviations of microseconds;
// the original SyncWave stamps each packet when its capture callback runs, milliseconds
// around the true sample time. The tolerance is learnt from the stream: 1.5 x the
// largest recent deviation (a peak that decays over ~500 packets) + 250 µs; at least
// half a packet when the packets all have one size (a shorter gap cannot be a missing
// packet); at most 3/4 of a packet, and 3/4 during the first 32 packets. A packet
// within the tolerance of `expected` is the next one; a packet further ahead reveals a
// gap; one further behind is late (its slot went out). Lateness against the playout
// time is judged on the fitted timeline too (a packet stamped early is not needed
// earlier). A gap that is a whole number of packets give or take the tolerance is
// reported as that many packets, and the timeline moves by exactly that much (the next
// packet's own deviation is not taken for part of the gap).
//
// A gap is known when a later packet arrives (as in rtpjitterbuffer: a sender that
// stops is not loss), or, with `unheard_loss_ns` > 0, when the expected packet's own
// deadline passes with nothing after it, for at most that much in a row (a decoder
// that holds each packet until the next item reaches it, opusdec with in-band FEC,
// must hear of a loss in time for the packet before it). Its deadline is the pts of its start + latency - the decode
// margin: the loss event must reach the decoder while there is still time to
// conceal; when that time is already past, it goes out at once. A gap longer than
// max_loss is a discontinuity (the sender was silent), not loss: the next packet
// goes out flagged `discont`.
// A timestamp jump (backwards by more than max_backward_jump, forwards by more
// than latency + max_forward_jump) is a sender restart: what is held is drained
// in order, and the stream starts over.
//
// Every time is an argument; `now` is the running time (kTimeNone when unknown,
// then nothing is late and no deadline expires).

#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>

#include "time_units.h"

namespace syncwave {

// What the caller stores with a packet (the element: a GstBuffer). Freed by its
// deleter when the jitter buffer drops the packet.
using JitterPayload = std::unique_ptr<void, void (*)(void*)>;

inline JitterPayload jitter_payload_none() {
  return JitterPayload(nullptr, [](void*) {});
}

struct JitterConfig {
  uint64_t latency_ns = 60 * kNsPerMs;
  // Time kept before a gap's playout time for what follows the jitter buffer: the
  // decoder, and the output device, which wants its data as far ahead as it buffers
  // (syncwavesink sets it from the device's queue). Capped at half the latency. A
  // packet arriving after it is late (its slot was reported lost).
  uint64_t decode_margin_ns = 2 * kNsPerMs;
  uint64_t max_backward_jump_ns = kNsPerSec;
  uint64_t max_forward_jump_ns = kNsPerSec;  // beyond the latency
  uint64_t max_loss_ns = 500 * kNsPerMs;
  // Packets reported lost at their deadline before any later packet arrived, at most
  // this much in a row (then only a later packet reveals the rest of the gap, as
  // without it); 0: off. A stopped sender leaves this much concealment behind.
  uint64_t unheard_loss_ns = 0;
  size_t max_held = 4096;
};

struct JitterStats {
  uint64_t pushed = 0;           // packets released
  uint64_t lost = 0;             // packets reported lost (gap / packet duration)
  uint64_t loss_events = 0;      // loss outputs (one per missing packet)
  uint64_t lost_ns = 0;          // total duration reported lost
  uint64_t late = 0;             // arrived after their playout time or their slot
  uint64_t duplicates = 0;       // same timestamp as a held or recent packet
  uint64_t reordered = 0;        // accepted after a later packet
  uint64_t resets = 0;           // timestamp jumps (sender restarts)
  uint64_t discontinuities = 0;  // gaps too long to be loss (sender silent)
  uint64_t overflow = 0;         // dropped because max_held packets were held
  uint64_t invalid = 0;          // zero duration or unrepresentable timestamp
};

struct JitterOutput {
  enum class Kind { kPacket, kLoss };
  Kind kind = Kind::kPacket;
  uint64_t timestamp_us = 0;  // packet or gap start, sender time
  uint64_t duration_ns = 0;
  uint64_t pts_ns = kTimeNone;  // running time of the packet or gap start
  bool discont = false;         // packets: first after start, reset or discontinuity
  JitterPayload payload = jitter_payload_none();
};

enum class JitterVerdict { kAccepted, kDuplicate, kLate, kOverflow, kInvalid };

class JitterBuffer {
 public:
  explicit JitterBuffer(const JitterConfig& config = JitterConfig()) : config_(config) {}

  void set_latency(uint64_t latency_ns) { config_.latency_ns = latency_ns; }
  void set_decode_margin(uint64_t margin_ns) { config_.decode_margin_ns = margin_ns; }
  void set_unheard_loss(uint64_t ns) { config_.unheard_loss_ns = ns; }
  const JitterConfig& config() const { return config_; }

  // Offers one audio packet that arrived at `now_ns`. A pts of kTimeNone means it
  // has no place on the output timeline (before the start): late. Ready outputs
  // are taken with pop().
  JitterVerdict insert(uint64_t timestamp_us, uint64_t duration_ns, uint64_t pts_ns,
                       uint64_t now_ns, JitterPayload payload);

  // Takes the next output that is ready at `now_ns`, in order. False when none.
  bool pop(uint64_t now_ns, JitterOutput* out);

  // Running time at which pop() will have something new without a new packet
  // (a gap reaching its deadline), 0 when it has something now, or kTimeNone.
  uint64_t next_deadline() const;

  // Releases everything held, in timestamp order, without loss reports (end of
  // stream, format change, new sender). The next packet starts a new stream.
  void drain();

  // Drops everything (flush) and starts over. Statistics are kept.
  void reset();

  const JitterStats& stats() const { return stats_; }
  size_t held() const { return held_.size(); }
  bool started() const { return started_; }
  uint64_t expected_ns() const { return expected_; }
  // The current tolerance around `expected` (ns): learnt from the sender's stamps.
  uint64_t tolerance_ns() const { return started_ ? tolerance() : 0; }
  // How far ahead of its playout the newest data is: end pts of the newest
  // accepted packet + latency - now, at least 0.
  uint64_t level_ns(uint64_t now_ns) const;

 private:
  struct Held {
    uint64_t timestamp_us;
    uint64_t duration_ns;
    uint64_t pts_ns;
    JitterPayload payload;
  };

  // How far from `expected` a packet may be and still be the next one (see the top).
  // Small for a sender that stamps exactly, so that a reordered packet is not taken for
  // the next one when a shorter packet is missing before it (5 ms of raw audio goes out
  // as 173 + 67 frames: the 1.4 ms packet fits inside half of the 3.6 ms one).
  uint64_t tolerance() const {
    const uint64_t cap = last_duration_ * 3 / 4;
    if (fit_count_ < kLearnPackets) return cap;
    uint64_t t = kMinTolerance + peak_error_ns_ + peak_error_ns_ / 2;
    // Packets of one size: a gap shorter than half of one cannot be a missing packet.
    if (same_size_count_ >= kLearnPackets) t = std::max(t, last_duration_ / 2);
    return std::min(cap, t);
  }
  // The gap's duration as reported: a whole number of packets when it is one within
  // the tolerance, else as measured.
  uint64_t loss_duration(uint64_t gap_ns) const;
  uint64_t margin() const;
  uint64_t deadline_for(uint64_t pts_ns) const;
  uint64_t gap_deadline(uint64_t head_ts, const Held& head) const;
  // Deadline of the expected packet when nothing after it is held and it may be
  // reported unheard; kTimeNone otherwise.
  uint64_t unheard_deadline() const;
  void process(uint64_t now_ns);
  void release_head();
  void emit_loss(uint64_t start_ns, uint64_t duration_ns, uint64_t pts_ns);
  bool in_history(uint64_t ts_ns) const;
  void start_over();

  JitterConfig config_;
  JitterStats stats_;

  std::map<uint64_t, Held> held_;  // by timestamp in ns
  std::deque<JitterOutput> ready_;

  bool started_ = false;
  bool have_last_ = false;  // a packet was released since the start
  bool discont_next_ = true;
  uint64_t expected_ = 0;       // ns, sender time of the next packet
  uint64_t last_duration_ = 0;  // of the last released packet
  uint64_t max_ts_seen_ = 0;    // ns, for the reordered count
  uint64_t newest_end_pts_ = kTimeNone;
  uint64_t expected_pts_ = kTimeNone;  // pts of `expected` (end of the last output)
  uint64_t unheard_ns_ = 0;            // reported lost unheard since the last packet
  // In-order packets released since the timeline was anchored (start, discontinuity).
  uint64_t fit_count_ = 0;
  // Largest recent |timestamp - expected| of in-order packets (ns), decaying by 1/512
  // per packet: how far the sender's stamps stray from its timeline.
  uint64_t peak_error_ns_ = 0;
  // Consecutive released packets of the same duration (within 1/64).
  uint64_t same_size_count_ = 0;

  static constexpr uint64_t kMinTolerance = 250 * kNsPerUs;  // µs timestamps, rounding
  static constexpr uint64_t kLearnPackets = 32;              // tolerance 3/4 packet until then
  static constexpr uint64_t kPeakAfter = 8;                  // deviations learnt after this many
  static constexpr uint64_t kFitGain = 32;  // 1/32 of each deviation, in steady state

  static constexpr size_t kHistory = 64;
  static constexpr uint64_t kMaxLossPieces = 200;  // loss outputs per gap
  std::array<uint64_t, kHistory> history_{};
  size_t history_pos_ = 0;
  size_t history_len_ = 0;
};

}  // namespace syncwave
