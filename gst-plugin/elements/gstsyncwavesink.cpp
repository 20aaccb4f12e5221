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
 *   sink ─► syncwavejitter ─► syncwavedepay ─► syncwavedecodebin ─► audioresample ─► output0
 *            (latency)                        (opusdec when the caps are audio/x-opus,
 *                                              then audioconvert)
 *   with outputs=N > 1:           audioresample ─► tee ─► queue ─► output0
 *                                                      └► queue ─► output1 ...
 *   each output a syncwaveoutput (gstsyncwaveoutput.cpp): volume, drift correction and
 *   placement on the shared clock, delay, meter and its audio sink.
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
 * - The latency query is answered with the latency upstream of the outputs (the
 *   jitter's plus decoding), so a device's own buffering does not move the render time.
 * - One jitter buffer, decoder and clock for every output. The outputs tell the bin
 *   what it needs of them: how much their devices hold (notify::device-queue-us: the
 *   jitter reports losses ahead of the fullest) and how early each buffer reached its
 *   device (a margin callback into the playout monitor).
 * - The single-output properties (device, audio-sink, volume, mute, delay,
 *   drift-correction, meter-interval) are output 0's; the others are set on their
 *   children (output1::device=...).
 *
 * Example: gst-launch-1.0 udpsrc port=5555 ! syncwavesink latency=60
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/audio/audio.h>
#include <gst/net/net.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "clock_spec.h"
#include "gstsyncwaveoutput.h"
#include "gstsyncwavesink.h"
#include "playout_monitor.h"
#include "syncwave-clock.h"
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
/* An output's margin counts as its device being measured for this long. */
#define OUTPUT_MEASURED_FOR (200 * GST_MSECOND)
/* Losses are reported this much before their time on top of what the device holds
 * (syncwavejitter loss-margin), and that is set again when the device's queue moves
 * by more than LOSS_MARGIN_STEP. Before the device is known: DEFAULT_LOSS_MARGIN. */
#define LOSS_MARGIN_EXTRA_MS 10
#define LOSS_MARGIN_STEP_MS 5
#define DEFAULT_LOSS_MARGIN_MS 40
#define DEFAULT_CLOCK "auto"
#define DEFAULT_VOLUME 1.0
#define DEFAULT_MUTE FALSE
#define DEFAULT_DELAY_MS 0
#define DEFAULT_DRIFT_CORRECTION TRUE
#define DEFAULT_CLOCK_TIMEOUT_MS 2000
#define DEFAULT_AUTO_CLOCK_PORT syncwave::kDefaultNetClockPort
#define MAX_DELAY_MS 10000
#define MAX_LATENCY_MS 10000
#define MAX_OUTPUTS 16

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
  PROP_OUTPUTS,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-syncwave"));

struct SyncWaveSinkPrivate {
  ~SyncWaveSinkPrivate() {
    std::fill(clock_key.begin(), clock_key.end(), 0);
    gst_clear_object(&clock);
    gst_clear_object(&pending);
    if (timeout_id) gst_clock_id_unref(timeout_id);
  }

  std::mutex lock;

  /* Properties (the outputs' own are theirs: device, volume, delay, ...). */
  guint latency_ms = DEFAULT_LATENCY_MS;
  bool auto_latency = DEFAULT_AUTO_LATENCY;
  std::string clock_str = DEFAULT_CLOCK;
  syncwave::ClockSpec clock_spec;
  guint clock_timeout_ms = DEFAULT_CLOCK_TIMEOUT_MS;
  guint auto_clock_port = DEFAULT_AUTO_CLOCK_PORT;

  /* Children (owned by the bin). */
  GstElement* jitter = nullptr;
  GstElement* depay = nullptr;
  GstElement* decode = nullptr; /* syncwavedecodebin: opusdec when Opus, and audioconvert */
  GstElement* resample = nullptr;
  /* syncwaveoutput "output0", "output1", ...; with more than one, a tee ("outputs") and a
   * queue per output ("output-queueN") between the resampler and them. */
  std::vector<GstElement*> outputs;
  std::vector<GstElement*> queues;
  GstElement* tee = nullptr;
  /* With in-band FEC opusdec outputs a packet only when the next one (or the next
   * gap) has come: a loss must reach it this much earlier for the packet before it to
   * be in time (syncwavedecodebin's fec-hold; 0 without FEC). Added to the loss margin. */
  guint fec_hold_ms = 0;
  /* The most any output's device holds (syncwaveoutput device-queue-us), -1 unknown. */
  gint64 sink_delay_us = -1;

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

  /* Playout (core/playout_monitor.h): is audio reaching the outputs on time, and the
   * latency actually played at (latency_ms unless the path needed more). Packets are
   * observed on the sink pad (udpsrc's thread), buffers by the outputs (their margin
   * callback, on_output_margin). */
  syncwave::PlayoutMonitor playout;
  /* When an output last reported a margin (its device is measured): without one in the
   * last OUTPUT_MEASURED_FOR, arriving in time is playing (appsink, fakesink, a device
   * being measured again). */
  GstClockTime last_margin = GST_CLOCK_TIME_NONE;
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

/* Output 0, the one the single-output properties (device, volume, delay, ...) are
 * proxied to: a new reference or NULL. */
static GstElement* first_output(SyncWaveSinkPrivate* priv) {
  std::lock_guard<std::mutex> lk(priv->lock);
  return priv->outputs.empty() ? NULL : GST_ELEMENT(gst_object_ref(priv->outputs[0]));
}

/* Every output, each a new reference (for calling into them without our lock). */
static std::vector<GstElement*> ref_outputs(SyncWaveSinkPrivate* priv) {
  std::lock_guard<std::mutex> lk(priv->lock);
  std::vector<GstElement*> outs;
  for (GstElement* o : priv->outputs) outs.push_back(GST_ELEMENT(gst_object_ref(o)));
  return outs;
}

static void unref_outputs(std::vector<GstElement*>& outs) {
  for (GstElement* o : outs) gst_object_unref(o);
  outs.clear();
}

/* The loss margin the jitter element needs: losses concealed before the device wants
 * the data, as far ahead of its time as the fullest output buffers, and some; with
 * in-band FEC one packet more, since opusdec releases the packet before a loss only when
 * the loss reaches it. Returns the new margin when it moved by more than
 * LOSS_MARGIN_STEP_MS, else 0. Under the lock. */
static guint wanted_loss_margin_locked(const SyncWaveSinkPrivate* priv) {
  return (priv->sink_delay_us >= 0 ? (guint)(priv->sink_delay_us / 1000) + LOSS_MARGIN_EXTRA_MS
                                   : DEFAULT_LOSS_MARGIN_MS) +
         priv->fec_hold_ms;
}

static guint update_loss_margin_locked(SyncWaveSinkPrivate* priv) {
  const guint want = wanted_loss_margin_locked(priv);
  if (want > priv->loss_margin_ms + LOSS_MARGIN_STEP_MS ||
      want + LOSS_MARGIN_STEP_MS < priv->loss_margin_ms) {
    priv->loss_margin_ms = want;
    return want;
  }
  return 0;
}

/* An output's device queue moved (syncwaveoutput's notify::device-queue-us, on its
 * streaming thread): the jitter reports losses ahead of the fullest one. */
static void on_device_queue(GObject*, GParamSpec*, gpointer user_data) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(user_data);
  SyncWaveSinkPrivate* priv = self->priv;
  std::vector<GstElement*> outs = ref_outputs(priv);
  gint64 most = -1;
  for (GstElement* o : outs) {
    gint64 q = -1;
    g_object_get(o, "device-queue-us", &q, NULL);
    most = std::max(most, q);
  }
  unref_outputs(outs);
  guint margin;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->sink_delay_us = most;
    margin = update_loss_margin_locked(priv);
  }
  if (margin > 0 && priv->jitter != NULL) {
    GST_DEBUG_OBJECT(self, "devices hold up to %" G_GINT64_FORMAT " us: losses reported %u ms ahead",
                     most, margin);
    g_object_set(priv->jitter, "loss-margin", margin, NULL);
  }
}

