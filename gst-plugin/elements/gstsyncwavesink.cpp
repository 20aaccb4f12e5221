/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-syncwavesink
 * @title: syncwavesink
 * @short_description: SyncWave receiver: plays a stream in sync with every other receiver
 *
 * See the comment below and docs/ for what it does and its properties.
 *
 * ## Example launch lines
 * Plays in sync on the default output, on the sender's clock:
 * |[
 * gst-launch-1.0 udpsrc port=5555 ! syncwavesink latency=60
 * ]|
 * On a named PulseAudio output, 150 ms earlier (a Bluetooth speaker), with a secret:
 * |[
 * gst-launch-1.0 udpsrc port=5555 ! syncwavesink device=bluez_sink.XX delay=-150 secret="our passphrase"
 * ]|
 */
/* syncwavesink: a bin that plays a SyncWave stream in sync with every other receiver.
 *
 *   sink ─► syncwavejitter ─► syncwavedepay ─► syncwavedecodebin ─► audioresample ─► volume
 *            (latency)                        (opusdec when the caps are audio/x-opus,
 *                                              then audioconvert)
 *        ─► F32LE ─►[rate]─► audioconvert ─►(pad offset = delay)─►[level]─► audio-sink
 *
 * - The bin provides the shared clock to its pipeline (provide_clock): every sample
 *   renders when that clock reads its capture time + latency + delay. `clock` picks
 *   it (syncwave-clock.h); `auto` starts on the system clock and, as soon as the
 *   jitter names the played sender, switches to a net client clock to port 5556 of
 *   that address by posting CLOCK_LOST once it synced (the application re-selects the
 *   clock by going PAUSED→PLAYING, as gst-launch-1.0 does). A clock is waited for only
 *   through its `synced` signal (watch_clock): nothing blocks. When nothing answers
 *   within `clock-timeout`, it warns and plays on the system clock until it does.
 *   With `secret`, net and auto clocks speak the sealed exchange (core/secure_clock.h).
 * - The latency query is answered with the latency upstream of the audio sink (the
 *   jitter's plus decoding), so the sink's own buffering does not move the render time.
 * - Drift and placement [rate]: GStreamer's audio sinks only compute where each
 *   buffer should land (slave-method=resample); the data is never resampled, so drift
 *   accumulates until the sink jumps (alignment-threshold). Here, when the audio sink
 *   is (or contains) a GstAudioBaseSink, a buffer probe reads where the device is and
 *   hands each buffer to an OutputPlacer (core/output_placer.h: drift loop, one-off
 *   alignment steps, gaps for content that jumped, resampling), which returns the
 *   samples to write and their place on the output's own contiguous timeline. The
 *   device is read through supported APIs only: the syncwave-device-position query
 *   (syncwave-device-position.h; answered by syncwavepulsesink: absolute placement),
 *   else the clock the sink provides (anchored drift correction).
 *   `drift-correction` turns it off; sinks without a clock (appsink, fakesink) are
 *   left untouched.
 * - The audio sink: `audio-sink` if set; else syncwavepulsesink (with `device`) when a
 *   PulseAudio server answers: its clock is the play position fitted from the server's
 *   timing reports, microseconds where pulsesink's interpolated stream time wanders by
 *   half a millisecond; else pulsesink/alsasink with `device`, or autoaudiosink.
 * - `delay` is a pad offset before the audio sink: it shifts the running time, it does
 *   not drop or insert samples.
 *
 * Example: gst-launch-1.0 udpsrc port=5555 ! syncwavesink latency=60
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/audio/audio.h>
#include <gst/controller/controller.h>
#include <gst/net/net.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>

#include "clock_spec.h"
#include "gstsyncwavesink.h"
#include "output_placer.h"
#include "playout_monitor.h"
#include "syncwave-clock.h"
#include "syncwave-device-position.h"
#include "syncwave-secure.h"
#include "wire_format.h"

GST_DEBUG_CATEGORY_STATIC(gst_syncwave_sink_debug);
#define GST_CAT_DEFAULT gst_syncwave_sink_debug

#define DEFAULT_LATENCY_MS 60
#define DEFAULT_AUTO_LATENCY FALSE
/* How often the playout monitor decides (it keeps histograms; deciding scans them). */
#define PLAYOUT_EVAL_PERIOD (100 * GST_MSECOND)
/* A transit further off than this: the clock does not read the sender's timebase. */
#define PLAYOUT_MAX_TRANSIT (10 * GST_SECOND)
/* Losses are reported this much before their time on top of what the device holds
 * (syncwavejitter loss-margin), and that is set again when the device's queue moves
 * by more than LOSS_MARGIN_STEP. Before the device is known: DEFAULT_LOSS_MARGIN. */
#define LOSS_MARGIN_EXTRA_MS 10
#define LOSS_MARGIN_STEP_MS 5
#define DEFAULT_LOSS_MARGIN_MS 40
#define DEFAULT_CLOCK "auto"
#define DEFAULT_VOLUME 1.0
#define DEFAULT_MUTE FALSE
/* A volume or mute change goes to its new gain in this much stream time (linear). */
#define VOLUME_RAMP (20 * GST_MSECOND)
#define RAMP_LEAD (20 * GST_USECOND)
#define DEFAULT_DELAY_MS 0
#define DEFAULT_DRIFT_CORRECTION TRUE
#define DEFAULT_CLOCK_TIMEOUT_MS 2000
#define DEFAULT_AUTO_CLOCK_PORT syncwave::kDefaultNetClockPort
#define MAX_DELAY_MS 10000
#define MAX_LATENCY_MS 10000

enum {
  PROP_0,
  PROP_LATENCY,
  PROP_AUTO_LATENCY,
  PROP_CLOCK,
  PROP_CLOCK_TIMEOUT,
  PROP_AUTO_CLOCK_PORT,
  PROP_DEVICE,
  PROP_AUDIO_SINK,
  PROP_VOLUME,
  PROP_MUTE,
  PROP_DELAY,
  PROP_DRIFT_CORRECTION,
  PROP_METER_INTERVAL,
  PROP_STATS,
  PROP_SECRET,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-syncwave"));

struct SyncWaveSinkPrivate {
  ~SyncWaveSinkPrivate() {
    gst_clear_object(&custom_sink);
    std::fill(clock_key.begin(), clock_key.end(), 0);
    gst_clear_object(&clock);
    gst_clear_object(&pending);
    if (timeout_id) gst_clock_id_unref(timeout_id);
    gst_clear_object(&device_clock);
    gst_clear_object(&device_sink);
  }

  std::mutex lock;

  /* Properties. */
  guint latency_ms = DEFAULT_LATENCY_MS;
  bool auto_latency = DEFAULT_AUTO_LATENCY;
  std::string clock_str = DEFAULT_CLOCK;
  syncwave::ClockSpec clock_spec;
  guint clock_timeout_ms = DEFAULT_CLOCK_TIMEOUT_MS;
  guint auto_clock_port = DEFAULT_AUTO_CLOCK_PORT;
  std::string device;
  guint64 meter_interval = 0; /* ns; 0: no level element */
  GstElement* custom_sink = nullptr;
  gdouble volume = DEFAULT_VOLUME;
  gboolean mute = DEFAULT_MUTE;
  gint delay_ms = DEFAULT_DELAY_MS;
  bool drift_enabled = DEFAULT_DRIFT_CORRECTION;

  /* Children (owned by the bin). */
  GstElement* jitter = nullptr;
  GstElement* depay = nullptr;
  GstElement* decode = nullptr; /* syncwavedecodebin: opusdec when Opus, and audioconvert */
  GstElement* resample = nullptr;
  GstElement* vol = nullptr;
  GstElement* capsfilter = nullptr;
  GstElement* convert2 = nullptr;
  GstElement* meter = nullptr; /* level, meter-interval > 0; owned by the bin */
  /* Volume and mute changes ramp over VOLUME_RAMP (see gst_syncwave_sink_set_gain): a
   * linear control source on the volume element's "volume", enabled only while a ramp
   * runs (the element's static path costs less). Times are the volume element's
   * stream time. Under the lock. */
  GstControlSource* gain_source = nullptr;
  GstControlBinding* gain_binding = nullptr;
  GstSegment vol_segment;
  GstClockTime vol_next = GST_CLOCK_TIME_NONE; /* stream time where the next buffer starts */
  GstClockTime ramp_end = GST_CLOCK_TIME_NONE; /* a ramp runs until this stream time */
  double ramp_from = 1.0, ramp_to = 1.0;       /* gains of the ramp running */
  bool gain_pending = false; /* volume/mute changed: a ramp starts at the next buffer */
  GstElement* sink = nullptr;
  bool own_sink = false; /* made here (not audio-sink): does not preroll */
  /* With in-band FEC opusdec outputs a packet only when the next one (or the next
   * gap) has come: a loss must reach it this much earlier for the packet before it to
   * be in time (syncwavedecodebin's fec-hold; 0 without FEC). Added to the loss margin. */
  guint fec_hold_ms = 0;

  /* The shared clock. */
  GstClock* clock = nullptr;
  std::string clock_in_use;
  std::string sender_host;
  bool auto_fallback = false;
  /* A clock is waited for in one way: its "synced" signal, with clock-timeout as a
   * single-shot id on the system clock (see watch_clock). `pending` is clock=auto's net
   * clock to the played sender's host until it syncs (then it becomes `clock`);
   * `waiting` is a named clock (net://, ntp://, ptp://) in use and not synced yet. A
   * newer watch (another sender's host, a new run) makes older ones stale. */
  GstClock* pending = nullptr;
  std::string pending_name;
  bool waiting = false;
  GstClockID timeout_id = nullptr;
  guint64 clock_generation = 0;
  /* `secret` set: net and auto clocks speak the sealed exchange (core/secure_clock.h). */
  bool have_clock_key = false;
  std::array<guint8, 32> clock_key{};

  /* Drift correction and placement (core/output_placer.h): on the streaming thread,
   * stats under the lock. */
  GstElement* device_sink = nullptr; /* the GstAudioBaseSink inside audio-sink */
  GstClock* device_clock = nullptr;  /* the clock it provides */
  bool device_looked_up = false;
  syncwave::OutputPlacer placer;
  std::vector<float> scratch;
  /* The capsfilter before the output holds the device's format (see rate_probe). */
  bool output_pinned = false;
  GstAudioInfo info;
  bool info_valid = false;
  gint64 sink_delay_us = -1;

