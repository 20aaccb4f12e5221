/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* syncwavedecodebin: follows a SyncWave stream between raw audio and Opus, keeping every
 * buffer's place on the stream's timeline. See gstsyncwavedecodebin.cpp. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_SYNCWAVE_DECODE_BIN (gst_syncwave_decode_bin_get_type())
G_DECLARE_FINAL_TYPE(GstSyncWaveDecodeBin, gst_syncwave_decode_bin, GST, SYNCWAVE_DECODE_BIN,
                     GstBin);

GST_ELEMENT_REGISTER_DECLARE(syncwavedecodebin);

G_END_DECLS
