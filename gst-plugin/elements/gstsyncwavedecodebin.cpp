/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-syncwavedecodebin
 * @title: syncwavedecodebin
 * @short_description: SyncWave's decoder switch: raw audio passes, Opus is decoded, every
 * buffer keeps its place on the stream's timeline
 *
 * syncwavedepay outputs what the sender sends: raw F32LE or Opus, and a stream can change
 * from one to the other (the sender restarted with another preset). This bin follows it.
 * For `audio/x-raw` the input goes straight to its audioconvert; for `audio/x-opus` an
 * opusdec (with packet-loss concealment) is put in front of it, from the CAPS event on,
 * and taken out again when the caps go back to raw.
 *
 * Each decoded buffer is stamped with the time of the packet (or GAP event) that went in
 * for it. opusdec's own stamps cannot be trusted here: with in-band FEC it outputs a
 * packet only once the next one has arrived, and after a DISCONT it stamps that output
 * with the newer packet's time, one frame late.
 *
 * In-band FEC is decided from the first Opus packet's TOC byte: only SILK and hybrid
 * frames can carry it. For a CELT stream (music at 64 kb/s and more) the decoder conceals
 * with PLC and holds nothing. `fec-hold` tells how long the decoder holds each packet
 * (0 without FEC): a jitter buffer must report a loss that much earlier for the packet
 * before it to be in time (syncwavejitter's `unheard-loss` and `loss-margin`; syncwavesink
 * sets them from the `notify::fec-hold` signal).
 *
 * ## Example launch lines
 * A receiver built by hand, raw or Opus, whichever the sender sends:
 * |[
 * gst-launch-1.0 udpsrc port=5555 ! syncwavejitter ! syncwavedepay ! syncwavedecodebin ! audioresample ! autoaudiosink
 * ]|
 * Decoding to a file, without a jitter buffer:
 * |[
 * gst-launch-1.0 udpsrc port=5555 ! syncwavedepay ! syncwavedecodebin ! wavenc ! filesink location=out.wav
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstsyncwavedecodebin.h"

#include <deque>
#include <mutex>
#include <utility>

#include "wire_format.h"

GST_DEBUG_CATEGORY_STATIC(gst_syncwave_decode_bin_debug);
#define GST_CAT_DEFAULT gst_syncwave_decode_bin_debug

/* At most this many packets (or gaps) wait for their decoded output: opusdec holds one
 * with in-band FEC, none otherwise. More means the decoder dropped input. */
#define MAX_PENDING 64
/* A decoded buffer this much shorter than what went in still takes all of it. */
#define DURATION_SLACK (500 * GST_USECOND)
/* The hold of a packet without a duration (20 ms is Opus's usual frame). */
#define DEFAULT_FRAME (20 * GST_MSECOND)
#define MAX_HOLD_MS 120

enum {
  PROP_0,
  PROP_DECODER,
  PROP_SWITCHES,
  PROP_FEC_HOLD,
  N_PROPS,
};
static GParamSpec* props[N_PROPS];

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format=(string)F32LE, layout=(string)interleaved; "
                    "audio/x-opus"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("audio/x-raw"));

struct SyncWaveDecodeBinPrivate {
  GstPad* sinkpad = nullptr; /* ghost: to convert's sink, or opusdec's */
  GstElement* convert = nullptr;
  /* opusdec while the stream is Opus. Changed on the streaming thread only (in the CAPS
   * probe), read elsewhere under the lock. */
  GstElement* decoder = nullptr;

  std::mutex lock;
  bool opus = false;
  guint64 switches = 0;
  /* What went into the decoder, in order: each packet's or gap's place on the timeline.
   * Its output is stamped from this (restamp_probe). */
  std::deque<std::pair<GstClockTime, GstClockTime>> pending;
  bool fec_decided = false; /* use-inband-fec was set from a packet's TOC */
  guint fec_hold_ms = 0;
};

struct _GstSyncWaveDecodeBin {
  GstBin parent;
  SyncWaveDecodeBinPrivate* priv;
};