  /* Playout (core/playout_monitor.h): is audio reaching the output on time, and the
   * latency actually played at (latency_ms unless the path needed more). Packets are
   * observed on the sink pad (udpsrc's thread), buffers before the audio sink. */
  syncwave::PlayoutMonitor playout;
  guint played_latency_ms = DEFAULT_LATENCY_MS;
  GstClockTime next_eval = 0;
  gint64 transit_p99_us = -1;
  gint64 latency_need_ms = 0;
  /* The played sender (the jitter locks onto one): packets of others are not measured. */
  guint8 played_addr[16] = {0};
  gsize played_addr_len = 0;
  guint16 played_port = 0;
  GstClockTime last_played = GST_CLOCK_TIME_NONE;
  guint64 newest_stamp_us = 0; /* the played sender's newest capture time seen (0: none) */
  guint loss_margin_ms = DEFAULT_LOSS_MARGIN_MS;      /* what the jitter element has */
};

struct _GstSyncWaveSink {
  GstBin parent;
  SyncWaveSinkPrivate* priv;
};

#define gst_syncwave_sink_parent_class parent_class
G_DEFINE_TYPE(GstSyncWaveSink, gst_syncwave_sink, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE(syncwavesink, "syncwavesink", GST_RANK_NONE, GST_TYPE_SYNCWAVE_SINK);

/* ---------------------------------------------------------------- children */

static GstElement* make(const gchar* factory, const gchar* name) {
  GstElement* e = gst_element_factory_make(factory, name);
  if (e == NULL) GST_ERROR("element %s not found", factory);
  return e;
}

static void set_delay_offset(GstSyncWaveSink* self, gint delay_ms) {
  SyncWaveSinkPrivate* priv = self->priv;
  if (priv->convert2 == NULL) return;
  GstPad* src = gst_element_get_static_pad(priv->convert2, "src");
  gst_pad_set_offset(src, (gint64)delay_ms * GST_MSECOND);
  gst_object_unref(src);
}

/* Finds the GstAudioBaseSink in the audio sink (itself, or inside a bin such as
 * autoaudiosink). Returns a new reference or NULL. */
static GstElement* find_audio_base_sink(GstElement* e) {
  if (GST_IS_AUDIO_BASE_SINK(e)) return GST_ELEMENT(gst_object_ref(e));
  if (!GST_IS_BIN(e)) return NULL;
  GstElement* found = NULL;
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(e));
  GValue item = G_VALUE_INIT;
  gboolean done = FALSE;
  while (!done && found == NULL) {
    switch (gst_iterator_next(it, &item)) {
      case GST_ITERATOR_OK: {
        GstElement* child = GST_ELEMENT(g_value_get_object(&item));
        if (GST_IS_AUDIO_BASE_SINK(child)) found = GST_ELEMENT(gst_object_ref(child));
        g_value_reset(&item);
        break;
      }
      case GST_ITERATOR_RESYNC:
        gst_iterator_resync(it);
        break;
      default:
        done = TRUE;
        break;
    }
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return found;
}

/* syncwavepulsesink (the exact play position from PulseAudio's own timing reports)
 * when it is built and a PulseAudio server answers; NULL otherwise. Like
 * autoaudiosink, the candidate is opened (READY) to find out. */
static GstElement* make_pulse_output(const std::string& device) {
  GstElement* sink = gst_element_factory_make("syncwavepulsesink", "audio-sink");
  if (sink == NULL) return NULL;
  if (!device.empty()) g_object_set(sink, "device", device.c_str(), NULL);
  if (gst_element_set_state(sink, GST_STATE_READY) != GST_STATE_CHANGE_SUCCESS) {
    gst_element_set_state(sink, GST_STATE_NULL);
    gst_object_unref(gst_object_ref_sink(sink));
    return NULL;
  }
  return sink;
}

/* Puts the audio sink in place (NULL→READY): the user's; else syncwavepulsesink when
 * a PulseAudio server answers; else the platform sink with `device`, or
 * autoaudiosink. */
/* async=false on a sink that has the property (GstBaseSink). */
static void set_no_preroll(GstElement* sink) {
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(sink), "async") != NULL)
    g_object_set(sink, "async", FALSE, NULL);
}

/* autoaudiosink makes its real sink when it starts: that one does not preroll either
 * (see gst_syncwave_sink_setup_audio_sink). */
static void gst_syncwave_sink_deep_element_added(GstBin* bin, GstBin* sub_bin, GstElement* child) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(bin);
  bool own;
  GstElement* sink;
  {
    std::lock_guard<std::mutex> lk(self->priv->lock);
    own = self->priv->own_sink;
    sink = self->priv->sink != NULL ? GST_ELEMENT(gst_object_ref(self->priv->sink)) : NULL;
  }
  if (own && sink != NULL && GST_IS_BASE_SINK(child) &&
      gst_object_has_as_ancestor(GST_OBJECT(child), GST_OBJECT(sink)))
    set_no_preroll(child);
  if (sink != NULL) gst_object_unref(sink);
  GST_BIN_CLASS(parent_class)->deep_element_added(bin, sub_bin, child);
}

static gboolean gst_syncwave_sink_setup_audio_sink(GstSyncWaveSink* self) {
  SyncWaveSinkPrivate* priv = self->priv;
  GstElement* sink = NULL;
  std::string device;
  guint64 meter_interval = 0;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (priv->sink != NULL) return TRUE;
    if (priv->custom_sink != NULL) sink = GST_ELEMENT(gst_object_ref(priv->custom_sink));
    device = priv->device;
    meter_interval = priv->meter_interval;
  }
  const bool own = sink == NULL;
  if (sink == NULL) sink = make_pulse_output(device);
  if (sink == NULL && !device.empty()) {
    sink = make("pulsesink", "audio-sink");
    if (sink == NULL) sink = make("alsasink", "audio-sink");
    if (sink != NULL) g_object_set(sink, "device", device.c_str(), NULL);
  } else if (sink == NULL) {
    sink = make("autoaudiosink", "audio-sink");
  }
  if (sink == NULL) {
    GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("No audio sink available"), (NULL));
    return FALSE;
  }
  /* The output made here does not preroll (async=false; inside autoaudiosink, see
   * deep_element_added). A receiver is live: its pipeline takes a base time when set
   * to PLAYING and the jitter stamps packets on it. An async sink that had not
   * prerolled yet (no packet so far) sends the pipeline back to PAUSED until the first
   * packet reaches it, and PLAYING again takes a new base time: that packet, stamped
   * on the old one, lies as far in the future as the receiver waited, and blocks the
   * output that long (issue 11: a receiver started before its sender was silent about
   * as long as it ran alone). A user's audio-sink is left as given. */
  if (own) set_no_preroll(sink);
  /* A new element's floating ref goes to the bin; for the user's element the bin
   * takes its own and we drop the one taken above. */
  const bool floating = g_object_is_floating(sink);
  gst_bin_add(GST_BIN(self), sink);
  if (!floating) gst_object_unref(sink);
  /* meter-interval: a level element between the last converter and the audio sink
   * meters what is played (in place, no copy). */
  GstElement* upstream = priv->convert2;
  if (priv->meter != NULL) {
    /* Added for a previous audio sink: it stays linked to convert2. */
    upstream = priv->meter;
  } else if (meter_interval > 0) {
    GstElement* level = make("level", "meter");
    if (level != NULL) {
      g_object_set(level, "interval", meter_interval, "post-messages", TRUE, NULL);
      gst_bin_add(GST_BIN(self), level);
      gst_element_sync_state_with_parent(level);
      if (gst_element_link(priv->convert2, level)) {
        upstream = priv->meter = level; /* owned by the bin */
      } else {
        gst_bin_remove(GST_BIN(self), level);
      }
    }
  }
  if (!gst_element_link(upstream, sink)) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Cannot link the audio sink"), (NULL));
    gst_bin_remove(GST_BIN(self), sink);
    return FALSE;
  }
  std::lock_guard<std::mutex> lk(priv->lock);
  priv->sink = sink;
  priv->own_sink = own;
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_PROVIDE_CLOCK);
  return TRUE;
}

static void gst_syncwave_sink_remove_audio_sink(GstSyncWaveSink* self) {
  SyncWaveSinkPrivate* priv = self->priv;
  GstElement* sink;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    sink = priv->sink;
    priv->sink = NULL;
    gst_clear_object(&priv->device_clock);
    gst_clear_object(&priv->device_sink);
    priv->device_looked_up = false;
  }
  if (sink == NULL) return;
  gst_element_set_state(sink, GST_STATE_NULL);
  gst_bin_remove(GST_BIN(self), sink);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_PROVIDE_CLOCK);
}

/* The decoder's in-band FEC hold changed (syncwavedecodebin decided it from the first
 * Opus packet, or switched): opusdec then outputs a packet only when the next item has
 * reached it, so a missing packet must be reported before its deadline even before a
 * later one reveals it (up to three in a row), and the loss margin has the hold added
 * (rate_probe keeps it as the device moves). On the streaming thread. */
static void on_fec_hold(GObject* decode, GParamSpec*, gpointer user_data) {
  SyncWaveSinkPrivate* priv = GST_SYNCWAVE_SINK(user_data)->priv;
  guint hold_ms = 0;
  g_object_get(decode, "fec-hold", &hold_ms, NULL);
  guint margin_ms;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    margin_ms = (priv->sink_delay_us >= 0
                     ? (guint)(priv->sink_delay_us / 1000) + LOSS_MARGIN_EXTRA_MS
                     : DEFAULT_LOSS_MARGIN_MS) +
                hold_ms;
    priv->fec_hold_ms = hold_ms;
    priv->loss_margin_ms = margin_ms;
  }
  if (priv->jitter != NULL)
    g_object_set(priv->jitter, "unheard-loss", hold_ms * 3, "loss-margin", margin_ms, NULL);
}

/* ---------------------------------------------------------------- the clock */

/* A watch's timeout: which run and clock it belongs to (the element by weak
 * reference: the system clock's thread may call it after the element is gone). */
struct ClockWatch {
  GWeakRef self;
  guint64 generation;
};

static void clock_watch_free(gpointer data) {
  ClockWatch* w = static_cast<ClockWatch*>(data);
  g_weak_ref_clear(&w->self);
  delete w;
}

static void cancel_timeout(GstClockID id) {
  if (id == NULL) return;
  gst_clock_id_unschedule(id);
  gst_clock_id_unref(id);
}

/* A watched clock synchronized (on its own thread, or at once in watch_clock). A
 * pending auto clock becomes the bin's clock; a waiting named clock is synced now. If
 * the pipeline already selected a clock, it is asked to select again (CLOCK_LOST:
 * gst-launch-1.0 and syncwave-launch go PAUSED→PLAYING), so that the base time is taken
 * on the synchronized timebase. */
static void clock_synced(GstSyncWaveSink* self, GstClock* clock, bool immediate) {
  SyncWaveSinkPrivate* priv = self->priv;
  GstClock* lost = NULL;
  GstClockID id = NULL;
  std::string name;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (clock == priv->pending) {
      lost = priv->clock; /* the interim (or an earlier host's) clock */
      priv->clock = priv->pending;
      priv->pending = NULL;
      priv->clock_in_use = priv->pending_name;
      priv->auto_fallback = false;
    } else if (clock == priv->clock && priv->waiting) {
      priv->waiting = false;
      /* Synced before the pipeline could select it: nothing to select again. */
      if (!immediate) lost = GST_CLOCK(gst_object_ref(clock));
    } else {
      return; /* stale: an earlier sender's host, or an earlier run */
    }
    name = priv->clock_in_use;
    id = priv->timeout_id;
    priv->timeout_id = NULL;
  }
  cancel_timeout(id);
  GstClock* selected = lost ? gst_element_get_clock(GST_ELEMENT(self)) : NULL;
  GST_INFO_OBJECT(self, "%s synchronized%s", name.c_str(),
                  selected ? ", asking the pipeline to re-select its clock" : "");
  if (selected != NULL) {
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_clock_lost(GST_OBJECT(self), lost));
    gst_object_unref(selected);
  }
  if (lost) gst_object_unref(lost);
}

