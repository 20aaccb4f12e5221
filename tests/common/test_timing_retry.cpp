// SPDX-License-Identifier: LGPL-2.1-or-later
// The re-run of timing_main.cpp, judged by exit codes (tests/common/meson.build): a
// test that misses a real-time bound once passes on its re-run; one that misses it
// every time fails; one with another failure is not re-run (it would pass then).
//   SYNCWAVE_RETRY_PROBE=flaky|regression|other
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "timing.h"

TEST(TimingRetryProbe, Behaves) {
  if (!syncwave_test::kTimingJudged) std::exit(77);  // sanitizers: bounds are printed only
  const char* m = std::getenv("SYNCWAVE_RETRY_PROBE");
  const std::string mode = m ? m : "";
  const bool rerun = std::getenv("SYNCWAVE_TIMING_RETRY") != nullptr;
  if (mode == "flaky") {
    EXPECT_TIMELY(rerun) << "first run";
  } else if (mode == "regression") {
    EXPECT_TIMELY(false) << "every run";
  } else if (mode == "other") {
    EXPECT_TIMELY(rerun) << "first run";
    EXPECT_TRUE(rerun) << "not a real-time bound";
  }
}

TEST(TimingRetryProbe, PassesAndIsNotRerun) {
  EXPECT_EQ(std::getenv("SYNCWAVE_TIMING_RETRY"), nullptr);
}
