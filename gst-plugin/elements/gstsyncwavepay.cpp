/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-syncwavepay
 * @title: syncwavepay
 * @short_description: SyncWave payloader: audio to SYNC datagrams
 *
 * See the comment below and docs/ for what it does and its properties.
 *
 * ## Example launch lines
 * Sends what Linux plays (a sink's monitor), raw:
 * |[
 * gst-launch-1.0 pulsesrc device=SINK.monitor ! audioconvert ! audio/x-raw,format=F32LE,rate=48000,channels=2 ! syncwavepay ! udpsink host=192.168.1.20 port=5555
 * ]|
 * Opus, with the clock served to receivers:
 * |[
 * gst-launch-1.0 wasapi2src loopback=true ! audioconvert ! audioresample ! opusenc ! syncwavepay time-provider-port=5556 ! udpsink host=192.168.1.20 port=5555
 * ]|
 */
/* syncwavepay: cuts F32LE interleaved audio into whole-frame SYNC packets no larger
 * than `mtu` bytes per datagram, or wraps each Opus packet, and sends the stream
 * header `header-repeat` times before the first packet and after every format change,
 * then at least once per `header-period` ms of audio (and once every `header-interval`
 * packets). Each output buffer is one datagram, so `syncwavepay ! udpsink` and
 * `! multiudpsink` just work.
 *
 * Timestamps (µs since the Unix epoch) come from the buffer's capture time, never from
 * the moment of sending. The capture time is known on the pipeline clock (running time
 * + base time); core/wall_clock_map.h maps it to wall time:
 *   wall ns = line(running time + base time)
 * where the line is fitted over the last 10 s of readings (pipeline clock, realtime
 * clock, pipeline clock) taken once per input buffer, and re-anchored when the two
 * clocks' relation jumps. This is right for every pipeline clock: an audio source's or
 * sink's clock (pulsesrc's stands still until capture starts, then drifts with the
 * card), the monotonic system clock, a net client clock; the realtime system clock maps
 * as the identity. A live source's stamps are then checked against the wall clock's
 * now (core LiveStampCheck): pulsesrc, when it provides the pipeline clock, timestamps
 * its first second of buffers half a second behind its own clock, and such stamps are
 * moved to the time they arrived. With `time-provider-port` set, a GstNetTimeProvider
 * serves the wall clock, i.e. the timestamps' timebase in nanoseconds; with a `secret`
 * a sealed time provider does instead (syncwave-secure.h, core/secure_clock.h), which
 * answers only receivers with the same secret.
 *
 * Live sources are not held: when upstream answers the latency query as live, output
 * buffers carry no PTS, so a downstream sink with sync=true (udpsink's default) sends
 * each datagram at once instead of waiting until running time + pipeline latency
 * (source buffer + encoder look-ahead, 40-60 ms). The capture time is in the datagram.
 * A non-live source (a file) keeps its PTS, so `udpsink sync=true` paces it in real
 * time.
 *
 * Example: gst-launch-1.0 audiotestsrc is-live=true ! audio/x-raw,format=F32LE,rate=48000,
 *   channels=2 ! syncwavepay ! udpsink host=127.0.0.1 port=5555
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/audio/audio.h>
#include <gst/net/gstnettimeprovider.h>

#include <algorithm>
#include <mutex>
#include <string>

#include "gstsyncwavepay.h"
#include "syncwave-secure.h"
#include "syncwave-sender-clock.h"
#include "wall_clock_map.h"
#include "wire_format.h"

namespace wire = syncwave::wire;

GST_DEBUG_CATEGORY_STATIC(gst_syncwave_pay_debug);
#define GST_CAT_DEFAULT gst_syncwave_pay_debug

#define DEFAULT_MTU 1400
#define DEFAULT_HEADER_INTERVAL wire::kDefaultHeaderInterval
#define DEFAULT_HEADER_PERIOD 500
#define DEFAULT_HEADER_REPEAT wire::kDefaultHeaderRepeat
#define DEFAULT_TIME_PROVIDER_PORT 0
#define DEFAULT_TIME_PROVIDER_ADDRESS "0.0.0.0"
#define MIN_MTU (wire::kAudioHeaderSize + wire::kBytesPerSample)

enum {
  PROP_0,
  PROP_MTU,
  PROP_HEADER_INTERVAL,
  PROP_HEADER_PERIOD,
  PROP_HEADER_REPEAT,
  PROP_TIME_PROVIDER_PORT,
  PROP_TIME_PROVIDER_ADDRESS,
  PROP_WALL_CLOCK,
  PROP_STATS,
  PROP_SECRET,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format=(string)F32LE, layout=(string)interleaved, "
                    "rate=(int)[1, 384000], channels=(int)[1, 64]; "
                    "audio/x-opus, channel-mapping-family=(int)0, channels=(int)[1, 2]"));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-syncwave"));

enum class Liveness { kUnknown, kLive, kNotLive };

struct SyncWavePayPrivate {
  ~SyncWavePayPrivate() {
    delete secure_provider;
    std::fill(clock_key.begin(), clock_key.end(), 0);
    gst_clear_object(&provider);
    gst_clear_object(&sender_clock);
    gst_clear_object(&map_clock);
    gst_clear_object(&wall_clock);
    gst_clear_object(&realtime_clock);
  }

  /* Properties and statistics, under lock. */
  std::mutex lock;
  guint mtu = DEFAULT_MTU;
  guint header_interval = DEFAULT_HEADER_INTERVAL;
  guint header_period_ms = DEFAULT_HEADER_PERIOD;
  guint header_repeat = DEFAULT_HEADER_REPEAT;
  gint time_provider_port = DEFAULT_TIME_PROVIDER_PORT;
  std::string time_provider_address = DEFAULT_TIME_PROVIDER_ADDRESS;
  GstClock* wall_clock = nullptr; /* NULL: realtime_clock */
  guint64 packets = 0;
  guint64 headers = 0;
  guint64 bytes = 0;
  guint64 dropped = 0;
  guint64 clock_reanchors = 0;   /* copied from map after each buffer */
  guint64 stamp_corrections = 0; /* copied from live_check */
  gint64 stamp_correction_ns = 0;

  /* Streaming thread only. */
  bool have_format = false;
  wire::StreamHeader header;
  guint headers_pending = 0;
  guint packets_since_header = 0;
  GstClockTime audio_since_header = 0;
  GstSegment segment;
  bool warned_no_pts = false;
  gint64 last_drop_warning_us = 0;
  Liveness liveness = Liveness::kUnknown;

  /* Pipeline clock -> wall clock, streaming thread (reset under lock on state changes). */
  syncwave::WallClockMap map;
  syncwave::LiveStampCheck live_check; /* live sources only */
  GstClock* map_clock = nullptr;       /* the clock `map` is for */
  bool no_clock_anchor = false;        /* no clock: the first buffer's running time is "now" */
  GstClockTimeDiff no_clock_offset = 0;
  GstClock* realtime_clock = nullptr; /* set once in init */

  /* Time provider: set on state changes, under lock. */
  GstClock* sender_clock = nullptr;
  GstNetTimeProvider* provider = nullptr;
  /* With a secret the provider speaks the sealed exchange (core/secure_clock.h) instead. */
  syncwave::SecureTimeProvider* secure_provider = nullptr;
  bool have_clock_key = false;
  std::array<guint8, 32> clock_key{};

  /* `secret`: seals every datagram (syncwave-secure.h); its own lock. */
  syncwave::SecureSend secure;
};

