// SPDX-License-Identifier: LGPL-2.1-or-later
#include "syncwave-lost-event.h"

GstEvent *
syncwave_lost_event_new (guint64 timestamp_us, GstClockTime duration,
    GstClockTime pts)
{
  GstStructure *s = gst_structure_new (SYNCWAVE_LOST_EVENT_NAME,
      "timestamp-us", G_TYPE_UINT64, timestamp_us,
      "duration", G_TYPE_UINT64, (guint64) duration,
      "pts", G_TYPE_UINT64, (guint64) pts, NULL);
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM, s);
}

gboolean
syncwave_lost_event_parse (GstEvent * event, guint64 * timestamp_us,
    GstClockTime * duration, GstClockTime * pts)
{
  if (GST_EVENT_TYPE (event) != GST_EVENT_CUSTOM_DOWNSTREAM)
    return FALSE;
  const GstStructure *s = gst_event_get_structure (event);
  if (s == NULL || !gst_structure_has_name (s, SYNCWAVE_LOST_EVENT_NAME))
    return FALSE;
  guint64 ts = 0, dur = 0, p = GST_CLOCK_TIME_NONE;
  if (!gst_structure_get_uint64 (s, "timestamp-us", &ts) ||
      !gst_structure_get_uint64 (s, "duration", &dur))
    return FALSE;
  gst_structure_get_uint64 (s, "pts", &p);
  if (timestamp_us)
    *timestamp_us = ts;
  if (duration)
    *duration = dur;
  if (pts)
    *pts = p;
  return TRUE;
}
