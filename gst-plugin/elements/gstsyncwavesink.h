/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* syncwavesink: plays a SyncWave stream in sync with every other receiver.
 * See gstsyncwavesink.cpp and docs/synchronization.md. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_SYNCWAVE_SINK (gst_syncwave_sink_get_type())
G_DECLARE_FINAL_TYPE(GstSyncWaveSink, gst_syncwave_sink, GST, SYNCWAVE_SINK, GstBin);

GST_ELEMENT_REGISTER_DECLARE(syncwavesink);

G_END_DECLS