struct _GstSyncWavePay {
  GstElement parent;
  GstPad* sinkpad;
  GstPad* srcpad;
  SyncWavePayPrivate* priv;
};

#define gst_syncwave_pay_parent_class parent_class
G_DEFINE_TYPE(GstSyncWavePay, gst_syncwave_pay, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE(syncwavepay, "syncwavepay", GST_RANK_NONE, GST_TYPE_SYNCWAVE_PAY);

/* The clock giving wall time: `wall-clock`, or the realtime system clock. Ref'd. */
static GstClock* gst_syncwave_pay_get_wall_clock(GstSyncWavePay* self) {
  SyncWavePayPrivate* priv = self->priv;
  std::lock_guard<std::mutex> lk(priv->lock);
  return GST_CLOCK(gst_object_ref(priv->wall_clock ? priv->wall_clock : priv->realtime_clock));
}

/* True when `clock` reads wall time itself: no mapping needed. */
static bool clock_is_wall(GstClock* clock, GstClock* wall) {
  if (clock == wall) return true;
  if (!GST_IS_SYSTEM_CLOCK(clock) || !GST_IS_SYSTEM_CLOCK(wall)) return false;
  GstClockType a = GST_CLOCK_TYPE_MONOTONIC, b = GST_CLOCK_TYPE_MONOTONIC;
  g_object_get(clock, "clock-type", &a, NULL);
  g_object_get(wall, "clock-type", &b, NULL);
  return a == GST_CLOCK_TYPE_REALTIME && b == GST_CLOCK_TYPE_REALTIME;
}

/* Capture time on the pipeline clock (running + base) -> wall-clock ns. Takes one
 * reading of both clocks into the map (streaming thread). A live source's stamp of a
 * buffer of `duration` is then checked against the wall clock's now (LiveStampCheck). */
static GstClockTime gst_syncwave_pay_running_to_wall(GstSyncWavePay* self, GstClockTime running,
                                                     GstClockTime duration, bool live) {
  SyncWavePayPrivate* priv = self->priv;
  GstClock* clock = gst_element_get_clock(GST_ELEMENT(self));
  GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
  /* Before PLAYING (a non-live source prerolls its first buffer) the base time is not
   * chosen yet: a clock the element may already have says nothing about running time
   * then, so such a buffer is stamped as if there were no clock. */
  const bool playing = GST_STATE(self) == GST_STATE_PLAYING;
  if (clock == NULL || !GST_CLOCK_TIME_IS_VALID(base) || !playing) {
    /* No clock at all: the first buffer is "now". */
    if (!priv->no_clock_anchor) {
      priv->no_clock_offset = g_get_real_time() * 1000 - (GstClockTimeDiff)running;
      priv->no_clock_anchor = true;
    }
    if (clock) gst_object_unref(clock);
    gint64 v = (gint64)running + priv->no_clock_offset;
    return v < 0 ? 0 : (GstClockTime)v;
  }
  priv->no_clock_anchor = false;

  GstClock* wall = gst_syncwave_pay_get_wall_clock(self);
  const gint64 capture = (gint64)(running + base);
  gint64 v = capture;
  gint64 wall_now = -1;
  bool reanchored = false;
  if (!clock_is_wall(clock, wall)) {
    if (priv->map_clock != clock) {
      /* First buffer, or another pipeline clock: a new relation. */
      priv->map.reset();
      gst_object_replace((GstObject**)&priv->map_clock, GST_OBJECT(clock));
      GST_INFO_OBJECT(self, "mapping %" GST_PTR_FORMAT " to %" GST_PTR_FORMAT, clock, wall);
    }
    const guint64 reanchors = priv->map.stats().reanchors;
    GstClockTime t1 = gst_clock_get_time(clock);
    GstClockTime w = gst_clock_get_time(wall);
    GstClockTime t2 = gst_clock_get_time(clock);
    if (GST_CLOCK_TIME_IS_VALID(t1) && GST_CLOCK_TIME_IS_VALID(w) && GST_CLOCK_TIME_IS_VALID(t2))
      priv->map.add((gint64)t1, (gint64)w, (gint64)t2);
    wall_now = GST_CLOCK_TIME_IS_VALID(w) ? (gint64)w : -1;
    reanchored = priv->map.stats().reanchors != reanchors;
    if (reanchored)
      GST_INFO_OBJECT(self,
                      "pipeline clock vs wall clock jumped: re-anchored (%" G_GINT64_FORMAT " ns)",
                      priv->map.mapping().offset_ns);
    v = priv->map.to_wall(capture);
    GST_LOG_OBJECT(self,
                   "reading clock %" G_GUINT64_FORMAT " wall %" G_GUINT64_FORMAT
                   " width %" G_GINT64_FORMAT " capture %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT
                   " (wall - capture %" G_GINT64_FORMAT " ns)",
                   t1, w, (gint64)(t2 - t1), capture, v, (gint64)w - v);
  }
  if (live && GST_CLOCK_TIME_IS_VALID(duration)) {
    if (wall_now < 0) wall_now = (gint64)gst_clock_get_time(wall);
    const guint64 corrections = priv->live_check.corrections();
    v = priv->live_check.check(v, (gint64)duration, wall_now, reanchored);
    if (priv->live_check.corrections() != corrections)
      GST_INFO_OBJECT(self,
                      "live source's timestamps are %" G_GINT64_FORMAT
                      " ms off the wall clock: stamps moved by that",
                      priv->live_check.correction_ns() / (gint64)GST_MSECOND);
  }
  gst_object_unref(wall);
  gst_object_unref(clock);
  return v < 0 ? 0 : (GstClockTime)v;
}

static void gst_syncwave_pay_stop_provider(GstSyncWavePay* self) {
  SyncWavePayPrivate* priv = self->priv;
  GstNetTimeProvider* provider;
  syncwave::SecureTimeProvider* secure_provider;
  GstClock* sender;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    provider = priv->provider;
    secure_provider = priv->secure_provider;
    sender = priv->sender_clock;
    priv->provider = nullptr;
    priv->secure_provider = nullptr;
    priv->sender_clock = nullptr;
  }
  delete secure_provider; /* joins its thread: not under our lock */
  if (provider) gst_object_unref(provider);
  if (sender) gst_object_unref(sender);
}

