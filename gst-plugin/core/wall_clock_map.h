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
  // Wall-clock time at pipeline-clock time clock_ns (clock_ns itself while !valid()).
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
  std::deque<Point> points_;
  std::deque<Point> pending_;
  Mapping line_;
};

}  // namespace syncwave
