/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-syncwavedepay
 * @title: syncwavedepay
 * @short_description: SyncWave depayloader: SYNC datagrams to audio
 *
 * See the comment below and docs/ for what it does and its properties.
 *
 * ## Example launch lines
 * Receives without a shared clock (no sync between receivers):
 * |[
 * gst-launch-1.0 udpsrc port=5555 caps=application/x-syncwave ! syncwavedepay ! decodebin ! audioconvert ! autoaudiosink
 * ]|
 */
/* syncwavedepay: turns SYNC datagrams (one per buffer) back into audio.
 *
 * - A valid header sets the caps (audio/x-raw F32LE or audio/x-opus); a valid header
 *   announcing another format renegotiates; an invalid one is counted and changes
 *   nothing. Raw audio before the first header is dropped (dropped-before-header):
 *   its rate and channels are only in the header. An Opus packet before any header
 *   starts the stream at once (fast join, opus-toc-starts): 48 kHz, channels from the
 *   TOC's stereo bit; the header confirms it or switches as a format change.
 * - Every datagram goes through wire::parse() and, for audio, wire::validate()
 *   against the header in force; malformed ones are dropped and counted per reason
 *   (malformed-<reason> in `stats`) with a GST_WARNING at most once per second.
 * - Output PTS = the sender time a line fitted to (sample count, stamp) over the
 *   last 10 s gives the packet, + offset, offset = input PTS - sender time
 *   (TimestampAligner): a function of the stream, so every receiver places every
 *   sample alike whatever the stamps' jitter and whenever it joined; stamps beyond
 *   `alignment-threshold` of the line (for `discont-wait`) restart the timeline and
 *   mark DISCONT. The restarted timeline may begin before the previous buffer ended:
 *   an audio sink plays each sample at its time (and skips what is late), but an
 *   encoder refuses timestamps that go back, so put `audiorate` before one (as
 *   `syncwave-launch receive --record` does).
 * - The loss event of syncwavejitter (syncwave-lost-event.h) becomes a GAP event for
 *   Opus (the decoder conceals) and, for raw audio, a concealment buffer (the
 *   waveform continued by pitch-period repetition, core/raw_concealer.h) crossfaded
 *   into the next packet.
 *
 * Example: gst-launch-1.0 udpsrc port=5555 ! syncwavedepay ! audioconvert ! autoaudiosink
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/audio/audio.h>

#include <array>
#include <mutex>
#include <string>
#include <vector>

#include "gstsyncwavedepay.h"
#include "raw_concealer.h"
#include "syncwave-lost-event.h"
#include "syncwave-sender-clock.h"
#include "timestamp_aligner.h"
#include "wire_format.h"

namespace wire = syncwave::wire;

GST_DEBUG_CATEGORY_STATIC(gst_syncwave_depay_debug);
#define GST_CAT_DEFAULT gst_syncwave_depay_debug

#define DEFAULT_ALIGNMENT_THRESHOLD (40 * GST_MSECOND)
#define DEFAULT_DISCONT_WAIT (1 * GST_SECOND)
/* The crossfade back into the signal after a raw concealment. */
#define CONCEAL_FADE_NS (5 * GST_MSECOND)
/* Longest raw concealment buffer; the rest of a longer gap is a GAP event. */
#define MAX_CONCEAL_NS (250 * GST_MSECOND)
/* Longer "losses" are outages or restarts: no concealment, a new timeline. */
#define MAX_LOSS_NS (60 * GST_SECOND)

enum {
  PROP_0,
  PROP_ALIGNMENT_THRESHOLD,
  PROP_DISCONT_WAIT,
  PROP_STATS,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-syncwave"));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format=(string)F32LE, layout=(string)interleaved, "
                    "rate=(int)[1000, 384000], channels=(int)[1, 64]; "
                    "audio/x-opus, channel-mapping-family=(int)0, rate=(int)48000, "
                    "channels=(int)[1, 2]"));