/* Each buffer an output placed on its device: how early it got there, for the playout
 * monitor (on that output's streaming thread, without its lock). */
static void on_output_margin(GstSyncWaveOutput*, gint64 now_ns, gint64 margin_ns,
                             gpointer user_data) {
  SyncWaveSinkPrivate* priv = GST_SYNCWAVE_SINK(user_data)->priv;
  std::lock_guard<std::mutex> lk(priv->lock);
  priv->last_margin = (GstClockTime)now_ns;
  priv->playout.on_output(now_ns, margin_ns);
}

/* Makes output N (a syncwaveoutput named outputN), wired to this bin. */
static GstElement* new_output(GstSyncWaveSink* self, guint n) {
  std::string name = "output" + std::to_string(n);
  GstElement* out = make("syncwaveoutput", name.c_str());
  if (out == NULL) return NULL;
  g_signal_connect(out, "notify::device-queue-us", G_CALLBACK(on_device_queue), self);
  gst_syncwave_output_set_margin_func(GST_SYNCWAVE_OUTPUT(out), on_output_margin, self);
  return out;
}

/* Builds the outputs part for `n` outputs (in the NULL state): output 0 right after the
 * resampler; more than one behind a tee, each after its own queue (each output waits for
 * its device on its own thread). Outputs that exist are kept with their properties. */
