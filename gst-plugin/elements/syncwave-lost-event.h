/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The loss event: a serialized custom downstream event that syncwavejitter sends,
 * in order with the packets, for every gap it detects in a stream. syncwavedepay
 * turns it into a GAP event (Opus: the decoder conceals) or into a faded
 * concealment buffer (raw float32).
 *
 * Structure "GstSyncWavePacketLost":
 *   timestamp-us  guint64  sender timestamp (µs since the Unix epoch) where the gap starts
 *   duration      guint64  length of the gap in nanoseconds
 *   pts           guint64  running time of the gap's start on the jitter's output
 *                          timeline (GST_CLOCK_TIME_NONE when unknown)
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define SYNCWAVE_LOST_EVENT_NAME "GstSyncWavePacketLost"

GstEvent *syncwave_lost_event_new (guint64 timestamp_us, GstClockTime duration,
    GstClockTime pts);
gboolean syncwave_lost_event_parse (GstEvent * event, guint64 * timestamp_us,
    GstClockTime * duration, GstClockTime * pts);

G_END_DECLS
