// SPDX-License-Identifier: LGPL-2.1-or-later
// Time arithmetic for SyncWave timestamps, in one place.
//
// Sender timestamps are u64 microseconds since the Unix epoch; running and clock
// times are u64 nanoseconds (GStreamer's GstClockTime). Both come partly from the
// network, so nothing here may overflow: conversions saturate or report kTimeNone,
// and differences are signed and clamped to the int64 range.
//
// kTimeNone has the value of GST_CLOCK_TIME_NONE so that elements can pass times
// straight through.

#pragma once

#include <cstdint>
#include <limits>

namespace syncwave {

constexpr uint64_t kTimeNone = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kTimeMax = kTimeNone - 1;  // largest valid time

constexpr uint64_t kNsPerUs = 1000;
constexpr uint64_t kNsPerMs = 1000 * kNsPerUs;
constexpr uint64_t kNsPerSec = 1000 * kNsPerMs;

inline bool time_valid(uint64_t t) {
  return t != kTimeNone;
}

// Microseconds to nanoseconds; kTimeNone when the result does not fit.
inline uint64_t us_to_ns(uint64_t us) {
  if (us > kTimeMax / kNsPerUs) return kTimeNone;
  return us * kNsPerUs;
}

// Nanoseconds to microseconds, truncating; kTimeNone stays kTimeNone.
inline uint64_t ns_to_us(uint64_t ns) {
  return time_valid(ns) ? ns / kNsPerUs : kTimeNone;
}

// a + b, saturating at kTimeMax; kTimeNone when either is kTimeNone.
inline uint64_t time_add(uint64_t a, uint64_t b) {
  if (!time_valid(a) || !time_valid(b)) return kTimeNone;
  if (a > kTimeMax - b) return kTimeMax;
  return a + b;
}

// a - b, clamped at 0; kTimeNone when either is kTimeNone.
inline uint64_t time_sub_floor(uint64_t a, uint64_t b) {
  if (!time_valid(a) || !time_valid(b)) return kTimeNone;
  return a > b ? a - b : 0;
}

// Signed a - b, clamped to the int64 range. Never overflows.
inline int64_t time_diff(uint64_t a, uint64_t b) {
  constexpr uint64_t kMaxPos = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (a >= b) {
    uint64_t d = a - b;
    return d > kMaxPos ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(d);
  }
  uint64_t d = b - a;
  if (d > kMaxPos) return std::numeric_limits<int64_t>::min();
  return -static_cast<int64_t>(d);
}

// t + d for a signed d, clamped to [0, kTimeMax]; kTimeNone stays kTimeNone.
inline uint64_t time_add_signed(uint64_t t, int64_t d) {
  if (!time_valid(t)) return kTimeNone;
  if (d >= 0) return time_add(t, static_cast<uint64_t>(d));
  // -(d + 1) + 1 avoids negating INT64_MIN.
  uint64_t m = static_cast<uint64_t>(-(d + 1)) + 1;
  return t > m ? t - m : 0;
}

// |a - b| without overflow.
inline uint64_t time_abs_diff(uint64_t a, uint64_t b) {
  return a > b ? a - b : b - a;
}

}  // namespace syncwave
