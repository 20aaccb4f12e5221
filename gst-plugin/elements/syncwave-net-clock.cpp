/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SyncWave's network client clock.
 *
 * Speaks the GstNetTimeProvider protocol (a 16-byte GstNetTimePacket each way), so
 * any sender's `time-provider-port` and any GStreamer time provider serve it. The
 * clock is a GstSystemClock (monotonic) whose calibration is set from
 * syncwave::ClockSync (core/clock_sync.h) after every answered exchange: the remote
 * time is offset + rate from the exchanges with the shortest round trips.
 *
 * It polls every 20 ms for the first second (a receiver joining a stream is in
 * sync within it), every 100 ms up to ~10 s, then every 500 ms: on a LAN that is
 * 32 bytes a second per receiver. GstNetClientClock polls once a second once its
 * regression looks good; its estimate moved by up to 1 ms over the first seconds
 * on a loopback link, which two receivers then heard as a 1 ms offset.
 *
 * With a clock key (syncwave_net_clock_new_secure: a secure stream's clock subkey) it
 * speaks the sealed exchange of core/secure_clock.h instead: only answers that
 * authenticate and echo a request it sent in the last second, once, reach ClockSync; a
 * forged, replayed or changed one is counted by reason (stats) and never moves it. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gio/gio.h>
#include <gst/net/net.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "clock_sync.h"
#include "syncwave-net-clock.h"
#if SYNCWAVE_HAVE_SECURE
#include <sodium.h>

#include "secure_clock.h"
#endif

GST_DEBUG_CATEGORY_STATIC(syncwave_net_clock_debug);
#define GST_CAT_DEFAULT syncwave_net_clock_debug

struct SyncWaveNetClockPrivate {
  std::mutex lock;
  syncwave::ClockSync sync;
#if SYNCWAVE_HAVE_SECURE
  /* Secure mode: set before the thread starts; used by it, counters read under lock. */
  std::unique_ptr<syncwave::secure::ClockClient> secure;
#endif
};

struct _SyncWaveNetClock {
  GstSystemClock parent;
  GSocket* socket;
  GSocketAddress* remote;
  GCancellable* cancel;
  GThread* thread;
  SyncWaveNetClockPrivate* priv;
};

G_DEFINE_TYPE(SyncWaveNetClock, syncwave_net_clock, GST_TYPE_SYSTEM_CLOCK);

/* Microseconds until the next exchange, after `n` exchanges. */
static gint64 poll_interval_us(guint64 n) {
  if (n < 50) return 20000;
  if (n < 150) return 100000;
  return 500000;
}

static void on_exchange(SyncWaveNetClock* self, GstClockTime t1, GstClockTime remote,
                        GstClockTime t2) {
  GstClock* clock = GST_CLOCK(self);
  GstClockTime internal = 0, external = 0, num = 1, den = 1;
  {
    std::lock_guard<std::mutex> lk(self->priv->lock);
    syncwave::ClockSync& sync = self->priv->sync;
    if (!sync.add((int64_t)t1, (int64_t)remote, (int64_t)t2) || !sync.synced()) return;
    internal = t2;
    const int64_t ext = sync.remote_at((int64_t)t2);
    if (ext < 0) return;
    external = (GstClockTime)ext;
    den = GST_SECOND;
    num = (GstClockTime)((gint64)GST_SECOND + std::llround(sync.drift_ppm() * 1000.0));
    GST_LOG_OBJECT(
        self,
        "rtt %" G_GINT64_FORMAT " ns (min %" G_GINT64_FORMAT "), drift %.2f ppm, residual %.1f us",
        (gint64)(t2 - t1), sync.min_rtt_ns(), sync.drift_ppm(), sync.residual_ns() / 1000.0);
  }
  gst_clock_set_calibration(clock, internal, external, num, den);
  if (!gst_clock_is_synced(clock)) {
    GST_INFO_OBJECT(self, "synced: remote %" GST_TIME_FORMAT, GST_TIME_ARGS(external));
    gst_clock_set_synced(clock, TRUE);
  }
}

#if SYNCWAVE_HAVE_SECURE
/* The sealed exchange: the same schedule, requests and answers of core/secure_clock.h. */
static gpointer poll_secure(SyncWaveNetClock* self) {
  GstClock* clock = GST_CLOCK(self);
  SyncWaveNetClockPrivate* priv = self->priv;
  guint64 n = 0;
  guint8 buf[256];
  while (!g_cancellable_is_cancelled(self->cancel)) {
    const GstClockTime t1 = gst_clock_get_internal_time(clock);
    std::vector<uint8_t> req;
    {
      std::lock_guard<std::mutex> lk(priv->lock);
      req = priv->secure->request((uint64_t)t1);
    }
    GError* err = NULL;
    if (!req.empty() && g_socket_send_to(self->socket, self->remote, (const gchar*)req.data(),
                                         req.size(), NULL, &err) < 0) {
      GST_DEBUG_OBJECT(self, "send failed: %s", err ? err->message : "?");
      g_clear_error(&err);
    }
    const gint64 deadline = g_get_monotonic_time() + poll_interval_us(n++);
    for (;;) {
      const gint64 left = deadline - g_get_monotonic_time();
      if (left <= 0 ||
          !g_socket_condition_timed_wait(self->socket, G_IO_IN, left, self->cancel, NULL))
        break;
      const gssize got = g_socket_receive_from(self->socket, NULL, (gchar*)buf, sizeof buf, NULL, &err);
      const GstClockTime t2 = gst_clock_get_internal_time(clock);
      if (got < 0) {
        g_clear_error(&err);
        continue;
      }
      uint64_t echo_t1 = 0, remote = 0;
      syncwave::secure::ClockReject r;
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        r = priv->secure->open_answer(buf, (size_t)got, (int64_t)t2, &echo_t1, &remote);
      }
      if (r != syncwave::secure::ClockReject::kNone) {
        GST_LOG_OBJECT(self, "answer refused: %s", syncwave::secure::clock_reject_name(r));
        continue;
      }
      on_exchange(self, (GstClockTime)echo_t1, (GstClockTime)remote, t2);
    }
  }
  return NULL;
}
#endif

