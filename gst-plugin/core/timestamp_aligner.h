// Continuous sample timeline for the depayloader.
//
// An original SyncWave sender stamps each packet when its capture callback runs, so
// consecutive timestamps jitter by milliseconds around the true sample times. The
// aligner turns (sender timestamp, sample count) pairs into output PTS on a
// sample-contiguous timeline, like audiobasesink's alignment threshold:
//
//   expected   = sender time of the first sample after everything output so far
//   |ts - expected| <  threshold  -> keep the timeline: pts = expected + offset
//   |ts - expected| >= threshold  -> discontinuity: restart the timeline at ts, once
//                                    the deviation has lasted `discont wait` of sender
//                                    time (at once when the wait is 0 or the
//                                    deviation is 1 s or more)
//
// The wait is audiobasesink's discont-wait: after a stall the original sender sends
// its backlog in a burst, all stamped late; those deviations fade within the stall's
// length and must not cut the audio. A real gap (lost packets with no jitter buffer
// upstream) keeps deviating and is resynchronized after the wait.
//
// offset maps sender time to the output timeline: offset = input PTS - sender time,
// taken when the timeline is anchored (first packet, reset(), an input DISCONT) and
// kept across gaps unless the input PTS disagrees by more than the resync threshold
// (a sender restarted on another timebase). Without input PTS the output continues
// where the previous packet ended.
//
// Pure C++: no GStreamer; all times in nanoseconds, passed in.
#pragma once

#include <cstdint>

namespace syncwave {

class TimestampAligner {
 public:
  static constexpr uint64_t kDefaultThresholdNs = 40000000;          // 40 ms
  static constexpr uint64_t kDefaultResyncThresholdNs = 1000000000;  // 1 s

  struct Output {
    int64_t pts_ns = 0;        // may be negative only if the input PTS was
    uint64_t duration_ns = 0;  // the sample-exact duration on the timeline
    bool discont = false;      // first output after an anchor or a gap
    bool reanchored = false;   // offset was (re)taken from the input PTS
  };

  explicit TimestampAligner(uint64_t threshold_ns = kDefaultThresholdNs);

  void set_threshold(uint64_t threshold_ns) { threshold_ns_ = threshold_ns; }
  uint64_t threshold() const { return threshold_ns_; }
  // How long (sender time) a deviation must last before it is a discontinuity; 0 =
  // at once (the default).
  void set_discont_wait(uint64_t wait_ns) { discont_wait_ns_ = wait_ns; }
  uint64_t discont_wait() const { return discont_wait_ns_; }

  // Sample rate of the timeline; changing it re-anchors.
  void set_rate(uint32_t rate);
  uint32_t rate() const { return rate_; }

  // Forgets the timeline: the next push() anchors anew and is marked discont.
  void reset();
  bool anchored() const { return anchored_; }

  // One packet of `frames` samples whose first sample has sender time `sender_ns`.
  // input_pts_ns < 0 means the input buffer carried no PTS. input_discont forces a
  // new anchor. Times above 2^61 ns and more than 2^32 frames are clamped (hostile
  // input cannot overflow the arithmetic).
  Output push(uint64_t sender_ns, uint64_t frames, int64_t input_pts_ns, bool input_discont);

  // Sender time where the next packet is expected (valid once anchored).
  uint64_t expected_sender_ns() const;

 private:
  uint64_t frames_to_ns(uint64_t frames) const;
  void anchor(uint64_t sender_ns, int64_t offset_ns);

  uint64_t threshold_ns_;
  uint64_t resync_threshold_ns_ = kDefaultResyncThresholdNs;
  uint64_t discont_wait_ns_ = 0;
  bool deviating_ = false;           // a deviation is being waited out
  uint64_t deviating_since_ns_ = 0;  // sender time of its first packet
  uint32_t rate_ = 48000;
  bool anchored_ = false;
  // The timeline: sender time of the anchor sample plus frames output since.
  uint64_t anchor_sender_ns_ = 0;
  uint64_t frames_since_anchor_ = 0;
  int64_t offset_ns_ = 0;
  bool have_end_pts_ = false;
  int64_t end_pts_ns_ = 0;  // output time where the last packet ended
};

}  // namespace syncwave
