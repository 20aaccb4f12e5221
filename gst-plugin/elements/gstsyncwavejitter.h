/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* syncwavejitter: SYNC datagrams in, the same datagrams out in timestamp order,
 * stamped with their running time, with a loss event for every gap.
 * See gstsyncwavejitter.cpp. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/* How a sender timestamp becomes running time. */
typedef enum {
  /* The pipeline clock reads the sender's timebase: PTS = T * 1000 - base_time. */
  GST_SYNCWAVE_JITTER_MODE_SYNCED = 0,
  /* No shared clock: smoothed arrival time (skew estimation) stands in. */
  GST_SYNCWAVE_JITTER_MODE_SLAVE = 1,
} GstSyncWaveJitterMode;

#define GST_TYPE_SYNCWAVE_JITTER_MODE (gst_syncwave_jitter_mode_get_type())
GType gst_syncwave_jitter_mode_get_type(void);

#define GST_TYPE_SYNCWAVE_JITTER (gst_syncwave_jitter_get_type())
G_DECLARE_FINAL_TYPE(GstSyncWaveJitter, gst_syncwave_jitter, GST, SYNCWAVE_JITTER, GstElement);

GST_ELEMENT_REGISTER_DECLARE(syncwavejitter);

G_END_DECLS
