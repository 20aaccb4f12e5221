// SPDX-License-Identifier: LGPL-2.1-or-later
// The syncwave-device-position query: how an audio output tells syncwavesink exactly
// where its device is, without anyone reading another element's fields.
//
// syncwavesink sends it, as a custom query, to the sink pad of the GstAudioBaseSink
// it plays to, once per buffer, from the streaming thread. An output that knows
// which frame its device plays answers it (returns TRUE) with:
//   position     guint64  the index the device plays now, in the ring buffer's
//                         sample space, as time (index * GST_SECOND / rate): what the
//                         sink's own GstAudioClock function returns
//   next-sample  guint64  the ring buffer index where the next frame rendered goes
//   queue        guint64  ns the device holds (ring buffer and audio server), or
//                         GST_CLOCK_TIME_NONE
// syncwavepulsesink answers it (from PulseAudio's timing reports). With an answer the
// output is placed absolutely (core/output_placer.h); without one (pulsesink,
// alsasink, wasapi2sink, osxaudiosink) only the drift of the sink's provided clock is
// corrected, from an anchor (docs/synchronization.md).
#pragma once

#include <gst/gst.h>

#define SYNCWAVE_DEVICE_POSITION_QUERY "syncwave-device-position"

static inline GstQuery* syncwave_device_position_query_new(void) {
  return gst_query_new_custom(GST_QUERY_CUSTOM,
                              gst_structure_new_empty(SYNCWAVE_DEVICE_POSITION_QUERY));
}

static inline gboolean syncwave_is_device_position_query(GstQuery* query) {
  if (GST_QUERY_TYPE(query) != GST_QUERY_CUSTOM) return FALSE;
  const GstStructure* s = gst_query_get_structure(query);
  return s != NULL && gst_structure_has_name(s, SYNCWAVE_DEVICE_POSITION_QUERY);
}

static inline void syncwave_device_position_query_set(GstQuery* query, GstClockTime position,
                                                      guint64 next_sample, GstClockTime queue) {
  GstStructure* s = gst_query_writable_structure(query);
  gst_structure_set(s, "position", G_TYPE_UINT64, (guint64)position, NULL);
  gst_structure_set(s, "next-sample", G_TYPE_UINT64, next_sample, NULL);
  gst_structure_set(s, "queue", G_TYPE_UINT64, (guint64)queue, NULL);
}

/* FALSE unless position and next-sample are there and valid. */
static inline gboolean syncwave_device_position_query_parse(GstQuery* query,
                                                            GstClockTime* position,
                                                            guint64* next_sample,
                                                            GstClockTime* queue) {
  const GstStructure* s = gst_query_get_structure(query);
  guint64 p = GST_CLOCK_TIME_NONE, n = G_MAXUINT64, q = GST_CLOCK_TIME_NONE;
  if (s == NULL || !gst_structure_get_uint64(s, "position", &p) ||
      !gst_structure_get_uint64(s, "next-sample", &n))
    return FALSE;
  gst_structure_get_uint64(s, "queue", &q);
  if (!GST_CLOCK_TIME_IS_VALID(p) || n == G_MAXUINT64) return FALSE;
  *position = p;
  *next_sample = n;
  *queue = q;
  return TRUE;
}
