/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SyncWave's network client clock: reads a GstNetTimeProvider's clock (the sender's
 * `time-provider-port`), like GstNetClientClock, with core/clock_sync.h's estimator.
 * See syncwave-net-clock.cpp. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define SYNCWAVE_TYPE_NET_CLOCK (syncwave_net_clock_get_type())
G_DECLARE_FINAL_TYPE(SyncWaveNetClock, syncwave_net_clock, SYNCWAVE, NET_CLOCK, GstSystemClock);

/* A clock that follows the GstNetTimeProvider at @host:@port. It needs startup sync
 * (GST_CLOCK_FLAG_NEEDS_STARTUP_SYNC): gst_clock_wait_for_sync() returns once the
 * first exchange was answered. Returns NULL (with @error) when @host is not an
 * address or the socket cannot be made. */
GstClock* syncwave_net_clock_new(const gchar* name, const gchar* host, gint port, GError** error);

/* The same with the sealed exchange of core/secure_clock.h: @clock_key (32 bytes, a
 * secure stream's clock subkey; NULL: plain) authenticates every answer. NULL with
 * @error on a build without secure mode. */
GstClock* syncwave_net_clock_new_secure(const gchar* name, const gchar* host, gint port,
                                        const guint8* clock_key, GError** error);

/* Estimator statistics: exchanges, dropped, restarts, min-rtt-us, residual-us,
 * drift-ppm, synced, secure; with a clock key also rejected and rejected-<reason>
 * (core/secure_clock.h). A new structure. */
GstStructure* syncwave_net_clock_get_stats(SyncWaveNetClock* clock);

G_END_DECLS
