/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* syncwaveoutput: one audio output of a SyncWave receiver (volume, placement on the
 * pipeline clock, delay, meter, audio sink). See gstsyncwaveoutput.cpp. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_SYNCWAVE_OUTPUT (gst_syncwave_output_get_type())
G_DECLARE_FINAL_TYPE(GstSyncWaveOutput, gst_syncwave_output, GST, SYNCWAVE_OUTPUT, GstBin);

GST_ELEMENT_REGISTER_DECLARE(syncwaveoutput);

/* Called on the output's streaming thread, without its lock, for every buffer placed on
 * a device that reports its play position: `margin_ns` is how long before its render
 * time the buffer reached the device's queue (negative: late), at pipeline clock time
 * `now_ns`. syncwavesink's playout monitor is fed this way (no message per buffer). */
typedef void (*GstSyncWaveOutputMarginFunc)(GstSyncWaveOutput* output, gint64 now_ns,
                                            gint64 margin_ns, gpointer user_data);

/* Sets (or clears, with NULL) the margin callback. Call before the output streams. */
void gst_syncwave_output_set_margin_func(GstSyncWaveOutput* output,
                                         GstSyncWaveOutputMarginFunc func, gpointer user_data);

G_END_DECLS