static gboolean set_output_count(GstSyncWaveSink* self, guint n) {
  SyncWaveSinkPrivate* priv = self->priv;
  if (priv->resample == NULL || n == 0) return FALSE;
  std::vector<GstElement*> keep, drop, branches;
  GstElement* tee;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (n == priv->outputs.size()) return TRUE;
    for (size_t i = 0; i < priv->outputs.size(); i++)
      (i < n ? keep : drop).push_back(priv->outputs[i]);
    branches = priv->queues;
    tee = priv->tee;
    priv->queues.clear();
    priv->tee = NULL;
    priv->outputs.clear();
  }
  /* Take the old wiring apart. */
  if (tee != NULL) {
    gst_element_unlink(priv->resample, tee);
    for (size_t i = 0; i < branches.size(); i++) {
      if (i < keep.size() + drop.size()) {
        GstElement* o = i < keep.size() ? keep[i] : drop[i - keep.size()];
        gst_element_unlink(branches[i], o);
      }
      gst_element_unlink(tee, branches[i]);
      gst_bin_remove(GST_BIN(self), branches[i]);
    }
    gst_bin_remove(GST_BIN(self), tee);
  } else if (!keep.empty()) {
    gst_element_unlink(priv->resample, keep[0]);
  }
  for (GstElement* o : drop) gst_bin_remove(GST_BIN(self), o);
  for (guint i = keep.size(); i < n; i++) {
    GstElement* o = new_output(self, i);
    if (o == NULL) break;
    gst_bin_add(GST_BIN(self), o);
    keep.push_back(o);
  }
  /* The new wiring. */
  bool ok = keep.size() == n;
  tee = NULL;
  branches.clear();
  if (ok && n == 1) {
    ok = gst_element_link(priv->resample, keep[0]);
  } else if (ok) {
    tee = make("tee", "outputs");
    ok = tee != NULL;
    if (ok) {
      gst_bin_add(GST_BIN(self), tee);
      ok = gst_element_link(priv->resample, tee);
    }
    for (guint i = 0; ok && i < n; i++) {
      std::string qname = "output-queue" + std::to_string(i);
      GstElement* q = make("queue", qname.c_str());
      if (q == NULL) {
        ok = false;
        break;
      }
      gst_bin_add(GST_BIN(self), q);
      branches.push_back(q);
      ok = gst_element_link(tee, q) && gst_element_link(q, keep[i]);
    }
  }
  /* Removing children recomputes the bin's flags from what is left. */
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_PROVIDE_CLOCK);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
  std::lock_guard<std::mutex> lk(priv->lock);
  priv->outputs = keep;
  priv->queues = branches;
  priv->tee = tee;
  if (!ok) GST_ERROR_OBJECT(self, "cannot build %u outputs", n);
  return ok;
}

