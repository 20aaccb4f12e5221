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

/* Estimator statistics: exchanges, dropped, restarts, min-rtt-us, residual-us,
 * drift-ppm, synced. A new structure. */
GstStructure* syncwave_net_clock_get_stats(SyncWaveNetClock* clock);

G_END_DECLS