#define gst_syncwave_decode_bin_parent_class parent_class
G_DEFINE_TYPE(GstSyncWaveDecodeBin, gst_syncwave_decode_bin, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE(syncwavedecodebin, "syncwavedecodebin", GST_RANK_NONE,
                            GST_TYPE_SYNCWAVE_DECODE_BIN);

/* Out of opusdec: its output comes in the order of its input, so each buffer takes the
 * place of what went in first. */
static GstPadProbeReturn restamp_probe(GstPad*, GstPadProbeInfo* info, gpointer user_data) {
  SyncWaveDecodeBinPrivate* priv = GST_SYNCWAVE_DECODE_BIN(user_data)->priv;
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  GstClockTime pts;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (priv->pending.empty() || !GST_BUFFER_DURATION_IS_VALID(buf)) return GST_PAD_PROBE_OK;
    pts = priv->pending.front().first;
    GstClockTime left = GST_BUFFER_DURATION(buf);
    while (left > 0 && !priv->pending.empty()) {
      auto& head = priv->pending.front();
      if (head.second <= left + DURATION_SLACK) {
        left -= MIN(left, head.second);
        priv->pending.pop_front();
      } else {
        head.first += left;
        head.second -= left;
        left = 0;
      }
    }
  }
  if (GST_BUFFER_PTS(buf) != pts) {
    buf = gst_buffer_make_writable(buf);
    GST_BUFFER_PTS(buf) = pts;
    GST_PAD_PROBE_INFO_DATA(info) = buf;
  }
  return GST_PAD_PROBE_OK;
}

/* Puts opusdec in front of the converter (opus) or takes it out. On the streaming thread,
 * in the probe of the CAPS event, before the event goes on to the new target: the ghost
 * pad's internal pad is linked anew, so its sticky events (stream-start, the new caps,
 * the segment) reach the new target in order. */
static void switch_decoder(GstSyncWaveDecodeBin* self, bool opus) {
  SyncWaveDecodeBinPrivate* priv = self->priv;
  GST_INFO_OBJECT(self, "switching to %s", opus ? "Opus (opusdec)" : "raw audio");
  GstElement* old = priv->decoder;
  if (old != NULL) {
    {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->decoder = NULL;
    }
    gst_element_set_state(old, GST_STATE_NULL);
    gst_bin_remove(GST_BIN(self), old); /* unlinks it from the ghost pad and convert */
  }
  GstPad* target = NULL;
  GstElement* dec = opus ? gst_element_factory_make("opusdec", "opusdec") : NULL;
  if (dec != NULL) {
    g_object_set(dec, "plc", TRUE, "use-inband-fec", FALSE, NULL);
    GstPad* dec_src = gst_element_get_static_pad(dec, "src");
    gst_pad_add_probe(dec_src, GST_PAD_PROBE_TYPE_BUFFER, restamp_probe, self, NULL);
    gst_object_unref(dec_src);
    gst_bin_add(GST_BIN(self), dec);
    target = gst_element_get_static_pad(dec, "sink");
    /* The ghost pad lets go of convert's sink before opusdec takes it. */
    gst_ghost_pad_set_target(GST_GHOST_PAD(priv->sinkpad), target);
    if (!gst_element_link(dec, priv->convert))
      GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("opusdec does not link to audioconvert"), (NULL));
    gst_element_sync_state_with_parent(dec);
  } else {
    if (opus)
      GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("opusdec is not installed"),
                        ("install gstreamer1.0-plugins-base (opus) to play Opus streams"));
    target = gst_element_get_static_pad(priv->convert, "sink");
    gst_ghost_pad_set_target(GST_GHOST_PAD(priv->sinkpad), target);
  }
  gst_object_unref(target);
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->decoder = dec;
    priv->opus = opus;
    priv->switches++;
    priv->pending.clear();
    priv->fec_decided = false;
    priv->fec_hold_ms = 0;
  }
  /* Until a packet says whether opusdec holds for in-band FEC. */
  g_object_notify_by_pspec(G_OBJECT(self), props[PROP_FEC_HOLD]);
  g_object_notify_by_pspec(G_OBJECT(self), props[PROP_DECODER]);
}