static void on_clock_synced(GstClock* clock, gboolean synced, gpointer user_data) {
  if (synced) clock_synced(GST_SYNCWAVE_SINK(user_data), clock, false);
}

/* clock-timeout passed without the watched clock synchronizing. clock=auto plays on
 * the system clock meanwhile; a named clock plays on, unsynchronized. Either is still
 * installed (and the clock re-selected) when it syncs later. */
static gboolean on_clock_timeout(GstClock*, GstClockTime, GstClockID, gpointer user_data) {
  ClockWatch* w = static_cast<ClockWatch*>(user_data);
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(g_weak_ref_get(&w->self));
  if (self == NULL) return TRUE;
  SyncWaveSinkPrivate* priv = self->priv;
  std::string name, host;
  bool fallback = false, waiting = false;
  guint timeout_ms = 0, port = 0;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (w->generation == priv->clock_generation) {
      fallback = priv->pending != NULL;
      waiting = priv->waiting;
      if (fallback) {
        priv->auto_fallback = true;
        priv->clock_in_use = "system (auto fallback)";
      }
      name = fallback ? priv->pending_name : priv->clock_in_use;
      host = priv->sender_host;
      port = priv->auto_clock_port;
      timeout_ms = priv->clock_timeout_ms;
    }
  }
  if (fallback) {
    GST_ELEMENT_WARNING(self, RESOURCE, NOT_FOUND,
                        ("No SyncWave time provider answered at %s:%u within %u ms; playing on "
                         "the system clock (receivers stay in sync only if the hosts' clocks are "
                         "synchronized by NTP/PTP)",
                         host.c_str(), port, timeout_ms),
                        ("still listening: %s is used as soon as it answers", name.c_str()));
  } else if (waiting) {
    GST_ELEMENT_WARNING(self, RESOURCE, NOT_FOUND,
                        ("Clock %s not synchronized after %u ms; waiting (the pipeline selects it "
                         "again once it is)",
                         name.c_str(), timeout_ms),
                        (NULL));
  }
  gst_object_unref(self);
  return TRUE;
}

/* Waits for @clock (a new reference is taken) in one way: its "synced" signal, and a
 * single-shot clock-timeout id on the system clock. @pending: clock=auto's clock for
 * @name, installed once synced; otherwise @clock is the bin's clock already and
 * waits. Makes earlier watches stale. Called without the lock. */
static void watch_clock(GstSyncWaveSink* self, GstClock* clock, bool pending,
                        const std::string& name) {
  SyncWaveSinkPrivate* priv = self->priv;
  GstClockID old_id;
  guint64 generation;
  GstClockTime timeout;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    generation = ++priv->clock_generation;
    old_id = priv->timeout_id;
    priv->timeout_id = NULL;
    if (pending) {
      gst_object_replace((GstObject**)&priv->pending, GST_OBJECT(clock));
      priv->pending_name = name;
    } else {
      priv->waiting = true;
    }
    timeout = (GstClockTime)priv->clock_timeout_ms * GST_MSECOND;
  }
  cancel_timeout(old_id);
  g_signal_connect_object(clock, "synced", G_CALLBACK(on_clock_synced), self, (GConnectFlags)0);
  GstClock* sys = gst_system_clock_obtain();
  GstClockID id = gst_clock_new_single_shot_id(sys, gst_clock_get_time(sys) + timeout);
  gst_object_unref(sys);
  ClockWatch* w = new ClockWatch;
  g_weak_ref_init(&w->self, self);
  w->generation = generation;
  gst_clock_id_wait_async(id, on_clock_timeout, w, clock_watch_free);
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (generation == priv->clock_generation && priv->timeout_id == NULL) {
      priv->timeout_id = id;
      id = NULL;
    }
  }
  cancel_timeout(id); /* a newer watch came meanwhile */
  if (!GST_OBJECT_FLAG_IS_SET(clock, GST_CLOCK_FLAG_NEEDS_STARTUP_SYNC) ||
      gst_clock_is_synced(clock))
    clock_synced(self, clock, true);
}

/* The run ends: every watch is stale, the pending clock dropped. */
static void stop_watching(SyncWaveSinkPrivate* priv) {
  GstClockID id;
  GstClock* pending;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->clock_generation++;
    id = priv->timeout_id;
    priv->timeout_id = NULL;
    pending = priv->pending;
    priv->pending = NULL;
    priv->waiting = false;
  }
  cancel_timeout(id);
  if (pending) gst_object_unref(pending);
}

/* The latency the path needs was decided: play at it. The jitter element posts a
 * LATENCY message, the application redistributes the latency (gst-launch-1.0 and
 * syncwave-launch do) and every later sample renders at capture + the new latency. */
static void gst_syncwave_sink_apply_latency(GstSyncWaveSink* self,
                                            const syncwave::PlayoutMonitor::Decision& d) {
  SyncWaveSinkPrivate* priv = self->priv;
  const guint ms = (guint)(d.latency_ns / (gint64)GST_MSECOND);
  guint configured, old;
  bool automatic;
  GstElement* jitter;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    old = priv->played_latency_ms;
    priv->played_latency_ms = ms;
    configured = priv->latency_ms;
    automatic = priv->auto_latency;
    jitter = priv->jitter ? GST_ELEMENT(gst_object_ref(priv->jitter)) : NULL;
  }
  if (jitter) {
    g_object_set(jitter, "latency", ms, NULL);
    gst_object_unref(jitter);
  }
  const gint64 p99_ms = d.transit_p99_ns / (gint64)GST_MSECOND;
  if (automatic) {
    GST_ELEMENT_INFO(self, STREAM, FAILED,
                     ("latency auto: playing at %u ms (was %u): packets arrive %" G_GINT64_FORMAT
                      " ms after capture (p99)",
                      ms, old, p99_ms),
                     (NULL));
  } else {
    GST_ELEMENT_WARNING(self, STREAM, FAILED,
                        ("Packets arrive %" G_GINT64_FORMAT
                         " ms after capture (p99); latency %u ms is too low for this path: "
                         "playing at %u ms, out of step with receivers at %u ms; use latency "
                         ">= %u on every receiver (or latency auto)",
                         p99_ms, configured, ms, configured, ms),
                        ("%.0f %% of packets or buffers late", d.late_fraction * 100.0));
  }
  GstStructure* st = gst_structure_new(
      "syncwave-latency", "latency-ms", G_TYPE_UINT, ms, "previous-ms", G_TYPE_UINT, old,
      "configured-ms", G_TYPE_UINT, configured, "transit-p99-ms", G_TYPE_INT64, p99_ms, "auto",
      G_TYPE_BOOLEAN, (gboolean)automatic, NULL);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), st));
}

/* The jitter locked onto a sender or handed over to another ("syncwave-sender-changed";
 * only a SyncWave datagram locks, a stray one does not): its packets are the played
 * ones now, and with clock=auto its host's time provider is asked (its stamps are on
 * that host's clock); the pipeline re-selects the clock once it synced. */
static void gst_syncwave_sink_sender_changed(GstSyncWaveSink* self, const GstStructure* s) {
  SyncWaveSinkPrivate* priv = self->priv;
  const gchar* host = gst_structure_get_string(s, "host");
  guint port = 0;
  gst_structure_get_uint(s, "port", &port);
  if (host == NULL || *host == '\0') return;
  GInetAddress* ia = g_inet_address_new_from_string(host);
  GstClock* clock = gst_element_get_clock(GST_ELEMENT(self));
  const GstClockTime now = clock != NULL ? gst_clock_get_time(clock) : GST_CLOCK_TIME_NONE;
  if (clock != NULL) gst_object_unref(clock);
  guint clock_port;
  bool moved, have_key = false;
  std::array<guint8, 32> key{};
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (ia != NULL) {
      const gsize len = g_inet_address_get_native_size(ia);
      if (len <= sizeof priv->played_addr) {
        memcpy(priv->played_addr, g_inet_address_to_bytes(ia), len);
        priv->played_addr_len = len;
        priv->played_port = (guint16)port;
        priv->last_played = now;
      }
    }
    if (priv->sender_host == host) {
      if (ia) g_object_unref(ia);
      return;
    }
    moved = !priv->sender_host.empty();
    priv->sender_host = host;
    if (priv->clock_spec.kind != syncwave::ClockKind::kAuto) {
      if (ia) g_object_unref(ia);
      return;
    }
    clock_port = priv->auto_clock_port;
    have_key = priv->have_clock_key;
    key = priv->clock_key;
  }
  if (ia) g_object_unref(ia);
  GST_INFO_OBJECT(self, "%s %s: asking its clock",
                  moved ? "the played sender moved to" : "playing the sender on", host);
  /* The host is an address (from the datagram): no name is resolved here. */
  syncwave::ClockSpec spec;
  spec.kind = syncwave::ClockKind::kNet;
  spec.host = host;
  spec.port = (guint16)clock_port;
  GError* err = NULL;
  GstClock* net = syncwave_clock_new(spec, NULL, &err, have_key ? key.data() : NULL);
  std::fill(key.begin(), key.end(), 0);
  if (net == NULL) {
    GST_ELEMENT_WARNING(self, RESOURCE, NOT_FOUND,
                        ("Cannot ask %s:%u for its clock; playing on the system clock", host,
                         clock_port),
                        ("%s", err ? err->message : ""));
    g_clear_error(&err);
    return;
  }
  watch_clock(self, net, true, "net://" + std::string(host) + ":" + std::to_string(clock_port) +
                                   " (auto)");
  gst_object_unref(net);
}

static void gst_syncwave_sink_handle_message(GstBin* bin, GstMessage* msg) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(bin);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT) {
    const GstStructure* s = gst_message_get_structure(msg);
    if (s != NULL && gst_structure_has_name(s, "syncwave-sender-changed"))
      gst_syncwave_sink_sender_changed(self, s);
  }
  GST_BIN_CLASS(parent_class)->handle_message(bin, msg);
}

/* Whether a packet comes from the played sender: the first heard, then the one the
 * jitter names in "syncwave-sender-changed" (gst_syncwave_sink_sender_changed); a
 * second of silence of the played one is the fallback (the jitter hands over after
 * 500 ms, so its message comes first). */
static bool from_played_sender_locked(SyncWaveSinkPrivate* priv, GstNetAddressMeta* meta,
                                      GstClockTime now, GstClockTime* last_played) {
  if (meta == NULL || !G_IS_INET_SOCKET_ADDRESS(meta->addr)) return true;
  GInetSocketAddress* sa = G_INET_SOCKET_ADDRESS(meta->addr);
  GInetAddress* ia = g_inet_socket_address_get_address(sa);
  const gsize len = g_inet_address_get_native_size(ia);
  const guint8* bytes = g_inet_address_to_bytes(ia);
  const guint16 port = g_inet_socket_address_get_port(sa);
  const bool same = len == priv->played_addr_len && port == priv->played_port &&
                    memcmp(bytes, priv->played_addr, len) == 0;
  if (same) {
    *last_played = now;
    return true;
  }
  const bool taken_over = priv->played_addr_len == 0 || !GST_CLOCK_TIME_IS_VALID(*last_played) ||
                          now > *last_played + GST_SECOND;
  if (!taken_over || len > sizeof priv->played_addr) return false;
  memcpy(priv->played_addr, bytes, len);
  priv->played_addr_len = len;
  priv->played_port = port;
  *last_played = now;
  return true;
}

