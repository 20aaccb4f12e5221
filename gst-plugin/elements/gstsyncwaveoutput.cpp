/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-syncwaveoutput
 * @title: syncwaveoutput
 * @short_description: one output of a SyncWave receiver: volume, drift correction and
 * placement on the pipeline clock, delay, meter and the audio sink
 *
 * syncwavesink has one of these per output (its `outputs` property; each is a child
 * named output0, output1, ...: `syncwavesink outputs=2 output1::device=B`). All of them
 * are fed by the receiver's one jitter buffer, decoder and clock.
 *
 * It can also be used by hand after a decoded SyncWave stream, for example to play one
 * stream on two devices; the pipeline's clock is then the shared clock (this bin
 * provides none: its audio sink's clock would otherwise become the pipeline's and
 * nothing would be corrected).
 *
 * ## Example launch lines
 * One receiver, two devices, the second 150 ms earlier (a Bluetooth speaker):
 * |[
 * gst-launch-1.0 udpsrc port=5555 ! syncwavesink outputs=2 device=alsa_output.hdmi output1::device=bluez_sink.XX output1::delay=-150
 * ]|
 * By hand (the pipeline's clock is then GStreamer's monotonic system clock, which does not
 * follow the sender's: syncwavejitter warns and plays unsynchronized; for sync use
 * `syncwavesink outputs=2`, or give the pipeline the sender's clock):
 * |[
 * gst-launch-1.0 udpsrc port=5555 ! syncwavejitter ! syncwavedepay ! syncwavedecodebin ! audioresample ! tee name=t t. ! queue ! syncwaveoutput device=A t. ! queue ! syncwaveoutput device=B
 * ]|
 */
/* syncwaveoutput: one output of a receiver.
 *
 *   sink ─► volume ─► F32LE ─►[rate]─► audioconvert ─►(pad offset = delay)─►[level]─► audio-sink
 *
 * - [rate] Drift and placement: GStreamer's audio sinks only compute where each buffer
 *   should land (slave-method=resample); the data is never resampled, so drift
 *   accumulates until the sink jumps (alignment-threshold). Here, when the audio sink is
 *   (or contains) a GstAudioBaseSink, a buffer probe reads where the device is and hands
 *   each buffer to an OutputPlacer (core/output_placer.h: drift loop, one-off alignment
 *   steps, gaps for content that jumped, resampling), which returns the samples to write
 *   and their place on the output's own contiguous timeline. The device is read through
 *   supported APIs only: the syncwave-device-position query (syncwave-device-position.h;
 *   answered by syncwavepulsesink: absolute placement), else the clock the sink provides
 *   (anchored drift correction). `drift-correction` turns it off; sinks without a clock
 *   (appsink, fakesink, an encoder to a file) are left untouched.
 * - The audio sink: `audio-sink` if set; else syncwavepulsesink (with `device`) when a
 *   PulseAudio server answers; else pulsesink/alsasink with `device`, or autoaudiosink.
 * - `delay`: a pad offset before the audio sink (it shifts the running time the sink
 *   places the stream by); changed while the output is placed absolutely, a faded step
 *   of the OutputPlacer on the same timeline instead (OutputPlacer::move).
 * - What the parent needs: `device-queue-us` (notify when it moves: the jitter buffer
 *   reports losses that far ahead) and the margin callback (the playout monitor).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstsyncwaveoutput.h"

#include <gst/audio/audio.h>
#include <gst/controller/controller.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "output_placer.h"
#include "syncwave-device-position.h"

GST_DEBUG_CATEGORY_STATIC(gst_syncwave_output_debug);
#define GST_CAT_DEFAULT gst_syncwave_output_debug

#define DEFAULT_VOLUME 1.0
#define DEFAULT_MUTE FALSE
/* A volume or mute change goes to its new gain in this much stream time (linear). */
#define VOLUME_RAMP (20 * GST_MSECOND)
#define RAMP_LEAD (20 * GST_USECOND)
#define DEFAULT_DELAY_MS 0
#define DEFAULT_DRIFT_CORRECTION TRUE
#define MAX_DELAY_MS 10000
/* device-queue-us is notified when it moved this much since the last notification. */
#define QUEUE_NOTIFY_STEP_US 2000

enum {
  PROP_0,
  PROP_DEVICE,
  PROP_AUDIO_SINK,
  PROP_VOLUME,
  PROP_MUTE,
  PROP_DELAY,
  PROP_DRIFT_CORRECTION,
  PROP_METER_INTERVAL,
  PROP_DEVICE_QUEUE,
  PROP_STATS,
  N_PROPS
};

static GParamSpec* properties[N_PROPS];

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("audio/x-raw"));

