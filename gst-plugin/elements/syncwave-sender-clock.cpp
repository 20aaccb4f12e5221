// SPDX-License-Identifier: LGPL-2.1-or-later
#include "syncwave-sender-clock.h"

#include <atomic>

struct _SyncWaveSenderClock {
  GstClock parent;
  GstClock* master;
  std::atomic<gint64>* offset;
};

G_DEFINE_TYPE(SyncWaveSenderClock, syncwave_sender_clock, GST_TYPE_CLOCK);

static GstClockTime syncwave_sender_clock_get_internal_time(GstClock* clock) {
  SyncWaveSenderClock* self = SYNCWAVE_SENDER_CLOCK(clock);
  if (self->master == NULL) return GST_CLOCK_TIME_NONE;
  GstClockTime t = gst_clock_get_time(self->master);
  if (!GST_CLOCK_TIME_IS_VALID(t)) return t;
  gint64 v = (gint64)t + self->offset->load();
  return v < 0 ? 0 : (GstClockTime)v;
}

static GstClockTime syncwave_sender_clock_get_resolution(GstClock* clock) {
  SyncWaveSenderClock* self = SYNCWAVE_SENDER_CLOCK(clock);
  return self->master ? gst_clock_get_resolution(self->master) : 1;
}

static void syncwave_sender_clock_finalize(GObject* object) {
  SyncWaveSenderClock* self = SYNCWAVE_SENDER_CLOCK(object);
  gst_clear_object(&self->master);
  delete self->offset;
  G_OBJECT_CLASS(syncwave_sender_clock_parent_class)->finalize(object);
}

static void syncwave_sender_clock_class_init(SyncWaveSenderClockClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstClockClass* clock_class = GST_CLOCK_CLASS(klass);
  gobject_class->finalize = syncwave_sender_clock_finalize;
  clock_class->get_internal_time = GST_DEBUG_FUNCPTR(syncwave_sender_clock_get_internal_time);
  clock_class->get_resolution = GST_DEBUG_FUNCPTR(syncwave_sender_clock_get_resolution);
}

static void syncwave_sender_clock_init(SyncWaveSenderClock* self) {
  self->master = NULL;
  self->offset = new std::atomic<gint64>(0);
}

GstClock* syncwave_sender_clock_new(GstClock* master, GstClockTimeDiff offset_ns) {
  g_return_val_if_fail(GST_IS_CLOCK(master), NULL);
  SyncWaveSenderClock* self = SYNCWAVE_SENDER_CLOCK(
      g_object_new(SYNCWAVE_TYPE_SENDER_CLOCK, "name", "SyncWaveSenderClock", NULL));
  self->master = GST_CLOCK(gst_object_ref(master));
  self->offset->store(offset_ns);
  gst_object_ref_sink(self);
  return GST_CLOCK(self);
}

void syncwave_sender_clock_set_offset(SyncWaveSenderClock* clock, GstClockTimeDiff offset_ns) {
  g_return_if_fail(SYNCWAVE_IS_SENDER_CLOCK(clock));
  clock->offset->store(offset_ns);
}

GstClockTimeDiff syncwave_clock_wall_offset(GstClock* clock) {
  if (GST_IS_SYSTEM_CLOCK(clock)) {
    GstClockType type = GST_CLOCK_TYPE_MONOTONIC;
    g_object_get(clock, "clock-type", &type, NULL);
    if (type == GST_CLOCK_TYPE_REALTIME) return 0;
  }
  /* Bracket the realtime read between two clock reads and take the middle. */
  GstClockTime t1 = gst_clock_get_time(clock);
  gint64 real_us = g_get_real_time();
  GstClockTime t2 = gst_clock_get_time(clock);
  return real_us * 1000 - (GstClockTimeDiff)(t1 + (t2 - t1) / 2);
}