static gpointer poll_thread(gpointer data) {
  SyncWaveNetClock* self = SYNCWAVE_NET_CLOCK(data);
  GstClock* clock = GST_CLOCK(self);
  guint64 n = 0;
#if SYNCWAVE_HAVE_SECURE
  if (self->priv->secure) return poll_secure(self);
#endif
  while (!g_cancellable_is_cancelled(self->cancel)) {
    const GstClockTime t1 = gst_clock_get_internal_time(clock);
    GstNetTimePacket* packet = gst_net_time_packet_new(NULL);
    packet->local_time = t1;
    GError* err = NULL;
    if (!gst_net_time_packet_send(packet, self->socket, self->remote, &err)) {
      GST_DEBUG_OBJECT(self, "send failed: %s", err ? err->message : "?");
      g_clear_error(&err);
    }
    gst_net_time_packet_free(packet);
    const gint64 deadline = g_get_monotonic_time() + poll_interval_us(n++);
    for (;;) {
      const gint64 left = deadline - g_get_monotonic_time();
      if (left <= 0 ||
          !g_socket_condition_timed_wait(self->socket, G_IO_IN, left, self->cancel, NULL))
        break;
      GstNetTimePacket* reply = gst_net_time_packet_receive(self->socket, NULL, &err);
      const GstClockTime t2 = gst_clock_get_internal_time(clock);
      if (reply == NULL) {
        g_clear_error(&err);
        continue;
      }
      /* Only the answer to this request: a late answer to an earlier one has an
       * unknown round trip. */
      if (reply->local_time == t1 && GST_CLOCK_TIME_IS_VALID(reply->remote_time))
        on_exchange(self, t1, reply->remote_time, t2);
      gst_net_time_packet_free(reply);
    }
  }
  return NULL;
}

static void syncwave_net_clock_dispose(GObject* object) {
  SyncWaveNetClock* self = SYNCWAVE_NET_CLOCK(object);
  if (self->thread != NULL) {
    g_cancellable_cancel(self->cancel);
    g_thread_join(self->thread);
    self->thread = NULL;
  }
  g_clear_object(&self->socket);
  g_clear_object(&self->remote);
  g_clear_object(&self->cancel);
  G_OBJECT_CLASS(syncwave_net_clock_parent_class)->dispose(object);
}

static void syncwave_net_clock_finalize(GObject* object) {
  delete SYNCWAVE_NET_CLOCK(object)->priv;
  G_OBJECT_CLASS(syncwave_net_clock_parent_class)->finalize(object);
}

static void syncwave_net_clock_class_init(SyncWaveNetClockClass* klass) {
  G_OBJECT_CLASS(klass)->dispose = syncwave_net_clock_dispose;
  G_OBJECT_CLASS(klass)->finalize = syncwave_net_clock_finalize;
  GST_DEBUG_CATEGORY_INIT(syncwave_net_clock_debug, "syncwavenetclock", 0,
                          "SyncWave network client clock");
}