struct SyncWaveOutputPrivate {
  ~SyncWaveOutputPrivate() {
    gst_clear_object(&custom_sink);
    gst_clear_object(&device_clock);
    gst_clear_object(&device_sink);
  }

  std::mutex lock;

  /* Properties. */
  std::string device;
  guint64 meter_interval = 0; /* ns; 0: no level element */
  GstElement* custom_sink = nullptr;
  gdouble volume = DEFAULT_VOLUME;
  gboolean mute = DEFAULT_MUTE;
  gint delay_ms = DEFAULT_DELAY_MS;
  bool drift_enabled = DEFAULT_DRIFT_CORRECTION;
  /* The delay as the streaming thread applied it: in the placer (placed_delay_ms) and
   * as the pad offset before the audio sink (offset_ms). A change while the output is
   * placed absolutely is a faded step of the placer and leaves the offset; otherwise
   * the offset moves (the sink re-places the stream). A new timeline takes the offset
   * to the delay again. */
  gint placed_delay_ms = DEFAULT_DELAY_MS;
  gint offset_ms = DEFAULT_DELAY_MS;

  /* Children (owned by the bin). */
  GstElement* vol = nullptr;
  GstElement* capsfilter = nullptr;
  GstElement* convert = nullptr;
  GstElement* meter = nullptr; /* level, meter-interval > 0 */
  GstElement* sink = nullptr;
  bool own_sink = false; /* made here (not audio-sink): does not preroll */

  /* Volume and mute changes ramp over VOLUME_RAMP (see set_gain): a linear control
   * source on the volume element's "volume", enabled only while a ramp runs (the
   * element's static path costs less). Times are the volume element's stream time. */
  GstControlSource* gain_source = nullptr;
  GstControlBinding* gain_binding = nullptr;
  GstSegment vol_segment;
  GstClockTime vol_next = GST_CLOCK_TIME_NONE; /* stream time where the next buffer starts */
  GstClockTime ramp_end = GST_CLOCK_TIME_NONE; /* a ramp runs until this stream time */
  double ramp_from = 1.0, ramp_to = 1.0;       /* gains of the ramp running */
  bool gain_pending = false; /* volume/mute changed: a ramp starts at the next buffer */

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
  gint64 queue_us = -1;          /* what the device holds, -1 unknown */
  gint64 notified_queue_us = -1; /* the value last notified */
  /* The query that asks the device where it is, kept from buffer to buffer. */
  GstQuery* position_query = nullptr;

  GstSyncWaveOutputMarginFunc margin_func = nullptr;
  gpointer margin_data = nullptr;
};

struct _GstSyncWaveOutput {
  GstBin parent;
  SyncWaveOutputPrivate* priv;
};

#define gst_syncwave_output_parent_class parent_class
G_DEFINE_TYPE(GstSyncWaveOutput, gst_syncwave_output, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE(syncwaveoutput, "syncwaveoutput", GST_RANK_NONE,
                            GST_TYPE_SYNCWAVE_OUTPUT);

void gst_syncwave_output_set_margin_func(GstSyncWaveOutput* output,
                                         GstSyncWaveOutputMarginFunc func, gpointer user_data) {
  g_return_if_fail(GST_IS_SYNCWAVE_OUTPUT(output));
  std::lock_guard<std::mutex> lk(output->priv->lock);
  output->priv->margin_func = func;
  output->priv->margin_data = user_data;
}

/* ---------------------------------------------------------------- children */

static GstElement* make(const gchar* factory, const gchar* name) {
  GstElement* e = gst_element_factory_make(factory, name);
  if (e == NULL) GST_ERROR("element %s not found", factory);
  return e;
}

static void set_delay_offset(GstSyncWaveOutput* self, gint delay_ms) {
  SyncWaveOutputPrivate* priv = self->priv;
  if (priv->convert == NULL) return;
  GstPad* src = gst_element_get_static_pad(priv->convert, "src");
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

/* async=false on a sink that has the property (GstBaseSink). */
static void set_no_preroll(GstElement* sink) {
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(sink), "async") != NULL)
    g_object_set(sink, "async", FALSE, NULL);
}