static void gst_syncwave_pay_start_provider(GstSyncWavePay* self) {
  SyncWavePayPrivate* priv = self->priv;
  gint port;
  std::string address;
  bool running, secure;
  std::array<guint8, 32> key{};
  GstClock* clock = gst_element_get_clock(GST_ELEMENT(self));
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    port = priv->time_provider_port;
    address = priv->time_provider_address;
    running = priv->provider != nullptr || priv->secure_provider != nullptr;
    secure = priv->have_clock_key;
    key = priv->clock_key;
  }
  if (port <= 0 || clock == NULL) {
    if (clock) gst_object_unref(clock);
    return;
  }
  if (running) {
    gst_object_unref(clock);
    return;
  }
  /* The stamps are wall-clock times: serve the wall clock. */
  gst_object_unref(clock);
  GstClock* wall = gst_syncwave_pay_get_wall_clock(self);
  GstClock* sender = syncwave_sender_clock_new(wall, 0);
  gst_object_unref(wall);
  if (secure) {
    std::string error;
    syncwave::SecureTimeProvider* sp =
        syncwave::SecureTimeProvider::start(sender, address, port, key, &error);
    std::fill(key.begin(), key.end(), 0);
    if (sp == NULL) {
      GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ,
                          ("Could not serve the sender clock on %s:%d", address.c_str(), port),
                          ("%s (port in use?)", error.c_str()));
      gst_object_unref(sender);
      return;
    }
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->sender_clock = sender;
    priv->secure_provider = sp;
    GST_INFO_OBJECT(self, "serving the sender clock on %s:%d, sealed", address.c_str(), port);
    return;
  }
  GstNetTimeProvider* provider = gst_net_time_provider_new(sender, address.c_str(), port);
  if (provider == NULL) {
    GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ,
                        ("Could not serve the sender clock on %s:%d", address.c_str(), port),
                        ("gst_net_time_provider_new failed (port in use?)"));
    gst_object_unref(sender);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->sender_clock = sender;
    priv->provider = provider;
  }
  GST_INFO_OBJECT(self, "serving the sender clock on %s:%d", address.c_str(), port);
}