constexpr size_t kErrorCount = static_cast<size_t>(wire::Error::kCount);

struct SyncWaveDepayPrivate {
  ~SyncWaveDepayPrivate() { clear_pending_events(); }
  void clear_pending_events() {
    for (GstEvent* e : pending_events) gst_event_unref(e);
    pending_events.clear();
  }

  /* Properties, statistics and the wall offset, under lock. */
  std::mutex lock;
  GstClockTime alignment_threshold = DEFAULT_ALIGNMENT_THRESHOLD;
  GstClockTime discont_wait = DEFAULT_DISCONT_WAIT;
  guint64 packets = 0;
  guint64 headers = 0;
  guint64 bytes = 0;
  guint64 malformed = 0;
  std::array<guint64, kErrorCount> malformed_by{};
  guint64 dropped_before_header = 0;
  guint64 opus_toc_starts = 0;
  guint64 format_changes = 0;
  guint64 concealed = 0;
  guint64 gaps = 0;
  gint64 transit_last_us = 0;
  double transit_sum_us = 0;
  guint64 transit_count = 0;
  bool offset_valid = false;
  GstClockTimeDiff offset = 0;

  /* Streaming thread only. */
  bool have_header = false;
  /* The header in force was taken from an Opus packet's TOC (fast join), not yet
   * confirmed by a header datagram. */
  bool header_from_toc = false;
  wire::StreamHeader header;
  bool caps_sent = false;
  GstSegment segment;
  bool segment_pending = false;
  std::vector<GstEvent*> pending_events; /* sticky events held until caps */
  syncwave::TimestampAligner aligner;
  syncwave::RawConcealer concealer;
  bool next_discont = true;
  gint64 last_warning_us = 0;
  guint64 malformed_since_warning = 0;
};

struct _GstSyncWaveDepay {
  GstElement parent;
  GstPad* sinkpad;
  GstPad* srcpad;
  SyncWaveDepayPrivate* priv;
};

#define gst_syncwave_depay_parent_class parent_class
G_DEFINE_TYPE(GstSyncWaveDepay, gst_syncwave_depay, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE(syncwavedepay, "syncwavedepay", GST_RANK_NONE, GST_TYPE_SYNCWAVE_DEPAY);

static GstCaps* caps_for_header(const wire::StreamHeader& h) {
  if (h.compression == wire::Compression::kOpus) {
    return gst_caps_new_simple("audio/x-opus", "channel-mapping-family", G_TYPE_INT, 0, "rate",
                               G_TYPE_INT, 48000, "channels", G_TYPE_INT, (gint)h.channels, NULL);
  }
  GstCaps* caps = gst_caps_new_simple(
      "audio/x-raw", "format", G_TYPE_STRING, "F32LE", "layout", G_TYPE_STRING, "interleaved",
      "rate", G_TYPE_INT, (gint)h.sample_rate, "channels", G_TYPE_INT, (gint)h.channels, NULL);
  if (h.channels > 2) {
    /* WASAPI and PulseAudio order channels as the fallback masks do; beyond 8
     * channels the layout is unpositioned (mask 0). */
    guint64 mask = gst_audio_channel_get_fallback_mask(h.channels);
    gst_caps_set_simple(caps, "channel-mask", GST_TYPE_BITMASK, mask, NULL);
  }
  return caps;
}

static void gst_syncwave_depay_count_malformed(GstSyncWaveDepay* self, wire::Error error) {
  SyncWaveDepayPrivate* priv = self->priv;
  size_t idx = static_cast<size_t>(error);
  if (idx >= kErrorCount) idx = 0;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->malformed++;
    priv->malformed_by[idx]++;
  }
  priv->malformed_since_warning++;
  gint64 now = g_get_monotonic_time();
  if (priv->last_warning_us == 0 || now - priv->last_warning_us >= G_USEC_PER_SEC) {
    GST_WARNING_OBJECT(self,
                       "dropped %" G_GUINT64_FORMAT
                       " malformed datagram(s) "
                       "(last: %s)",
                       priv->malformed_since_warning, wire::error_name(error));
    priv->last_warning_us = now;
    priv->malformed_since_warning = 0;
  } else {
    GST_DEBUG_OBJECT(self, "malformed datagram: %s", wire::error_name(error));
  }
}

