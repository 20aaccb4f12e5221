/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-syncwavejitter
 * @title: syncwavejitter
 * @short_description: SyncWave jitter buffer: reorders, times and picks one sender
 *
 * See the comment below and docs/ for what it does and its properties.
 *
 * ## Example launch lines
 * Plays one sender of several on the port, 80 ms behind capture:
 * |[
 * gst-launch-1.0 udpsrc port=5555 caps=application/x-syncwave ! syncwavejitter latency=80 sender=192.168.1.10 ! syncwavedepay ! decodebin ! audioconvert ! autoaudiosink
 * ]|
 */
/* syncwavejitter: the receive-side jitter buffer (application/x-syncwave in and out).
 *
 *   sink pad (streaming thread)                      src pad task (own thread)
 *   parse -> sender lock -> header? ------------------> queue --> push
 *                        -> audio: pts, JitterBuffer --^   ^
 *                                                          |  gst_clock_id_wait until
 *                                   JitterBuffer::pop() ---+  the next gap deadline
 *
 * - Every datagram is parsed with the wire module. Header datagrams go out in
 *   order (no timestamp); a header announcing another format first drains what is
 *   held and restarts the stream. Malformed datagrams and audio before the first
 *   header are dropped and counted.
 * - Output PTS of an audio datagram: mode `synced` (default) T * 1000 - base_time,
 *   the running time of its capture instant on the shared clock (the pipeline clock
 *   reads the sender's timebase, see docs/synchronization.md); mode `slave` the
 *   arrival running time (buffer DTS, else PTS, else now) smoothed by the skew
 *   estimator. Downstream renders at PTS + `latency`. In synced mode, a sender
 *   time more than 10 s away from the clock means the clock does not read the
 *   sender's timebase (say a monotonic clock in a plain gst-launch pipeline): the
 *   element warns once and plays on slave timing (stats clock-mismatch). With a
 *   secret there is no such fallback: that audio is dropped and counted (stats
 *   stale), the freshness check that keeps replays of old secure streams out.
 * - syncwave::JitterBuffer decides: duplicates and packets past PTS + latency are
 *   dropped, out-of-order packets are held and released in order, in-order ones go
 *   out at once. A gap (known when a later packet arrives, as in rtpjitterbuffer:
 *   a sender that stops is not loss; with `unheard-loss`, also when the expected
 *   packet's deadline passes, for up to that much in a row) is reported with a loss event
 *   (syncwave-lost-event.h) when the pipeline clock reaches its deadline: its PTS +
 *   latency - `loss-margin` (default 2 ms, at most latency / 2), so the decoder still
 *   has time to conceal; at once when that is already past. Gaps longer than
 *   500 ms are a discontinuity (the sender was silent), timestamp jumps (more than
 *   1 s back, latency + 1 s forward) a sender restart; the next buffer then
 *   carries DISCONT. Malformed datagrams are counted by reason.
 * - Several senders on one port: buffers carry GstNetAddressMeta (udpsrc). The
 *   rules are syncwave::SenderSelector's (core/sender_selector.h): the element plays
 *   the first sender whose SyncWave datagram it hears, or the one in `sender`; every
 *   datagram of the others is dropped before it touches the caps, the timeline or the
 *   jitter buffer, counted (foreign-packets) and each address announced once with an
 *   element message "syncwave-foreign-sender" (address, locked). When the played
 *   sender has been silent for 500 ms, the next matching sender takes over (a
 *   restarted sender comes back from a new port). The element posts
 *   "syncwave-sender-changed" (address, host, port, previous: "" for the first sender
 *   locked onto) for the first sender and for each hand-over. `sender` is parsed with
 *   core/host_port.h; a host name is resolved on a thread of its own, never in
 *   set_property or on the streaming thread (nothing plays until it resolved).
 * - The latency query adds `latency` to min and max.
 * - `secret` (secure streams, docs/wire-format.md): a probe installed on the sink pad
 *   when the element is made opens every datagram before anything else sees it (the
 *   chain, syncwavesink's probe); what does not authenticate is dropped there and
 *   counted by reason (stats secure-rejected-*). The chain only ever sees v1.
 *
 * Example: gst-launch-1.0 udpsrc port=5555 ! syncwavejitter latency=80 !
 *          syncwavedepay ! audioconvert ! autoaudiosink
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gio/gio.h>
#include <gst/net/gstnetaddressmeta.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "gstsyncwavejitter.h"
#include "host_port.h"
#include "jitter_buffer.h"
#include "sender_selector.h"
#include "skew_estimator.h"
#include "syncwave-lost-event.h"
#include "syncwave-secure.h"
#include "time_units.h"
#include "wire_format.h"

namespace wire = syncwave::wire;

GST_DEBUG_CATEGORY_STATIC(gst_syncwave_jitter_debug);
#define GST_CAT_DEFAULT gst_syncwave_jitter_debug

#define DEFAULT_LATENCY_MS 60
#define DEFAULT_LOSS_MARGIN_MS 2
#define MAX_LATENCY_MS 10000
#define DEFAULT_MODE GST_SYNCWAVE_JITTER_MODE_SYNCED
#define DEFAULT_SENDER NULL
/* Synced mode: a sender time this far from the clock means the clock does not
 * read the sender's timebase (the element then falls back to slave timing). */
#define CLOCK_MISMATCH (10 * GST_SECOND)

enum {
  PROP_0,
  PROP_LATENCY,
  PROP_MODE,
  PROP_SENDER,
  PROP_LOSS_MARGIN,
  PROP_UNHEARD_LOSS,
  PROP_STATS,
  PROP_SECRET,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-syncwave"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-syncwave"));

GType gst_syncwave_jitter_mode_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_SYNCWAVE_JITTER_MODE_SYNCED, "Pipeline clock reads the sender's timebase", "synced"},
      {GST_SYNCWAVE_JITTER_MODE_SLAVE, "Smoothed arrival times, no cross-device sync", "slave"},
      {0, NULL, NULL},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstSyncWaveJitterMode", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

namespace {

/* One thing for the src task to send, in order: a buffer or an event. */
struct OutItem {
  GstBuffer* buffer = nullptr;
  GstEvent* event = nullptr;
};

void unref_buffer(void* p) {
  gst_buffer_unref(GST_BUFFER_CAST(p));
}

/* "HOST:PORT", IPv6 hosts in brackets. */
std::string address_key(const std::string& host, guint16 port) {
  return syncwave::format_host_port(host, port);
}

/* The text form g_inet_address_to_string gives a literal address (so that "::0001"
 * compares equal to "::1"); empty when it is not one. */
std::string canonical_address(const std::string& host) {
  std::string out;
  if (GInetAddress* a = g_inet_address_new_from_string(host.c_str())) {
    gchar* t = g_inet_address_to_string(a);
    out = t;
    g_free(t);
    g_object_unref(a);
  }
  return out;
}

/* A buffer mapped for reading once, for the whole of the chain function. */
struct ReadMap {
  explicit ReadMap(GstBuffer* b) : buf(b) { mapped = gst_buffer_map(buf, &info, GST_MAP_READ); }
  ~ReadMap() { unmap(); }
  void unmap() {
    if (mapped) gst_buffer_unmap(buf, &info);
    mapped = false;
  }
  GstBuffer* buf;
  GstMapInfo info;
  bool mapped = false;
};

}  // namespace

