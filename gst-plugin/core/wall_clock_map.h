// SPDX-License-Identifier: LGPL-2.1-or-later
// WallClockMap: pipeline-clock time -> wall-clock time, from paired readings.
//
// syncwavepay stamps each packet with the wall-clock (Unix epoch) time of its first
// sample, but a buffer's capture time is known on the pipeline clock, whatever that is:
// an audio source's or sink's clock (which stands still until the device runs, then
// follows the sound card's crystal, 100-300 ppm away from the system clock), the
// monotonic or realtime system clock, or a net client clock (which can step when it
// resynchronises). One offset sampled at start is wrong for all but the realtime clock.
//
// The element takes one reading per buffer: the pipeline clock, the wall clock, the
// pipeline clock again (add(before, wall, after)). A reading whose two clock reads are
// further apart than `max_read_ns` was interrupted and is not used. The others are
// points (x = clock, y = wall - clock), and to_wall(x) is a least-squares line through
// the points of the last `window_ns`, refitted after dropping points off it by more
// than `outlier_ns` (a reading delayed between its reads), with its slope clamped to
// `max_slope` (no real clock is further off than that; it also guards a fit over a
// clock that stood still). Stamps are therefore smooth (the line moves by fractions of
// a microsecond per reading) and correct (the line follows drift).
//
//   reading ──> bracket ok? ──no──> count slow_reads
//                  │yes
//                  v
//        |residual| <= step_ns ? ──yes──> window (fit) ; pending cleared
//                  │no
//                  v
//        pending (step_confirm readings in a row, agreeing within step_ns)
//                  │
//                  v
//        re-anchor: window := pending     (a clock that starts late, steps, or a
//                                          wall clock stepped by NTP)
//
// A single reading off the line by more than step_ns is dropped (counted as outlier);
// step_confirm of them in a row that agree with each other are a real discontinuity.
// Pure C++, no clock of its own: every time is an argument, so it is tested in
// simulated time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace syncwave {

class WallClockMap {
 public:
  struct Config {
    int64_t window_ns = 10'000'000'000;       // readings kept for the fit (clock time)
    size_t max_points = 2000;                 // and at most this many
    int64_t max_read_ns = 2'000'000;          // wider bracket: interrupted reading, unused
    int64_t outlier_ns = 200'000;             // refit without points further off than this
    int64_t step_ns = 5'000'000;              // a reading this far off the line is suspect
    unsigned step_confirm = 3;                // this many suspects in a row: re-anchor
    double max_slope = 1e-3;                  // |d(wall - clock)/d clock| <= 1000 ppm
    int64_t min_slope_span_ns = 200'000'000;  // offset only until the points span this
  };

  struct Stats {
    uint64_t readings = 0;    // add() calls
    uint64_t slow_reads = 0;  // bracket wider than max_read_ns
    uint64_t outliers = 0;    // off the line, not confirmed as a step
    uint64_t reanchors = 0;   // discontinuities followed (the first anchor not counted)
  };

  WallClockMap() = default;
  explicit WallClockMap(const Config& c) : config_(c) {}

  // One reading: the pipeline clock read at clock_before_ns, the wall clock read next
  // (wall_ns), then the pipeline clock again (clock_after_ns).
  void add(int64_t clock_before_ns, int64_t wall_ns, int64_t clock_after_ns);

  // True once a reading has been taken.
  bool valid() const { return valid_; }
  // Wall-clock time at pipeline-clock time clock_ns. Before the first usable reading:
  // the offset of the last interrupted one (off by at most half its bracket), so that a
  // busy machine's first packets are not stamped with the pipeline clock's own time
  // (the monotonic clock: decades before the wall clock, which receivers take for a
  // clock that does not follow the sender); clock_ns itself before any reading.
  int64_t to_wall(int64_t clock_ns) const;

  // The current line: wall = clock + offset_ns + slope * (clock - ref_clock_ns).
  struct Mapping {
    int64_t ref_clock_ns = 0;
    int64_t offset_ns = 0;
    double slope = 0.0;
    int64_t at(int64_t clock_ns) const;
  };
  const Mapping& mapping() const { return line_; }

  const Stats& stats() const { return stats_; }
  void reset();

 private:
  struct Point {
    int64_t x;  // clock ns
    int64_t y;  // wall - clock ns
  };
  void refit();

  Config config_;
  Stats stats_;
  bool valid_ = false;
  bool have_rough_ = false;  // an interrupted reading, used while !valid_
  int64_t rough_offset_ns_ = 0;
  std::deque<Point> points_;
  std::deque<Point> pending_;
  Mapping line_;
};

// LiveStampCheck: a live source's stamp must describe audio already captured, and not
// long ago. A buffer of `duration` stamped `stamp` (wall) arriving at wall time `now`
// has age = now - (stamp + duration): about 0 for a capture device (a little more
// with scheduling and an encoder's latency), -duration for a synthetic live source
// that pushes a buffer when its first sample is due. A stamp outside
//   -(duration + max_ahead_ns) <= age <= latency + max_age_ns
// for `confirm` buffers in a row whose ages agree within spread_ns (or for the first
// buffer) is not on the wall clock: the source's
// timestamps are not on its own clock's timeline (pulsesrc as the pipeline clock, for its first
// second or so, stamps half a second behind its clock). The stamps are then moved by the smallest
// age seen over those buffers, so the least delayed of them gets age 0. When the mapping itself
// re-anchors (check(..., recheck=true)), the correction is taken anew from that buffer: 0 if its
// plain stamp is in bounds.
class LiveStampCheck {
 public:
  struct Config {
    int64_t max_age_ns = 200'000'000;   // beyond the upstream latency
    int64_t max_ahead_ns = 20'000'000;  // beyond the buffer's own duration
    unsigned confirm = 5;
    int64_t spread_ns = 30'000'000;  // their ages must agree within this
  };
  LiveStampCheck() = default;
  explicit LiveStampCheck(const Config& c) : config_(c) {}

  // The upstream latency (latency query, min), added to the largest age.
  void set_latency(int64_t ns) { latency_ns_ = ns > 0 ? ns : 0; }
  // Returns the stamp to send. recheck: the mapping changed (re-anchored): drop the
  // correction at once if the plain stamp is in bounds.
  int64_t check(int64_t stamp_ns, int64_t duration_ns, int64_t now_ns, bool recheck = false);
  int64_t correction_ns() const { return correction_ns_; }
  uint64_t corrections() const { return corrections_; }
  void reset();

 private:
  bool in_bounds(int64_t age_ns, int64_t duration_ns) const;

  Config config_;
  int64_t latency_ns_ = 0;
  int64_t correction_ns_ = 0;
  unsigned bad_ = 0;
  bool judged_ = false;     // a buffer has been seen since reset()
  int64_t min_age_ns_ = 0;  // plain age, smallest over the bad run
  int64_t max_age_ns_ = 0;  // and largest
  uint64_t corrections_ = 0;
};

}  // namespace syncwave