/* Pushes caps for the current header, then the held segment and sticky events. */
static gboolean gst_syncwave_depay_push_caps(GstSyncWaveDepay* self) {
  SyncWaveDepayPrivate* priv = self->priv;
  GstCaps* caps = caps_for_header(priv->header);
  GST_INFO_OBJECT(self, "caps %" GST_PTR_FORMAT, caps);
  gboolean ret = gst_pad_push_event(self->srcpad, gst_event_new_caps(caps));
  gst_caps_unref(caps);
  priv->caps_sent = true;
  if (priv->segment_pending) {
    priv->segment_pending = false;
    gst_pad_push_event(self->srcpad, gst_event_new_segment(&priv->segment));
  }
  std::vector<GstEvent*> events;
  events.swap(priv->pending_events);
  for (GstEvent* e : events) gst_pad_push_event(self->srcpad, e);
  return ret;
}

static void gst_syncwave_depay_configure(GstSyncWaveDepay* self, const wire::StreamHeader& h);

static void gst_syncwave_depay_handle_header(GstSyncWaveDepay* self, const wire::StreamHeader& h) {
  SyncWaveDepayPrivate* priv = self->priv;
  if (h.compression == wire::Compression::kOpus && h.channels > 2) {
    /* Mapping family 0 carries 1 or 2 channels only. */
    gst_syncwave_depay_count_malformed(self, wire::Error::kBadChannels);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->headers++;
    if (priv->have_header && h != priv->header) priv->format_changes++;
  }
  /* A header that confirms the format taken from an Opus TOC changes nothing. */
  if (priv->header_from_toc)
    GST_INFO_OBJECT(self, "header %s the format taken from the Opus TOC",
                    h == priv->header ? "confirms" : "replaces");
  priv->header_from_toc = false;
  if (priv->have_header && h == priv->header) return;
  gst_syncwave_depay_configure(self, h);
}

/* Fast join: the first Opus packet before any header describes the stream itself
 * (RFC 6716 §3.1): Opus always decodes at 48 kHz, and bit 2 of the TOC byte says
 * stereo. The header, when it comes, confirms or switches (as a format change). */
static void gst_syncwave_depay_start_from_toc(GstSyncWaveDepay* self, const wire::AudioPacket& p) {
  SyncWaveDepayPrivate* priv = self->priv;
  wire::StreamHeader h;
  h.sample_rate = 48000;
  h.channels = (p.data[0] & 0x04) ? 2 : 1;
  h.compression = wire::Compression::kOpus;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->opus_toc_starts++;
  }
  GST_INFO_OBJECT(self, "no header yet: starting as Opus, %u channel(s), from the TOC", h.channels);
  gst_syncwave_depay_configure(self, h);
  priv->header_from_toc = true;
}

static void gst_syncwave_depay_configure(GstSyncWaveDepay* self, const wire::StreamHeader& h) {
  SyncWaveDepayPrivate* priv = self->priv;

  GST_INFO_OBJECT(self, "stream header: %u Hz, %u channels, %s", h.sample_rate, h.channels,
                  h.compression == wire::Compression::kOpus ? "opus" : "raw");
  priv->header = h;
  priv->have_header = true;
  const bool opus = h.compression == wire::Compression::kOpus;
  priv->aligner.set_rate(opus ? 48000 : h.sample_rate);
  priv->aligner.reset();
  priv->concealer.configure(
      h.channels, opus ? 0 : gst_util_uint64_scale(CONCEAL_FADE_NS, h.sample_rate, GST_SECOND));
  priv->next_discont = true;
  gst_syncwave_depay_push_caps(self);
}

