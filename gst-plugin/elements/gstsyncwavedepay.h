/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* syncwavedepay: SYNC datagrams in, F32LE raw audio or Opus packets out. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_SYNCWAVE_DEPAY (gst_syncwave_depay_get_type())
G_DECLARE_FINAL_TYPE(GstSyncWaveDepay, gst_syncwave_depay, GST, SYNCWAVE_DEPAY, GstElement);

GST_ELEMENT_REGISTER_DECLARE(syncwavedepay);

G_END_DECLS