static GstBuffer* make_header_buffer(const wire::StreamHeader& header) {
  auto bytes = wire::serialize_header(header);
  return gst_buffer_new_memdup(bytes.data(), bytes.size());
}

/* Adds the headers that are due before the next audio packet to `list`. */
static void gst_syncwave_pay_add_due_headers(GstSyncWavePay* self, GstBufferList* list,
                                             GstClockTime pts, guint64* n_headers,
                                             guint64* n_bytes) {
  SyncWavePayPrivate* priv = self->priv;
  guint interval, period_ms;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    interval = priv->header_interval;
    period_ms = priv->header_period_ms;
  }
  guint n = priv->headers_pending;
  if (n == 0 && interval > 0 && priv->packets_since_header >= interval) n = 1;
  if (n == 0 && period_ms > 0 && priv->audio_since_header >= period_ms * GST_MSECOND) n = 1;
  for (guint i = 0; i < n; i++) {
    GstBuffer* b = make_header_buffer(priv->header);
    GST_BUFFER_PTS(b) = pts;
    gst_buffer_list_add(list, b);
    *n_headers += 1;
    *n_bytes += wire::kHeaderSize;
  }
  if (n > 0) {
    priv->packets_since_header = 0;
    priv->audio_since_header = 0;
  }
  priv->headers_pending = 0;
}
static void gst_syncwave_pay_drop(GstSyncWavePay* self, const char* why, gsize size) {
  SyncWavePayPrivate* priv = self->priv;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->dropped++;
  }
  gint64 now = g_get_monotonic_time();
  if (priv->last_drop_warning_us == 0 || now - priv->last_drop_warning_us > G_USEC_PER_SEC) {
    priv->last_drop_warning_us = now;
    GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("Dropped an input buffer: %s", why),
                        ("buffer of %" G_GSIZE_FORMAT " bytes", size));
  }
}

/* Whether upstream is live (latency query), asked once per stream. A live source's
 * packets go out untimestamped so that sinks do not hold them. */
static bool gst_syncwave_pay_upstream_is_live(GstSyncWavePay* self) {
  SyncWavePayPrivate* priv = self->priv;
  if (priv->liveness == Liveness::kUnknown) {
    GstQuery* q = gst_query_new_latency();
    gboolean live = FALSE;
    GstClockTime min_latency = 0;
    if (gst_pad_peer_query(self->sinkpad, q)) gst_query_parse_latency(q, &live, &min_latency, NULL);
    gst_query_unref(q);
    priv->live_check.reset();
    priv->live_check.set_latency(GST_CLOCK_TIME_IS_VALID(min_latency) ? (gint64)min_latency : 0);
    priv->liveness = live ? Liveness::kLive : Liveness::kNotLive;
    GST_INFO_OBJECT(self, "upstream is %s: %s", live ? "live" : "not live",
                    live ? "packets go out untimestamped, at once"
                         : "packets keep their timestamps (sinks pace them)");
  }
  return priv->liveness == Liveness::kLive;
}

