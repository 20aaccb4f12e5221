/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The SyncWave sender clock: the timebase of the wire timestamps, in nanoseconds.
 *
 * It reads a master clock plus a constant offset. syncwavepay stamps packets in wall
 * time (the realtime clock, or its `wall-clock`), whatever the pipeline clock, so it
 * gives the wall clock itself as the master, offset 0: sender timestamp T µs is clock
 * time T * 1000 ns. (Mapping the pipeline clock instead would serve a clock that stands
 * still while an audio clock does, and jumps when it re-anchors.) syncwavepay serves it
 * with a GstNetTimeProvider on `time-provider-port`; receivers slave a
 * GstNetClientClock to it. It is only read, never waited on.
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define SYNCWAVE_TYPE_SENDER_CLOCK (syncwave_sender_clock_get_type())
G_DECLARE_FINAL_TYPE(SyncWaveSenderClock, syncwave_sender_clock, SYNCWAVE, SENDER_CLOCK, GstClock);

/* A clock reading gst_clock_get_time (master) + offset_ns. Takes its own ref on master. */
GstClock* syncwave_sender_clock_new(GstClock* master, GstClockTimeDiff offset_ns);

/* Changes the offset (e.g. when the pipeline clock changes). */
void syncwave_sender_clock_set_offset(SyncWaveSenderClock* clock, GstClockTimeDiff offset_ns);

/* Offset from `clock`'s time to wall-clock (Unix epoch) nanoseconds: 0 for a
 * GST_CLOCK_TYPE_REALTIME system clock, else realtime minus clock time, sampled now. */
GstClockTimeDiff syncwave_clock_wall_offset(GstClock* clock);

G_END_DECLS