/* Every packet: remember who sends (in auto mode, start looking for its clock), and
 * how long after capture it arrived, for the playout monitor. */
static GstPadProbeReturn sink_buffer_probe(GstPad* pad, GstPadProbeInfo* info, gpointer user_data) {
  (void)pad;
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(user_data);
  SyncWaveSinkPrivate* priv = self->priv;
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  GstNetAddressMeta* meta = gst_buffer_get_net_address_meta(buf);
  /* An audio datagram: type 0 or 1, then its capture time (u64 LE µs). */
  guint8 head[1 + 8];
  if (gst_buffer_extract(buf, 0, head, sizeof head) != sizeof head || head[0] > 1)
    return GST_PAD_PROBE_OK;
  const guint64 stamp_us = syncwave::wire::read_u64le(head + 1);
  if (stamp_us > G_MAXUINT64 / 1000) return GST_PAD_PROBE_OK;
  GstClock* clock = gst_element_get_clock(GST_ELEMENT(self));
  if (clock == NULL) return GST_PAD_PROBE_OK;
  const GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  const gint64 transit = GST_CLOCK_DIFF((GstClockTime)(stamp_us * 1000), now);
  if (transit > (gint64)PLAYOUT_MAX_TRANSIT || transit < -(gint64)PLAYOUT_MAX_TRANSIT)
    return GST_PAD_PROBE_OK;

  syncwave::PlayoutMonitor::Decision d;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (!from_played_sender_locked(priv, meta, now, &priv->last_played)) return GST_PAD_PROBE_OK;
    const gint64 latency = (gint64)priv->played_latency_ms * GST_MSECOND;
    /* A packet older than one already seen comes out of order: the jitter knew of its
     * gap since the later one came, and reported it lost loss-margin before its time
     * (at most half the latency), so arriving after that it is dropped as late. With
     * in-band FEC the jitter gives up on every packet that early (unheard-loss). On a
     * reordering path (a relay with jitter) these were dropped and concealed while the
     * monitor counted them in time (issue 16). A stamp a second older: a restart. */
    const bool out_of_order = priv->newest_stamp_us != 0 && stamp_us < priv->newest_stamp_us &&
                              priv->newest_stamp_us - stamp_us < G_USEC_PER_SEC;
    if (!out_of_order) priv->newest_stamp_us = stamp_us;
    const gint64 give_up = priv->fec_hold_ms > 0 || out_of_order
                               ? MIN((gint64)priv->loss_margin_ms * GST_MSECOND, latency / 2)
                               : 0;
    priv->playout.on_arrival((gint64)now, transit, latency, give_up);
    /* Without a device position (appsink, fakesink), arriving in time is playing. */
    if (!priv->placer.output_measured()) priv->playout.on_output((gint64)now, latency - transit);
    if (now < priv->next_eval) return GST_PAD_PROBE_OK;
    priv->next_eval = now + PLAYOUT_EVAL_PERIOD;
    d = priv->playout.evaluate((gint64)now, latency, priv->auto_latency);
    priv->transit_p99_us = d.transit_p99_ns >= 0 ? d.transit_p99_ns / 1000 : -1;
    priv->latency_need_ms = d.need_ns / (gint64)GST_MSECOND;
    GST_DEBUG_OBJECT(self,
                     "playout: transit p99 %.1f ms, %.1f %% late, margin p02 %.1f ms, need %" G_GINT64_FORMAT
                     " ms, playing at %u ms",
                     d.transit_p99_ns / 1e6, d.late_fraction * 100.0,
                     priv->playout.margin_percentile((gint64)now, 0.02) / 1e6, priv->latency_need_ms,
                     priv->played_latency_ms);
  }
  if (d.change) gst_syncwave_sink_apply_latency(self, d);
  return GST_PAD_PROBE_OK;
}

/* Makes the clock for a non-auto spec, or the interim system clock for auto. */
static gboolean gst_syncwave_sink_make_clock(GstSyncWaveSink* self) {
  SyncWaveSinkPrivate* priv = self->priv;
  syncwave::ClockSpec spec;
  bool have_key;
  std::array<guint8, 32> key{};
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (priv->clock != NULL) return TRUE;
    spec = priv->clock_spec;
    have_key = priv->have_clock_key;
    key = priv->clock_key;
  }
  GstClock* clock;
  std::string in_use;
  if (spec.kind == syncwave::ClockKind::kAuto) {
    clock = syncwave_clock_new_system();
    in_use = "system (auto: waiting for the sender)";
  } else {
    GError* err = NULL;
    clock = syncwave_clock_new(spec, NULL, &err, have_key ? key.data() : NULL);
    std::fill(key.begin(), key.end(), 0);
    if (clock == NULL) {
      GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                        ("Cannot create the clock %s", syncwave::to_string(spec).c_str()),
                        ("%s", err ? err->message : ""));
      g_clear_error(&err);
      return FALSE;
    }
    in_use = syncwave::to_string(spec);
  }
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (priv->clock != NULL) { /* made meanwhile on another thread */
      gst_object_unref(clock);
      return TRUE;
    }
    priv->clock = clock;
    priv->clock_in_use = in_use;
  }
  /* Running time is clock time minus a base time taken when the pipeline starts
   * playing: a clock that syncs (jumps) after that would move every sample. Nothing
   * blocks here: once it syncs, the pipeline is asked to select it again. */
  if (spec.kind != syncwave::ClockKind::kAuto) watch_clock(self, clock, false, in_use);
  return TRUE;
}

static GstClock* gst_syncwave_sink_provide_clock(GstElement* element) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(element);
  if (!gst_syncwave_sink_make_clock(self)) return NULL;
  std::lock_guard<std::mutex> lk(self->priv->lock);
  return GST_CLOCK(gst_object_ref(self->priv->clock));
}

/* ---------------------------------------------------------------- drift correction */

/* Looks up the audio sink's GstAudioBaseSink once per run, and its clock until it
 * has one (gst_element_provide_clock: NULL while the sink's ring buffer flushes). */
static void lookup_device(SyncWaveSinkPrivate* priv, GstElement** dsink, GstClock** dev) {
  GstElement* found = NULL;
  bool set_slave = false;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (!priv->device_looked_up && priv->sink != NULL) {
      priv->device_looked_up = true;
      priv->device_sink = find_audio_base_sink(priv->sink);
      set_slave = priv->device_sink != NULL && priv->drift_enabled;
    }
    if (priv->device_sink) found = GST_ELEMENT(gst_object_ref(priv->device_sink));
    if (priv->device_clock) *dev = GST_CLOCK(gst_object_ref(priv->device_clock));
  }
  if (found != NULL && set_slave) {
    /* The drift loop resamples to the device and places the stream itself: the sink
     * must not also slave (skew jumps samples, resample re-times them). The
     * audio-sink property's documentation says so. */
    g_object_set(found, "slave-method", GST_AUDIO_BASE_SINK_SLAVE_NONE, NULL);
  }
  if (found != NULL && *dev == NULL) {
    GstClock* c = gst_element_provide_clock(found);
    if (c != NULL) {
      std::lock_guard<std::mutex> lk(priv->lock);
      if (priv->device_clock == NULL) priv->device_clock = GST_CLOCK(gst_object_ref(c));
      *dev = c;
    }
  }
  *dsink = found;
}

/* What is known of the device now, through supported APIs only: the
 * syncwave-device-position query (an output that knows its play position answers
 * it), the clock the sink provides, and its latency. Without our lock: the sink may
 * call into its audio server. */