static GstFlowReturn gst_syncwave_pay_chain(GstPad* pad, GstObject* parent, GstBuffer* buf) {
  GstSyncWavePay* self = GST_SYNCWAVE_PAY(parent);
  SyncWavePayPrivate* priv = self->priv;
  (void)pad;

  if (!priv->have_format) {
    gst_buffer_unref(buf);
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (NULL), ("no caps before the first buffer"));
    return GST_FLOW_NOT_NEGOTIATED;
  }

  /* The running time of the buffer's first sample. */
  GstClockTime pts = GST_BUFFER_PTS(buf);
  GstClockTime running = GST_CLOCK_TIME_NONE;
  if (GST_CLOCK_TIME_IS_VALID(pts))
    running = gst_segment_to_running_time(&priv->segment, GST_FORMAT_TIME, pts);
  if (!GST_CLOCK_TIME_IS_VALID(running)) {
    if (!priv->warned_no_pts) {
      priv->warned_no_pts = true;
      GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("Input buffers without timestamps"),
                          ("stamping them from the clock at arrival"));
    }
    GstClock* clock = gst_element_get_clock(GST_ELEMENT(self));
    if (clock) {
      GstClockTime now = gst_clock_get_time(clock);
      GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
      running = now > base ? now - base : 0;
      gst_object_unref(clock);
    } else {
      running = 0;
    }
    pts = gst_segment_position_from_running_time(&priv->segment, GST_FORMAT_TIME, running);
  }

  guint mtu;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    mtu = priv->mtu;
  }
  const bool live = gst_syncwave_pay_upstream_is_live(self);

  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_READ)) {
    gst_buffer_unref(buf);
    GST_ELEMENT_ERROR(self, RESOURCE, READ, (NULL), ("could not map input buffer"));
    return GST_FLOW_ERROR;
  }

  GstBufferList* list = gst_buffer_list_new();
  guint64 n_packets = 0, n_headers = 0, n_bytes = 0;
  const bool discont = GST_BUFFER_IS_DISCONT(buf);
  /* Wall time of the buffer's first sample; packets split from it add their offset. */
  GstClockTime in_duration = GST_BUFFER_DURATION(buf);
  if (priv->header.compression == wire::Compression::kOpus) {
    const uint32_t n = wire::opus_packet_samples_48k(map.data, map.size);
    in_duration = n ? gst_util_uint64_scale(n, GST_SECOND, 48000) : GST_CLOCK_TIME_NONE;
  } else if (!GST_CLOCK_TIME_IS_VALID(in_duration) && priv->header.sample_rate > 0) {
    in_duration = gst_util_uint64_scale(map.size / (wire::kBytesPerSample * priv->header.channels),
                                        GST_SECOND, priv->header.sample_rate);
  }
  const GstClockTime wall0 = gst_syncwave_pay_running_to_wall(self, running, in_duration, live);

  if (priv->header.compression == wire::Compression::kOpus) {
    const uint32_t samples = wire::opus_packet_samples_48k(map.data, map.size);
    if (map.size > wire::kMaxPayloadSize) {
      gst_syncwave_pay_drop(self, "Opus packet larger than 65535 bytes", map.size);
    } else if (samples == 0) {
      gst_syncwave_pay_drop(self, "invalid Opus packet (TOC)", map.size);
    } else {
      gst_syncwave_pay_add_due_headers(self, list, pts, &n_headers, &n_bytes);
      /* An encoder's first packet decodes to its look-ahead (Opus pre-skip, 312
       * samples for libopus) before the audio its timestamp is for; the encoder says
       * so with a clipping meta and a shorter duration. The wire has no pre-skip: stamp
       * the packet with the time of the first sample it decodes to, so that the packets'
       * timestamps and decoded durations form one contiguous timeline. */
      GstClockTime wall = wall0;
      GstAudioClippingMeta* clip = gst_buffer_get_audio_clipping_meta(buf);
      if (clip != NULL && clip->format == GST_FORMAT_DEFAULT && clip->start > 0 &&
          clip->start < samples) {
        const GstClockTime skip = gst_util_uint64_scale(clip->start, GST_SECOND, 48000);
        wall = wall0 > skip ? wall0 - skip : 0;
      }
      GstBuffer* out = gst_buffer_new_allocate(NULL, wire::kAudioHeaderSize + map.size, NULL);
      GstMapInfo omap;
      gst_buffer_map(out, &omap, GST_MAP_WRITE);
      wire::write_audio(wire::PacketType::kOpus, wall / 1000, map.data, map.size, omap.data,
                        omap.size);
      gst_buffer_unmap(out, &omap);
      GST_BUFFER_PTS(out) = pts - MIN(pts, wall0 - wall);
      GST_BUFFER_DURATION(out) = gst_util_uint64_scale(samples, GST_SECOND, 48000);
      priv->audio_since_header += GST_BUFFER_DURATION(out);
      if (discont) GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
      gst_buffer_list_add(list, out);
      priv->packets_since_header++;
      n_packets++;
      n_bytes += wire::kAudioHeaderSize + map.size;
    }
  } else {
    const gsize frame = wire::kBytesPerSample * priv->header.channels;
    const guint rate = priv->header.sample_rate;
    /* A sealed datagram is larger by the secure framing: the MTU still holds. */
    const gsize fixed = wire::kAudioHeaderSize + priv->secure.overhead();
    gsize max_payload = MIN(mtu > fixed ? mtu - fixed : 0, wire::kMaxPayloadSize);
    gsize frames_per_packet = max_payload / frame;
    const gsize total_frames = map.size / frame;
    if (map.size % frame != 0)
      GST_WARNING_OBJECT(self, "buffer of %" G_GSIZE_FORMAT " bytes is not whole frames", map.size);
    if (frames_per_packet == 0) {
      GST_ELEMENT_ERROR(self, STREAM, FORMAT,
                        ("mtu %u is too small for one frame of %u "
                         "channels",
                         mtu, priv->header.channels),
                        (NULL));
      gst_buffer_unmap(buf, &map);
      gst_buffer_unref(buf);
      gst_buffer_list_unref(list);
      return GST_FLOW_ERROR;
    }
    for (gsize first = 0; first < total_frames; first += frames_per_packet) {
      const gsize n = MIN(frames_per_packet, total_frames - first);
      const GstClockTime off = gst_util_uint64_scale(first, GST_SECOND, rate);
      const GstClockTime end = gst_util_uint64_scale(first + n, GST_SECOND, rate);
      gst_syncwave_pay_add_due_headers(self, list, pts + off, &n_headers, &n_bytes);
      const GstClockTime wall = wall0 + off;
      GstBuffer* out = gst_buffer_new_allocate(NULL, wire::kAudioHeaderSize + n * frame, NULL);
      GstMapInfo omap;
      gst_buffer_map(out, &omap, GST_MAP_WRITE);
      wire::write_audio(wire::PacketType::kRaw, wall / 1000, map.data + first * frame, n * frame,
                        omap.data, omap.size);
      gst_buffer_unmap(out, &omap);
      GST_BUFFER_PTS(out) = pts + off;
      GST_BUFFER_DURATION(out) = end - off;
      priv->audio_since_header += end - off;
      if (discont && first == 0) GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
      gst_buffer_list_add(list, out);
      priv->packets_since_header++;
      n_packets++;
      n_bytes += wire::kAudioHeaderSize + n * frame;
    }
  }

  gst_buffer_unmap(buf, &map);
  gst_buffer_unref(buf);

  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->packets += n_packets;
    priv->headers += n_headers;
    priv->bytes += n_bytes;
    priv->clock_reanchors = priv->map.stats().reanchors;
    priv->stamp_corrections = priv->live_check.corrections();
    priv->stamp_correction_ns = priv->live_check.correction_ns();
  }

  if (gst_buffer_list_length(list) == 0) {
    gst_buffer_list_unref(list);
    return GST_FLOW_OK;
  }
  if (live) {
    /* Untimestamped: a sink with sync=true renders it at once (see the top comment). */
    gst_buffer_list_foreach(
        list,
        [](GstBuffer** b, guint, gpointer) -> gboolean {
          GST_BUFFER_PTS(*b) = GST_CLOCK_TIME_NONE;
          GST_BUFFER_DTS(*b) = GST_CLOCK_TIME_NONE;
          return TRUE;
        },
        NULL);
  }
  list = priv->secure.seal(list);
  return gst_pad_push_list(self->srcpad, list);
}