struct SyncWaveJitterPrivate {
  ~SyncWaveJitterPrivate() {
    clear_queue();
    clear_foreign_header();
    g_clear_object(&last_addr);
  }
  void clear_foreign_header() {
    if (foreign_header) gst_buffer_unref(foreign_header);
    foreign_header = nullptr;
    foreign_header_key.clear();
  }
  void clear_queue() {
    for (OutItem& item : queue) {
      if (item.buffer) gst_buffer_unref(item.buffer);
      if (item.event) gst_event_unref(item.event);
    }
    queue.clear();
  }

  std::mutex lock;
  std::condition_variable cond;

  /* Properties. */
  guint latency_ms = DEFAULT_LATENCY_MS;
  guint loss_margin_ms = DEFAULT_LOSS_MARGIN_MS;
  guint unheard_loss_ms = 0;
  GstSyncWaveJitterMode mode = DEFAULT_MODE;
  std::string sender;          /* as set */
  guint sender_generation = 0; /* bumped per set: a late name resolution is ignored */
  bool sender_pending = false; /* a name in `sender` is being resolved */

  /* Stream state. */
  syncwave::JitterBuffer jb;
  syncwave::SkewEstimator skew;
  std::deque<OutItem> queue;
  bool flushing = true;
  bool eos = false;
  GstFlowReturn srcresult = GST_FLOW_FLUSHING;
  GstClockID clock_id = nullptr;
  GstClockTime waiting_until = GST_CLOCK_TIME_NONE;
  bool have_header = false;
  wire::StreamHeader header;
  GstClockTime last_base_time = GST_CLOCK_TIME_NONE; /* of the packets held and sent */
  bool clock_mismatch = false;                       /* synced mode running on slave timing */
  guint64 stale = 0;         /* secure mode: audio too far from the clock, dropped */
  bool stale_warned = false; /* the first of them was announced */

  /* Sender lock. */
  /* The last sender address seen and its text form, so that the text is made once
   * per sender rather than once per packet (streaming thread only). */
  GInetAddress* last_addr = nullptr;
  std::string last_addr_text;

  syncwave::SenderSelector selector;
  /* The last header datagram of a foreign sender, replayed if it takes over. */
  GstBuffer* foreign_header = nullptr;
  std::string foreign_header_key;

  /* Statistics beyond the jitter buffer's. */
  guint64 headers = 0;
  guint64 malformed = 0;
  std::array<guint64, static_cast<size_t>(wire::Error::kCount)> malformed_by{};
  guint64 before_header = 0;
  guint64 format_resets = 0;

  /* `secret`: opens every datagram in a probe on the sink pad, before the chain
   * (syncwave-secure.h); its own lock. */
  syncwave::SecureReceive secure;
};

struct _GstSyncWaveJitter {
  GstElement parent;
  GstPad* sinkpad;
  GstPad* srcpad;
  SyncWaveJitterPrivate* priv;
};

