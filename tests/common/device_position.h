// SPDX-License-Identifier: LGPL-2.1-or-later
// For the tests' own audio devices (GstAudioSink subclasses): answers the
// syncwave-device-position query (gst-plugin/elements/syncwave-device-position.h) as
// syncwavepulsesink does, from the device's own clock and its base class's
// next_sample and ring buffer. A device that does not answer is placed relatively.
#pragma once

#include <gst/audio/audio.h>
#include <gst/gst.h>

#include "syncwave-device-position.h"

namespace syncwave_test {

inline gboolean answer_device_position(GstBaseSink* sink, GstQuery* query) {
  GstAudioBaseSink* base = GST_AUDIO_BASE_SINK(sink);
  GstClock* clock = gst_element_provide_clock(GST_ELEMENT(sink));
  if (clock == NULL) return FALSE;
  const GstClockTime position = gst_audio_clock_get_time(GST_AUDIO_CLOCK(clock));
  gst_object_unref(clock);
  if (!GST_CLOCK_TIME_IS_VALID(position)) return FALSE;
  GST_OBJECT_LOCK(sink);
  const guint64 next_sample = base->next_sample;
  GstAudioRingBuffer* rb =
      base->ringbuffer ? GST_AUDIO_RING_BUFFER(gst_object_ref(base->ringbuffer)) : NULL;
  GST_OBJECT_UNLOCK(sink);
  GstClockTime queue = GST_CLOCK_TIME_NONE;
  if (rb != NULL && gst_audio_ring_buffer_is_acquired(rb) && rb->spec.info.rate > 0)
    queue = gst_util_uint64_scale_int(gst_audio_ring_buffer_delay(rb), GST_SECOND,
                                      rb->spec.info.rate);
  if (rb) gst_object_unref(rb);
  if (next_sample == G_MAXUINT64) return FALSE;
  syncwave_device_position_query_set(query, position, next_sample, queue);
  return TRUE;
}

}  // namespace syncwave_test