/* Arrival time of a buffer on the wall clock, in µs: its running time converted as
 * syncwavepay does, or the real time when not PLAYING. */
static gint64 gst_syncwave_depay_arrival_us(GstSyncWaveDepay* self, GstClockTime pts) {
  SyncWaveDepayPrivate* priv = self->priv;
  if (GST_STATE(self) == GST_STATE_PLAYING && GST_CLOCK_TIME_IS_VALID(pts) &&
      priv->segment.format == GST_FORMAT_TIME) {
    GstClockTime running = gst_segment_to_running_time(&priv->segment, GST_FORMAT_TIME, pts);
    GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
    std::lock_guard<std::mutex> lk(priv->lock);
    if (priv->offset_valid && GST_CLOCK_TIME_IS_VALID(running) && GST_CLOCK_TIME_IS_VALID(base))
      return ((gint64)(running + base) + priv->offset) / 1000;
  }
  return g_get_real_time();
}

static GstFlowReturn gst_syncwave_depay_handle_audio(GstSyncWaveDepay* self, GstBuffer* in,
                                                     const wire::AudioPacket& packet) {
  SyncWaveDepayPrivate* priv = self->priv;
  const wire::StreamHeader& h = priv->header;
  const bool opus = h.compression == wire::Compression::kOpus;
  const guint64 frames = opus ? wire::opus_packet_samples_48k(packet.data, packet.size)
                              : wire::raw_frames(packet.size, h);

  /* Transit: arrival wall clock minus sender timestamp. */
  const double transit_d =
      (double)gst_syncwave_depay_arrival_us(self, GST_BUFFER_PTS(in)) - (double)packet.timestamp_us;
  const gint64 transit = (gint64)CLAMP(transit_d, -4e18, 4e18);

  gint64 input_pts = -1;
  if (GST_BUFFER_PTS_IS_VALID(in) && priv->segment.format == GST_FORMAT_TIME)
    input_pts = (gint64)GST_BUFFER_PTS(in);
  /* Saturate: a hostile timestamp must not wrap (the aligner clamps further). */
  const guint64 sender_ns =
      packet.timestamp_us > G_MAXUINT64 / 1000 ? G_MAXUINT64 : packet.timestamp_us * 1000;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->aligner.set_threshold(priv->alignment_threshold);
    priv->aligner.set_discont_wait(priv->discont_wait);
  }
  auto t = priv->aligner.push(sender_ns, frames, input_pts, GST_BUFFER_IS_DISCONT(in));

  GstBuffer* out = gst_buffer_new_memdup(packet.data, packet.size);
  if (!opus && priv->concealer.fade_in_pending()) {
    GstMapInfo map;
    if (gst_buffer_map(out, &map, GST_MAP_READWRITE)) {
      priv->concealer.apply_fade_in(map.data, frames);
      gst_buffer_unmap(out, &map);
    }
  }
  if (!opus) priv->concealer.observe(packet.data, frames);

  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->packets++;
    priv->transit_last_us = transit;
    priv->transit_sum_us += (double)transit;
    priv->transit_count++;
  }

  if (t.pts_ns < 0) {
    GST_DEBUG_OBJECT(self, "dropping packet before the start of the timeline");
    gst_buffer_unref(out);
    return GST_FLOW_OK;
  }
  GST_BUFFER_PTS(out) = (GstClockTime)t.pts_ns;
  GST_BUFFER_DURATION(out) = t.duration_ns;
  if (t.discont || priv->next_discont) {
    GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
    if (t.discont && !priv->next_discont)
      GST_DEBUG_OBJECT(self, "discontinuity at sender time %" G_GUINT64_FORMAT " us",
                       packet.timestamp_us);
  }
  priv->next_discont = false;
  GST_LOG_OBJECT(self, "packet %" G_GUINT64_FORMAT " us, %" G_GUINT64_FORMAT " frames, in pts %"
                 G_GINT64_FORMAT ", out pts %" GST_TIME_FORMAT, packet.timestamp_us, (guint64)frames,
                 input_pts, GST_TIME_ARGS(GST_BUFFER_PTS(out)));
  return gst_pad_push(self->srcpad, out);
}