#define gst_syncwave_jitter_parent_class parent_class
G_DEFINE_TYPE(GstSyncWaveJitter, gst_syncwave_jitter, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE(syncwavejitter, "syncwavejitter", GST_RANK_NONE,
                            GST_TYPE_SYNCWAVE_JITTER);

/* Running time of the element's clock now; NONE without a clock. */
static GstClockTime gst_syncwave_jitter_now(GstSyncWaveJitter* self) {
  GstClock* clock = gst_element_get_clock(GST_ELEMENT_CAST(self));
  if (!clock) return GST_CLOCK_TIME_NONE;
  GstClockTime t = gst_clock_get_time(clock);
  GstClockTime base = gst_element_get_base_time(GST_ELEMENT_CAST(self));
  gst_object_unref(clock);
  if (!GST_CLOCK_TIME_IS_VALID(t)) return GST_CLOCK_TIME_NONE;
  return t > base ? t - base : 0;
}

/* Wakes the src task when the jitter buffer has something earlier than what it
 * waits for. Called with the lock held. */
static void gst_syncwave_jitter_wake(SyncWaveJitterPrivate* priv) {
  if (priv->clock_id) {
    GstClockTime next = priv->jb.next_deadline();
    if (!priv->queue.empty() || next < priv->waiting_until) gst_clock_id_unschedule(priv->clock_id);
  }
  priv->cond.notify_one();
}

/* Moves what the jitter buffer releases at `now` to the output queue. Lock held. */
static void gst_syncwave_jitter_collect(SyncWaveJitterPrivate* priv, GstClockTime now) {
  syncwave::JitterOutput out;
  while (priv->jb.pop(now, &out)) {
    OutItem item;
    if (out.kind == syncwave::JitterOutput::Kind::kLoss) {
      GST_DEBUG("loss at %" G_GUINT64_FORMAT " us, %" GST_TIME_FORMAT " at pts %" GST_TIME_FORMAT,
                out.timestamp_us, GST_TIME_ARGS(out.duration_ns), GST_TIME_ARGS(out.pts_ns));
      item.event = syncwave_lost_event_new(out.timestamp_us, out.duration_ns, out.pts_ns);
    } else {
      GstBuffer* buf = GST_BUFFER_CAST(out.payload.release());
      GST_BUFFER_PTS(buf) = out.pts_ns;
      GST_BUFFER_DTS(buf) = GST_CLOCK_TIME_NONE;
      GST_BUFFER_DURATION(buf) = out.duration_ns;
      if (out.discont)
        GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
      else
        GST_BUFFER_FLAG_UNSET(buf, GST_BUFFER_FLAG_DISCONT);
      item.buffer = buf;
    }
    priv->queue.push_back(item);
  }
}

/* Releases everything held, in order, and starts a new stream. Lock held. */
static void gst_syncwave_jitter_drain(SyncWaveJitterPrivate* priv) {
  priv->jb.drain();
  gst_syncwave_jitter_collect(priv, GST_CLOCK_TIME_NONE);
  priv->skew.reset();
}

/* Malformed datagrams are dropped here, before syncwavedepay: counted by reason
 * as syncwavedepay does (malformed-<reason>). Lock held. */
static void count_malformed(SyncWaveJitterPrivate* priv, wire::Error error) {
  priv->malformed++;
  const size_t i = static_cast<size_t>(error);
  if (i > 0 && i < priv->malformed_by.size()) priv->malformed_by[i]++;
}

/* A sender taking over: what is held of the old one goes out first; the header it
 * sent while foreign, if any, goes out next (its own header repeats came while it was
 * foreign); otherwise the header in force stays until its next one. Lock held. */
static void gst_syncwave_jitter_take_over(SyncWaveJitterPrivate* priv) {
  gst_syncwave_jitter_drain(priv);
  if (priv->foreign_header && priv->foreign_header_key == priv->selector.key()) {
    wire::StreamHeader header;
    GstMapInfo map;
    if (gst_buffer_map(priv->foreign_header, &map, GST_MAP_READ)) {
      wire::ParseResult r = wire::parse(map.data, map.size);
      header = r.header;
      gst_buffer_unmap(priv->foreign_header, &map);
    }
    if (priv->have_header && priv->header != header) priv->format_resets++;
    priv->header = header;
    priv->have_header = true;
    OutItem item;
    item.buffer = gst_buffer_make_writable(priv->foreign_header);
    GST_BUFFER_PTS(item.buffer) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DTS(item.buffer) = GST_CLOCK_TIME_NONE;
    priv->foreign_header = nullptr;
    priv->queue.push_back(item);
  }
  priv->clear_foreign_header();
}

/* Time for the sender selector's timeout: the element's clock, else monotonic time. */
static GstClockTime gst_syncwave_jitter_heard_time(GstSyncWaveJitter* self) {
  GstClock* clock = gst_element_get_clock(GST_ELEMENT_CAST(self));
  GstClockTime t = GST_CLOCK_TIME_NONE;
  if (clock) {
    t = gst_clock_get_time(clock);
    gst_object_unref(clock);
  }
  return GST_CLOCK_TIME_IS_VALID(t) ? t : g_get_monotonic_time() * GST_USECOND;
}

/* Fast join: an Opus packet before any header describes the stream itself (48 kHz,
 * channels from the TOC's stereo bit), as syncwavedepay reads it too; the header
 * confirms it or restarts the stream as a format change. Raw audio needs the header.
 * `parsed` points into the mapped datagram. */
static bool adopt_opus_toc(SyncWaveJitterPrivate* priv, const wire::ParseResult& parsed) {
  if (parsed.kind != wire::Kind::kOpusAudio || parsed.audio.size == 0 ||
      wire::opus_packet_samples_48k(parsed.audio.data, parsed.audio.size) == 0)
    return false;
  priv->header.sample_rate = 48000;
  priv->header.channels = (parsed.audio.data[0] & 0x04) ? 2 : 1;
  priv->header.compression = wire::Compression::kOpus;
  priv->have_header = true;
  return true;
}

static GstFlowReturn gst_syncwave_jitter_chain(GstPad* pad, GstObject* parent, GstBuffer* buf) {
  GstSyncWaveJitter* self = GST_SYNCWAVE_JITTER(parent);
  SyncWaveJitterPrivate* priv = self->priv;
  (void)pad;

  /* Classify the datagram, once: it stays mapped until it is stored or dropped. */
  wire::Error invalid = wire::Error::kNone;
  uint64_t timestamp_us = 0;
  ReadMap map(buf);
  if (!map.mapped) {
    gst_buffer_unref(buf);
    return GST_FLOW_OK;
  }
  const wire::ParseResult parsed = wire::parse(map.info.data, map.info.size);

  /* Sender address, when udpsrc put one. */
  std::string host;
  guint16 port = 0;
  bool have_address = false;
  if (GstNetAddressMeta* meta = gst_buffer_get_net_address_meta(buf)) {
    if (G_IS_INET_SOCKET_ADDRESS(meta->addr)) {
      GInetSocketAddress* isa = G_INET_SOCKET_ADDRESS(meta->addr);
      GInetAddress* a = g_inet_socket_address_get_address(isa);
      if (priv->last_addr == nullptr || !g_inet_address_equal(a, priv->last_addr)) {
        gchar* s = g_inet_address_to_string(a);
        priv->last_addr_text = s;
        g_free(s);
        g_clear_object(&priv->last_addr);
        priv->last_addr = G_INET_ADDRESS(g_object_ref(a));
      }
      host = priv->last_addr_text;
      port = g_inet_socket_address_get_port(isa);
      have_address = true;
    }
  }

  const GstClockTime now = gst_syncwave_jitter_now(self);
  const GstClockTime base_time = gst_element_get_base_time(GST_ELEMENT_CAST(self));
  /* For the sender selector's timeout only. */
  const GstClockTime heard = gst_syncwave_jitter_heard_time(self);
  GstClockTime arrival = GST_BUFFER_DTS(buf);
  if (!GST_CLOCK_TIME_IS_VALID(arrival)) arrival = GST_BUFFER_PTS(buf);
  if (!GST_CLOCK_TIME_IS_VALID(arrival)) arrival = now;

  bool announce = false;
  bool took_over = false; /* or locked onto the first sender */
  std::string previous_key;
  bool warn_mismatch = false;
  bool warn_stale = false;
  bool stale = false;
  std::string locked_key;
  GstFlowReturn ret = GST_FLOW_OK;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (priv->flushing || priv->srcresult != GST_FLOW_OK) {
      ret = priv->flushing ? GST_FLOW_FLUSHING : priv->srcresult;
      map.unmap();
      gst_buffer_unref(buf);
      return ret;
    }
    if (priv->eos) {
      map.unmap();
      gst_buffer_unref(buf);
      return GST_FLOW_EOS;
    }

    syncwave::SenderSelector::Result sel;
    sel.verdict = syncwave::SenderSelector::Verdict::kPlay;
    if (have_address) {
      sel = priv->selector.offer(host, port, heard, parsed.kind != wire::Kind::kMalformed);
      if (sel.first) {
        took_over = true;
      } else if (sel.verdict == syncwave::SenderSelector::Verdict::kTakeOver) {
        previous_key = sel.previous;
        GST_INFO_OBJECT(self, "played sender silent, switching to %s",
                        priv->selector.key().c_str());
        gst_syncwave_jitter_take_over(priv);
        took_over = true;
      }
    }
    announce = sel.announce;
    /* Audio of the played sender: checked against the header in force while the
     * datagram is still mapped (the parse result points into it). */
    uint64_t duration = 0;
    const bool audio =
        sel.verdict != syncwave::SenderSelector::Verdict::kForeign &&
        (parsed.kind == wire::Kind::kRawAudio || parsed.kind == wire::Kind::kOpusAudio) &&
        priv->have_header;
    if (audio) {
      invalid = wire::validate(parsed.audio, priv->header);
      if (invalid == wire::Error::kNone)
        duration = wire::packet_duration_ns(parsed.audio, priv->header);
      timestamp_us = parsed.audio.timestamp_us;
    }
    map.unmap();
    if (sel.verdict == syncwave::SenderSelector::Verdict::kForeign) {
      locked_key = priv->selector.key();
      if (parsed.kind == wire::Kind::kHeader) {
        priv->clear_foreign_header();
        priv->foreign_header = buf;
        priv->foreign_header_key = address_key(host, port);
      } else {
        gst_buffer_unref(buf);
      }
      buf = nullptr;
    } else if (parsed.kind == wire::Kind::kMalformed) {
      GST_LOG_OBJECT(self, "malformed datagram: %s", wire::error_name(parsed.error));
      count_malformed(priv, parsed.error);
      gst_buffer_unref(buf);
      buf = nullptr;
    } else if (parsed.kind == wire::Kind::kHeader) {
      priv->headers++;
      if (!priv->have_header || priv->header != parsed.header) {
        if (priv->have_header) {
          GST_INFO_OBJECT(self, "new format: %u Hz, %u channels, compression %u",
                          parsed.header.sample_rate, parsed.header.channels,
                          static_cast<unsigned>(parsed.header.compression));
          gst_syncwave_jitter_drain(priv);
          priv->format_resets++;
        }
        priv->header = parsed.header;
        priv->have_header = true;
      }
      OutItem item;
      buf = gst_buffer_make_writable(buf);
      item.buffer = buf;
      GST_BUFFER_PTS(buf) = GST_CLOCK_TIME_NONE;
      GST_BUFFER_DTS(buf) = GST_CLOCK_TIME_NONE;
      buf = nullptr;
      priv->queue.push_back(item);
    } else if (!priv->have_header && !adopt_opus_toc(priv, parsed)) {
      priv->before_header++;
      gst_buffer_unref(buf);
      buf = nullptr;
    } else {
      /* Audio, checked above. */
      if (invalid != wire::Error::kNone || duration == 0) {
        GST_LOG_OBJECT(self, "invalid audio datagram: %s", wire::error_name(invalid));
        count_malformed(priv, invalid);
        gst_buffer_unref(buf);
        buf = nullptr;
      } else {
        const uint64_t send_ns = syncwave::us_to_ns(timestamp_us);
        if (base_time != priv->last_base_time) {
          /* A new base time (PAUSED -> PLAYING, or a new clock selected): running
           * times moved, so what is held goes out and the stream starts over, with
           * DISCONT for syncwavedepay to re-anchor. */
          if (GST_CLOCK_TIME_IS_VALID(priv->last_base_time)) gst_syncwave_jitter_drain(priv);
          priv->last_base_time = base_time;
        }
        /* The estimator runs in both modes: the mapping in slave mode, offset,
         * drift and jitter for the statistics in both. */
        const GstClockTime smoothed = priv->skew.update(send_ns, arrival);
        GstClockTime smoothed_now = smoothed;
        GstClockTime pts = smoothed;
        if (priv->mode == GST_SYNCWAVE_JITTER_MODE_SYNCED) {
          pts = (syncwave::time_valid(send_ns) && send_ns >= base_time) ? send_ns - base_time
                                                                        : GST_CLOCK_TIME_NONE;
          /* A clock that does not read the sender's timebase at all (a monotonic
           * clock, a sender clock hours off) would hold every packet forever or
           * drop it: play on smoothed arrival times instead, and say so. */
          const bool mismatch =
              GST_CLOCK_TIME_IS_VALID(now) &&
              (!GST_CLOCK_TIME_IS_VALID(pts) || syncwave::time_abs_diff(pts, now) > CLOCK_MISMATCH);
          if (mismatch && priv->secure.on()) {
            /* The freshness check of secure mode: the capture time is authenticated,
             * and audio plays only near it on the clock. A recording of an old secure
             * stream that the secure layer no longer remembers (a restarted receiver,
             * more than 16 streams since) is dropped here instead of played on slave
             * timing; so is a stream on a clock that does not read the sender's time. */
            stale = true;
            priv->stale++;
            if (!priv->stale_warned) warn_stale = true;
            priv->stale_warned = true;
          } else if (mismatch != priv->clock_mismatch) {
            gst_syncwave_jitter_drain(priv);
            priv->skew.update(send_ns, arrival);
            smoothed_now = priv->skew.map(send_ns);
            priv->clock_mismatch = mismatch;
            if (mismatch) warn_mismatch = true;
          }
          if (mismatch) pts = smoothed_now;
        }
        if (stale) {
          GST_LOG_OBJECT(self, "stale audio %" G_GUINT64_FORMAT " us (secure mode): dropped",
                         timestamp_us);
          gst_buffer_unref(buf);
          buf = nullptr;
        } else {
          buf = gst_buffer_make_writable(buf);
          syncwave::JitterVerdict v = priv->jb.insert(timestamp_us, duration, pts, now,
                                                      syncwave::JitterPayload(buf, unref_buffer));
          buf = nullptr;
          GST_LOG_OBJECT(self, "audio %" G_GUINT64_FORMAT " us pts %" GST_TIME_FORMAT ": %d",
                         timestamp_us, GST_TIME_ARGS(pts), static_cast<int>(v));
          gst_syncwave_jitter_collect(priv, now);
        }
      }
    }
    gst_syncwave_jitter_wake(priv);
  }

  if (warn_stale) {
    GST_ELEMENT_WARNING(self, STREAM, FAILED,
                        ("Dropping audio whose capture time is more than 10 s from the clock: "
                         "with a secret, audio plays only on the sender's clock. A replay of "
                         "an old recording looks like this; so does a pipeline clock that is "
                         "not the sender's (use syncwavesink, whose clock follows the sender)"),
                        ("secure mode: no slave-timing fallback (stats: stale)"));
  }
  if (warn_mismatch) {
    GST_ELEMENT_WARNING(self, STREAM, FAILED,
                        ("The pipeline clock does not follow the sender's clock: playing "
                         "without synchronization"),
                        ("sender time is more than %" GST_TIME_FORMAT
                         " away from the clock; use syncwavesink (it selects the sender's "
                         "clock), a realtime clock, or mode=slave",
                         GST_TIME_ARGS(CLOCK_MISMATCH)));
  }
  if (took_over) {
    /* Who is played now (the first sender, or the one that took over; previous is ""
     * for the first): syncwavesink follows it, its clock with clock=auto. */
    const std::string key = address_key(host, port);
    gst_element_post_message(
        GST_ELEMENT_CAST(self),
        gst_message_new_element(
            GST_OBJECT_CAST(self),
            gst_structure_new("syncwave-sender-changed", "address", G_TYPE_STRING, key.c_str(),
                              "host", G_TYPE_STRING, host.c_str(), "port", G_TYPE_UINT,
                              (guint)port, "previous", G_TYPE_STRING, previous_key.c_str(),
                              NULL)));
  }
  if (announce) {
    std::string key = address_key(host, port);
    GST_WARNING_OBJECT(self, "ignoring datagrams from another sender %s", key.c_str());
    gst_element_post_message(
        GST_ELEMENT_CAST(self),
        gst_message_new_element(
            GST_OBJECT_CAST(self),
            gst_structure_new("syncwave-foreign-sender", "address", G_TYPE_STRING, key.c_str(),
                              "locked", G_TYPE_STRING, locked_key.c_str(), NULL)));
  }
  return ret;
}

