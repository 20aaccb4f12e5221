/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* syncwavepay: audio (F32LE raw or Opus) in, SYNC datagrams out, one per buffer. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_SYNCWAVE_PAY (gst_syncwave_pay_get_type())
G_DECLARE_FINAL_TYPE(GstSyncWavePay, gst_syncwave_pay, GST, SYNCWAVE_PAY, GstElement);

GST_ELEMENT_REGISTER_DECLARE(syncwavepay);

G_END_DECLS