static GstFlowReturn gst_syncwave_depay_chain(GstPad* pad, GstObject* parent, GstBuffer* buf) {
  GstSyncWaveDepay* self = GST_SYNCWAVE_DEPAY(parent);
  SyncWaveDepayPrivate* priv = self->priv;
  GstFlowReturn ret = GST_FLOW_OK;
  (void)pad;

  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_READ)) {
    gst_buffer_unref(buf);
    return GST_FLOW_OK;
  }
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->bytes += map.size;
  }

  const wire::ParseResult r = wire::parse(map.data, map.size);
  switch (r.kind) {
    case wire::Kind::kHeader:
      gst_syncwave_depay_handle_header(self, r.header);
      break;
    case wire::Kind::kMalformed:
      gst_syncwave_depay_count_malformed(self, r.error);
      break;
    case wire::Kind::kRawAudio:
    case wire::Kind::kOpusAudio: {
      if (!priv->have_header && r.kind == wire::Kind::kOpusAudio && r.audio.size > 0 &&
          wire::opus_packet_samples_48k(r.audio.data, r.audio.size) > 0) {
        gst_syncwave_depay_start_from_toc(self, r.audio);
      }
      if (!priv->have_header) {
        /* Raw audio needs the header: rate and channels are not in the packet. */
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->dropped_before_header++;
        break;
      }
      const wire::Error e = wire::validate(r.audio, priv->header);
      if (e != wire::Error::kNone) {
        gst_syncwave_depay_count_malformed(self, e);
        break;
      }
      ret = gst_syncwave_depay_handle_audio(self, buf, r.audio);
      break;
    }
  }

  gst_buffer_unmap(buf, &map);
  gst_buffer_unref(buf);
  return ret;
}

static void gst_syncwave_depay_reset_timeline(GstSyncWaveDepay* self);

/* The loss event: a GAP event for Opus, a concealment buffer (and a GAP event for the
 * part beyond MAX_CONCEAL_NS) for raw audio. */
