/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The shared clock a SyncWave receiver runs its pipeline on, made from a clock spec
 * (core/clock_spec.h). Every clock returned here reads the sender's timebase in
 * nanoseconds since the Unix epoch (UTC), so that a packet stamped T µs is due at
 * clock time T*1000 + latency on every receiver alike:
 *
 *   system          REALTIME GstSystemClock (the host is synchronized by NTP/PTP)
 *   net://H:P       SyncWaveNetClock (syncwave-net-clock.h) to the sender's
 *                   GstNetTimeProvider (the same protocol as GstNetClientClock)
 *   ptp://D         GstPtpClock, shifted from TAI to UTC
 *   ntp://H:P       GstNtpClock, shifted from the NTP epoch (1900) to the Unix epoch
 *   auto            net client clock to port 5556 of the sender's address; the caller
 *                   (syncwavesink) falls back to system when it does not sync in time
 */
#pragma once

#include <gst/gst.h>

#include "clock_spec.h"

G_BEGIN_DECLS

/* Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
#define SYNCWAVE_NTP_UNIX_OFFSET_S G_GUINT64_CONSTANT(2208988800)
/* TAI - UTC since 2017-01-01. PTP clocks count TAI. */
#define SYNCWAVE_TAI_UTC_OFFSET_S 37

/* A REALTIME system clock (a new object, not the MONOTONIC singleton). */
GstClock* syncwave_clock_new_system(void);

G_END_DECLS

/* Creates the clock that @spec names. For kAuto, @sender_host (the address the
 * stream comes from) must be set and a net client clock to sender_host:5556 is
 * returned. Returns NULL with @error set when the clock cannot be made (no host for
 * auto, PTP not available without privileges, ...). Does not wait for sync.
 * @clock_key (32 bytes, a secure stream's clock subkey): net and auto clocks speak the
 * sealed exchange of core/secure_clock.h; other clocks ignore it. */
GstClock* syncwave_clock_new(const syncwave::ClockSpec& spec, const gchar* sender_host,
                             GError** error, const guint8* clock_key = NULL);

/* Waits up to @timeout for @clock to be synchronized (returns TRUE at once for
 * clocks that need no startup sync, such as the system clock). */
gboolean syncwave_clock_wait_synced(GstClock* clock, GstClockTime timeout);