static gboolean gst_syncwave_pay_set_caps(GstSyncWavePay* self, GstCaps* caps) {
  SyncWavePayPrivate* priv = self->priv;
  GstStructure* s = gst_caps_get_structure(caps, 0);
  wire::StreamHeader header;
  gint rate = 0, channels = 0;

  if (gst_structure_has_name(s, "audio/x-opus")) {
    header.compression = wire::Compression::kOpus;
    if (!gst_structure_get_int(s, "channels", &channels)) channels = 2;
    if (!gst_structure_get_int(s, "rate", &rate) || rate < (gint)wire::kMinSampleRate) rate = 48000;
  } else {
    header.compression = wire::Compression::kRaw;
    if (!gst_structure_get_int(s, "rate", &rate) ||
        !gst_structure_get_int(s, "channels", &channels)) {
      GST_ERROR_OBJECT(self, "caps without rate or channels: %" GST_PTR_FORMAT, caps);
      return FALSE;
    }
    if (rate < (gint)wire::kMinSampleRate)
      GST_WARNING_OBJECT(self, "rate %d is below what receivers accept (%u)", rate,
                         wire::kMinSampleRate);
  }
  if (channels < 1 || channels > wire::kMaxChannels || rate < 1) return FALSE;
  header.sample_rate = (uint32_t)rate;
  header.channels = (uint16_t)channels;

  if (!priv->have_format || header != priv->header) {
    GST_INFO_OBJECT(self, "format: %u Hz, %u channels, %s", header.sample_rate, header.channels,
                    header.compression == wire::Compression::kOpus ? "opus" : "raw");
    priv->header = header;
    priv->have_format = true;
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->headers_pending = priv->header_repeat;
  }

  GstCaps* srccaps = gst_caps_new_empty_simple("application/x-syncwave");
  gboolean ret = gst_pad_set_caps(self->srcpad, srccaps);
  gst_caps_unref(srccaps);
  return ret;
}

static gboolean gst_syncwave_pay_sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  GstSyncWavePay* self = GST_SYNCWAVE_PAY(parent);
  SyncWavePayPrivate* priv = self->priv;

  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      GstCaps* caps;
      gst_event_parse_caps(event, &caps);
      gboolean ret = gst_syncwave_pay_set_caps(self, caps);
      gst_event_unref(event);
      return ret;
    }
    case GST_EVENT_SEGMENT: {
      const GstSegment* segment;
      gst_event_parse_segment(event, &segment);
      if (segment->format != GST_FORMAT_TIME) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, (NULL), ("need a TIME segment"));
        gst_event_unref(event);
        return FALSE;
      }
      gst_segment_copy_into(segment, &priv->segment);
      break;
    }
    case GST_EVENT_FLUSH_STOP:
      gst_segment_init(&priv->segment, GST_FORMAT_TIME);
      break;
    case GST_EVENT_STREAM_START:
      priv->liveness = Liveness::kUnknown; /* another source may be behind us now */
      break;
    default:
      break;
  }
  return gst_pad_event_default(pad, parent, event);
}

static GstStateChangeReturn gst_syncwave_pay_change_state(GstElement* element,
                                                          GstStateChange transition) {
  GstSyncWavePay* self = GST_SYNCWAVE_PAY(element);
  SyncWavePayPrivate* priv = self->priv;

  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!priv->secure.check_start(element)) return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      priv->secure.restart(); /* a new stream id, as a restarted sender has */
      gst_segment_init(&priv->segment, GST_FORMAT_TIME);
      priv->have_format = false;
      priv->headers_pending = 0;
      priv->packets_since_header = 0;
      priv->audio_since_header = 0;
      priv->warned_no_pts = false;
      priv->liveness = Liveness::kUnknown;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING:
      gst_syncwave_pay_start_provider(self);
      break;
    default:
      break;
  }

  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);

  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      /* Streaming has stopped: the map is ours again. */
      gst_syncwave_pay_stop_provider(self);
      priv->map.reset();
      priv->live_check.reset();
      priv->no_clock_anchor = false;
      gst_clear_object(&priv->map_clock);
      break;
    default:
      break;
  }
  return ret;
}

