// SPDX-License-Identifier: LGPL-2.1-or-later
// Real-time bounds in the integration tests.
//
// The integration tests judge what a sound server played: sync offsets, silent
// windows, hand-over and start-up times, how often the output was re-aligned. Those
// bounds are asserted in the plain build. The sanitizer build (.ci/sanitize.sh) runs
// the same paths 2-5 times slower on CI's two cores, where the real-time threads
// underrun; it is there for memory and undefined-behaviour errors, so a missed
// real-time bound is printed there, not failed. Whether audio plays at all, stats
// and errors stay asserted in both builds. The figures themselves are the
// benchmarks' (tests/bench). In the plain build a test that missed nothing but such
// bounds is run once more at once, and fails only if it misses again (timing_main.cpp,
// every program's main()).
//
//   EXPECT_TIMELY(steps <= 3u) << "steps " << steps;
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>

namespace syncwave_test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kTimingJudged = false;
#else
inline constexpr bool kTimingJudged = true;
#endif

// How a missed bound's failure message begins: timing_main.cpp tells them apart by it.
inline constexpr const char* kTimingFailureMark = "real-time bound ";

// One bound: fails the test (plain build) or prints a line (sanitizer build) when it
// does not hold, with what was streamed into it.
class TimingCheck {
 public:
  TimingCheck(bool ok, const char* what, const char* file, int line)
      : ok_(ok), what_(what), file_(file), line_(line) {}
  TimingCheck(const TimingCheck&) = delete;
  TimingCheck& operator=(const TimingCheck&) = delete;
  ~TimingCheck() {
    if (ok_) return;
    if (kTimingJudged) {
      ADD_FAILURE_AT(file_, line_) << kTimingFailureMark << what_ << " missed: " << text_.str();
    } else {
      printf("%s:%d: real-time bound %s missed (not judged under the sanitizers): %s\n", file_,
             line_, what_, text_.str().c_str());
    }
  }
  std::ostringstream& stream() { return text_; }
  bool once = true;

 private:
  bool ok_;
  const char* what_;
  const char* file_;
  int line_;
  std::ostringstream text_;
};

}  // namespace syncwave_test

#define EXPECT_TIMELY(cond)                                                                \
  for (::syncwave_test::TimingCheck syncwave_timing_check_((cond), #cond, __FILE__, __LINE__); \
       syncwave_timing_check_.once; syncwave_timing_check_.once = false)                      \
  syncwave_timing_check_.stream()