/* Into the bin (the ghost sink pad): switches on CAPS; while Opus, notes where each
 * packet and gap belongs, and decides in-band FEC from the first packet. */
static GstPadProbeReturn input_probe(GstPad*, GstPadProbeInfo* info, gpointer user_data) {
  GstSyncWaveDecodeBin* self = GST_SYNCWAVE_DECODE_BIN(user_data);
  SyncWaveDecodeBinPrivate* priv = self->priv;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
    bool decided_now = false, fec = false;
    GstElement* dec = NULL;
    {
      std::lock_guard<std::mutex> lk(priv->lock);
      if (!priv->opus || priv->decoder == NULL) return GST_PAD_PROBE_OK;
      if (!priv->fec_decided) {
        /* In-band FEC makes opusdec hold every packet until the next one has come (one
         * frame of latency): on only when the frames can carry it. */
        priv->fec_decided = true;
        decided_now = true;
        guint8 toc[1] = {0};
        fec = gst_buffer_extract(buf, 0, toc, 1) == 1 &&
              syncwave::wire::opus_packet_may_carry_fec(toc, 1);
        const GstClockTime frame =
            GST_BUFFER_DURATION_IS_VALID(buf) ? GST_BUFFER_DURATION(buf) : DEFAULT_FRAME;
        priv->fec_hold_ms =
            fec ? (guint)MIN(gst_util_uint64_scale_ceil(frame, 1, GST_MSECOND), MAX_HOLD_MS) : 0;
        dec = GST_ELEMENT(gst_object_ref(priv->decoder));
        GST_INFO_OBJECT(self, "Opus TOC 0x%02x: in-band FEC %s", toc[0],
                        fec ? "on (SILK/hybrid frames)" : "off (CELT frames)");
      }
      if (GST_BUFFER_PTS_IS_VALID(buf) && GST_BUFFER_DURATION_IS_VALID(buf) &&
          priv->pending.size() < MAX_PENDING)
        priv->pending.emplace_back(GST_BUFFER_PTS(buf), GST_BUFFER_DURATION(buf));
    }
    if (decided_now) {
      g_object_set(dec, "use-inband-fec", (gboolean)fec, NULL);
      gst_object_unref(dec);
      g_object_notify_by_pspec(G_OBJECT(self), props[PROP_FEC_HOLD]);
    }
    return GST_PAD_PROBE_OK;
  }

  GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
    GstCaps* caps;
    gst_event_parse_caps(event, &caps);
    const bool opus = gst_structure_has_name(gst_caps_get_structure(caps, 0), "audio/x-opus");
    bool change;
    {
      std::lock_guard<std::mutex> lk(priv->lock);
      change = opus != priv->opus || (opus && priv->decoder == NULL);
    }
    if (change) switch_decoder(self, opus);
  }
  std::lock_guard<std::mutex> lk(priv->lock);
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_GAP: {
      /* opusdec conceals a gap: its output takes the gap's place. */
      GstClockTime ts, dur;
      gst_event_parse_gap(event, &ts, &dur);
      if (priv->opus && GST_CLOCK_TIME_IS_VALID(ts) && GST_CLOCK_TIME_IS_VALID(dur) &&
          priv->pending.size() < MAX_PENDING)
        priv->pending.emplace_back(ts, dur);
      break;
    }
    case GST_EVENT_FLUSH_STOP:
    case GST_EVENT_STREAM_START:
    case GST_EVENT_SEGMENT:
    case GST_EVENT_CAPS:
      priv->pending.clear();
      break;
    default:
      break;
  }
  return GST_PAD_PROBE_OK;
}

static GstStateChangeReturn gst_syncwave_decode_bin_change_state(GstElement* element,
                                                                 GstStateChange transition) {
  SyncWaveDecodeBinPrivate* priv = GST_SYNCWAVE_DECODE_BIN(element)->priv;
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->pending.clear();
    priv->fec_decided = false;
  }
  return ret;
}