/* The src pad task: sends the queue in order, waits on the pipeline clock for
 * the next deadline when there is nothing to send. */
static void gst_syncwave_jitter_loop(gpointer user_data) {
  GstSyncWaveJitter* self = GST_SYNCWAVE_JITTER(user_data);
  SyncWaveJitterPrivate* priv = self->priv;
  OutItem item;
  {
    std::unique_lock<std::mutex> lk(priv->lock);
    for (;;) {
      if (priv->flushing) {
        lk.unlock();
        gst_pad_pause_task(self->srcpad);
        return;
      }
      if (!priv->queue.empty()) break;
      gst_syncwave_jitter_collect(priv, gst_syncwave_jitter_now(self));
      if (!priv->queue.empty()) break;

      const GstClockTime deadline = priv->jb.next_deadline();
      GstClock* clock = gst_element_get_clock(GST_ELEMENT_CAST(self));
      if (GST_CLOCK_TIME_IS_VALID(deadline) && clock) {
        const GstClockTime target =
            syncwave::time_add(deadline, gst_element_get_base_time(GST_ELEMENT_CAST(self)));
        GstClockID id = gst_clock_new_single_shot_id(clock, target);
        priv->clock_id = id;
        priv->waiting_until = deadline;
        lk.unlock();
        GST_LOG_OBJECT(self, "waiting until %" GST_TIME_FORMAT, GST_TIME_ARGS(deadline));
        gst_clock_id_wait(id, NULL);
        lk.lock();
        priv->clock_id = nullptr;
        priv->waiting_until = GST_CLOCK_TIME_NONE;
        gst_clock_id_unref(id);
        gst_object_unref(clock);
        continue;
      }
      if (clock) gst_object_unref(clock);
      priv->cond.wait(lk);
    }
    item = priv->queue.front();
    priv->queue.pop_front();
  }

  GstFlowReturn ret = GST_FLOW_OK;
  if (item.buffer) {
    ret = gst_pad_push(self->srcpad, item.buffer);
  } else {
    const bool is_eos = GST_EVENT_TYPE(item.event) == GST_EVENT_EOS;
    gst_pad_push_event(self->srcpad, item.event);
    if (is_eos) ret = GST_FLOW_EOS;
  }
  if (ret != GST_FLOW_OK) {
    {
      std::lock_guard<std::mutex> lk(priv->lock);
      if (!priv->flushing) priv->srcresult = ret;
    }
    GST_DEBUG_OBJECT(self, "pausing task: %s", gst_flow_get_name(ret));
    gst_pad_pause_task(self->srcpad);
    if (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS) {
      GST_ELEMENT_FLOW_ERROR(self, ret);
      gst_pad_push_event(self->srcpad, gst_event_new_eos());
    }
  }
}