/* autoaudiosink makes its real sink when it starts: that one does not preroll either
 * (see setup_audio_sink). */
static void gst_syncwave_output_deep_element_added(GstBin* bin, GstBin* sub_bin,
                                                   GstElement* child) {
  GstSyncWaveOutput* self = GST_SYNCWAVE_OUTPUT(bin);
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

/* Puts the audio sink in place (NULL→READY): the user's; else syncwavepulsesink when
 * a PulseAudio server answers; else the platform sink with `device`, or
 * autoaudiosink. */
static gboolean setup_audio_sink(GstSyncWaveOutput* self) {
  SyncWaveOutputPrivate* priv = self->priv;
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
  /* This bin provides no clock (see provide_clock): adding a sink that does set the
   * flag again. */
  GST_OBJECT_FLAG_UNSET(self, GST_ELEMENT_FLAG_PROVIDE_CLOCK);
  /* meter-interval: a level element between the last converter and the audio sink
   * meters what is played (in place, no copy). */
  GstElement* upstream = priv->convert;
  if (priv->meter != NULL) {
    /* Added for a previous audio sink: it stays linked to the converter. */
    upstream = priv->meter;
  } else if (meter_interval > 0) {
    GstElement* level = make("level", "meter");
    if (level != NULL) {
      g_object_set(level, "interval", meter_interval, "post-messages", TRUE, NULL);
      gst_bin_add(GST_BIN(self), level);
      gst_element_sync_state_with_parent(level);
      if (gst_element_link(priv->convert, level)) {
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
  return TRUE;
}

static void remove_audio_sink(GstSyncWaveOutput* self) {
  SyncWaveOutputPrivate* priv = self->priv;
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
  /* Removing the bin's only sink cleared the flag: it is a sink all the same. */
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
}

/* ---------------------------------------------------------------- drift correction */

/* Looks up the audio sink's GstAudioBaseSink once per run, and its clock until it
 * has one (gst_element_provide_clock: NULL while the sink's ring buffer flushes). */
static void lookup_device(SyncWaveOutputPrivate* priv, GstElement** dsink, GstClock** dev) {
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
 * call into its audio server. The query is the streaming thread's own. */
static syncwave::OutputPlacer::Device read_device(SyncWaveOutputPrivate* priv, GstElement* dsink,
                                                  GstClock* dev) {
  syncwave::OutputPlacer::Device d;
  if (dsink == NULL) return d;
  GstPad* pad = gst_element_get_static_pad(dsink, "sink");
  if (pad != NULL) {
    if (priv->position_query == NULL) priv->position_query = syncwave_device_position_query_new();
    GstQuery* q = priv->position_query;
    gst_structure_remove_all_fields(gst_query_writable_structure(q)); /* no stale answer */
    GstClockTime position, queue;
    guint64 next_sample;
    if (gst_pad_query(pad, q) &&
        syncwave_device_position_query_parse(q, &position, &next_sample, &queue)) {
      d.has_position = true;
      d.position_ns = (int64_t)position;
      d.next_sample = next_sample;
      d.queue_ns = GST_CLOCK_TIME_IS_VALID(queue) ? (int64_t)queue : -1;
    }
    gst_object_unref(pad);
  }
  d.latency_ns = (int64_t)(gst_base_sink_get_latency(GST_BASE_SINK(dsink)) +
                           gst_base_sink_get_render_delay(GST_BASE_SINK(dsink)));
  if (dev != NULL) d.internal_ns = (int64_t)gst_clock_get_internal_time(dev);
  return d;
}

/* The CAPS, FLUSH_STOP, STREAM_START and SEGMENT events on the F32LE stream. */
static void rate_probe_event(GstSyncWaveOutput* self, GstEvent* event) {
  SyncWaveOutputPrivate* priv = self->priv;
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
      /* The same format again (the stream upstream changed and was converted to the
       * output's): the output runs on. */
      if (valid && priv->info_valid && gst_audio_info_is_equal(&new_info, &priv->info)) break;
      priv->info = new_info;
      priv->info_valid = valid;
      if (valid)
        priv->placer.configure(GST_AUDIO_INFO_RATE(&new_info), GST_AUDIO_INFO_CHANNELS(&new_info));
      else
        priv->placer.reset();
      /* A device keeps the format it was opened with: a stream in another format later
       * (another sender, a restarted one) is converted and resampled to it upstream.
       * Renegotiating the device instead opens a new stream on the audio server, whose
       * clock starts again at 0 while the audio sink still places by the old one's:
       * silent for as long as the old one ran. */
      if (valid && !priv->output_pinned && device) {
        priv->output_pinned = true;
        pin = gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, "F32LE", "layout",
                                  G_TYPE_STRING, "interleaved", "rate", G_TYPE_INT,
                                  GST_AUDIO_INFO_RATE(&new_info), "channels", G_TYPE_INT,
                                  GST_AUDIO_INFO_CHANNELS(&new_info), NULL);
        if (GST_AUDIO_INFO_CHANNELS(&new_info) > 1) {
          guint64 mask = 0;
          if (gst_audio_channel_positions_to_mask(new_info.position,
                                                  GST_AUDIO_INFO_CHANNELS(&new_info), FALSE, &mask))
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
}

/* On the F32LE stream before the audio sink: measure, control, resample. */
static GstPadProbeReturn rate_probe(GstPad* pad, GstPadProbeInfo* info, gpointer user_data) {
  GstSyncWaveOutput* self = GST_SYNCWAVE_OUTPUT(user_data);
  SyncWaveOutputPrivate* priv = self->priv;

  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    rate_probe_event(self, GST_PAD_PROBE_INFO_EVENT(info));
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
  bool drop = false, notify_queue = false;
  bool margin_valid = false;
  gint64 margin_ns = 0;
  GstSyncWaveOutputMarginFunc margin_func = NULL;
  gpointer margin_data = NULL;
  /* The device is read before our lock is taken (it may call into the audio server). */
  GstClock* dev = NULL;
  GstElement* dsink = NULL;
  lookup_device(priv, &dsink, &dev);
  const syncwave::OutputPlacer::Device device = read_device(priv, dsink, dev);
  const GstClockTime now = master ? gst_clock_get_time(master) : GST_CLOCK_TIME_NONE;
  gint new_offset_ms = G_MININT; /* the pad offset to set, once our lock is released */
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    margin_func = priv->margin_func;
    margin_data = priv->margin_data;
    if (priv->delay_ms != priv->placed_delay_ms) {
      /* The delay changed: a faded step on the same timeline when the output is placed
       * absolutely and tracking, else the running time moves. */
      const gint64 delta_ns = (gint64)(priv->delay_ms - priv->placed_delay_ms) * GST_MSECOND;
      const bool moved = priv->info_valid && priv->drift_enabled && priv->placer.move(delta_ns);
      if (!moved) new_offset_ms = priv->delay_ms;
      GST_INFO_OBJECT(self, "delay %d -> %d ms: %s", priv->placed_delay_ms, priv->delay_ms,
                      moved ? "a faded step on the output" : "the sink re-places the stream");
      priv->placed_delay_ms = priv->delay_ms;
    }
    if (device.queue_ns >= 0) {
      priv->queue_us = device.queue_ns / 1000;
      if (priv->notified_queue_us < 0 ||
          std::abs(priv->queue_us - priv->notified_queue_us) > QUEUE_NOTIFY_STEP_US) {
        priv->notified_queue_us = priv->queue_us;
        notify_queue = true;
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
    in.delay_ns = (int64_t)priv->placed_delay_ms * GST_MSECOND;
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
    margin_valid = b.margin_valid;
    margin_ns = b.margin_ns;
    GST_LOG_OBJECT(self, "phase error %.1f us, heard %.1f us (%s), ratio %.6f, drift %.1f ppm",
                   priv->placer.phase_error_us(), priv->placer.heard_error_us(),
                   priv->placer.absolute() ? "absolute" : "relative", priv->placer.ratio(),
                   priv->placer.drift().drift_ppm());
    /* A new timeline is placed by the sink from its running time: with the delay. */
    if (b.new_timeline && priv->offset_ms != priv->placed_delay_ms)
      new_offset_ms = priv->placed_delay_ms;
    if (b.frames == 0) {
      drop = true; /* all of it dropped by a step */
      goto done;
    }
    out = gst_buffer_new_memdup(priv->scratch.data(), b.frames * GST_AUDIO_INFO_BPF(&priv->info));
    gst_buffer_copy_into(out, buf,
                         (GstBufferCopyFlags)(GST_BUFFER_COPY_FLAGS | GST_BUFFER_COPY_META), 0, -1);
    /* A new timeline keeps the input's DISCONT (the sink places it by its timestamp);
     * after a gap the sink must put it where its timestamp says, on the same timeline. */
    if (b.discont)
      GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
    else
      GST_BUFFER_FLAG_UNSET(out, GST_BUFFER_FLAG_DISCONT);
    GST_BUFFER_PTS(out) = (GstClockTime)b.pts_ns;
    GST_BUFFER_DURATION(out) = (GstClockTime)b.duration_ns;
  }
done:
  if (new_offset_ms != G_MININT) {
    /* On the audioconvert's src pad, downstream of this probe: from this buffer on. */
    set_delay_offset(self, new_offset_ms);
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->offset_ms = new_offset_ms;
  }
  if (notify_queue) g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_DEVICE_QUEUE]);
  if (margin_valid && margin_func != NULL) margin_func(self, (gint64)now, margin_ns, margin_data);
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

/* ---------------------------------------------------------------- volume */

/* The gain the volume element applies at stream time t during the ramp running (or its
 * end). Under the lock. */
static double ramp_gain_locked(SyncWaveOutputPrivate* priv, GstClockTime t) {
  if (!GST_CLOCK_TIME_IS_VALID(priv->ramp_end) || t >= priv->ramp_end) return priv->ramp_to;
  const GstClockTime start = priv->ramp_end - MIN(priv->ramp_end, VOLUME_RAMP);
  if (t <= start) return priv->ramp_from;
  return priv->ramp_from +
         (priv->ramp_to - priv->ramp_from) * (double)(t - start) / (double)VOLUME_RAMP;
}

/* volume/mute changed: the volume element goes there in VOLUME_RAMP (linear), from the
 * start of the next buffer it gets, so that a change is never a click. The ramp is
 * started by vol_sink_probe on the streaming thread, before the element processes that
 * buffer (no buffer can slip through between a decision here and the element). Before
 * the first buffer (or without a control source) it is set at once. Muted is gain 0;
 * the element's own mute is set once the ramp reached 0. */
static void set_gain(GstSyncWaveOutput* self) {
  SyncWaveOutputPrivate* priv = self->priv;
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
static void set_ramp_points(SyncWaveOutputPrivate* priv, GstClockTime t0, double from, double to) {
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
  GstSyncWaveOutput* self = GST_SYNCWAVE_OUTPUT(user_data);
  SyncWaveOutputPrivate* priv = self->priv;
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

/* ---------------------------------------------------------------- element */

/* No clock from here: the receiver's shared clock is the pipeline's (syncwavesink
 * provides it), and the device's clock is what this bin corrects against. */
static GstClock* gst_syncwave_output_provide_clock(GstElement*) { return NULL; }

static void gst_syncwave_output_handle_message(GstBin* bin, GstMessage* msg) {
  /* The audio sink's clock offers and losses stay here (see provide_clock). */
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_CLOCK_PROVIDE ||
      GST_MESSAGE_TYPE(msg) == GST_MESSAGE_CLOCK_LOST) {
    gst_message_unref(msg);
    return;
  }
  GST_BIN_CLASS(parent_class)->handle_message(bin, msg);
}

static GstStateChangeReturn gst_syncwave_output_change_state(GstElement* element,
                                                             GstStateChange transition) {
  GstSyncWaveOutput* self = GST_SYNCWAVE_OUTPUT(element);
  SyncWaveOutputPrivate* priv = self->priv;

  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    if (priv->vol == NULL) {
      GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN,
                        ("volume, capsfilter or audioconvert is not available"), (NULL));
      return GST_STATE_CHANGE_FAILURE;
    }
    if (!setup_audio_sink(self)) return GST_STATE_CHANGE_FAILURE;
  }

  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) return ret;

  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY: {
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
      priv->queue_us = -1;
      priv->notified_queue_us = -1;
      break;
    }
    case GST_STATE_CHANGE_READY_TO_NULL:
      /* Drop the audio sink so that audio-sink/device changes apply next time. */
      remove_audio_sink(self);
      break;
    default:
      break;
  }
  return ret;
}

static GstStructure* build_stats(GstSyncWaveOutput* self) {
  SyncWaveOutputPrivate* priv = self->priv;
  /* The output's underruns, when it counts them (syncwavepulsesink), without our lock. */
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
  GstStructure* s = gst_structure_new_empty("application/x-syncwave-output-stats");
  std::lock_guard<std::mutex> lk(priv->lock);
  const syncwave::OutputPlacer& placer = priv->placer;
  gst_structure_set(s, "device", G_TYPE_STRING, priv->device.c_str(), NULL);
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
  gst_structure_set(s, "sink-delay-us", G_TYPE_INT64, priv->queue_us, NULL);
  gst_structure_set(s, "delay-ms", G_TYPE_INT, priv->delay_ms, NULL);
  gst_structure_set(s, "delay-moves", G_TYPE_UINT64, (guint64)placer.moves(), NULL);
  if (have_underruns) gst_structure_set(s, "underruns", G_TYPE_UINT64, underruns, NULL);
  return s;
}

static void gst_syncwave_output_set_property(GObject* object, guint prop_id, const GValue* value,
                                             GParamSpec* pspec) {
  GstSyncWaveOutput* self = GST_SYNCWAVE_OUTPUT(object);
  SyncWaveOutputPrivate* priv = self->priv;
  switch (prop_id) {
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
    /* The volume element is set without our lock held: never call into a child element
     * (it takes its own locks, and may be streaming) under it. */
    case PROP_VOLUME: {
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->volume = g_value_get_double(value);
      }
      set_gain(self);
      break;
    }
    case PROP_MUTE: {
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->mute = g_value_get_boolean(value);
      }
      set_gain(self);
      break;
    }
    case PROP_DRIFT_CORRECTION: {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->drift_enabled = g_value_get_boolean(value);
      break;
    }
    case PROP_DELAY: {
      /* Applied by the streaming thread at the next buffer (rate_probe). */
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->delay_ms = g_value_get_int(value);
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

static void gst_syncwave_output_get_property(GObject* object, guint prop_id, GValue* value,
                                             GParamSpec* pspec) {
  GstSyncWaveOutput* self = GST_SYNCWAVE_OUTPUT(object);
  SyncWaveOutputPrivate* priv = self->priv;
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, build_stats(self));
    return;
  }
  std::lock_guard<std::mutex> lk(priv->lock);
  switch (prop_id) {
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
    case PROP_METER_INTERVAL:
      g_value_set_uint64(value, priv->meter_interval);
      break;
    case PROP_DEVICE_QUEUE:
      g_value_set_int64(value, priv->queue_us);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_syncwave_output_finalize(GObject* object) {
  GstSyncWaveOutput* self = GST_SYNCWAVE_OUTPUT(object);
  if (self->priv) {
    gst_clear_object(&self->priv->gain_source);
    if (self->priv->position_query) gst_query_unref(self->priv->position_query);
  }
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_syncwave_output_class_init(GstSyncWaveOutputClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);

  gobject_class->set_property = gst_syncwave_output_set_property;
  gobject_class->get_property = gst_syncwave_output_get_property;
  gobject_class->finalize = gst_syncwave_output_finalize;

  const GParamFlags ready =
      (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  const GParamFlags playing =
      (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  /**
   * GstSyncWaveOutput:device:
   * Device name for the platform's audio sink (syncwavepulsesink or pulsesink, else
   * alsasink). Ignored when audio-sink is set.
   */
  properties[PROP_DEVICE] =
      g_param_spec_string("device", "Device", "Audio output device", NULL, ready);
  /**
   * GstSyncWaveOutput:audio-sink:
   * The audio sink element or bin (as playbin's audio-sink). Default: syncwavepulsesink
   * when a PulseAudio server answers, else autoaudiosink. The sinks made here do not
   * preroll (async=false), so a receiver started before its sender plays the first
   * packet on time; set async=false on a sink given here for the same. With
   * drift-correction on, the bin corrects the device's drift itself and sets the sink's
   * slave-method to none (a GstAudioBaseSink inside it); it places the stream absolutely
   * when the sink answers the syncwave-device-position query (syncwave-device-position.h;
   * syncwavepulsesink does), else it corrects the drift of the clock the sink provides.
   * A sink that is not an audio device (an encoder to a file, appsink) gets the stream
   * untouched.
   */
  properties[PROP_AUDIO_SINK] = g_param_spec_object(
      "audio-sink", "Audio sink", "Audio sink element or bin", GST_TYPE_ELEMENT, ready);
  /**
   * GstSyncWaveOutput:volume:
   * Linear volume (1.0 = unchanged). A change while playing ramps linearly over 20 ms
   * of the stream (a control source on the volume element), never a step.
   */
  properties[PROP_VOLUME] =
      g_param_spec_double("volume", "Volume", "Linear volume", 0.0, 10.0, DEFAULT_VOLUME, playing);
  /**
   * GstSyncWaveOutput:mute:
   * Silences the output without stopping playback; muting and unmuting ramp over
   * 20 ms like volume.
   */
  properties[PROP_MUTE] = g_param_spec_boolean("mute", "Mute", "Mute the output", DEFAULT_MUTE,
                                               playing);
  /**
   * GstSyncWaveOutput:delay:
   * Extra delay (ms) of this output, to compensate a device that is early or late (a
   * Bluetooth speaker: negative). syncwavesink keeps it at or above -latency. Set
   * before playing, or on an output without a device position, it shifts the running
   * time the audio sink sees (a pad offset: the sink re-places the stream). Changed
   * while the output is placed absolutely (syncwavepulsesink), it is a faded step: the
   * sound fades out, the silence of a later delay is inserted or the content an
   * earlier one skips is dropped, and it fades in, on the same output timeline (stats
   * delay-moves).
   */
  properties[PROP_DELAY] =
      g_param_spec_int("delay", "Delay", "Per-device delay in milliseconds", -MAX_DELAY_MS,
                       MAX_DELAY_MS, DEFAULT_DELAY_MS, playing);
  /**
   * GstSyncWaveOutput:drift-correction:
   * Resample to keep the audio device on the pipeline's clock (when the audio sink is a
   * GstAudioBaseSink with its own clock). Off: the audio passes untouched and the
   * device's drift accumulates until the sink resyncs.
   */
  properties[PROP_DRIFT_CORRECTION] = g_param_spec_boolean(
      "drift-correction", "Drift correction", "Absorb the audio device's clock drift by resampling",
      DEFAULT_DRIFT_CORRECTION, playing);
  /**
   * GstSyncWaveOutput:meter-interval:
   * Posts the `level` element's messages (structure "level": peak, rms, decay per
   * channel in dB) for what is played, every this many ns; 0 (the default) adds no level
   * element. Read when the bin goes from NULL to READY.
   */
  properties[PROP_METER_INTERVAL] = g_param_spec_uint64(
      "meter-interval", "Meter interval",
      "Post 'level' messages (peak and RMS per channel, dB) of what is played at this "
      "interval in ns; 0: off",
      0, G_MAXUINT64, 0, ready);
  /**
   * GstSyncWaveOutput:device-queue-us:
   * How much the device holds (its ring buffer and the server's queue), µs, -1 while
   * unknown. Notified when it moved by more than 2 ms: a jitter buffer must report a
   * loss that far ahead of its time (syncwavesink sets syncwavejitter's loss-margin
   * from the largest of its outputs).
   */
  properties[PROP_DEVICE_QUEUE] = g_param_spec_int64(
      "device-queue-us", "Device queue", "What the device holds, in microseconds (-1 unknown)",
      -1, G_MAXINT64, -1, (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  /**
   * GstSyncWaveOutput:stats:
   * device, drift-ppm, drift-measured-ppm, drift-ratio, drift-corrections, drift-active,
   * phase-error-us, sink-resyncs, phase-steps, alignment-steps,
   * alignment-last-step-frames, absolute-position, heard-error-us, output-timelines,
   * output-jumps, sink-delay-us, delay-ms and (syncwavepulsesink) underruns: see
   * syncwavesink's stats, which carry them for each output.
   */
  properties[PROP_STATS] =
      g_param_spec_boxed("stats", "Statistics", "Output statistics", GST_TYPE_STRUCTURE,
                         (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_properties(gobject_class, N_PROPS, properties);

  element_class->change_state = GST_DEBUG_FUNCPTR(gst_syncwave_output_change_state);
  element_class->provide_clock = GST_DEBUG_FUNCPTR(gst_syncwave_output_provide_clock);
  GST_BIN_CLASS(klass)->deep_element_added =
      GST_DEBUG_FUNCPTR(gst_syncwave_output_deep_element_added);
  GST_BIN_CLASS(klass)->handle_message = GST_DEBUG_FUNCPTR(gst_syncwave_output_handle_message);

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_set_static_metadata(
      element_class, "SyncWave output", "Sink/Audio",
      "One output of a SyncWave receiver: volume, drift correction and placement on the "
      "pipeline clock, delay, meter and the audio sink",
      "SyncWave");

  GST_DEBUG_CATEGORY_INIT(gst_syncwave_output_debug, "syncwaveoutput", 0, "SyncWave output bin");
}

static void gst_syncwave_output_init(GstSyncWaveOutput* self) {
  SyncWaveOutputPrivate* priv = new SyncWaveOutputPrivate();
  self->priv = priv;
  gst_audio_info_init(&priv->info);

  priv->vol = make("volume", "volume");
  priv->capsfilter = make("capsfilter", "format");
  priv->convert = make("audioconvert", "sink-convert");
  if (!priv->vol || !priv->capsfilter || !priv->convert) {
    GST_ERROR_OBJECT(self, "missing elements; the output will fail to start");
    for (GstElement** e : {&priv->vol, &priv->capsfilter, &priv->convert}) {
      if (*e) gst_object_unref(gst_object_ref_sink(*e));
      *e = NULL;
    }
    return;
  }
  GstCaps* f32 = gst_caps_from_string("audio/x-raw, format=F32LE, layout=interleaved");
  g_object_set(priv->capsfilter, "caps", f32, NULL);
  gst_caps_unref(f32);
  gst_bin_add_many(GST_BIN(self), priv->vol, priv->capsfilter, priv->convert, NULL);
  gst_element_link_many(priv->vol, priv->capsfilter, priv->convert, NULL);

  GstPad* target = gst_element_get_static_pad(priv->vol, "sink");
  GstPad* ghost =
      gst_ghost_pad_new_from_template("sink", target, gst_static_pad_template_get(&sink_template));
  gst_object_unref(target);
  gst_element_add_pad(GST_ELEMENT(self), ghost);

  /* Volume ramps: a linear control source on the volume element, disabled until a
   * change (set_gain). */
  gst_segment_init(&priv->vol_segment, GST_FORMAT_UNDEFINED);
  priv->gain_source = gst_interpolation_control_source_new();
  g_object_set(priv->gain_source, "mode", GST_INTERPOLATION_MODE_LINEAR, NULL);
  priv->gain_binding =
      gst_direct_control_binding_new_absolute(GST_OBJECT(priv->vol), "volume", priv->gain_source);
  if (priv->gain_binding != NULL &&
      gst_object_add_control_binding(GST_OBJECT(priv->vol), priv->gain_binding)) {
    gst_control_binding_set_disabled(priv->gain_binding, TRUE);
    GstPad* vol_sink = gst_element_get_static_pad(priv->vol, "sink");
    gst_pad_add_probe(vol_sink,
                      (GstPadProbeType)(GST_PAD_PROBE_TYPE_BUFFER |
                                        GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
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

  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
}
