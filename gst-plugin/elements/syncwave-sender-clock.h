/* The SyncWave sender clock: the timebase of the wire timestamps, in nanoseconds.
 *
 * It reads a pipeline clock and maps it to wall-clock time with the line syncwavepay
 * stamps packets with (core/wall_clock_map.h):
 *   time = master + offset + slope * (master - ref)
 * so sender timestamp T µs is clock time T * 1000 ns, whatever the pipeline clock is.
 * syncwavepay updates the line after each buffer and serves the clock with a
 * GstNetTimeProvider on `time-provider-port`; receivers slave a GstNetClientClock to
 * it. It is only read, never waited on.
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define SYNCWAVE_TYPE_SENDER_CLOCK (syncwave_sender_clock_get_type())
G_DECLARE_FINAL_TYPE(SyncWaveSenderClock, syncwave_sender_clock, SYNCWAVE, SENDER_CLOCK, GstClock);

/* A clock reading gst_clock_get_time (master) + offset_ns. Takes its own ref on master. */
GstClock* syncwave_sender_clock_new(GstClock* master, GstClockTimeDiff offset_ns);

/* Changes the offset (slope 0), e.g. when the pipeline clock changes. */
void syncwave_sender_clock_set_offset(SyncWaveSenderClock* clock, GstClockTimeDiff offset_ns);

/* Sets the line: time = master + offset_ns + slope * (master - ref_ns). Thread-safe. */
void syncwave_sender_clock_set_mapping(SyncWaveSenderClock* clock, GstClockTime ref_ns,
                                       GstClockTimeDiff offset_ns, gdouble slope);

/* Offset from `clock`'s time to wall-clock (Unix epoch) nanoseconds: 0 for a
 * GST_CLOCK_TYPE_REALTIME system clock, else realtime minus clock time, sampled now
 * (one bracketed reading). Right for clocks that run at the system clock's rate and are
 * already running; syncwavepay itself fits a line over many readings instead. */
GstClockTimeDiff syncwave_clock_wall_offset(GstClock* clock);

G_END_DECLS