static void gst_syncwave_jitter_queue_event(GstSyncWaveJitter* self, GstEvent* event) {
  SyncWaveJitterPrivate* priv = self->priv;
  std::lock_guard<std::mutex> lk(priv->lock);
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    gst_syncwave_jitter_drain(priv);
    priv->eos = true;
  }
  OutItem item;
  item.event = event;
  priv->queue.push_back(item);
  gst_syncwave_jitter_wake(priv);
}

static gboolean gst_syncwave_jitter_sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  GstSyncWaveJitter* self = GST_SYNCWAVE_JITTER(parent);
  SyncWaveJitterPrivate* priv = self->priv;

  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_FLUSH_START: {
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->flushing = true;
        priv->srcresult = GST_FLOW_FLUSHING;
        if (priv->clock_id) gst_clock_id_unschedule(priv->clock_id);
        priv->cond.notify_one();
      }
      gboolean ret = gst_pad_push_event(self->srcpad, event);
      gst_pad_pause_task(self->srcpad);
      return ret;
    }
    case GST_EVENT_FLUSH_STOP: {
      gboolean ret = gst_pad_push_event(self->srcpad, event);
      /* Sticky events still queued are flushed with the data: send the stream's
       * sticky events again (stream-start, caps, ...; a fresh TIME segment). */
      std::vector<GstEvent*> sticky;
      gst_pad_sticky_events_foreach(
          self->sinkpad,
          [](GstPad*, GstEvent** ev, gpointer user) -> gboolean {
            auto* v = static_cast<std::vector<GstEvent*>*>(user);
            GstEventType t = GST_EVENT_TYPE(*ev);
            if (t != GST_EVENT_SEGMENT && t != GST_EVENT_EOS && t != GST_EVENT_FLUSH_STOP)
              v->push_back(gst_event_ref(*ev));
            return TRUE;
          },
          &sticky);
      GstSegment segment;
      gst_segment_init(&segment, GST_FORMAT_TIME);
      sticky.push_back(gst_event_new_segment(&segment));
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->clear_queue();
        for (GstEvent* e : sticky) {
          OutItem item;
          item.event = e;
          priv->queue.push_back(item);
        }
        priv->jb.reset();
        priv->skew.reset();
        priv->flushing = false;
        priv->eos = false;
        priv->srcresult = GST_FLOW_OK;
      }
      gst_pad_start_task(self->srcpad, gst_syncwave_jitter_loop, self, NULL);
      return ret;
    }
    case GST_EVENT_SEGMENT: {
      /* Output PTS are running times: downstream gets a plain TIME segment. */
      GstSegment segment;
      gst_segment_init(&segment, GST_FORMAT_TIME);
      GstEvent* ours = gst_event_new_segment(&segment);
      gst_event_set_seqnum(ours, gst_event_get_seqnum(event));
      gst_event_unref(event);
      gst_syncwave_jitter_queue_event(self, ours);
      return TRUE;
    }
    default:
      if (GST_EVENT_IS_SERIALIZED(event)) {
        gst_syncwave_jitter_queue_event(self, event);
        return TRUE;
      }
      return gst_pad_event_default(pad, parent, event);
  }
}

static gboolean gst_syncwave_jitter_src_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  GstSyncWaveJitter* self = GST_SYNCWAVE_JITTER(parent);
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    GstClockTime latency;
    {
      std::lock_guard<std::mutex> lk(self->priv->lock);
      latency = self->priv->latency_ms * GST_MSECOND;
    }
    gboolean live = TRUE;
    GstClockTime min = 0, max = GST_CLOCK_TIME_NONE;
    if (gst_pad_peer_query(self->sinkpad, query)) gst_query_parse_latency(query, &live, &min, &max);
    min += latency;
    if (GST_CLOCK_TIME_IS_VALID(max)) max += latency;
    GST_DEBUG_OBJECT(self, "latency: live %d min %" GST_TIME_FORMAT " max %" GST_TIME_FORMAT, live,
                     GST_TIME_ARGS(min), GST_TIME_ARGS(max));
    gst_query_set_latency(query, live, min, max);
    return TRUE;
  }
  return gst_pad_query_default(pad, parent, query);
}