static syncwave::OutputPlacer::Device read_device(GstElement* dsink, GstClock* dev) {
  syncwave::OutputPlacer::Device d;
  if (dsink == NULL) return d;
  GstPad* pad = gst_element_get_static_pad(dsink, "sink");
  if (pad != NULL) {
    GstQuery* q = syncwave_device_position_query_new();
    GstClockTime position, queue;
    guint64 next_sample;
    if (gst_pad_query(pad, q) &&
        syncwave_device_position_query_parse(q, &position, &next_sample, &queue)) {
      d.has_position = true;
      d.position_ns = (int64_t)position;
      d.next_sample = next_sample;
      d.queue_ns = GST_CLOCK_TIME_IS_VALID(queue) ? (int64_t)queue : -1;
    }
    gst_query_unref(q);
    gst_object_unref(pad);
  }
  d.latency_ns = (int64_t)(gst_base_sink_get_latency(GST_BASE_SINK(dsink)) +
                           gst_base_sink_get_render_delay(GST_BASE_SINK(dsink)));
  if (dev != NULL) d.internal_ns = (int64_t)gst_clock_get_internal_time(dev);
  return d;
}
/* On the F32LE stream before the audio sink: measure, control, resample. */
static GstPadProbeReturn rate_probe(GstPad* pad, GstPadProbeInfo* info, gpointer user_data) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(user_data);
  SyncWaveSinkPrivate* priv = self->priv;

  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
    GstCaps* pin = NULL; /* set on the capsfilter once our lock is released */
    /* Whether the output is a device (a GstAudioBaseSink), found without our lock. */
    bool device = false;
    if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
      GstElement* out = NULL;
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        if (priv->sink) out = GST_ELEMENT(gst_object_ref(priv->sink));
      }
      if (out != NULL) {
        GstElement* base = find_audio_base_sink(out);
        device = base != NULL;
        if (base) gst_object_unref(base);
        gst_object_unref(out);
      }
    }
    std::unique_lock<std::mutex> lk(priv->lock);
    switch (GST_EVENT_TYPE(event)) {
      case GST_EVENT_CAPS: {
        GstCaps* caps;
        gst_event_parse_caps(event, &caps);
        GstAudioInfo new_info;
        const bool valid = gst_audio_info_from_caps(&new_info, caps);
        /* The same format again (the stream upstream changed and was converted to
         * the output's): the output runs on. */
        if (valid && priv->info_valid && gst_audio_info_is_equal(&new_info, &priv->info)) break;
        priv->info = new_info;
        priv->info_valid = valid;
        if (valid) priv->placer.configure(GST_AUDIO_INFO_RATE(&new_info),
                                          GST_AUDIO_INFO_CHANNELS(&new_info));
        else priv->placer.reset();
        /* A device keeps the format it was opened with: a stream in another format
         * later (another sender, a restarted one) is converted and resampled to it
         * by audioconvert/audioresample. Renegotiating the device instead opens a new
         * stream on the audio server, whose clock starts again at 0 while the audio
         * sink still places by the old one's: silent for as long as the old one ran. */
        if (valid && !priv->output_pinned && device) {
          priv->output_pinned = true;
          pin = gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, "F32LE", "layout",
                                    G_TYPE_STRING, "interleaved", "rate", G_TYPE_INT,
                                    GST_AUDIO_INFO_RATE(&new_info), "channels", G_TYPE_INT,
                                    GST_AUDIO_INFO_CHANNELS(&new_info), NULL);
          if (GST_AUDIO_INFO_CHANNELS(&new_info) > 1) {
            guint64 mask = 0;
            if (gst_audio_channel_positions_to_mask(
                    new_info.position, GST_AUDIO_INFO_CHANNELS(&new_info), FALSE, &mask))
              gst_caps_set_simple(pin, "channel-mask", GST_TYPE_BITMASK, mask, NULL);
          }
        }
        break;
      }
      case GST_EVENT_FLUSH_STOP:
      case GST_EVENT_STREAM_START:
      case GST_EVENT_SEGMENT:
        priv->placer.reset();
        break;
      default:
        break;
    }
    lk.unlock();
    if (pin != NULL) {
      GST_INFO_OBJECT(self, "the output keeps %" GST_PTR_FORMAT, pin);
      g_object_set(priv->capsfilter, "caps", pin, NULL);
      gst_caps_unref(pin);
    }
    return GST_PAD_PROBE_OK;
  }

  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  /* The volume element marks its output GAP at volume 0 or muted (the samples are
   * zeros): it is still what plays, placed and measured like any other buffer. With
   * the flag left on, a receiver muted from the control page read as "no audio" and
   * came back 170 ms late when unmuted (integration-control). */
  if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_GAP)) {
    buf = gst_buffer_make_writable(buf);
    GST_BUFFER_FLAG_UNSET(buf, GST_BUFFER_FLAG_GAP);
    GST_PAD_PROBE_INFO_DATA(info) = buf;
  }
  GstClock* master = gst_element_get_clock(GST_ELEMENT(self));
  GstClockTime base_time = gst_element_get_base_time(GST_ELEMENT(self));
  GstEvent* seg_event = gst_pad_get_sticky_event(pad, GST_EVENT_SEGMENT, 0);
  GstBuffer* out = NULL;
  bool drop = false;
  guint new_loss_margin = 0; /* set on the jitter element after our lock is released */
  /* The device is read before our lock is taken (it may call into the audio server). */
  GstClock* dev = NULL;
  GstElement* dsink = NULL;
  lookup_device(priv, &dsink, &dev);
  const syncwave::OutputPlacer::Device device = read_device(dsink, dev);
  const GstClockTime now = master ? gst_clock_get_time(master) : GST_CLOCK_TIME_NONE;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (device.queue_ns >= 0) {
      priv->sink_delay_us = device.queue_ns / 1000;
      /* A loss must be concealed before the device wants the data: as far ahead of
       * its time as the device buffers, and some; with in-band FEC one packet more,
       * since opusdec releases the packet before a loss only when the loss reaches it. */
      const guint want = (guint)(priv->sink_delay_us / 1000) + LOSS_MARGIN_EXTRA_MS +
                         priv->fec_hold_ms;
      if (want > priv->loss_margin_ms + LOSS_MARGIN_STEP_MS ||
          want + LOSS_MARGIN_STEP_MS < priv->loss_margin_ms) {
        priv->loss_margin_ms = want;
        new_loss_margin = want;
      }
    }
    if (dev == NULL || master == NULL || dev == master || seg_event == NULL || !priv->info_valid ||
        !GST_BUFFER_PTS_IS_VALID(buf) || !priv->drift_enabled) {
      goto done;
    }
    const GstSegment* seg;
    gst_event_parse_segment(seg_event, &seg);
    GstClockTime rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
    if (!GST_CLOCK_TIME_IS_VALID(rt)) goto done;
    GstMapInfo imap;
    if (!gst_buffer_map(buf, &imap, GST_MAP_READ)) {
      drop = true;
      goto done;
    }
    syncwave::OutputPlacer::Buffer in;
    in.now_ns = (int64_t)now;
    in.base_ns = (int64_t)base_time;
    in.content_ns = (int64_t)rt;
    in.pts_ns = (int64_t)GST_BUFFER_PTS(buf);
    in.discont = GST_BUFFER_IS_DISCONT(buf);
    in.delay_ns = (int64_t)priv->delay_ms * GST_MSECOND;
    in.samples = reinterpret_cast<const float*>(imap.data);
    in.frames = imap.size / GST_AUDIO_INFO_BPF(&priv->info);
    const guint64 steps = priv->placer.aligner().steps();
    const guint64 jumps = priv->placer.aligner().jumps();
    const syncwave::OutputPlacer::Block b = priv->placer.process(device, in, &priv->scratch);
    gst_buffer_unmap(buf, &imap);
    if (priv->placer.aligner().steps() != steps)
      GST_INFO_OBJECT(self, "output was %s: %s %" G_GINT64_FORMAT " frames",
                      priv->placer.last_step_frames() > 0 ? "ahead" : "behind",
                      priv->placer.last_step_frames() > 0 ? "inserting" : "dropping",
                      std::abs(priv->placer.last_step_frames()));
    if (priv->placer.aligner().jumps() != jumps)
      GST_INFO_OBJECT(self, "content jumped: placed on the output timeline");
    if (b.margin_valid) priv->playout.on_output((gint64)now, (gint64)b.margin_ns);
    GST_LOG_OBJECT(self, "phase error %.1f us, heard %.1f us (%s), ratio %.6f, drift %.1f ppm",
                   priv->placer.phase_error_us(), priv->placer.heard_error_us(),
                   priv->placer.absolute() ? "absolute" : "relative", priv->placer.ratio(),
                   priv->placer.drift().drift_ppm());
    if (b.frames == 0) {
      drop = true; /* all of it dropped by a step */
      goto done;
    }
    out = gst_buffer_new_memdup(priv->scratch.data(),
                                b.frames * GST_AUDIO_INFO_BPF(&priv->info));
    gst_buffer_copy_into(out, buf,
                         (GstBufferCopyFlags)(GST_BUFFER_COPY_FLAGS | GST_BUFFER_COPY_META), 0, -1);
    /* A new timeline keeps the input's DISCONT (the sink places it by its timestamp);
     * after a gap the sink must put it where its timestamp says, on the same timeline. */
    if (b.discont) GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
    else GST_BUFFER_FLAG_UNSET(out, GST_BUFFER_FLAG_DISCONT);
    GST_BUFFER_PTS(out) = (GstClockTime)b.pts_ns;
    GST_BUFFER_DURATION(out) = (GstClockTime)b.duration_ns;
  }
done:
  if (new_loss_margin > 0 && priv->jitter != NULL) {
    GST_DEBUG_OBJECT(self, "device holds %" G_GINT64_FORMAT " us: losses reported %u ms ahead",
                     device.queue_ns / 1000, new_loss_margin);
    g_object_set(priv->jitter, "loss-margin", new_loss_margin, NULL);
  }
  if (dev) gst_object_unref(dev);
  if (dsink) gst_object_unref(dsink);
  if (seg_event) gst_event_unref(seg_event);
  if (master) gst_object_unref(master);
  if (drop) return GST_PAD_PROBE_DROP;
  if (out != NULL) {
    gst_buffer_unref(buf);
    GST_PAD_PROBE_INFO_DATA(info) = out;
  }
  return GST_PAD_PROBE_OK;
}
/* ---------------------------------------------------------------- element */

static gboolean gst_syncwave_sink_query(GstElement* element, GstQuery* query) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(element);
  SyncWaveSinkPrivate* priv = self->priv;
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY && priv->depay != NULL) {
    /* The latency is the jitter element's, i.e. `latency`, whatever the codec and the
     * output: every receiver must render a sample at the same time. opusdec declares
     * up to 120 ms (the longest Opus frame) although it decodes each packet as it comes;
     * counting it made Opus receivers play 120 ms later than raw ones. The sink's own
     * buffering is compensated by the sink and must not move the render time either. */
    GstPad* pad = gst_element_get_static_pad(priv->depay, "sink");
    gboolean res = gst_pad_peer_query(pad, query);
    gst_object_unref(pad);
    if (res) {
      gboolean live;
      GstClockTime min, max;
      gst_query_parse_latency(query, &live, &min, &max);
      GST_DEBUG_OBJECT(self, "latency: live %d min %" GST_TIME_FORMAT, live, GST_TIME_ARGS(min));
      return TRUE;
    }
  }
  return GST_ELEMENT_CLASS(parent_class)->query(element, query);
}

static GstStateChangeReturn gst_syncwave_sink_change_state(GstElement* element,
                                                           GstStateChange transition) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(element);
  SyncWaveSinkPrivate* priv = self->priv;

  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (priv->depay == NULL) {
        GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("syncwavedepay is not available"), (NULL));
        return GST_STATE_CHANGE_FAILURE;
      }
      if (!gst_syncwave_sink_setup_audio_sink(self)) return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!gst_syncwave_sink_make_clock(self)) return GST_STATE_CHANGE_FAILURE;
      break;
    default:
      break;
  }

  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) return ret;

  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY: {
      stop_watching(priv);
      bool unpin;
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        unpin = priv->output_pinned;
        priv->output_pinned = false;
        priv->info_valid = false;
      }
      if (unpin) {
        /* The next run opens the device in the format of its first stream. */
        GstCaps* f32 = gst_caps_from_string("audio/x-raw, format=F32LE, layout=interleaved");
        g_object_set(priv->capsfilter, "caps", f32, NULL);
        gst_caps_unref(f32);
      }
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->placer.reset();
      gst_clear_object(&priv->device_clock);
      gst_clear_object(&priv->device_sink);
      priv->device_looked_up = false;
      priv->sender_host.clear();
      priv->auto_fallback = false;
      priv->playout.reset();
      priv->next_eval = 0;
      priv->transit_p99_us = -1;
      priv->latency_need_ms = 0;
      priv->played_addr_len = 0;
      priv->last_played = GST_CLOCK_TIME_NONE;
      priv->newest_stamp_us = 0;
      gst_clear_object(&priv->clock);
      priv->clock_in_use.clear();
      break;
    }
    case GST_STATE_CHANGE_READY_TO_NULL:
      /* Drop the audio sink so that audio-sink/device changes apply next time. */
      gst_syncwave_sink_remove_audio_sink(self);
      break;
    default:
      break;
  }
  return ret;
}