static void gst_syncwave_pay_set_property(GObject* object, guint prop_id, const GValue* value,
                                          GParamSpec* pspec) {
  GstSyncWavePay* self = GST_SYNCWAVE_PAY(object);
  SyncWavePayPrivate* priv = self->priv;
  if (prop_id == PROP_SECRET) {
    /* Derives the key (slow): not under our lock. The clock exchange's key comes from
     * the same derivation (the key cache). */
    const gchar* secret = g_value_get_string(value);
    priv->secure.set_secret(GST_ELEMENT(self), secret);
    std::array<guint8, 32> key{};
    const bool have = syncwave::secure_clock_key(GST_ELEMENT(self), secret, &key);
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->have_clock_key = have;
    priv->clock_key = key;
    std::fill(key.begin(), key.end(), 0);
    return;
  }
  std::lock_guard<std::mutex> lk(priv->lock);

  switch (prop_id) {
    case PROP_MTU:
      priv->mtu = g_value_get_uint(value);
      break;
    case PROP_HEADER_INTERVAL:
      priv->header_interval = g_value_get_uint(value);
      break;
    case PROP_HEADER_PERIOD:
      priv->header_period_ms = g_value_get_uint(value);
      break;
    case PROP_WALL_CLOCK: {
      GstClock* c = GST_CLOCK(g_value_get_object(value));
      gst_object_replace((GstObject**)&priv->wall_clock, GST_OBJECT(c));
      break;
    }
    case PROP_HEADER_REPEAT:
      priv->header_repeat = g_value_get_uint(value);
      break;
    case PROP_TIME_PROVIDER_PORT:
      priv->time_provider_port = g_value_get_int(value);
      break;
    case PROP_TIME_PROVIDER_ADDRESS: {
      const gchar* s = g_value_get_string(value);
      priv->time_provider_address = s ? s : DEFAULT_TIME_PROVIDER_ADDRESS;
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_syncwave_pay_get_property(GObject* object, guint prop_id, GValue* value,
                                          GParamSpec* pspec) {
  GstSyncWavePay* self = GST_SYNCWAVE_PAY(object);
  SyncWavePayPrivate* priv = self->priv;
  std::lock_guard<std::mutex> lk(priv->lock);

  switch (prop_id) {
    case PROP_MTU:
      g_value_set_uint(value, priv->mtu);
      break;
    case PROP_HEADER_INTERVAL:
      g_value_set_uint(value, priv->header_interval);
      break;
    case PROP_HEADER_PERIOD:
      g_value_set_uint(value, priv->header_period_ms);
      break;
    case PROP_WALL_CLOCK:
      g_value_set_object(value, priv->wall_clock);
      break;
    case PROP_HEADER_REPEAT:
      g_value_set_uint(value, priv->header_repeat);
      break;
    case PROP_TIME_PROVIDER_PORT:
      g_value_set_int(value, priv->time_provider_port);
      break;
    case PROP_TIME_PROVIDER_ADDRESS:
      g_value_set_string(value, priv->time_provider_address.c_str());
      break;
    case PROP_STATS: {
      GstStructure* st = gst_structure_new_empty("application/x-syncwave-pay-stats");
      gst_structure_set(st, "packets", G_TYPE_UINT64, priv->packets, NULL);
      gst_structure_set(st, "headers", G_TYPE_UINT64, priv->headers, NULL);
      gst_structure_set(st, "bytes", G_TYPE_UINT64, priv->bytes, NULL);
      gst_structure_set(st, "dropped", G_TYPE_UINT64, priv->dropped, NULL);
      gst_structure_set(st, "clock-reanchors", G_TYPE_UINT64, priv->clock_reanchors, NULL);
      gst_structure_set(st, "stamp-corrections", G_TYPE_UINT64, priv->stamp_corrections, NULL);
      gst_structure_set(st, "stamp-correction-us", G_TYPE_INT64,
                        (gint64)(priv->stamp_correction_ns / 1000), NULL);
      priv->secure.add_stats(st);
      g_value_take_boxed(value, st);
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_syncwave_pay_finalize(GObject* object) {
  GstSyncWavePay* self = GST_SYNCWAVE_PAY(object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_syncwave_pay_class_init(GstSyncWavePayClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_syncwave_pay_debug, "syncwavepay", 0, "SyncWave payloader");

  gobject_class->set_property = gst_syncwave_pay_set_property;
  gobject_class->get_property = gst_syncwave_pay_get_property;
  gobject_class->finalize = gst_syncwave_pay_finalize;
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_syncwave_pay_change_state);

  /**
   * GstSyncWavePay:mtu:
   * Largest datagram in bytes (11-byte packet header included). Raw audio is cut
   * into packets of as many whole frames as fit.
   */
  g_object_class_install_property(
      gobject_class, PROP_MTU,
      g_param_spec_uint(
          "mtu", "MTU", "Maximum datagram size in bytes, packet header included (raw audio)",
          MIN_MTU, wire::kMaxDatagramSize, DEFAULT_MTU,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWavePay:header-interval:
   * A header datagram goes out once every this many audio packets (0 = off; with
   * header-period 0 too, headers go out only at the start and on format changes).
   */
  g_object_class_install_property(
      gobject_class, PROP_HEADER_INTERVAL,
      g_param_spec_uint(
          "header-interval", "Header interval",
          "Send the header once every N audio packets (0 = never periodically)", 0, G_MAXUINT,
          DEFAULT_HEADER_INTERVAL,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWavePay:header-period:
   * A header datagram goes out at least once per this many milliseconds of audio
   * (0 = off), so that a receiver joining a running stream configures itself within
   * that time whatever the packet duration. Applies together with header-interval.
   */
  g_object_class_install_property(
      gobject_class, PROP_HEADER_PERIOD,
      g_param_spec_uint(
          "header-period", "Header period",
          "Send the header at least once per this many ms of audio (0 = off)", 0, G_MAXUINT,
          DEFAULT_HEADER_PERIOD,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWavePay:header-repeat:
   * How many header datagrams go out before the first audio packet and after every
   * format change.
   */
  g_object_class_install_property(
      gobject_class, PROP_HEADER_REPEAT,
      g_param_spec_uint(
          "header-repeat", "Header repeat",
          "Headers sent before the first packet and on every format change", 1, 100,
          DEFAULT_HEADER_REPEAT,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWavePay:time-provider-port:
   * UDP port of a GstNetTimeProvider serving the sender clock (the timestamps'
   * timebase in ns), for receivers' GstNetClientClock. 0 = off. Taken on PLAYING.
   */
  g_object_class_install_property(
      gobject_class, PROP_TIME_PROVIDER_PORT,
      g_param_spec_int(
          "time-provider-port", "Time provider port",
          "Serve the sender clock on this UDP port (0 = off)", 0, 65535, DEFAULT_TIME_PROVIDER_PORT,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  /**
   * GstSyncWavePay:time-provider-address:
   * Address the time provider binds to.
   */
  g_object_class_install_property(
      gobject_class, PROP_TIME_PROVIDER_ADDRESS,
      g_param_spec_string(
          "time-provider-address", "Time provider address",
          "Address the sender clock's time provider binds to", DEFAULT_TIME_PROVIDER_ADDRESS,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  /**
   * GstSyncWavePay:wall-clock:
   * The clock whose time the packets are stamped in (Unix epoch ns). NULL (default):
   * the realtime system clock. Meant for tests, which give a GstTestClock.
   */
  g_object_class_install_property(
      gobject_class, PROP_WALL_CLOCK,
      g_param_spec_object(
          "wall-clock", "Wall clock",
          "Clock giving the timestamps' timebase (NULL = the realtime system clock)",
          GST_TYPE_CLOCK,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  /**
   * GstSyncWavePay:stats:
   * packets (audio datagrams), headers (header datagrams), bytes (all datagrams, as
   * v1: without the secure framing's 35 bytes each), dropped (input buffers that could
   * not be sent: invalid or oversized Opus), clock-reanchors (times the pipeline-clock ->
   * wall-clock line restarted after a jump of one clock against the other),
   * stamp-corrections (times a live source's stamps were found off the wall clock, or
   * back on it) and stamp-correction-us (the move applied now; 0 normally); secure
   * (a secret is set), sealed (datagrams sealed), seal-failures, and stream-id (the
   * secure stream's id) while secure.
   */
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "packets, headers, bytes, dropped, clock-reanchors, stamp-corrections, "
                         "stamp-correction-us, secure, sealed, seal-failures, stream-id",
                         GST_TYPE_STRUCTURE,
                         (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  /**
   * GstSyncWavePay:secret:
   * Passphrase of a secure stream (docs/wire-format.md, "Secure framing"): every
   * datagram, headers and audio, goes out sealed (XChaCha20-Poly1305, key from the
   * passphrase through Argon2id, derived once when this is set) and only receivers with
   * the same secret can read or play it. NULL or "" (default): plain SYNC v1.
   * Write-only, so that it never appears in property dumps; stats `secure` says whether
   * it is on. On a build without secure mode, a secret makes the element fail to start.
   */
  g_object_class_install_property(
      gobject_class, PROP_SECRET,
      g_param_spec_string(
          "secret", "Secret", "Passphrase: seal every datagram (NULL or empty = plain SYNC v1)",
          NULL,
          (GParamFlags)(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "SyncWave payloader", "Codec/Payloader/Network",
      "Packs F32LE or Opus audio into SyncWave datagrams", "SyncWave developers");
}

static void gst_syncwave_pay_init(GstSyncWavePay* self) {
  self->priv = new SyncWavePayPrivate();
  self->priv->realtime_clock =
      GST_CLOCK(g_object_new(GST_TYPE_SYSTEM_CLOCK, "clock-type", GST_CLOCK_TYPE_REALTIME, NULL));
  gst_object_ref_sink(self->priv->realtime_clock);
  gst_segment_init(&self->priv->segment, GST_FORMAT_TIME);

  self->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
  gst_pad_set_chain_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_syncwave_pay_chain));
  gst_pad_set_event_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_syncwave_pay_sink_event));
  gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template(&src_template, "src");
  gst_pad_use_fixed_caps(self->srcpad);
  gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
}