static gboolean gst_syncwave_jitter_src_activate_mode(GstPad* pad, GstObject* parent,
                                                      GstPadMode mode, gboolean active) {
  GstSyncWaveJitter* self = GST_SYNCWAVE_JITTER(parent);
  SyncWaveJitterPrivate* priv = self->priv;
  if (mode != GST_PAD_MODE_PUSH) return FALSE;
  if (active) {
    {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->flushing = false;
      priv->eos = false;
      priv->srcresult = GST_FLOW_OK;
    }
    return gst_pad_start_task(pad, gst_syncwave_jitter_loop, self, NULL);
  }
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->flushing = true;
    priv->srcresult = GST_FLOW_FLUSHING;
    if (priv->clock_id) gst_clock_id_unschedule(priv->clock_id);
    priv->cond.notify_one();
  }
  return gst_pad_stop_task(pad);
}

static GstStateChangeReturn gst_syncwave_jitter_change_state(GstElement* element,
                                                             GstStateChange transition) {
  GstSyncWaveJitter* self = GST_SYNCWAVE_JITTER(element);
  SyncWaveJitterPrivate* priv = self->priv;
  if (transition == GST_STATE_CHANGE_NULL_TO_READY && !priv->secure.check_start(element))
    return GST_STATE_CHANGE_FAILURE;
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    /* A new stream starts (the statistics of the last one stay readable after
     * it stopped; the counters run on). */
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->clear_queue();
    priv->jb.reset();
    priv->skew.reset();
    priv->last_base_time = GST_CLOCK_TIME_NONE;
    priv->clock_mismatch = false;
    priv->have_header = false;
    priv->selector.reset();
    priv->clear_foreign_header();
  }

  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) return ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
      /* A live element: it syncs to the clock, which only runs in PLAYING. */
      ret = GST_STATE_CHANGE_NO_PREROLL;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY: {
      /* The task is stopped: drop what is held, keep what the stats report. */
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->clear_queue();
      priv->jb.reset();
      priv->clear_foreign_header();
      break;
    }
    default:
      break;
  }
  return ret;
}

/* Pins the selector to `hosts` (literal addresses) and `port` for the `sender` set as
 * generation `generation`; ignored when `sender` was set again since. Lock held. */
static void gst_syncwave_jitter_pin(SyncWaveJitterPrivate* priv, guint generation,
                                    const std::vector<std::string>& hosts, guint16 port) {
  if (generation != priv->sender_generation) return;
  priv->sender_pending = false;
  /* Play the chosen sender from its next datagram. */
  if (priv->selector.pin(hosts, port)) gst_syncwave_jitter_drain(priv);
  gst_syncwave_jitter_wake(priv);
}

struct ResolveJob {
  GstSyncWaveJitter* self; /* a reference */
  guint generation;
  std::string host;
  guint16 port;
};

/* A host name in `sender`: resolved here, on a thread of its own, never in
 * set_property or on the streaming thread. The element plays nothing until then. */
static gpointer gst_syncwave_jitter_resolve_thread(gpointer data) {
  ResolveJob* job = static_cast<ResolveJob*>(data);
  GResolver* resolver = g_resolver_get_default();
  GError* err = NULL;
  GList* list = g_resolver_lookup_by_name(resolver, job->host.c_str(), NULL, &err);
  std::vector<std::string> hosts;
  for (GList* l = list; l; l = l->next) {
    gchar* t = g_inet_address_to_string(G_INET_ADDRESS(l->data));
    hosts.push_back(t);
    g_free(t);
  }
  g_resolver_free_addresses(list);
  g_object_unref(resolver);
  if (err) {
    GST_ELEMENT_WARNING(job->self, RESOURCE, NOT_FOUND,
                        ("Cannot resolve sender %s", job->host.c_str()), ("%s", err->message));
    g_error_free(err);
  } else {
    GST_INFO_OBJECT(job->self, "sender %s resolved to %zu addresses", job->host.c_str(),
                    hosts.size());
  }
  {
    std::lock_guard<std::mutex> lk(job->self->priv->lock);
    gst_syncwave_jitter_pin(job->self->priv, job->generation, hosts, job->port);
  }
  gst_object_unref(job->self);
  delete job;
  return NULL;
}

/* `sender`: "HOST" or "HOST:PORT" ("[V6]:PORT"), parsed by core/host_port.h. A literal
 * address applies at once; a name is resolved on its own thread. */
static void gst_syncwave_jitter_set_sender(GstSyncWaveJitter* self, const gchar* value) {
  SyncWaveJitterPrivate* priv = self->priv;
  const std::string spec = value ? value : "";
  syncwave::HostPortResult parsed;
  if (!spec.empty()) {
    parsed = syncwave::parse_host_port(spec);
    if (!parsed.ok()) {
      GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("Invalid sender \"%s\"", spec.c_str()),
                          ("expected HOST or HOST:PORT with a port in 1..65535: %s",
                           syncwave::host_port_error_message(parsed.error)));
    }
  }
  ResolveJob* job = nullptr;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->sender = spec;
    const guint generation = ++priv->sender_generation;
    if (spec.empty()) {
      priv->selector.unpin();
    } else if (!parsed.ok()) {
      gst_syncwave_jitter_pin(priv, generation, {}, 0); /* plays nothing */
    } else if (parsed.value.kind != syncwave::HostKind::kName) {
      const std::string host = canonical_address(parsed.value.host);
      gst_syncwave_jitter_pin(priv, generation, {host}, parsed.value.port);
    } else {
      /* Nothing plays until the name resolved. */
      gst_syncwave_jitter_pin(priv, generation, {}, parsed.value.port);
      priv->sender_pending = true;
      job = new ResolveJob{GST_SYNCWAVE_JITTER(gst_object_ref(self)), generation, parsed.value.host,
                           parsed.value.port};
    }
  }
  if (job) {
    GError* err = NULL;
    GThread* t =
        g_thread_try_new("syncwave-resolve", gst_syncwave_jitter_resolve_thread, job, &err);
    if (t) {
      g_thread_unref(t);
    } else {
      GST_ELEMENT_WARNING(self, RESOURCE, FAILED, ("Cannot resolve sender %s", spec.c_str()),
                          ("%s", err ? err->message : "no thread"));
      g_clear_error(&err);
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->sender_pending = false;
      }
      gst_object_unref(job->self);
      delete job;
    }
  }
}

