/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Creates the GstClock for a clock spec. See syncwave-clock.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/net/net.h>

#include "syncwave-clock.h"
#include "syncwave-net-clock.h"

GST_DEBUG_CATEGORY_STATIC(syncwave_clock_debug);
#define GST_CAT_DEFAULT syncwave_clock_debug

namespace {

void ensure_debug(void) {
  static gsize once = 0;
  if (g_once_init_enter(&once)) {
    GST_DEBUG_CATEGORY_INIT(syncwave_clock_debug, "syncwaveclock", 0, "SyncWave shared clock");
    g_once_init_leave(&once, 1);
  }
}

}  // namespace

/* An epoch-shifting clock: reads an inner clock minus a constant. A GstSystemClock
 * subclass, as GstNetClientClock is, so that waits work: the system clock waits for
 * the difference between the entry time and get_time(), which goes through
 * get_internal_time() below. */
#define SYNCWAVE_TYPE_SHIFTED_CLOCK (syncwave_shifted_clock_get_type())
G_DECLARE_FINAL_TYPE(SyncWaveShiftedClock, syncwave_shifted_clock, SYNCWAVE, SHIFTED_CLOCK,
                     GstSystemClock);

struct _SyncWaveShiftedClock {
  GstSystemClock parent;
  GstClock* inner;
  GstClockTime shift;
};

G_DEFINE_TYPE(SyncWaveShiftedClock, syncwave_shifted_clock, GST_TYPE_SYSTEM_CLOCK);

static GstClockTime syncwave_shifted_clock_get_internal_time(GstClock* clock) {
  SyncWaveShiftedClock* self = SYNCWAVE_SHIFTED_CLOCK(clock);
  GstClockTime t = gst_clock_get_time(self->inner);
  if (!GST_CLOCK_TIME_IS_VALID(t) || t < self->shift) return 0;
  return t - self->shift;
}

static void syncwave_shifted_clock_finalize(GObject* object) {
  SyncWaveShiftedClock* self = SYNCWAVE_SHIFTED_CLOCK(object);
  gst_clear_object(&self->inner);
  G_OBJECT_CLASS(syncwave_shifted_clock_parent_class)->finalize(object);
}

static void syncwave_shifted_clock_class_init(SyncWaveShiftedClockClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = syncwave_shifted_clock_finalize;
  GST_CLOCK_CLASS(klass)->get_internal_time = syncwave_shifted_clock_get_internal_time;
}

static void syncwave_shifted_clock_init(SyncWaveShiftedClock* self) {
  self->inner = NULL;
  self->shift = 0;
}

/* Mirrors the inner clock's synced state so that wait_for_sync works on the wrapper. */
static void on_inner_synced(GstClock* inner, gboolean synced, gpointer user_data) {
  (void)inner;
  GstClock* outer = GST_CLOCK(user_data);
  gst_clock_set_synced(outer, synced);
}

static GstClock* shifted_clock_new(const gchar* name, GstClock* inner, GstClockTime shift) {
  SyncWaveShiftedClock* self = SYNCWAVE_SHIFTED_CLOCK(g_object_new(
      SYNCWAVE_TYPE_SHIFTED_CLOCK, "name", name, "clock-type", GST_CLOCK_TYPE_REALTIME, NULL));
  self->inner = inner; /* takes the reference */
  self->shift = shift;
  if (GST_OBJECT_FLAG_IS_SET(inner, GST_CLOCK_FLAG_NEEDS_STARTUP_SYNC)) {
    GST_OBJECT_FLAG_SET(self, GST_CLOCK_FLAG_NEEDS_STARTUP_SYNC);
    g_signal_connect_object(inner, "synced", G_CALLBACK(on_inner_synced), self, (GConnectFlags)0);
    if (gst_clock_is_synced(inner)) gst_clock_set_synced(GST_CLOCK(self), TRUE);
  }
  gst_object_ref_sink(self);
  return GST_CLOCK(self);
}

GstClock* syncwave_clock_new_system(void) {
  ensure_debug();
  GstClock* clock = GST_CLOCK(g_object_new(GST_TYPE_SYSTEM_CLOCK, "name", "syncwave-system-clock",
                                           "clock-type", GST_CLOCK_TYPE_REALTIME, NULL));
  gst_object_ref_sink(clock);
  return clock;
}

GstClock* syncwave_clock_new(const syncwave::ClockSpec& spec, const gchar* sender_host,
                             GError** error, const guint8* clock_key) {
  ensure_debug();
  switch (spec.kind) {
    case syncwave::ClockKind::kSystem:
      return syncwave_clock_new_system();
    case syncwave::ClockKind::kAuto:
    case syncwave::ClockKind::kNet: {
      const gchar* host = spec.kind == syncwave::ClockKind::kAuto ? sender_host : spec.host.c_str();
      gint port =
          spec.kind == syncwave::ClockKind::kAuto ? syncwave::kDefaultNetClockPort : spec.port;
      if (host == NULL || *host == '\0') {
        g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
                    "clock auto: the sender's address is not known yet");
        return NULL;
      }
      GST_INFO("net client clock to %s:%d", host, port);
      GError* err = NULL;
      GstClock* clock =
          syncwave_net_clock_new_secure("syncwave-net-clock", host, port, clock_key, &err);
      if (clock == NULL) {
        g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
                    "could not create a network clock for %s:%d: %s", host, port,
                    err ? err->message : "unknown error");
        g_clear_error(&err);
      }
      return clock;
    }
    case syncwave::ClockKind::kNtp: {
      GST_INFO("NTP clock to %s:%u", spec.host.c_str(), spec.port);
      GstClock* ntp = gst_ntp_clock_new("syncwave-ntp-inner", spec.host.c_str(), spec.port, 0);
      if (ntp == NULL) {
        g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
                    "could not create an NTP clock for %s:%u", spec.host.c_str(), spec.port);
        return NULL;
      }
      return shifted_clock_new("syncwave-ntp-clock", ntp, SYNCWAVE_NTP_UNIX_OFFSET_S * GST_SECOND);
    }
    case syncwave::ClockKind::kPtp: {
      if (!gst_ptp_is_initialized() && !gst_ptp_init(GST_PTP_CLOCK_ID_NONE, NULL)) {
        g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ_WRITE,
                    "PTP is not available: gst_ptp_init failed (the gst-ptp-helper needs "
                    "CAP_NET_BIND_SERVICE or setuid root to bind ports 319/320)");
        return NULL;
      }
      GstClock* ptp = gst_ptp_clock_new("syncwave-ptp-inner", spec.ptp_domain);
      if (ptp == NULL) {
        g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
                    "could not create a PTP clock for domain %d", spec.ptp_domain);
        return NULL;
      }
      return shifted_clock_new("syncwave-ptp-clock", ptp,
                               (GstClockTime)SYNCWAVE_TAI_UTC_OFFSET_S * GST_SECOND);
    }
  }
  g_set_error(error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED, "unknown clock kind");
  return NULL;
}

gboolean syncwave_clock_wait_synced(GstClock* clock, GstClockTime timeout) {
  if (!GST_OBJECT_FLAG_IS_SET(clock, GST_CLOCK_FLAG_NEEDS_STARTUP_SYNC)) return TRUE;
  return gst_clock_wait_for_sync(clock, timeout);
}