static void gst_syncwave_depay_handle_loss(GstSyncWaveDepay* self, guint64 timestamp_us,
                                           GstClockTime duration, GstClockTime pts) {
  SyncWaveDepayPrivate* priv = self->priv;
  if (!priv->have_header || !priv->caps_sent || !GST_CLOCK_TIME_IS_VALID(duration)) return;
  const wire::StreamHeader& h = priv->header;
  const bool opus = h.compression == wire::Compression::kOpus;
  const guint rate = opus ? 48000 : h.sample_rate;
  const guint64 frames = gst_util_uint64_scale_round(duration, rate, GST_SECOND);
  if (frames == 0 || timestamp_us > G_MAXUINT64 / 1000) return;
  if (duration > MAX_LOSS_NS) {
    /* Not a loss but an outage or a restart: the next packet starts a new timeline. */
    GST_DEBUG_OBJECT(self, "loss of %" GST_TIME_FORMAT " treated as a discontinuity",
                     GST_TIME_ARGS(duration));
    gst_syncwave_depay_reset_timeline(self);
    return;
  }

  gint64 input_pts = -1;
  if (GST_CLOCK_TIME_IS_VALID(pts) && pts <= (GstClockTime)G_MAXINT64 &&
      priv->segment.format == GST_FORMAT_TIME)
    input_pts = (gint64)pts;
  auto t = priv->aligner.push(timestamp_us * 1000, frames, input_pts, false, /*observed=*/false);
  if (t.pts_ns < 0) return;

  GstClockTime gap_pts = (GstClockTime)t.pts_ns;
  GstClockTime gap_duration = t.duration_ns;
  if (!opus) {
    const guint64 max_frames = gst_util_uint64_scale(MAX_CONCEAL_NS, rate, GST_SECOND);
    const guint64 n = MIN(frames, max_frames);
    const gsize size = (gsize)n * priv->concealer.frame_bytes();
    GstBuffer* out = gst_buffer_new_allocate(NULL, size, NULL);
    GstMapInfo map;
    gst_buffer_map(out, &map, GST_MAP_WRITE);
    priv->concealer.conceal(map.data, n);
    gst_buffer_unmap(out, &map);
    const GstClockTime d = MIN(gst_util_uint64_scale(n, GST_SECOND, rate), gap_duration);
    GST_BUFFER_PTS(out) = gap_pts;
    GST_BUFFER_DURATION(out) = d;
    if (t.discont || priv->next_discont) GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
    priv->next_discont = false;
    {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->concealed++;
    }
    GST_DEBUG_OBJECT(self, "concealing %" G_GUINT64_FORMAT " frames at %" GST_TIME_FORMAT, n,
                     GST_TIME_ARGS(gap_pts));
    gst_pad_push(self->srcpad, out);
    gap_pts += d;
    gap_duration -= d;
    /* What rounding leaves (less than a frame) is no gap: a GAP event makes the audio
     * sink wait until its time, which drains the device's queue (26 ms of silence on
     * a PulseAudio null sink for every loss). */
    if (gap_duration < gst_util_uint64_scale_ceil(1, GST_SECOND, rate)) return;
  }
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->gaps++;
  }
  GST_DEBUG_OBJECT(self, "gap %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT, GST_TIME_ARGS(gap_pts),
                   GST_TIME_ARGS(gap_duration));
  gst_pad_push_event(self->srcpad, gst_event_new_gap(gap_pts, gap_duration));
}

static void gst_syncwave_depay_reset_timeline(GstSyncWaveDepay* self) {
  SyncWaveDepayPrivate* priv = self->priv;
  priv->aligner.reset();
  priv->concealer.reset();
  priv->next_discont = true;
}

static gboolean gst_syncwave_depay_sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  GstSyncWaveDepay* self = GST_SYNCWAVE_DEPAY(parent);
  SyncWaveDepayPrivate* priv = self->priv;

  guint64 ts_us = 0;
  GstClockTime duration = 0, pts = GST_CLOCK_TIME_NONE;
  if (syncwave_lost_event_parse(event, &ts_us, &duration, &pts)) {
    gst_syncwave_depay_handle_loss(self, ts_us, duration, pts);
    gst_event_unref(event);
    return TRUE;
  }

  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS:
      /* Our caps come from the stream header, not from upstream. */
      gst_event_unref(event);
      return TRUE;
    case GST_EVENT_SEGMENT: {
      const GstSegment* segment;
      gst_event_parse_segment(event, &segment);
      if (segment->format == GST_FORMAT_TIME) {
        gst_segment_copy_into(segment, &priv->segment);
      } else {
        /* Datagrams without a time base (e.g. from a file): a plain TIME timeline. */
        gst_segment_init(&priv->segment, GST_FORMAT_TIME);
      }
      gst_event_unref(event);
      gst_syncwave_depay_reset_timeline(self);
      if (!priv->caps_sent) {
        priv->segment_pending = true;
        return TRUE;
      }
      return gst_pad_push_event(self->srcpad, gst_event_new_segment(&priv->segment));
    }
    case GST_EVENT_FLUSH_STOP:
      gst_syncwave_depay_reset_timeline(self);
      break;
    case GST_EVENT_STREAM_START:
    case GST_EVENT_EOS:
    case GST_EVENT_FLUSH_START:
      break;
    default:
      if (!priv->caps_sent && GST_EVENT_IS_SERIALIZED(event)) {
        if (GST_EVENT_IS_STICKY(event)) {
          priv->pending_events.push_back(event);
        } else {
          gst_event_unref(event);
        }
        return TRUE;
      }
      break;
  }
  return gst_pad_event_default(pad, parent, event);
}