static GstStructure* gst_syncwave_jitter_stats(GstSyncWaveJitter* self) {
  SyncWaveJitterPrivate* priv = self->priv;
  const GstClockTime now = gst_syncwave_jitter_now(self);
  const GstClockTime base_time = gst_element_get_base_time(GST_ELEMENT_CAST(self));
  std::lock_guard<std::mutex> lk(priv->lock);
  const syncwave::JitterStats& js = priv->jb.stats();
  const std::string sender = priv->selector.key();
  GstStructure* s = gst_structure_new_empty("application/x-syncwave-jitter-stats");
  gst_structure_set(s, "pushed", G_TYPE_UINT64, (guint64)js.pushed, NULL);
  gst_structure_set(s, "lost", G_TYPE_UINT64, (guint64)js.lost, NULL);
  gst_structure_set(s, "late", G_TYPE_UINT64, (guint64)js.late, NULL);
  gst_structure_set(s, "duplicates", G_TYPE_UINT64, (guint64)js.duplicates, NULL);
  gst_structure_set(s, "reordered", G_TYPE_UINT64, (guint64)js.reordered, NULL);
  gst_structure_set(s, "foreign-packets", G_TYPE_UINT64, (guint64)priv->selector.foreign_packets(),
                    NULL);
  gst_structure_set(s, "resets", G_TYPE_UINT64,
                    (guint64)(js.resets + priv->format_resets + priv->selector.changes()), NULL);
  gst_structure_set(s, "jitter-us", G_TYPE_UINT64, (guint64)(priv->skew.jitter_ns() / 1000), NULL);
  gst_structure_set(s, "level-ms", G_TYPE_DOUBLE, priv->jb.level_ns(now) / 1e6, NULL);
  gst_structure_set(s, "loss-events", G_TYPE_UINT64, (guint64)js.loss_events, NULL);
  gst_structure_set(s, "lost-ms", G_TYPE_DOUBLE, js.lost_ns / 1e6, NULL);
  gst_structure_set(s, "discontinuities", G_TYPE_UINT64, (guint64)js.discontinuities, NULL);
  gst_structure_set(s, "overflow", G_TYPE_UINT64, (guint64)js.overflow, NULL);
  gst_structure_set(s, "malformed", G_TYPE_UINT64, priv->malformed + js.invalid, NULL);
  gst_structure_set(s, "before-header", G_TYPE_UINT64, priv->before_header, NULL);
  gst_structure_set(s, "headers", G_TYPE_UINT64, priv->headers, NULL);
  gst_structure_set(s, "held", G_TYPE_UINT, (guint)priv->jb.held(), NULL);
  gst_structure_set(s, "sender-changes", G_TYPE_UINT64, (guint64)priv->selector.changes(), NULL);
  gst_structure_set(s, "format-changes", G_TYPE_UINT64, priv->format_resets, NULL);
  gst_structure_set(s, "clock-mismatch", G_TYPE_BOOLEAN, (gboolean)priv->clock_mismatch, NULL);
  gst_structure_set(s, "stale", G_TYPE_UINT64, priv->stale, NULL);
  gst_structure_set(s, "sender", G_TYPE_STRING, sender.c_str(), NULL);
  gst_structure_set(s, "foreign-senders", G_TYPE_UINT, (guint)priv->selector.foreign_senders(),
                    NULL);
  gst_structure_set(s, "sender-pending", G_TYPE_BOOLEAN, (gboolean)priv->sender_pending, NULL);
  gst_structure_set(s, "latency-ms", G_TYPE_UINT, priv->latency_ms, NULL);
  if (priv->skew.has_base())
    gst_structure_set(s, "clock-offset-us", G_TYPE_INT64,
                      (gint64)((priv->skew.offset_ns() + (gint64)base_time) / 1000), NULL);
  if (priv->skew.has_drift())
    gst_structure_set(s, "drift-ppm", G_TYPE_DOUBLE, priv->skew.drift_ppm(), NULL);
  for (size_t i = 1; i < priv->malformed_by.size(); i++) {
    std::string field = std::string("malformed-") + wire::error_name(static_cast<wire::Error>(i));
    gst_structure_set(s, field.c_str(), G_TYPE_UINT64, priv->malformed_by[i], NULL);
  }
  return s;
}