/* The decoder's in-band FEC hold changed (syncwavedecodebin decided it from the first
 * Opus packet, or switched): opusdec then outputs a packet only when the next item has
 * reached it, so a missing packet must be reported before its deadline even before a
 * later one reveals it (up to three in a row), and the loss margin has the hold added
 * (on_device_queue keeps it as the devices move). On the streaming thread. */
static void on_fec_hold(GObject* decode, GParamSpec*, gpointer user_data) {
  SyncWaveSinkPrivate* priv = GST_SYNCWAVE_SINK(user_data)->priv;
  guint hold_ms = 0;
  g_object_get(decode, "fec-hold", &hold_ms, NULL);
  guint margin_ms;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->fec_hold_ms = hold_ms;
    margin_ms = priv->loss_margin_ms = wanted_loss_margin_locked(priv);
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
    /* Without a measured device (appsink, fakesink, a device being measured again: no
     * output margin lately), arriving in time is playing. */
    if (!GST_CLOCK_TIME_IS_VALID(priv->last_margin) || now > priv->last_margin + OUTPUT_MEASURED_FOR)
      priv->playout.on_output((gint64)now, latency - transit);
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
    case GST_STATE_CHANGE_NULL_TO_READY: {
      if (priv->depay == NULL) {
        GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("syncwavedepay is not available"), (NULL));
        return GST_STATE_CHANGE_FAILURE;
      }
      bool have_outputs;
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        have_outputs = !priv->outputs.empty();
      }
      if (!have_outputs) {
        GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("syncwaveoutput is not available"), (NULL));
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    }
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!gst_syncwave_sink_make_clock(self)) return GST_STATE_CHANGE_FAILURE;
      break;
    default:
      break;
  }

  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) return ret;

  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    stop_watching(priv);
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->sender_host.clear();
    priv->auto_fallback = false;
    priv->playout.reset();
    priv->last_margin = GST_CLOCK_TIME_NONE;
    priv->sink_delay_us = -1;
    priv->next_eval = 0;
    priv->transit_p99_us = -1;
    priv->latency_need_ms = 0;
    priv->played_addr_len = 0;
    priv->last_played = GST_CLOCK_TIME_NONE;
    priv->newest_stamp_us = 0;
    gst_clear_object(&priv->clock);
    priv->clock_in_use.clear();
  }
  return ret;
}