static GstStructure* gst_syncwave_sink_build_stats(GstSyncWaveSink* self) {
  SyncWaveSinkPrivate* priv = self->priv;
  GstStructure *jitter_stats = NULL, *depay_stats = NULL;
  /* Children's stats first, without our lock (their getters take their own). */
  if (priv->jitter && g_object_class_find_property(G_OBJECT_GET_CLASS(priv->jitter), "stats"))
    g_object_get(priv->jitter, "stats", &jitter_stats, NULL);
  if (priv->depay && g_object_class_find_property(G_OBJECT_GET_CLASS(priv->depay), "stats"))
    g_object_get(priv->depay, "stats", &depay_stats, NULL);
  gchar* decoder = NULL;
  guint64 decoder_switches = 0;
  if (priv->decode) g_object_get(priv->decode, "decoder", &decoder, "switches", &decoder_switches, NULL);
  /* The output's underruns, when it counts them (syncwavepulsesink). */
  GstElement* out = NULL;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (priv->device_sink) out = GST_ELEMENT(gst_object_ref(priv->device_sink));
  }
  guint64 underruns = 0;
  bool have_underruns = false;
  if (out != NULL) {
    GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(out), "stats");
    if (spec != NULL && spec->value_type == GST_TYPE_STRUCTURE) {
      GstStructure* os = NULL;
      g_object_get(out, "stats", &os, NULL);
      if (os) have_underruns = gst_structure_get_uint64(os, "underruns", &underruns);
      if (os) gst_structure_free(os);
    }
    gst_object_unref(out);
  }

  GstStructure* s = jitter_stats ? gst_structure_copy(jitter_stats)
                                 : gst_structure_new_empty("application/x-syncwave-sink-stats");
  gst_structure_set_name(s, "application/x-syncwave-sink-stats");
  if (depay_stats) {
    guint64 concealed = 0;
    gst_structure_get_uint64(depay_stats, "concealed", &concealed);
    gst_structure_set(s, "concealed", G_TYPE_UINT64, concealed, NULL);
    /* The rest of the depayloader's figures under a depay- prefix. */
    gint n = gst_structure_n_fields(depay_stats);
    for (gint i = 0; i < n; i++) {
      const gchar* name = gst_structure_nth_field_name(depay_stats, i);
      std::string key = std::string("depay-") + name;
      gst_structure_set_value(s, key.c_str(), gst_structure_get_value(depay_stats, name));
    }
  }
  /* The shared clock's time, read before our lock is taken. */
  GstClock* shared = NULL;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (priv->clock) shared = GST_CLOCK(gst_object_ref(priv->clock));
  }
  const GstClockTime now = shared ? gst_clock_get_time(shared) : GST_CLOCK_TIME_NONE;
  const gboolean synced = shared ? gst_clock_is_synced(shared) : FALSE;
  if (shared) gst_object_unref(shared);
  std::lock_guard<std::mutex> lk(priv->lock);
  const syncwave::OutputPlacer& placer = priv->placer;
  gst_structure_set(s, "clock", G_TYPE_STRING, priv->clock_in_use.c_str(), NULL);
  gst_structure_set(s, "clock-synced", G_TYPE_BOOLEAN, synced, NULL);
  gst_structure_set(s, "sender-host", G_TYPE_STRING, priv->sender_host.c_str(), NULL);
  gst_structure_set(s, "decoder", G_TYPE_STRING, decoder ? decoder : "none", NULL);
  gst_structure_set(s, "decoder-switches", G_TYPE_UINT64, decoder_switches, NULL);
  gst_structure_set(s, "drift-ppm", G_TYPE_DOUBLE, placer.drift().drift_ppm(), NULL);
  gst_structure_set(s, "drift-measured-ppm", G_TYPE_DOUBLE, placer.drift().measured_drift_ppm(),
                    NULL);
  gst_structure_set(s, "drift-ratio", G_TYPE_DOUBLE, placer.ratio(), NULL);
  gst_structure_set(s, "drift-corrections", G_TYPE_UINT64, (guint64)placer.drift().corrections(),
                    NULL);
  gst_structure_set(s, "drift-active", G_TYPE_BOOLEAN, priv->device_clock != NULL, NULL);
  gst_structure_set(s, "phase-error-us", G_TYPE_DOUBLE, placer.phase_error_us(), NULL);
  gst_structure_set(s, "sink-resyncs", G_TYPE_UINT64, (guint64)placer.resyncs(), NULL);
  gst_structure_set(s, "phase-steps", G_TYPE_UINT64, (guint64)placer.phase_steps(), NULL);
  gst_structure_set(s, "alignment-steps", G_TYPE_UINT64, (guint64)placer.aligner().steps(), NULL);
  gst_structure_set(s, "alignment-last-step-frames", G_TYPE_INT64,
                    (gint64)placer.last_step_frames(), NULL);
  gst_structure_set(s, "absolute-position", G_TYPE_BOOLEAN, (gboolean)placer.absolute(), NULL);
  gst_structure_set(s, "heard-error-us", G_TYPE_DOUBLE, placer.heard_error_us(), NULL);
  gst_structure_set(s, "output-timelines", G_TYPE_UINT64, (guint64)placer.timelines(), NULL);
  gst_structure_set(s, "output-jumps", G_TYPE_UINT64, (guint64)placer.aligner().jumps(), NULL);
  gst_structure_set(s, "sink-delay-us", G_TYPE_INT64, priv->sink_delay_us, NULL);
  gst_structure_set(s, "delay-ms", G_TYPE_INT, priv->delay_ms, NULL);
  const char* playback = "no-audio";
  if (GST_CLOCK_TIME_IS_VALID(now)) {
    switch (priv->playout.health((gint64)now)) {
      case syncwave::PlayoutMonitor::Health::kOnTime:
        playback = "playing";
        break;
      case syncwave::PlayoutMonitor::Health::kLate:
        playback = "late";
        break;
      case syncwave::PlayoutMonitor::Health::kNoAudio:
        break;
    }
  }
  gst_structure_set(s, "playback", G_TYPE_STRING, playback, NULL);
  gst_structure_set(s, "configured-latency-ms", G_TYPE_UINT, priv->latency_ms, NULL);
  gst_structure_set(s, "played-latency-ms", G_TYPE_UINT, priv->played_latency_ms, NULL);
  gst_structure_set(s, "auto-latency", G_TYPE_BOOLEAN, (gboolean)priv->auto_latency, NULL);
  gst_structure_set(s, "latency-changes", G_TYPE_UINT64, priv->playout.changes(), NULL);
  gst_structure_set(s, "latency-need-ms", G_TYPE_INT64, priv->latency_need_ms, NULL);
  gst_structure_set(s, "transit-p99-us", G_TYPE_INT64, priv->transit_p99_us, NULL);
  gst_structure_set(s, "late-arrivals", G_TYPE_UINT64, priv->playout.late_arrivals(), NULL);
  gst_structure_set(s, "late-outputs", G_TYPE_UINT64, priv->playout.late_outputs(), NULL);
  if (have_underruns) gst_structure_set(s, "underruns", G_TYPE_UINT64, underruns, NULL);
  if (jitter_stats) gst_structure_free(jitter_stats);
  if (depay_stats) gst_structure_free(depay_stats);
  g_free(decoder);
  return s;
}

/* The gain the volume element applies at stream time t during the ramp running (or its
 * end). Under the lock. */
static double ramp_gain_locked(SyncWaveSinkPrivate* priv, GstClockTime t) {
  if (!GST_CLOCK_TIME_IS_VALID(priv->ramp_end) || t >= priv->ramp_end) return priv->ramp_to;
  const GstClockTime start = priv->ramp_end - MIN(priv->ramp_end, VOLUME_RAMP);
  if (t <= start) return priv->ramp_from;
  return priv->ramp_from +
         (priv->ramp_to - priv->ramp_from) * (double)(t - start) / (double)VOLUME_RAMP;
}

/* volume/mute changed: the volume element goes there in VOLUME_RAMP (linear), from
 * the start of the next buffer it gets, so that a change is never a click. The ramp is
 * started by vol_sink_probe on the streaming thread, before the element processes
 * that buffer (no buffer can slip through between a decision here and the element).
 * Before the first buffer (or without a control source) it is set at once. Muted is
 * gain 0; the element's own mute is set once the ramp reached 0. */
static void gst_syncwave_sink_set_gain(GstSyncWaveSink* self) {
  SyncWaveSinkPrivate* priv = self->priv;
  if (priv->vol == NULL) return;
  double volume;
  bool mute;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    volume = priv->volume;
    mute = priv->mute;
    if (priv->gain_source != NULL && GST_CLOCK_TIME_IS_VALID(priv->vol_next)) {
      priv->gain_pending = true;
      return;
    }
    priv->ramp_end = GST_CLOCK_TIME_NONE;
    priv->ramp_from = priv->ramp_to = mute ? 0.0 : volume;
  }
  g_object_set(priv->vol, "volume", volume, "mute", (gboolean)mute, NULL);
}

/* The control source for a ramp from `from` at t0 to `to` at t0 + VOLUME_RAMP. */
static void set_ramp_points(SyncWaveSinkPrivate* priv, GstClockTime t0, double from, double to) {
  GstTimedValueControlSource* cs = GST_TIMED_VALUE_CONTROL_SOURCE(priv->gain_source);
  gst_timed_value_control_source_unset_all(cs);
  /* From stream time 0, so that no sample before the ramp has no value. */
  gst_timed_value_control_source_set(cs, 0, from);
  if (t0 > 0) gst_timed_value_control_source_set(cs, t0, from);
  gst_timed_value_control_source_set(cs, t0 + VOLUME_RAMP, to);
}

/* The volume element's input, on its streaming thread: starts a ramp asked for at this
 * buffer; a ramp that has passed hands back to the element's static volume and mute. */
static GstPadProbeReturn vol_sink_probe(GstPad* pad, GstPadProbeInfo* info, gpointer user_data) {
  (void)pad;
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(user_data);
  SyncWaveSinkPrivate* priv = self->priv;
  bool to_static = false, start = false;
  double volume = 1.0, from = 1.0, to = 1.0;
  bool mute = false;
  GstClockTime t0 = GST_CLOCK_TIME_NONE;
  if (info->type & (GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_EVENT_FLUSH)) {
    GstEvent* ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT || GST_EVENT_TYPE(ev) == GST_EVENT_FLUSH_STOP) {
      std::lock_guard<std::mutex> lk(priv->lock);
      if (GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT) gst_event_copy_segment(ev, &priv->vol_segment);
      /* Stream time starts again: what runs or waits ends at its target now. */
      to_static = GST_CLOCK_TIME_IS_VALID(priv->ramp_end) || priv->gain_pending;
      priv->vol_next = GST_CLOCK_TIME_NONE;
      priv->ramp_end = GST_CLOCK_TIME_NONE;
      priv->gain_pending = false;
      volume = priv->volume;
      mute = priv->mute;
      priv->ramp_from = priv->ramp_to = mute ? 0.0 : volume;
    }
  } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
    std::lock_guard<std::mutex> lk(priv->lock);
    if (priv->vol_segment.format == GST_FORMAT_TIME && GST_BUFFER_PTS_IS_VALID(buf)) {
      const GstClockTime st =
          gst_segment_to_stream_time(&priv->vol_segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
      if (GST_CLOCK_TIME_IS_VALID(st)) {
        const GstClockTime dur = GST_BUFFER_DURATION_IS_VALID(buf) ? GST_BUFFER_DURATION(buf) : 0;
        priv->vol_next = st + dur;
        volume = priv->volume;
        mute = priv->mute;
        if (priv->gain_pending) {
          priv->gain_pending = false;
          start = true;
          /* The ramp starts a sample's time (20 µs) before the buffer: at exactly its
           * old gain 1.0 the volume element would pass this buffer through unramped. */
          t0 = st - MIN(st, RAMP_LEAD);
          from = ramp_gain_locked(priv, t0);
          to = mute ? 0.0 : volume;
          priv->ramp_from = from;
          priv->ramp_to = to;
          priv->ramp_end = t0 + VOLUME_RAMP;
        } else if (GST_CLOCK_TIME_IS_VALID(priv->ramp_end) && st >= priv->ramp_end) {
          to_static = true;
          priv->ramp_end = GST_CLOCK_TIME_NONE;
        }
      }
    }
  }
  if (start) {
    set_ramp_points(priv, t0, from, to);
    g_object_set(priv->vol, "mute", FALSE, NULL);
    gst_control_binding_set_disabled(priv->gain_binding, FALSE);
    GST_DEBUG_OBJECT(self, "gain %.3f -> %.3f from stream time %" GST_TIME_FORMAT, from, to,
                     GST_TIME_ARGS(t0));
  } else if (to_static && priv->gain_binding != NULL) {
    /* The element's static path again (this buffer is past the ramp). */
    gst_control_binding_set_disabled(priv->gain_binding, TRUE);
    g_object_set(priv->vol, "volume", volume, "mute", (gboolean)mute, NULL);
  }
  return GST_PAD_PROBE_OK;
}