static void gst_syncwave_jitter_set_property(GObject* object, guint prop_id, const GValue* value,
                                             GParamSpec* pspec) {
  GstSyncWaveJitter* self = GST_SYNCWAVE_JITTER(object);
  SyncWaveJitterPrivate* priv = self->priv;
  switch (prop_id) {
    case PROP_LATENCY: {
      bool changed;
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        guint ms = g_value_get_uint(value);
        changed = ms != priv->latency_ms;
        priv->latency_ms = ms;
        priv->jb.set_latency(ms * GST_MSECOND);
        gst_syncwave_jitter_wake(priv);
      }
      if (changed)
        gst_element_post_message(GST_ELEMENT_CAST(self),
                                 gst_message_new_latency(GST_OBJECT_CAST(self)));
      break;
    }
    case PROP_MODE: {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->mode = static_cast<GstSyncWaveJitterMode>(g_value_get_enum(value));
      break;
    }
    case PROP_SENDER:
      gst_syncwave_jitter_set_sender(self, g_value_get_string(value));
      break;
    case PROP_SECRET:
      priv->secure.set_secret(GST_ELEMENT_CAST(self), g_value_get_string(value));
      break;
    case PROP_LOSS_MARGIN: {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->loss_margin_ms = g_value_get_uint(value);
      priv->jb.set_decode_margin((guint64)priv->loss_margin_ms * GST_MSECOND);
      gst_syncwave_jitter_wake(priv);
      break;
    }
    case PROP_UNHEARD_LOSS: {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->unheard_loss_ms = g_value_get_uint(value);
      priv->jb.set_unheard_loss((guint64)priv->unheard_loss_ms * GST_MSECOND);
      gst_syncwave_jitter_wake(priv);
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_syncwave_jitter_get_property(GObject* object, guint prop_id, GValue* value,
                                             GParamSpec* pspec) {
  GstSyncWaveJitter* self = GST_SYNCWAVE_JITTER(object);
  SyncWaveJitterPrivate* priv = self->priv;
  switch (prop_id) {
    case PROP_LATENCY: {
      std::lock_guard<std::mutex> lk(priv->lock);
      g_value_set_uint(value, priv->latency_ms);
      break;
    }
    case PROP_MODE: {
      std::lock_guard<std::mutex> lk(priv->lock);
      g_value_set_enum(value, priv->mode);
      break;
    }
    case PROP_SENDER: {
      std::lock_guard<std::mutex> lk(priv->lock);
      g_value_set_string(value, priv->sender.empty() ? NULL : priv->sender.c_str());
      break;
    }
    case PROP_LOSS_MARGIN: {
      std::lock_guard<std::mutex> lk(priv->lock);
      g_value_set_uint(value, priv->loss_margin_ms);
      break;
    }
    case PROP_UNHEARD_LOSS: {
      std::lock_guard<std::mutex> lk(priv->lock);
      g_value_set_uint(value, priv->unheard_loss_ms);
      break;
    }
    case PROP_STATS: {
      GstStructure* s = gst_syncwave_jitter_stats(self);
      priv->secure.add_stats(s);
      g_value_take_boxed(value, s);
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_syncwave_jitter_finalize(GObject* object) {
  GstSyncWaveJitter* self = GST_SYNCWAVE_JITTER(object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_syncwave_jitter_class_init(GstSyncWaveJitterClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);

  gobject_class->set_property = gst_syncwave_jitter_set_property;
  gobject_class->get_property = gst_syncwave_jitter_get_property;
  gobject_class->finalize = gst_syncwave_jitter_finalize;

  /**
   * GstSyncWaveJitter:latency:
   *
   * Time in ms between a packet's capture (its PTS) and its playout. Packets are
   * held, reordered and reported lost within it; it is added to the latency query.
   */
  g_object_class_install_property(
      gobject_class, PROP_LATENCY,
      g_param_spec_uint(
          "latency", "Latency", "Playout delay after capture, in ms", 0, MAX_LATENCY_MS,
          DEFAULT_LATENCY_MS,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWaveJitter:mode:
   *
   * `synced`: the pipeline clock reads the sender's timebase and PTS = T - base time
   * (cross-device sync). `slave`: smoothed arrival times (no shared clock).
   */
  g_object_class_install_property(
      gobject_class, PROP_MODE,
      g_param_spec_enum(
          "mode", "Mode", "How sender timestamps become running time",
          GST_TYPE_SYNCWAVE_JITTER_MODE, DEFAULT_MODE,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  /**
   * GstSyncWaveJitter:loss-margin:
   *
   * Milliseconds before a missing packet's playout time at which it is reported lost
   * (at most half the latency): time for the decoder to conceal it and for the
   * concealment to reach the output while the device still has room for it. An
   * audio device buffers tens of milliseconds ahead of what it plays, so a loss
   * reported 2 ms before its time is heard as a hole; syncwavesink sets this from
   * its device's queue. A packet arriving after it is late.
   */
  g_object_class_install_property(
      gobject_class, PROP_LOSS_MARGIN,
      g_param_spec_uint(
          "loss-margin", "Loss margin",
          "Report a missing packet this many ms before its playout time", 0, MAX_LATENCY_MS,
          DEFAULT_LOSS_MARGIN_MS,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWaveJitter:unheard-loss:
   *
   * Milliseconds of packets in a row reported lost at their deadline (see
   * `loss-margin`) although no later packet has arrived yet; 0 (the default): a gap is
   * reported only once a later packet reveals it (a sender that stops is not loss). A
   * decoder that holds each packet until the next item reaches it (opusdec with
   * in-band FEC, one packet) needs it: otherwise the packet before a loss comes out
   * only when a later packet arrives. syncwavesink sets it for in-band FEC. A stopped
   * sender leaves this much concealment.
   */
  g_object_class_install_property(
      gobject_class, PROP_UNHEARD_LOSS,
      g_param_spec_uint(
          "unheard-loss", "Unheard loss",
          "Report up to this many ms of packets lost at their deadline before a later one "
          "arrives (0 = only gaps a later packet reveals)", 0, MAX_LATENCY_MS, 0,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWaveJitter:sender:
   *
   * "HOST" or "HOST:PORT" ("[V6ADDR]:PORT", port 1..65535) of the one sender to play
   * when several send to the port; NULL: the first sender heard. A literal address
   * applies at once; a name is resolved on a thread of its own and nothing plays
   * until it resolved (stats sender-pending). An invalid value warns and plays
   * nothing.
   */
  g_object_class_install_property(
      gobject_class, PROP_SENDER,
      g_param_spec_string(
          "sender", "Sender", "Only play this sender (HOST or HOST:PORT)", DEFAULT_SENDER,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWaveJitter:stats:
   *
   * pushed, lost (packets), late, duplicates, reordered, foreign-packets, resets
   * (timestamp jumps + format changes + sender changes), jitter-us (RFC 3550),
   * level-ms (how far ahead of playout the newest packet is), loss-events, lost-ms,
   * discontinuities (silences), overflow, malformed (and malformed-<reason> as in
   * syncwavedepay: they are dropped here first), before-header, headers, held,
   * sender-changes, format-changes, foreign-senders (addresses heard besides the played
   * one), sender-pending (a name in `sender` is being resolved), clock-mismatch (synced mode, but
   * the clock does not read the sender's timebase: playing on slave timing), stale (with a
   * secret, audio more than 10 s from the clock: dropped instead, see docs/reliability.md),
   * sender ("HOST:PORT" of
   * the locked sender, "" when unknown), latency-ms; clock-offset-us (arrival clock time - sender
   * time, minimum-filtered) once a packet arrived and drift-ppm after 10 s of stream;
   * secure (a secret is set) and, on a build with secure mode, secure-opened,
   * secure-rejected, secure-rejected-<reason> (plain, truncated, bad-version,
   * auth-failed, replayed, too-old: datagrams dropped before the chain, network
   * duplicates of a secure stream among the replayed) and secure-streams.
   */
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics", "Jitter buffer statistics", GST_TYPE_STRUCTURE,
                         (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  /**
   * GstSyncWaveJitter:secret:
   *
   * Passphrase of a secure stream (docs/wire-format.md, "Secure framing"): only
   * datagrams sealed with it are played; plain ones, other keys', changed, cut and
   * replayed ones are dropped and counted by reason, and the first of each kind from an
   * address is announced with a warning ("datagrams from ADDR fail authentication:
   * wrong secret?") and an element message "syncwave-secure-rejected". The key is
   * derived once when this is set. NULL or "" (default): plain SYNC v1. Write-only; on
   * a build without secure mode, a secret makes the element fail to start.
   */
  g_object_class_install_property(
      gobject_class, PROP_SECRET,
      g_param_spec_string(
          "secret", "Secret", "Passphrase: play only datagrams sealed with it (NULL = plain)", NULL,
          (GParamFlags)(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "SyncWave jitter buffer", "Filter/Network",
      "Orders SYNC datagrams, stamps them with their playout running time and reports "
      "lost packets",
      "SyncWave");
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_syncwave_jitter_change_state);

  gst_type_mark_as_plugin_api(GST_TYPE_SYNCWAVE_JITTER_MODE, (GstPluginAPIFlags)0);
  GST_DEBUG_CATEGORY_INIT(gst_syncwave_jitter_debug, "syncwavejitter", 0, "SyncWave jitter buffer");
}

static void gst_syncwave_jitter_init(GstSyncWaveJitter* self) {
  self->priv = new SyncWaveJitterPrivate();

  self->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
  gst_pad_set_chain_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_syncwave_jitter_chain));
  gst_pad_set_event_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_syncwave_jitter_sink_event));
  GST_PAD_SET_PROXY_CAPS(self->sinkpad);
  /* First of the pad's probes: syncwavesink's, added later, sees opened datagrams. */
  self->priv->secure.attach(GST_ELEMENT_CAST(self), self->sinkpad);
  gst_element_add_pad(GST_ELEMENT_CAST(self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template(&src_template, "src");
  gst_pad_set_query_function(self->srcpad, GST_DEBUG_FUNCPTR(gst_syncwave_jitter_src_query));
  gst_pad_set_activatemode_function(self->srcpad,
                                    GST_DEBUG_FUNCPTR(gst_syncwave_jitter_src_activate_mode));
  GST_PAD_SET_PROXY_CAPS(self->srcpad);
  gst_element_add_pad(GST_ELEMENT_CAST(self), self->srcpad);
}