/* The fields of an output's stats into the receiver's, under `prefix`. */
static void merge_output_stats(GstStructure* s, const GstStructure* os, const std::string& prefix) {
  const gint n = gst_structure_n_fields(os);
  for (gint i = 0; i < n; i++) {
    const gchar* name = gst_structure_nth_field_name(os, i);
    if (prefix.empty() && strcmp(name, "device") == 0) continue; /* the device property's */
    std::string key = prefix + name;
    gst_structure_set_value(s, key.c_str(), gst_structure_get_value(os, name));
  }
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
  std::vector<GstElement*> outs = ref_outputs(priv);
  std::vector<GstStructure*> output_stats;
  for (GstElement* o : outs) {
    GstStructure* os = NULL;
    g_object_get(o, "stats", &os, NULL);
    output_stats.push_back(os);
  }
  unref_outputs(outs);

  GstStructure* s = jitter_stats ? gst_structure_copy(jitter_stats)
                                 : gst_structure_new_empty("application/x-syncwave-sink-stats");
  gst_structure_set_name(s, "application/x-syncwave-sink-stats");
  if (depay_stats) {
    guint64 concealed = 0;
    gst_structure_get_uint64(depay_stats, "concealed", &concealed);
    gst_structure_set(s, "concealed", G_TYPE_UINT64, concealed, NULL);
    /* The rest of the depayloader's figures under a depay- prefix. */
    merge_output_stats(s, depay_stats, "depay-");
  }
  /* Output 0's figures as they are (drift-ppm, alignment-steps, ...), the others' under
   * an outputN- prefix. */
  gst_structure_set(s, "outputs", G_TYPE_UINT, (guint)output_stats.size(), NULL);
  for (size_t i = 0; i < output_stats.size(); i++) {
    if (output_stats[i] == NULL) continue;
    merge_output_stats(s, output_stats[i], i == 0 ? "" : "output" + std::to_string(i) + "-");
    gst_structure_free(output_stats[i]);
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
  gst_structure_set(s, "clock", G_TYPE_STRING, priv->clock_in_use.c_str(), NULL);
  gst_structure_set(s, "clock-synced", G_TYPE_BOOLEAN, synced, NULL);
  gst_structure_set(s, "sender-host", G_TYPE_STRING, priv->sender_host.c_str(), NULL);
  gst_structure_set(s, "decoder", G_TYPE_STRING, decoder ? decoder : "none", NULL);
  gst_structure_set(s, "decoder-switches", G_TYPE_UINT64, decoder_switches, NULL);
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
  if (jitter_stats) gst_structure_free(jitter_stats);
  if (depay_stats) gst_structure_free(depay_stats);
  g_free(decoder);
  return s;
}


/* Sets one of output 0's properties (device, audio-sink, volume, ...), without our lock. */
static void set_on_first_output(SyncWaveSinkPrivate* priv, const gchar* name, const GValue* value) {
  GstElement* out = first_output(priv);
  if (out == NULL) return;
  g_object_set_property(G_OBJECT(out), name, value);
  gst_object_unref(out);
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
        jitter = priv->jitter ? GST_ELEMENT(gst_object_ref(priv->jitter)) : NULL;
      }
      if (jitter) {
        g_object_set(jitter, "latency", l, NULL);
        gst_object_unref(jitter);
      }
      /* No output plays before its capture time: delays stay at or above -latency. */
      std::vector<GstElement*> outs = ref_outputs(priv);
      for (GstElement* o : outs) {
        gint d = 0;
        g_object_get(o, "delay", &d, NULL);
        if (d < -(gint)l) g_object_set(o, "delay", -(gint)l, NULL);
      }
      unref_outputs(outs);
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
    case PROP_OUTPUTS: {
      GstState state;
      GST_OBJECT_LOCK(self);
      state = GST_STATE(self);
      GST_OBJECT_UNLOCK(self);
      if (state != GST_STATE_NULL) {
        GST_WARNING_OBJECT(self, "outputs can only be changed in the NULL state");
        break;
      }
      set_output_count(self, g_value_get_uint(value));
      break;
    }
    case PROP_DELAY: {
      gint d = g_value_get_int(value);
      guint latency;
      {
        std::lock_guard<std::mutex> lk(priv->lock);
        latency = priv->latency_ms;
      }
      if (d < -(gint)latency) {
        GST_WARNING_OBJECT(self, "delay %d ms below -latency, clamped to %d ms", d, -(gint)latency);
        d = -(gint)latency;
      }
      GValue v = G_VALUE_INIT;
      g_value_init(&v, G_TYPE_INT);
      g_value_set_int(&v, d);
      set_on_first_output(priv, "delay", &v);
      g_value_unset(&v);
      break;
    }
    /* Output 0's: set without our lock held (never call into a child under it). */
    case PROP_DEVICE:
    case PROP_AUDIO_SINK:
    case PROP_VOLUME:
    case PROP_MUTE:
    case PROP_DRIFT_CORRECTION:
    case PROP_METER_INTERVAL:
      set_on_first_output(priv, pspec->name, value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_syncwave_sink_get_property(GObject* object, guint prop_id, GValue* value,
                                           GParamSpec* pspec) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(object);
  SyncWaveSinkPrivate* priv = self->priv;

  switch (prop_id) {
    case PROP_STATS:
      g_value_take_boxed(value, gst_syncwave_sink_build_stats(self));
      return;
    case PROP_DEVICE:
    case PROP_AUDIO_SINK:
    case PROP_VOLUME:
    case PROP_MUTE:
    case PROP_DELAY:
    case PROP_DRIFT_CORRECTION:
    case PROP_METER_INTERVAL: {
      GstElement* out = first_output(priv);
      if (out != NULL) {
        g_object_get_property(G_OBJECT(out), pspec->name, value);
        gst_object_unref(out);
      } else {
        g_param_value_set_default(pspec, value);
      }
      return;
    }
    default:
      break;
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
    case PROP_AUTO_CLOCK_PORT:
      g_value_set_uint(value, priv->auto_clock_port);
      break;
    case PROP_OUTPUTS:
      g_value_set_uint(value, (guint)priv->outputs.size());
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_syncwave_sink_dispose(GObject* object) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(object);
  if (self->priv) {
    stop_watching(self->priv);
    std::vector<GstElement*> outs = ref_outputs(self->priv);
    for (GstElement* o : outs) {
      gst_syncwave_output_set_margin_func(GST_SYNCWAVE_OUTPUT(o), NULL, NULL);
      g_signal_handlers_disconnect_by_data(o, self);
    }
    unref_outputs(outs);
    std::lock_guard<std::mutex> lk(self->priv->lock);
    /* The bin drops its children after this: no pointer to them stays. */
    self->priv->outputs.clear();
    self->priv->queues.clear();
    self->priv->tee = NULL;
  }
  G_OBJECT_CLASS(parent_class)->dispose(object);
}

static void gst_syncwave_sink_finalize(GObject* object) {
  GstSyncWaveSink* self = GST_SYNCWAVE_SINK(object);
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
   * Extra delay (ms) of output 0, -latency..10000, to compensate a device that is
   * early or late (a Bluetooth speaker: negative). Changed while playing on a device
   * that reports its position it is a faded step, never a click (syncwaveoutput's
   * delay).
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
   *   (drift-ppm to delay-ms, and underruns, are output 0's: syncwaveoutput's stats)
   *   outputs            guint    the outputs property
   *   outputN-*                   output N's stats (N >= 1), device included
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
   * GstSyncWaveSink:outputs:
   * How many outputs play the stream, 1..16, from one jitter buffer, decoder and clock.
   * Each is a syncwaveoutput child named output0, output1, ... with its own device,
   * audio-sink, volume, mute, delay, drift-correction and meter-interval
   * (`outputs=2 output1::device=B output1::delay=-150`). This bin's properties of the
   * same names are output 0's. Set in the NULL state; outputs that exist keep their
   * properties.
   */
  g_object_class_install_property(
      gobject_class, PROP_OUTPUTS,
      g_param_spec_uint("outputs", "Outputs",
                        "Number of outputs (children output0, output1, ...) fed by one receive "
                        "chain",
                        1, MAX_OUTPUTS, 1,
                        (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
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

  priv->jitter = gst_element_factory_make("syncwavejitter", "jitter");
  priv->depay = make("syncwavedepay", "depay");
  priv->decode = make("syncwavedecodebin", "decode");
  priv->resample = make("audioresample", "resample");
  if (!priv->depay || !priv->decode || !priv->resample) {
    GST_ERROR_OBJECT(self, "missing elements; the bin will fail to start");
    for (GstElement** e : {&priv->jitter, &priv->depay, &priv->decode, &priv->resample}) {
      if (*e) gst_object_unref(gst_object_ref_sink(*e));
      *e = NULL;
    }
    return;
  }
  gst_bin_add_many(GST_BIN(self), priv->depay, priv->decode, priv->resample, NULL);
  gst_element_link_many(priv->depay, priv->decode, priv->resample, NULL);
  g_signal_connect(priv->decode, "notify::fec-hold", G_CALLBACK(on_fec_hold), self);
  set_output_count(self, 1);

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

  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_PROVIDE_CLOCK);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
}