static void gst_syncwave_decode_bin_get_property(GObject* object, guint prop_id, GValue* value,
                                                 GParamSpec* pspec) {
  SyncWaveDecodeBinPrivate* priv = GST_SYNCWAVE_DECODE_BIN(object)->priv;
  std::lock_guard<std::mutex> lk(priv->lock);
  switch (prop_id) {
    case PROP_DECODER:
      g_value_set_string(value, priv->opus ? "opus" : "none");
      break;
    case PROP_SWITCHES:
      g_value_set_uint64(value, priv->switches);
      break;
    case PROP_FEC_HOLD:
      g_value_set_uint(value, priv->fec_hold_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void gst_syncwave_decode_bin_finalize(GObject* object) {
  delete GST_SYNCWAVE_DECODE_BIN(object)->priv;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_syncwave_decode_bin_class_init(GstSyncWaveDecodeBinClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->get_property = gst_syncwave_decode_bin_get_property;
  gobject_class->finalize = gst_syncwave_decode_bin_finalize;
  element_class->change_state = gst_syncwave_decode_bin_change_state;

  props[PROP_DECODER] = g_param_spec_string(
      "decoder", "Decoder", "What decodes the stream now: \"none\" (raw audio) or \"opus\"",
      "none", (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  props[PROP_SWITCHES] = g_param_spec_uint64(
      "switches", "Switches", "How often the decoder was switched in or out (caps changes)", 0,
      G_MAXUINT64, 0, (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  props[PROP_FEC_HOLD] = g_param_spec_uint(
      "fec-hold", "FEC hold (ms)",
      "How long the decoder holds each packet for in-band FEC (0: no FEC, or not Opus); "
      "notified when it is decided from the first Opus packet",
      0, MAX_HOLD_MS, 0, (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_properties(gobject_class, N_PROPS, props);

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "SyncWave decoder switch", "Codec/Decoder/Audio/Bin",
      "Decodes a SyncWave stream, raw or Opus, following it when it changes; every buffer "
      "keeps its place on the stream's timeline",
      "SyncWave developers");
  GST_DEBUG_CATEGORY_INIT(gst_syncwave_decode_bin_debug, "syncwavedecodebin", 0,
                          "SyncWave decoder switch");
}

static void gst_syncwave_decode_bin_init(GstSyncWaveDecodeBin* self) {
  SyncWaveDecodeBinPrivate* priv = new SyncWaveDecodeBinPrivate();
  self->priv = priv;
  priv->convert = gst_element_factory_make("audioconvert", "convert");
  GstPad* conv_sink = NULL;
  GstPad* conv_src = NULL;
  if (priv->convert != NULL) {
    gst_bin_add(GST_BIN(self), priv->convert);
    conv_sink = gst_element_get_static_pad(priv->convert, "sink");
    conv_src = gst_element_get_static_pad(priv->convert, "src");
  } else {
    GST_ERROR_OBJECT(self, "audioconvert is missing; the bin will not link");
  }
  priv->sinkpad =
      gst_ghost_pad_new_no_target_from_template("sink", gst_static_pad_template_get(&sink_template));
  if (conv_sink) gst_ghost_pad_set_target(GST_GHOST_PAD(priv->sinkpad), conv_sink);
  gst_pad_add_probe(priv->sinkpad,
                    (GstPadProbeType)(GST_PAD_PROBE_TYPE_BUFFER |
                                      GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
                                      GST_PAD_PROBE_TYPE_EVENT_FLUSH),
                    input_probe, self, NULL);
  gst_element_add_pad(GST_ELEMENT(self), priv->sinkpad);
  GstPad* src =
      gst_ghost_pad_new_no_target_from_template("src", gst_static_pad_template_get(&src_template));
  if (conv_src) gst_ghost_pad_set_target(GST_GHOST_PAD(src), conv_src);
  gst_element_add_pad(GST_ELEMENT(self), src);
  if (conv_sink) gst_object_unref(conv_sink);
  if (conv_src) gst_object_unref(conv_src);
}