static void syncwave_net_clock_init(SyncWaveNetClock* self) {
  self->priv = new SyncWaveNetClockPrivate();
  self->cancel = g_cancellable_new();
  GST_OBJECT_FLAG_SET(self, GST_CLOCK_FLAG_NEEDS_STARTUP_SYNC);
}

GstClock* syncwave_net_clock_new(const gchar* name, const gchar* host, gint port, GError** error) {
  return syncwave_net_clock_new_secure(name, host, port, NULL, error);
}

GstClock* syncwave_net_clock_new_secure(const gchar* name, const gchar* host, gint port,
                                        const guint8* clock_key, GError** error) {
#if !SYNCWAVE_HAVE_SECURE
  if (clock_key != NULL) {
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
                "this build has no secure mode: the clock exchange cannot be authenticated");
    return NULL;
  }
#endif
  GInetAddress* addr = g_inet_address_new_from_string(host);
  if (addr == NULL) {
    GResolver* resolver = g_resolver_get_default();
    GList* list = g_resolver_lookup_by_name(resolver, host, NULL, error);
    g_object_unref(resolver);
    if (list == NULL) return NULL;
    addr = G_INET_ADDRESS(g_object_ref(list->data));
    g_resolver_free_addresses(list);
  }
  SyncWaveNetClock* self = SYNCWAVE_NET_CLOCK(g_object_new(
      SYNCWAVE_TYPE_NET_CLOCK, "name", name, "clock-type", GST_CLOCK_TYPE_MONOTONIC, NULL));
  gst_object_ref_sink(self);
  self->remote = g_inet_socket_address_new(addr, (guint16)port);
  self->socket = g_socket_new(g_inet_address_get_family(addr), G_SOCKET_TYPE_DATAGRAM,
                              G_SOCKET_PROTOCOL_UDP, error);
  g_object_unref(addr);
  if (self->socket == NULL) {
    gst_object_unref(self);
    return NULL;
  }
#if SYNCWAVE_HAVE_SECURE
  if (clock_key != NULL) {
    syncwave::secure::Key key;
    std::copy(clock_key, clock_key + key.size(), key.begin());
    self->priv->secure = std::make_unique<syncwave::secure::ClockClient>(key);
    sodium_memzero(key.data(), key.size());
  }
#endif
  self->thread = g_thread_try_new("syncwave-netclock", poll_thread, self, error);
  if (self->thread == NULL) {
    gst_object_unref(self);
    return NULL;
  }
  return GST_CLOCK(self);
}

GstStructure* syncwave_net_clock_get_stats(SyncWaveNetClock* self) {
  std::lock_guard<std::mutex> lk(self->priv->lock);
  const syncwave::ClockSync& s = self->priv->sync;
  GstStructure* st = gst_structure_new_empty("syncwave-net-clock-stats");
  gst_structure_set(st, "exchanges", G_TYPE_UINT64, (guint64)s.exchanges(), NULL);
  gst_structure_set(st, "dropped", G_TYPE_UINT64, (guint64)s.dropped(), NULL);
  gst_structure_set(st, "restarts", G_TYPE_UINT64, (guint64)s.restarts(), NULL);
  gst_structure_set(st, "min-rtt-us", G_TYPE_DOUBLE, s.min_rtt_ns() / 1000.0, NULL);
  gst_structure_set(st, "residual-us", G_TYPE_DOUBLE, s.residual_ns() / 1000.0, NULL);
  gst_structure_set(st, "drift-ppm", G_TYPE_DOUBLE, s.drift_ppm(), NULL);
  gst_structure_set(st, "synced", G_TYPE_BOOLEAN, (gboolean)s.synced(), NULL);
  gboolean secure = FALSE;
#if SYNCWAVE_HAVE_SECURE
  if (const syncwave::secure::ClockClient* c = self->priv->secure.get()) {
    secure = TRUE;
    gst_structure_set(st, "rejected", G_TYPE_UINT64, (guint64)c->rejected_total(), NULL);
    for (size_t i = 1; i < static_cast<size_t>(syncwave::secure::ClockReject::kCount); i++) {
      const auto r = static_cast<syncwave::secure::ClockReject>(i);
      const std::string name = std::string("rejected-") + syncwave::secure::clock_reject_name(r);
      gst_structure_set(st, name.c_str(), G_TYPE_UINT64, (guint64)c->rejected(r), NULL);
    }
  }
#endif
  gst_structure_set(st, "secure", G_TYPE_BOOLEAN, secure, NULL);
  return st;
}