static GstStateChangeReturn gst_syncwave_depay_change_state(GstElement* element,
                                                            GstStateChange transition) {
  GstSyncWaveDepay* self = GST_SYNCWAVE_DEPAY(element);
  SyncWaveDepayPrivate* priv = self->priv;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      priv->have_header = false;
      priv->header_from_toc = false;
      priv->caps_sent = false;
      priv->segment_pending = false;
      priv->clear_pending_events();
      gst_segment_init(&priv->segment, GST_FORMAT_TIME);
      gst_syncwave_depay_reset_timeline(self);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING: {
      GstClock* clock = gst_element_get_clock(element);
      if (clock) {
        GstClockTimeDiff offset = syncwave_clock_wall_offset(clock);
        gst_object_unref(clock);
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->offset = offset;
        priv->offset_valid = true;
      }
      break;
    }
    default:
      break;
  }

  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);

  switch (transition) {
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED: {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->offset_valid = false;
      break;
    }
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      priv->clear_pending_events();
      break;
    default:
      break;
  }
  return ret;
}

static void gst_syncwave_depay_set_property(GObject* object, guint prop_id, const GValue* value,
                                            GParamSpec* pspec) {
  GstSyncWaveDepay* self = GST_SYNCWAVE_DEPAY(object);
  SyncWaveDepayPrivate* priv = self->priv;
  std::lock_guard<std::mutex> lk(priv->lock);

  switch (prop_id) {
    case PROP_ALIGNMENT_THRESHOLD:
      priv->alignment_threshold = g_value_get_uint64(value);
      break;
    case PROP_DISCONT_WAIT:
      priv->discont_wait = g_value_get_uint64(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static GstStructure* gst_syncwave_depay_build_stats(SyncWaveDepayPrivate* priv) {
  const gint64 transit_mean_us =
      priv->transit_count ? (gint64)(priv->transit_sum_us / (double)priv->transit_count) : 0;
  GstStructure* s = gst_structure_new_empty("application/x-syncwave-depay-stats");
  gst_structure_set(s, "packets", G_TYPE_UINT64, priv->packets, NULL);
  gst_structure_set(s, "headers", G_TYPE_UINT64, priv->headers, NULL);
  gst_structure_set(s, "bytes", G_TYPE_UINT64, priv->bytes, NULL);
  gst_structure_set(s, "malformed", G_TYPE_UINT64, priv->malformed, NULL);
  gst_structure_set(s, "dropped-before-header", G_TYPE_UINT64, priv->dropped_before_header, NULL);
  gst_structure_set(s, "opus-toc-starts", G_TYPE_UINT64, priv->opus_toc_starts, NULL);
  gst_structure_set(s, "format-changes", G_TYPE_UINT64, priv->format_changes, NULL);
  gst_structure_set(s, "concealed", G_TYPE_UINT64, priv->concealed, NULL);
  gst_structure_set(s, "gaps", G_TYPE_UINT64, priv->gaps, NULL);
  gst_structure_set(s, "transit-last-us", G_TYPE_INT64, priv->transit_last_us, NULL);
  gst_structure_set(s, "transit-mean-us", G_TYPE_INT64, transit_mean_us, NULL);
  for (size_t i = 1; i < kErrorCount; i++) {
    std::string name = std::string("malformed-") + wire::error_name(static_cast<wire::Error>(i));
    gst_structure_set(s, name.c_str(), G_TYPE_UINT64, priv->malformed_by[i], NULL);
  }
  return s;
}

static void gst_syncwave_depay_get_property(GObject* object, guint prop_id, GValue* value,
                                            GParamSpec* pspec) {
  GstSyncWaveDepay* self = GST_SYNCWAVE_DEPAY(object);
  SyncWaveDepayPrivate* priv = self->priv;
  std::lock_guard<std::mutex> lk(priv->lock);

  switch (prop_id) {
    case PROP_ALIGNMENT_THRESHOLD:
      g_value_set_uint64(value, priv->alignment_threshold);
      break;
    case PROP_DISCONT_WAIT:
      g_value_set_uint64(value, priv->discont_wait);
      break;
    case PROP_STATS:
      g_value_take_boxed(value, gst_syncwave_depay_build_stats(priv));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_syncwave_depay_finalize(GObject* object) {
  GstSyncWaveDepay* self = GST_SYNCWAVE_DEPAY(object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_syncwave_depay_class_init(GstSyncWaveDepayClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_syncwave_depay_debug, "syncwavedepay", 0, "SyncWave depayloader");

  gobject_class->set_property = gst_syncwave_depay_set_property;
  gobject_class->get_property = gst_syncwave_depay_get_property;
  gobject_class->finalize = gst_syncwave_depay_finalize;
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_syncwave_depay_change_state);

  /**
   * GstSyncWaveDepay:alignment-threshold:
   * Sender timestamps within this distance of the sample timeline (a line fitted to
   * sample count and timestamps over the last 10 s, the same for every receiver) are
   * jitter and fitted; beyond it (for at least `discont-wait`) the timeline restarts
   * at the packet's timestamp and the buffer is marked DISCONT.
   */
  g_object_class_install_property(
      gobject_class, PROP_ALIGNMENT_THRESHOLD,
      g_param_spec_uint64(
          "alignment-threshold", "Alignment threshold",
          "Timestamp jitter (ns) absorbed before a discontinuity is declared", 1, G_MAXINT64,
          DEFAULT_ALIGNMENT_THRESHOLD,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWaveDepay:discont-wait:
   * How long (in sender time) timestamps must stay beyond `alignment-threshold`
   * before the timeline restarts, like audiobasesink's discont-wait: the backlog an
   * original sender sends after a stall, all stamped late, is waited out instead of
   * cutting the audio. 0 = restart at once. Deviations of 1 s or more, an input
   * DISCONT and a format change restart at once.
   */
  g_object_class_install_property(
      gobject_class, PROP_DISCONT_WAIT,
      g_param_spec_uint64(
          "discont-wait", "Discont wait",
          "Time (ns) a timestamp deviation must last before it is a discontinuity (0 = at once)", 0,
          G_MAXINT64, DEFAULT_DISCONT_WAIT,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWaveDepay:stats:
   * packets (audio packets output), headers (valid headers), bytes (all datagrams
   * received), malformed (all dropped as malformed) and malformed-<reason> per
   * wire::Error name (truncated, size-mismatch, bad-magic, unknown-type, ...),
   * dropped-before-header (raw audio before the first header), opus-toc-starts
   * (streams started from an Opus packet's TOC before any header), format-changes,
   * concealed (raw concealment buffers), gaps (GAP events sent), transit-last-us and
   * transit-mean-us (arrival wall clock minus sender timestamp).
   */
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed(
          "stats", "Statistics",
          "Counters: packets, headers, bytes, malformed(-reason), dropped-before-header, "
          "opus-toc-starts, format-changes, concealed, gaps, transit-last-us, transit-mean-us",
          GST_TYPE_STRUCTURE, (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "SyncWave depayloader", "Codec/Depayloader/Network",
      "Extracts F32LE or Opus audio from SyncWave datagrams", "SyncWave developers");
}

static void gst_syncwave_depay_init(GstSyncWaveDepay* self) {
  self->priv = new SyncWaveDepayPrivate();
  gst_segment_init(&self->priv->segment, GST_FORMAT_TIME);

  self->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
  gst_pad_set_chain_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_syncwave_depay_chain));
  gst_pad_set_event_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_syncwave_depay_sink_event));
  gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template(&src_template, "src");
  gst_pad_use_fixed_caps(self->srcpad);
  gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
}