static void gst_syncwave_sink_set_property(GObject* object, guint prop_id, const GValue* value,
                                           GParamSpec* pspec) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(object);
  SyncWaveSinkPrivate* priv = self->priv;

  if (prop_id == PROP_SECRET) {
    /* A proxy for the jitter element's (it opens every datagram first); the clock
     * exchange's key from the same derivation (the key cache), for net and auto clocks. */
    if (priv->jitter) g_object_set_property(G_OBJECT(priv->jitter), "secret", value);
    std::array<guint8, 32> key{};
    const bool have =
        syncwave::secure_clock_key(GST_ELEMENT(self), g_value_get_string(value), &key);
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->have_clock_key = have;
    priv->clock_key = key;
    std::fill(key.begin(), key.end(), 0);
    return;
  }
  switch (prop_id) {
    case PROP_LATENCY: {
      guint l = g_value_get_uint(value);
      GstElement* jitter;
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->latency_ms = l;
        priv->played_latency_ms = l;
        priv->playout.reset();
        if (priv->delay_ms < -(gint)l) priv->delay_ms = -(gint)l;
        jitter = priv->jitter ? GST_ELEMENT(gst_object_ref(priv->jitter)) : NULL;
      }
      if (jitter) {
        g_object_set(jitter, "latency", l, NULL);
        gst_object_unref(jitter);
      }
      break;
    }
    case PROP_AUTO_LATENCY: {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->auto_latency = g_value_get_boolean(value);
      break;
    }
    case PROP_CLOCK: {
      const gchar* str = g_value_get_string(value);
      syncwave::ClockSpecResult r = syncwave::parse_clock_spec(str ? str : "");
      if (!r.ok()) {
        GST_ELEMENT_WARNING(
            self, RESOURCE, SETTINGS,
            ("Invalid clock \"%s\": %s", str ? str : "", syncwave::clock_spec_error_name(r.error)),
            (NULL));
        break;
      }
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->clock_spec = r.spec;
      priv->clock_str = syncwave::to_string(r.spec);
      break;
    }
    case PROP_CLOCK_TIMEOUT: {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->clock_timeout_ms = g_value_get_uint(value);
      break;
    }
    case PROP_AUTO_CLOCK_PORT: {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->auto_clock_port = g_value_get_uint(value);
      break;
    }
    case PROP_DEVICE: {
      std::lock_guard<std::mutex> lk(priv->lock);
      const gchar* d = g_value_get_string(value);
      priv->device = d ? d : "";
      break;
    }
    case PROP_AUDIO_SINK: {
      GstElement* sink = GST_ELEMENT(g_value_get_object(value));
      std::lock_guard<std::mutex> lk(priv->lock);
      gst_clear_object(&priv->custom_sink);
      if (sink) priv->custom_sink = GST_ELEMENT(gst_object_ref_sink(sink));
      break;
    }
    /* The volume element is set without our lock held: never call into a child
     * element (it takes its own locks, and may be streaming) under it. */
    case PROP_VOLUME: {
      const gdouble v = g_value_get_double(value);
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->volume = v;
      }
      gst_syncwave_sink_set_gain(self);
      break;
    }
    case PROP_MUTE: {
      const gboolean m = g_value_get_boolean(value);
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->mute = m;
      }
      gst_syncwave_sink_set_gain(self);
      break;
    }
    case PROP_DRIFT_CORRECTION: {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->drift_enabled = g_value_get_boolean(value);
      break;
    }
    case PROP_DELAY: {
      gint d = g_value_get_int(value);
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        if (d < -(gint)priv->latency_ms) {
          GST_WARNING_OBJECT(self, "delay %d ms below -latency, clamped to %d ms", d,
                             -(gint)priv->latency_ms);
          d = -(gint)priv->latency_ms;
        }
        priv->delay_ms = d;
      }
      set_delay_offset(self, d);
      break;
    }
    case PROP_METER_INTERVAL: {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->meter_interval = g_value_get_uint64(value);
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_syncwave_sink_get_property(GObject* object, guint prop_id, GValue* value,
                                           GParamSpec* pspec) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(object);
  SyncWaveSinkPrivate* priv = self->priv;

  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, gst_syncwave_sink_build_stats(self));
    return;
  }
  std::lock_guard<std::mutex> lk(priv->lock);
  switch (prop_id) {
    case PROP_LATENCY:
      g_value_set_uint(value, priv->latency_ms);
      break;
    case PROP_AUTO_LATENCY:
      g_value_set_boolean(value, priv->auto_latency);
      break;
    case PROP_CLOCK:
      g_value_set_string(value, priv->clock_str.c_str());
      break;
    case PROP_CLOCK_TIMEOUT:
      g_value_set_uint(value, priv->clock_timeout_ms);
      break;
    case PROP_METER_INTERVAL:
      g_value_set_uint64(value, priv->meter_interval);
      break;
    case PROP_AUTO_CLOCK_PORT:
      g_value_set_uint(value, priv->auto_clock_port);
      break;
    case PROP_DEVICE:
      g_value_set_string(value, priv->device.empty() ? NULL : priv->device.c_str());
      break;
    case PROP_AUDIO_SINK:
      g_value_set_object(value, priv->sink ? priv->sink : priv->custom_sink);
      break;
    case PROP_VOLUME:
      g_value_set_double(value, priv->volume);
      break;
    case PROP_MUTE:
      g_value_set_boolean(value, priv->mute);
      break;
    case PROP_DRIFT_CORRECTION:
      g_value_set_boolean(value, priv->drift_enabled);
      break;
    case PROP_DELAY:
      g_value_set_int(value, priv->delay_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_syncwave_sink_dispose(GObject* object) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(object);
  if (self->priv) stop_watching(self->priv);
  G_OBJECT_CLASS(parent_class)->dispose(object);
}

static void gst_syncwave_sink_finalize(GObject* object) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(object);
  if (self->priv) gst_clear_object(&self->priv->gain_source);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_syncwave_sink_class_init(GstSyncWaveSinkClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);

  gobject_class->set_property = gst_syncwave_sink_set_property;
  gobject_class->get_property = gst_syncwave_sink_get_property;
  gobject_class->dispose = gst_syncwave_sink_dispose;
  gobject_class->finalize = gst_syncwave_sink_finalize;

  /**
   * GstSyncWaveSink:latency:
   * Milliseconds between a sample's capture time and its render time, on every
   * receiver alike (passed to syncwavejitter).
   */
  g_object_class_install_property(
      gobject_class, PROP_LATENCY,
      g_param_spec_uint(
          "latency", "Latency", "Playout latency in milliseconds", 0, MAX_LATENCY_MS,
          DEFAULT_LATENCY_MS,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  /**
   * GstSyncWaveSink:auto-latency:
   * Pick the latency this receiver's path needs instead of `latency`: after a second
   * of packets, the 99th percentile of their transit (capture to arrival) plus what
   * decoding and the device add, plus 10 ms, rounded up to 10 ms; raised later if the
   * path gets slower, never lowered. `latency` is where it starts. Receivers with
   * different latencies do not play in step: for multi-room sync give every receiver
   * the same fixed latency (see docs/synchronization.md).
   *
   * With a fixed latency the receiver still never goes silent behind a slow path:
   * when more than 2 % of packets arrive (or reach the output) too late, it plays at
   * the latency the path needs and says so in a warning.
   */
  g_object_class_install_property(
      gobject_class, PROP_AUTO_LATENCY,
      g_param_spec_boolean(
          "auto-latency", "Automatic latency",
          "Choose the latency from the measured path (receivers are then not in step)",
          DEFAULT_AUTO_LATENCY,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  /**
   * GstSyncWaveSink:clock:
   * The shared clock: auto, system, net://HOST:PORT, ptp://DOMAIN, ntp://HOST:PORT.
   * Invalid strings are rejected with a warning and the previous value kept.
   */
  g_object_class_install_property(
      gobject_class, PROP_CLOCK,
      g_param_spec_string(
          "clock", "Clock",
          "Shared clock: auto, system, net://HOST:PORT, ptp://DOMAIN, ntp://HOST:PORT",
          DEFAULT_CLOCK,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  /**
   * GstSyncWaveSink:clock-timeout:
   * How long (ms) `auto` waits for the sender's time provider before falling back to
   * the system clock.
   */
  g_object_class_install_property(
      gobject_class, PROP_CLOCK_TIMEOUT,
      g_param_spec_uint(
          "clock-timeout", "Clock timeout",
          "Milliseconds to wait for the clock to synchronize before warning (auto: and playing "
          "on the system clock until it does); nothing blocks meanwhile", 0, 60000,
          DEFAULT_CLOCK_TIMEOUT_MS,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  /**
   * GstSyncWaveSink:auto-clock-port:
   * The port of the sender's time provider that `auto` asks (syncwavepay
   * time-provider-port; the launcher uses 5556).
   */
  g_object_class_install_property(
      gobject_class, PROP_AUTO_CLOCK_PORT,
      g_param_spec_uint(
          "auto-clock-port", "Auto clock port",
          "Port of the sender's time provider used by clock=auto", 1, 65535,
          DEFAULT_AUTO_CLOCK_PORT,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  /**
   * GstSyncWaveSink:device:
   * Device name for the platform's audio sink (pulsesink, else alsasink). Ignored
   * when audio-sink is set.
   */
  g_object_class_install_property(
      gobject_class, PROP_DEVICE,
      g_param_spec_string(
          "device", "Device", "Audio output device", NULL,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  /**
   * GstSyncWaveSink:audio-sink:
   * The audio sink element or bin (as playbin's audio-sink). Default: syncwavepulsesink
   * when a PulseAudio server answers, else autoaudiosink. The sinks made by the bin do
   * not preroll (async=false), so a receiver started before its sender plays the first
   * packet on time; set async=false on a sink given here for the same. With
   * drift-correction on, the bin corrects the device's drift itself and sets the
   * sink's slave-method to none (a GstAudioBaseSink inside it); it places the stream
   * absolutely when the sink answers the syncwave-device-position query
   * (syncwave-device-position.h; syncwavepulsesink does), else it corrects the drift
   * of the clock the sink provides.
   */
  g_object_class_install_property(
      gobject_class, PROP_AUDIO_SINK,
      g_param_spec_object(
          "audio-sink", "Audio sink", "Audio sink element or bin", GST_TYPE_ELEMENT,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  /**
   * GstSyncWaveSink:volume:
   * Linear volume (1.0 = unchanged). A change while playing ramps linearly over 20 ms
   * of the stream (a control source on the volume element), never a step.
   */
  g_object_class_install_property(
      gobject_class, PROP_VOLUME,
      g_param_spec_double(
          "volume", "Volume", "Linear volume", 0.0, 10.0, DEFAULT_VOLUME,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWaveSink:mute:
   * Silences the output without stopping playback; muting and unmuting ramp over
   * 20 ms like volume.
   */
  g_object_class_install_property(
      gobject_class, PROP_MUTE,
      g_param_spec_boolean(
          "mute", "Mute", "Mute the output", DEFAULT_MUTE,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWaveSink:delay:
   * Extra delay (ms) of this output, -latency..10000, to compensate a device that
   * is early or late (a Bluetooth speaker: negative). Shifts running time with a pad
   * offset; no samples are dropped or inserted.
   */
  g_object_class_install_property(
      gobject_class, PROP_DELAY,
      g_param_spec_int(
          "delay", "Delay", "Per-device delay in milliseconds (>= -latency)", -MAX_LATENCY_MS,
          MAX_DELAY_MS, DEFAULT_DELAY_MS,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWaveSink:drift-correction:
   * Resample to keep the audio device on the shared clock (when the audio sink is a
   * GstAudioBaseSink with its own clock). Off: the audio passes untouched and the
   * device's drift accumulates until the sink resyncs.
   */
  g_object_class_install_property(
      gobject_class, PROP_DRIFT_CORRECTION,
      g_param_spec_boolean(
          "drift-correction", "Drift correction",
          "Absorb the audio device's clock drift by resampling", DEFAULT_DRIFT_CORRECTION,
          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstSyncWaveSink:stats:
   * The jitter element's statistics (pushed, lost, late, duplicates, reordered,
   * jitter, buffer level, sender, ...) plus:
   *   concealed          guint64  concealment buffers/gaps of the depayloader
   *   depay-*                     every field of syncwavedepay's stats
   *   clock              string   the clock in use (e.g. "net://10.0.0.2:5556 (auto)")
   *   clock-synced       boolean  that clock is synchronized
   *   sender-host        string   address of the first packet's sender
   *   decoder            string   "opus" or "none"
   *   decoder-switches   guint64  raw↔Opus switches
   *   drift-ppm          double   the device's rate error the resampler absorbs (+ = fast)
   *   drift-measured-ppm double   the same from device/clock observations alone
   *   drift-ratio        double   current resampling ratio (output/input frames)
   *   drift-corrections  guint64  ratio updates
   *   drift-active       boolean  the audio sink has a device clock to correct against
   *   phase-error-us     double   last phase error (+ = device ahead of the shared clock)
   *   sink-resyncs       guint64  times the audio sink jumped (phase error > 40 ms)
   *   phase-steps        guint64  steps of the device position ignored (> 2 ms at once;
   *                               only without an absolute device position)
   *   alignment-steps    guint64  one-off alignments of the output (frames dropped or
   *                               inserted at the write position when it is first
   *                               measured, or after the device jumped)
   *   alignment-last-step-frames gint64  the last one (+ inserted, - dropped)
   *   absolute-position  gboolean the device reports its play position (a
   *                               GstAudioBaseSink clock): the phase error is absolute
   *   heard-error-us     gdouble  what the device plays now minus what is due now
   *   output-timelines   guint64  output timelines started (start, new caps or segment,
   *                               a content jump of more than 100 ms before the output
   *                               was measured)
   *   output-jumps       guint64  content jumps of more than 100 ms (a sender taking
   *                               over, an outage) placed on the running output timeline
   *   sink-delay-us      gint64   the device's own delay (ring buffer + hardware), -1 unknown
   *   delay-ms           gint     the delay property
   *   playback           string   "playing" (audio reached the output on time in the
   *                               last 0.5 s and nothing was late), "late" (packets or
   *                               buffers missed their time in the last 0.5 s),
   *                               "no-audio" (nothing reached the output lately)
   *   configured-latency-ms guint the latency property
   *   played-latency-ms  guint    the latency played at (higher when the path needed it)
   *   auto-latency       gboolean the auto-latency property
   *   latency-changes    guint64  times the played latency moved
   *   latency-need-ms    gint64   what the path needs now (0 before packets)
   *   transit-p99-us     gint64   99th percentile of capture-to-arrival, last 2 s (-1)
   *   late-arrivals      guint64  packets of the played sender that arrived after
   *                               their capture time + played latency
   *   late-outputs       guint64  buffers that reached the audio sink after their
   *                               render time (minus what the device holds)
   *   underruns          guint64  the output ran dry (when it counts: syncwavepulsesink)
   */
  /* meter-interval: posts the `level` element's messages (structure "level": peak,
   * rms, decay per channel in dB) for what is played, every this many ns; 0 (the
   * default) adds no level element. Read when the bin goes from NULL to READY. */
  g_object_class_install_property(
      gobject_class, PROP_METER_INTERVAL,
      g_param_spec_uint64("meter-interval", "Meter interval",
                          "Post 'level' messages (peak and RMS per channel, dB) of what is "
                          "played at this interval in ns; 0: off",
                          0, G_MAXUINT64, 0,
                          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                        GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics", "Receiver statistics", GST_TYPE_STRUCTURE,
                         (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  /**
   * GstSyncWaveSink:secret:
   * Passphrase of a secure stream: passed to syncwavejitter's `secret`, which opens
   * every datagram before anything else in the bin reads it, and drops and counts
   * (stats secure-rejected-*) what does not authenticate. NULL or "": plain SYNC v1.
   */
  g_object_class_install_property(
      gobject_class, PROP_SECRET,
      g_param_spec_string(
          "secret", "Secret", "Passphrase: play only datagrams sealed with it (NULL = plain)", NULL,
          (GParamFlags)(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));

  element_class->change_state = GST_DEBUG_FUNCPTR(gst_syncwave_sink_change_state);
  GST_BIN_CLASS(klass)->deep_element_added = GST_DEBUG_FUNCPTR(gst_syncwave_sink_deep_element_added);
  GST_BIN_CLASS(klass)->handle_message = GST_DEBUG_FUNCPTR(gst_syncwave_sink_handle_message);
  element_class->provide_clock = GST_DEBUG_FUNCPTR(gst_syncwave_sink_provide_clock);
  element_class->query = GST_DEBUG_FUNCPTR(gst_syncwave_sink_query);

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_set_static_metadata(
      element_class, "SyncWave sink", "Sink/Audio/Network",
      "Plays a SyncWave stream in sync with every other receiver: jitter buffer, "
      "depayloader, decoder, drift correction and audio sink on a shared clock",
      "SyncWave");

  GST_DEBUG_CATEGORY_INIT(gst_syncwave_sink_debug, "syncwavesink", 0, "SyncWave sink bin");
}

static void gst_syncwave_sink_init(GstSyncWaveSink* self) {
  SyncWaveSinkPrivate* priv = new SyncWaveSinkPrivate();
  self->priv = priv;
  gst_audio_info_init(&priv->info);

  priv->jitter = gst_element_factory_make("syncwavejitter", "jitter");
  priv->depay = make("syncwavedepay", "depay");
  priv->decode = make("syncwavedecodebin", "decode");
  priv->resample = make("audioresample", "resample");
  priv->vol = make("volume", "volume");
  priv->capsfilter = make("capsfilter", "format");
  priv->convert2 = make("audioconvert", "sink-convert");
  if (!priv->depay || !priv->decode || !priv->resample || !priv->vol || !priv->capsfilter ||
      !priv->convert2) {
    GST_ERROR_OBJECT(self, "missing elements; the bin will fail to start");
    for (GstElement** e : {&priv->jitter, &priv->depay, &priv->decode, &priv->resample, &priv->vol,
                           &priv->capsfilter, &priv->convert2}) {
      if (*e) gst_object_unref(gst_object_ref_sink(*e));
      *e = NULL;
    }
    return;
  }
  GstCaps* f32 = gst_caps_from_string("audio/x-raw, format=F32LE, layout=interleaved");
  g_object_set(priv->capsfilter, "caps", f32, NULL);
  gst_caps_unref(f32);

  gst_bin_add_many(GST_BIN(self), priv->depay, priv->decode, priv->resample, priv->vol,
                   priv->capsfilter, priv->convert2, NULL);
  gst_element_link_many(priv->depay, priv->decode, priv->resample, priv->vol, priv->capsfilter,
                        priv->convert2, NULL);
  g_signal_connect(priv->decode, "notify::fec-hold", G_CALLBACK(on_fec_hold), self);

  GstPad* target;
  if (priv->jitter) {
    g_object_set(priv->jitter, "latency", (guint)DEFAULT_LATENCY_MS, "loss-margin",
                 (guint)DEFAULT_LOSS_MARGIN_MS, NULL);
    gst_bin_add(GST_BIN(self), priv->jitter);
    gst_element_link(priv->jitter, priv->depay);
    target = gst_element_get_static_pad(priv->jitter, "sink");
  } else {
    /* Without the jitter element the stream plays, but unsynchronized. */
    GST_WARNING_OBJECT(self, "syncwavejitter not found: playing without jitter buffer");
    target = gst_element_get_static_pad(priv->depay, "sink");
  }
  GstPad* ghost =
      gst_ghost_pad_new_from_template("sink", target, gst_static_pad_template_get(&sink_template));
  gst_pad_add_probe(target, GST_PAD_PROBE_TYPE_BUFFER, sink_buffer_probe, self, NULL);
  gst_object_unref(target);
  gst_element_add_pad(GST_ELEMENT(self), ghost);

  /* Volume ramps: a linear control source on the volume element, disabled until a
   * change (gst_syncwave_sink_set_gain). */
  gst_segment_init(&priv->vol_segment, GST_FORMAT_UNDEFINED);
  priv->gain_source = gst_interpolation_control_source_new();
  g_object_set(priv->gain_source, "mode", GST_INTERPOLATION_MODE_LINEAR, NULL);
  priv->gain_binding =
      gst_direct_control_binding_new_absolute(GST_OBJECT(priv->vol), "volume", priv->gain_source);
  if (priv->gain_binding != NULL && gst_object_add_control_binding(GST_OBJECT(priv->vol), priv->gain_binding)) {
    gst_control_binding_set_disabled(priv->gain_binding, TRUE);
    GstPad* vol_sink = gst_element_get_static_pad(priv->vol, "sink");
    gst_pad_add_probe(
        vol_sink, (GstPadProbeType)(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
                                    GST_PAD_PROBE_TYPE_EVENT_FLUSH),
        vol_sink_probe, self, NULL);
    gst_object_unref(vol_sink);
  } else {
    GST_WARNING_OBJECT(self, "no control binding on the volume element: volume changes do not ramp");
    priv->gain_binding = NULL;
    gst_clear_object(&priv->gain_source);
  }

  GstPad* rate_src = gst_element_get_static_pad(priv->capsfilter, "src");
  gst_pad_add_probe(
      rate_src, (GstPadProbeType)(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      rate_probe, self, NULL);
  gst_object_unref(rate_src);

  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_PROVIDE_CLOCK);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
}
