/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-syncwavepulsesink
 * @title: syncwavepulsesink
 * @short_description: PulseAudio output that knows which frame it plays
 *
 * See the comment below and docs/ for what it does and its properties.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 audiotestsrc ! syncwavepulsesink device=my_null_sink
 * ]|
 */
/* syncwavepulsesink: a PulseAudio output that knows exactly which frame it plays.
 *
 * pulsesink reports its position with pa_stream_get_time(): libpulse interpolates
 * between timing updates that come further and further apart (up to 1.5 s) with a
 * smoother that, measured against the null sink's monitor, runs a few hundred ppm
 * off and wanders by about ±0.5 ms for ~10 s per stream. Two receivers following
 * it land up to half a millisecond apart. This sink asks the server itself:
 *
 *   - every TIMING_INTERVAL_US while writing it requests a timing report
 *     (pa_stream_update_timing_info). With a local server (synchronized clocks) the
 *     report says: at server time `timestamp` the stream's read index was R and the
 *     sink's latency (everything after the read index: the server's render queue and
 *     the device) was L, so the frame playing then is R / bpf - L * rate;
 *   - the reports go into a PlayPositionFit (core/play_position.h), a least-squares
 *     line over the last seconds that drops reports a preempted server stamped late
 *     and starts over when the device jumps (an underrun);
 *   - the GstAudioClock of this sink returns that line at the current time, mapped
 *     into the ring buffer's sample index space, so syncwavesink's absolute
 *     placement (and any other user of the audio clock) sees the device's position
 *     to a few microseconds, with the device's rate (its drift) fitted too.
 *
 * It is a GstAudioSink: the base class runs a thread that writes one segment
 * (latency-time) after another; write() blocks until the server has room. The
 * stream's target length is six segments of 5 ms, so the device queue stays short
 * and a writer thread that misses 25 ms does not underrun.
 * reset() (a flush) and stop() drop the stream and make a new one, so indices start
 * again from 0; pause() corks it and drops the rest of the segment being written.
 *
 * Example: gst-launch-1.0 audiotestsrc ! syncwavepulsesink device=my_null_sink
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <pulse/pulseaudio.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "gstsyncwavepulsesink.h"
#include "play_position.h"
#include "syncwave-device-position.h"

GST_DEBUG_CATEGORY_STATIC(gst_syncwave_pulse_sink_debug);
#define GST_CAT_DEFAULT gst_syncwave_pulse_sink_debug

/* Defaults of GstAudioBaseSink's latency-time (segment) and buffer-time (ring). */
#define DEFAULT_LATENCY_TIME_US 5000
#define DEFAULT_BUFFER_TIME_US 200000
/* Segments the server holds: 30 ms with the default 5 ms segments, so a writer
 * thread that is not scheduled for 25 ms does not underrun (with 20 ms, two
 * receivers, a sender and a recorder on two cores underran about once a minute). */
#define SERVER_SEGMENTS 6
/* A timing report is requested this often while writing. */
#define TIMING_INTERVAL_US 20000
/* How long to wait for the server to connect or a stream to become ready. */
#define CONNECT_TIMEOUT_US (5 * G_USEC_PER_SEC)

enum { PROP_0, PROP_DEVICE, PROP_SERVER, PROP_STATS };

struct SyncWavePulseSinkPrivate {
  std::string device;
  std::string server;

  /* Owned by the element, used under the mainloop lock. */
  pa_threaded_mainloop* mainloop = nullptr;
  pa_context* context = nullptr;
  pa_stream* stream = nullptr;
  pa_sample_spec sample_spec{};
  pa_channel_map channel_map{};
  pa_buffer_attr buffer_attr{};
  guint bpf = 0;
  guint64 generation = 0;   /* bumped by reset(): a blocked write() gives up */
  gint64 stream_frames = 0; /* frames written into the current stream */
  bool timing_pending = false;
  gint64 last_timing_us = 0;
  bool corked = false;
  bool failed = false;           /* the stream or server failed; reported once */
  bool device_checked = false;   /* `device` was found on this connection */
  bool pipewire = false;         /* the server is PipeWire's pulse server */
  void* server_lookup = nullptr; /* the SinkLookup server_info_cb answers */

  /* The position, read by the clock and delay() from other threads. */
  std::mutex lock;
  syncwave::PlayPositionFit fit;
  bool have_offset = false;
  gint64 sample_offset = 0; /* ring buffer sample index minus stream frame index */
  guint64 underruns = 0;
  guint64 streams = 0;
};

struct _GstSyncWavePulseSink {
  GstAudioSink parent;
  SyncWavePulseSinkPrivate* priv;
};

#if G_BYTE_ORDER == G_LITTLE_ENDIAN
#define SINK_FORMATS "{ F32LE, S32LE, S16LE }"
#else
#define SINK_FORMATS "{ F32BE, S32BE, S16BE }"
#endif

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format = (string) " SINK_FORMATS
                    ", layout = (string) interleaved, rate = (int) [ 1, 384000 ], "
                    "channels = (int) [ 1, 8 ]"));

#define gst_syncwave_pulse_sink_parent_class parent_class
G_DEFINE_TYPE(GstSyncWavePulseSink, gst_syncwave_pulse_sink, GST_TYPE_AUDIO_SINK);
GST_ELEMENT_REGISTER_DEFINE(syncwavepulsesink, "syncwavepulsesink", GST_RANK_NONE,
                            GST_TYPE_SYNCWAVE_PULSE_SINK);

/* ---------------------------------------------------------------- libpulse glue */

static void context_state_cb(pa_context*, void* userdata) {
  pa_threaded_mainloop_signal(GST_SYNCWAVE_PULSE_SINK(userdata)->priv->mainloop, 0);
}

static void stream_notify_cb(pa_stream*, void* userdata) {
  pa_threaded_mainloop_signal(GST_SYNCWAVE_PULSE_SINK(userdata)->priv->mainloop, 0);
}

static void stream_request_cb(pa_stream*, size_t, void* userdata) {
  pa_threaded_mainloop_signal(GST_SYNCWAVE_PULSE_SINK(userdata)->priv->mainloop, 0);
}

static void stream_underflow_cb(pa_stream*, void* userdata) {
  GstSyncWavePulseSink* self = GST_SYNCWAVE_PULSE_SINK(userdata);
  std::lock_guard<std::mutex> lk(self->priv->lock);
  self->priv->underruns++;
  /* The play position stood still: the line fitted so far no longer holds. */
  self->priv->fit.restart();
  GST_DEBUG_OBJECT(self, "underrun");
}

/* Converts a server timestamp to the monotonic clock, in ns. PulseAudio stamps with
 * the real-time clock, PipeWire's pulse server with the monotonic one; the nearer of
 * the two is taken. */
static gint64 server_time_to_monotonic_ns(const struct timeval* tv) {
  const gint64 ts = (gint64)tv->tv_sec * G_USEC_PER_SEC + tv->tv_usec;
  const gint64 real = g_get_real_time();
  const gint64 mono = g_get_monotonic_time();
  if (std::llabs(ts - real) < std::llabs(ts - mono)) return (ts - (real - mono)) * 1000;
  return ts * 1000;
}

/* A timing report arrived (mainloop thread, lock held). */
static void timing_cb(pa_stream* s, int success, void* userdata) {
  GstSyncWavePulseSink* self = GST_SYNCWAVE_PULSE_SINK(userdata);
  SyncWavePulseSinkPrivate* priv = self->priv;
  if (s != priv->stream) return; /* a stream since replaced */
  priv->timing_pending = false;
  const pa_timing_info* ti = success ? pa_stream_get_timing_info(s) : NULL;
  if (ti == NULL || ti->read_index_corrupt || !ti->playing || priv->bpf == 0) return;
  const double rate = priv->sample_spec.rate;
  const double position =
      (double)ti->read_index / priv->bpf - (double)ti->sink_usec * rate / G_USEC_PER_SEC;
  gint64 t_ns = server_time_to_monotonic_ns(&ti->timestamp);
  if (!ti->synchronized_clocks) t_ns += (gint64)ti->transport_usec * 1000;
  std::lock_guard<std::mutex> lk(priv->lock);
  priv->fit.add(t_ns, position);
  GST_LOG_OBJECT(self,
                 "report: frame %.1f at %" G_GINT64_FORMAT " ns (sink %" G_GUINT64_FORMAT
                 " us), fit rate %.3f, residual %.1f us",
                 position, t_ns, (guint64)ti->sink_usec, priv->fit.rate(),
                 priv->fit.residual_ns() / 1000.0);
}

/* Waits (lock held) until `done` or a timeout; FALSE on timeout. */
template <typename Done>
static bool wait_until(SyncWavePulseSinkPrivate* priv, Done done) {
  const gint64 deadline = g_get_monotonic_time() + CONNECT_TIMEOUT_US;
  while (!done()) {
    if (g_get_monotonic_time() > deadline) return false;
    pa_threaded_mainloop_wait(priv->mainloop);
  }
  return true;
}

static void drop_stream_locked(GstSyncWavePulseSink* self) {
  SyncWavePulseSinkPrivate* priv = self->priv;
  if (priv->stream != NULL) {
    pa_stream_set_state_callback(priv->stream, NULL, NULL);
    pa_stream_set_write_callback(priv->stream, NULL, NULL);
    pa_stream_set_underflow_callback(priv->stream, NULL, NULL);
    pa_stream_disconnect(priv->stream);
    pa_stream_unref(priv->stream);
    priv->stream = NULL;
  }
  priv->stream_frames = 0;
  priv->timing_pending = false;
  std::lock_guard<std::mutex> lk(priv->lock);
  priv->fit.reset(priv->sample_spec.rate);
  priv->have_offset = false;
}

struct SinkLookup {
  pa_threaded_mainloop* mainloop;
  bool done = false;
  bool found = false;
};

static void sink_info_cb(pa_context*, const pa_sink_info* info, int eol, void* userdata) {
  SinkLookup* lookup = static_cast<SinkLookup*>(userdata);
  if (info != NULL) lookup->found = true;
  if (eol != 0) {
    lookup->done = true;
    pa_threaded_mainloop_signal(lookup->mainloop, 0);
  }
}

/* Whether the server has a sink called `device` (lock held). PulseAudio refuses a
 * stream to an unknown sink; PipeWire's pulse server accepts it and plays to the
 * default sink instead, so the name is looked up first on both. */
static bool sink_exists_locked(SyncWavePulseSinkPrivate* priv, const std::string& device) {
  SinkLookup lookup{priv->mainloop};
  pa_operation* op =
      pa_context_get_sink_info_by_name(priv->context, device.c_str(), sink_info_cb, &lookup);
  if (op == NULL) return false;
  const bool answered = wait_until(priv, [&] { return lookup.done; });
  if (!answered) pa_operation_cancel(op);
  pa_operation_unref(op);
  return answered && lookup.found;
}

static void server_info_cb(pa_context*, const pa_server_info* info, void* userdata) {
  GstSyncWavePulseSink* self = GST_SYNCWAVE_PULSE_SINK(userdata);
  SinkLookup* lookup = static_cast<SinkLookup*>(self->priv->server_lookup);
  if (info != NULL && info->server_name != NULL)
    self->priv->pipewire = std::strstr(info->server_name, "PipeWire") != NULL;
  lookup->done = true;
  pa_threaded_mainloop_signal(lookup->mainloop, 0);
}

/* Creates and connects the playback stream (lock held). */
static bool make_stream_locked(GstSyncWavePulseSink* self) {
  SyncWavePulseSinkPrivate* priv = self->priv;
  if (priv->stream != NULL) return true;
  if (!priv->device.empty() && !priv->device_checked) {
    if (!sink_exists_locked(priv, priv->device)) {
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE,
                        ("Cannot play to PulseAudio device '%s': no such sink. List the "
                         "devices with 'syncwave-launch devices' or 'pactl list short sinks'.",
                         priv->device.c_str()),
                        (NULL));
      return false;
    }
    priv->device_checked = true;
  }
  pa_proplist* props = pa_proplist_new();
  pa_proplist_sets(props, PA_PROP_MEDIA_ROLE, "music");
  pa_proplist_sets(props, PA_PROP_APPLICATION_NAME, "SyncWave");
  priv->stream = pa_stream_new_with_proplist(priv->context, "SyncWave playback", &priv->sample_spec,
                                             &priv->channel_map, props);
  pa_proplist_free(props);
  if (priv->stream == NULL) {
    GST_ELEMENT_ERROR(
        self, RESOURCE, FAILED,
        ("Cannot create a PulseAudio stream: %s", pa_strerror(pa_context_errno(priv->context))),
        (NULL));
    return false;
  }
  pa_stream_set_state_callback(priv->stream, stream_notify_cb, self);
  pa_stream_set_write_callback(priv->stream, stream_request_cb, self);
  pa_stream_set_underflow_callback(priv->stream, stream_underflow_cb, self);
  /* PA_STREAM_ADJUST_LATENCY: PulseAudio keeps the whole tlength in the stream's
   * buffer and sizes the sink's own latency to it. PipeWire's pulse server reads
   * tlength as the total instead: it gives the graph (tlength - 2 minreq) / 2 of it
   * and leaves the stream 20 of the 30 ms, so a writer thread that misses 20 ms
   * underruns. Without the flag it keeps the 30 ms, and the graph runs at minreq. */
  const pa_stream_flags_t flags =
      (pa_stream_flags_t)((priv->pipewire ? 0 : PA_STREAM_ADJUST_LATENCY) |
                          PA_STREAM_NOT_MONOTONIC | (priv->corked ? PA_STREAM_START_CORKED : 0));
  if (pa_stream_connect_playback(priv->stream, priv->device.empty() ? NULL : priv->device.c_str(),
                                 &priv->buffer_attr, flags, NULL, NULL) < 0 ||
      !wait_until(priv,
                  [&] {
                    pa_stream_state_t st = pa_stream_get_state(priv->stream);
                    return st == PA_STREAM_READY || !PA_STREAM_IS_GOOD(st);
                  }) ||
      pa_stream_get_state(priv->stream) != PA_STREAM_READY) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE,
                      ("Cannot play to PulseAudio device '%s': %s. List the devices with "
                       "'syncwave-launch devices' or 'pactl list short sinks'.",
                       priv->device.empty() ? "(default)" : priv->device.c_str(),
                       pa_strerror(pa_context_errno(priv->context))),
                      (NULL));
    drop_stream_locked(self);
    return false;
  }
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->streams++;
  }
  const pa_buffer_attr* got = pa_stream_get_buffer_attr(priv->stream);
  GST_INFO_OBJECT(self, "stream on '%s': tlength %u, minreq %u, prebuf %u bytes",
                  pa_stream_get_device_name(priv->stream), got ? got->tlength : 0,
                  got ? got->minreq : 0, got ? got->prebuf : 0);
  return true;
}

/* ---------------------------------------------------------------- GstAudioSink */

static gboolean gst_syncwave_pulse_sink_open(GstAudioSink* asink) {
  GstSyncWavePulseSink* self = GST_SYNCWAVE_PULSE_SINK(asink);
  SyncWavePulseSinkPrivate* priv = self->priv;
  priv->mainloop = pa_threaded_mainloop_new();
  if (priv->mainloop == NULL || pa_threaded_mainloop_start(priv->mainloop) < 0) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE, ("Cannot start the PulseAudio client thread"),
                      (NULL));
    return FALSE;
  }
  pa_threaded_mainloop_lock(priv->mainloop);
  priv->context = pa_context_new(pa_threaded_mainloop_get_api(priv->mainloop), "SyncWave");
  priv->device_checked = false;
  bool ok = priv->context != NULL;
  if (ok) {
    pa_context_set_state_callback(priv->context, context_state_cb, self);
    ok = pa_context_connect(priv->context, priv->server.empty() ? NULL : priv->server.c_str(),
                            PA_CONTEXT_NOFLAGS, NULL) >= 0 &&
         wait_until(priv,
                    [&] {
                      pa_context_state_t st = pa_context_get_state(priv->context);
                      return st == PA_CONTEXT_READY || !PA_CONTEXT_IS_GOOD(st);
                    }) &&
         pa_context_get_state(priv->context) == PA_CONTEXT_READY;
  }
  priv->pipewire = false;
  if (ok) {
    SinkLookup lookup{priv->mainloop};
    priv->server_lookup = &lookup;
    pa_operation* op = pa_context_get_server_info(priv->context, server_info_cb, self);
    if (op != NULL) {
      if (!wait_until(priv, [&] { return lookup.done; })) pa_operation_cancel(op);
      pa_operation_unref(op);
    }
    priv->server_lookup = nullptr;
    GST_INFO_OBJECT(self, "connected to %s",
                    priv->pipewire ? "PipeWire's pulse server" : "PulseAudio");
  }
  if (!ok) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE,
                      ("Cannot connect to the PulseAudio server%s%s: %s. Is PulseAudio or "
                       "PipeWire's pulse server running for this user?",
                       priv->server.empty() ? "" : " ", priv->server.c_str(),
                       priv->context ? pa_strerror(pa_context_errno(priv->context)) : "no memory"),
                      (NULL));
  }
  pa_threaded_mainloop_unlock(priv->mainloop);
  return ok;
}

static gboolean gst_syncwave_pulse_sink_close(GstAudioSink* asink) {
  SyncWavePulseSinkPrivate* priv = GST_SYNCWAVE_PULSE_SINK(asink)->priv;
  if (priv->mainloop == NULL) return TRUE;
  pa_threaded_mainloop_lock(priv->mainloop);
  drop_stream_locked(GST_SYNCWAVE_PULSE_SINK(asink));
  if (priv->context != NULL) {
    pa_context_set_state_callback(priv->context, NULL, NULL);
    pa_context_disconnect(priv->context);
    pa_context_unref(priv->context);
    priv->context = NULL;
  }
  pa_threaded_mainloop_unlock(priv->mainloop);
  pa_threaded_mainloop_stop(priv->mainloop);
  pa_threaded_mainloop_free(priv->mainloop);
  priv->mainloop = NULL;
  return TRUE;
}

static gboolean gst_syncwave_pulse_sink_prepare(GstAudioSink* asink, GstAudioRingBufferSpec* spec) {
  GstSyncWavePulseSink* self = GST_SYNCWAVE_PULSE_SINK(asink);
  SyncWavePulseSinkPrivate* priv = self->priv;
  const GstAudioInfo* info = &spec->info;
  pa_sample_format_t format;
  switch (GST_AUDIO_INFO_FORMAT(info)) {
    case GST_AUDIO_FORMAT_F32LE:
      format = PA_SAMPLE_FLOAT32LE;
      break;
    case GST_AUDIO_FORMAT_F32BE:
      format = PA_SAMPLE_FLOAT32BE;
      break;
    case GST_AUDIO_FORMAT_S32LE:
      format = PA_SAMPLE_S32LE;
      break;
    case GST_AUDIO_FORMAT_S32BE:
      format = PA_SAMPLE_S32BE;
      break;
    case GST_AUDIO_FORMAT_S16LE:
      format = PA_SAMPLE_S16LE;
      break;
    case GST_AUDIO_FORMAT_S16BE:
      format = PA_SAMPLE_S16BE;
      break;
    default:
      GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Unsupported sample format"), (NULL));
      return FALSE;
  }
  pa_threaded_mainloop_lock(priv->mainloop);
  drop_stream_locked(self);
  priv->failed = false;
  priv->sample_spec.format = format;
  priv->sample_spec.rate = GST_AUDIO_INFO_RATE(info);
  priv->sample_spec.channels = GST_AUDIO_INFO_CHANNELS(info);
  priv->bpf = GST_AUDIO_INFO_BPF(info);
  /* GStreamer's default positions for 1-8 channels are the WAVE order. */
  pa_channel_map_init_auto(&priv->channel_map, priv->sample_spec.channels, PA_CHANNEL_MAP_WAVEEX);
  /* SERVER_SEGMENTS segments queued at the server, refilled one segment at a time;
   * playback starts as soon as one segment is there. */
  priv->buffer_attr.maxlength = (uint32_t)-1;
  priv->buffer_attr.tlength = spec->segsize * SERVER_SEGMENTS;
  priv->buffer_attr.minreq = spec->segsize;
  priv->buffer_attr.prebuf = spec->segsize;
  priv->buffer_attr.fragsize = (uint32_t)-1;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->fit.reset(priv->sample_spec.rate);
  }
  const bool ok = make_stream_locked(self);
  pa_threaded_mainloop_unlock(priv->mainloop);
  if (ok) {
    GstAudioChannelPosition pos[8];
    if (gst_audio_channel_positions_from_mask(GST_AUDIO_INFO_CHANNELS(info), 0, pos) &&
        spec->type == GST_AUDIO_RING_BUFFER_FORMAT_TYPE_RAW)
      gst_audio_ring_buffer_set_channel_positions(GST_AUDIO_BASE_SINK(self)->ringbuffer, pos);
  }
  return ok;
}

static gboolean gst_syncwave_pulse_sink_unprepare(GstAudioSink* asink) {
  SyncWavePulseSinkPrivate* priv = GST_SYNCWAVE_PULSE_SINK(asink)->priv;
  pa_threaded_mainloop_lock(priv->mainloop);
  drop_stream_locked(GST_SYNCWAVE_PULSE_SINK(asink));
  pa_threaded_mainloop_unlock(priv->mainloop);
  return TRUE;
}

static gint floor_div(gint64 a, gint64 b) {
  return (gint)((a >= 0 ? a : a - b + 1) / b);
}

/* The ring buffer sample index of the first frame the base class's thread hands to
 * write() now (`length` bytes of the current segment are left). The thread reads
 * segment `segdone` of the ring; the base sink wrote sample s into segment s / sps
 * of the sample space, which is `segbase` (rounded up to whole rings) away. */
static gint64 ring_sample_of_write(GstAudioRingBuffer* rb, guint length, guint bpf) {
  const gint segtotal = rb->spec.segtotal;
  const gint sps = rb->samples_per_seg;
  const gint segdone = g_atomic_int_get(&rb->segdone);
  const gint segbase = rb->segbase;
  const gint rings = -floor_div(-(gint64)segbase, segtotal); /* ceil(segbase / segtotal) */
  const gint64 seg = (gint64)segdone - (gint64)rings * segtotal;
  return seg * sps + (gint64)(rb->spec.segsize - (gint)length) / (gint)bpf;
}

static gint gst_syncwave_pulse_sink_write(GstAudioSink* asink, gpointer data, guint length) {
  GstSyncWavePulseSink* self = GST_SYNCWAVE_PULSE_SINK(asink);
  SyncWavePulseSinkPrivate* priv = self->priv;
  GstAudioRingBuffer* rb = GST_AUDIO_BASE_SINK(asink)->ringbuffer;
  const guint8* p = (const guint8*)data;
  guint left = length - length % priv->bpf;
  pa_threaded_mainloop_lock(priv->mainloop);
  if (priv->failed) {
    /* The error was posted once; the base class keeps handing segments until the
     * application stops the pipeline: drop them at the device's pace. */
    pa_threaded_mainloop_unlock(priv->mainloop);
    g_usleep(
        (gulong)((guint64)length * G_USEC_PER_SEC / priv->bpf / MAX(priv->sample_spec.rate, 1)));
    return (gint)length;
  }
  if (!make_stream_locked(self)) {
    priv->failed = true;
    pa_threaded_mainloop_unlock(priv->mainloop);
    return -1;
  }
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    if (!priv->have_offset) {
      priv->sample_offset = ring_sample_of_write(rb, length, priv->bpf) - priv->stream_frames;
      priv->have_offset = true;
      GST_INFO_OBJECT(self,
                      "stream frame %" G_GINT64_FORMAT " is ring sample %" G_GINT64_FORMAT
                      " (segdone %d, segbase %d, %u bytes left in the segment)",
                      priv->stream_frames, priv->stream_frames + priv->sample_offset,
                      g_atomic_int_get(&rb->segdone), rb->segbase, length);
    }
  }
  const guint64 generation = priv->generation;
  while (left > 0) {
    if (priv->generation != generation || priv->stream == NULL || priv->corked) {
      /* reset(), stop() or pause(): what is left of this segment is dropped, as a
       * flush drops it (the base class's thread then waits for the ring buffer). After
       * a pause the stream stays, and the ring's index moves past these frames although
       * they never reach it: they go into the ring-sample offset, or the position read
       * that much early from then on (up to a segment: issue 16, a receiver whose
       * stream had just started when the pipeline re-selected its clock played 5 ms
       * early). */
      if (priv->generation == generation && priv->stream != NULL) {
        std::lock_guard<std::mutex> lk(priv->lock);
        if (priv->have_offset) priv->sample_offset += (gint64)(left / priv->bpf);
      }
      p += left;
      break;
    }
    size_t room = pa_stream_writable_size(priv->stream);
    if (room == (size_t)-1) {
      priv->failed = true;
      GST_ELEMENT_ERROR(self, RESOURCE, WRITE,
                        ("The PulseAudio stream failed: %s. Is the server still running?",
                         pa_strerror(pa_context_errno(priv->context))),
                        (NULL));
      pa_threaded_mainloop_unlock(priv->mainloop);
      return -1;
    }
    const size_t n = std::min<size_t>(room - room % priv->bpf, left);
    if (n == 0) {
      /* Full: the write callback, pause(), stop() or reset() wakes us. */
      pa_threaded_mainloop_wait(priv->mainloop);
      continue;
    }
    if (pa_stream_write(priv->stream, p, n, NULL, 0, PA_SEEK_RELATIVE) < 0) {
      priv->failed = true;
      GST_ELEMENT_ERROR(
          self, RESOURCE, WRITE,
          ("Cannot write to PulseAudio: %s", pa_strerror(pa_context_errno(priv->context))), (NULL));
      pa_threaded_mainloop_unlock(priv->mainloop);
      return -1;
    }
    p += n;
    left -= (guint)n;
    priv->stream_frames += (gint64)(n / priv->bpf);
  }
  const gint64 now = g_get_monotonic_time();
  if (priv->stream != NULL && !priv->timing_pending &&
      now - priv->last_timing_us >= TIMING_INTERVAL_US) {
    pa_operation* op = pa_stream_update_timing_info(priv->stream, timing_cb, self);
    if (op != NULL) {
      priv->timing_pending = true;
      priv->last_timing_us = now;
      pa_operation_unref(op);
    }
  }
  pa_threaded_mainloop_unlock(priv->mainloop);
  return (gint)(p - (const guint8*)data);
}

/* Frames queued: written into the stream, not yet played. */
static guint gst_syncwave_pulse_sink_delay(GstAudioSink* asink) {
  SyncWavePulseSinkPrivate* priv = GST_SYNCWAVE_PULSE_SINK(asink)->priv;
  if (priv->mainloop == NULL) return 0;
  pa_threaded_mainloop_lock(priv->mainloop);
  const gint64 written = priv->stream_frames;
  pa_threaded_mainloop_unlock(priv->mainloop);
  std::lock_guard<std::mutex> lk(priv->lock);
  if (!priv->fit.valid()) return 0;
  const double played = priv->fit.position_at(g_get_monotonic_time() * 1000);
  const double queued = (double)written - played;
  return queued > 0 ? (guint)queued : 0;
}

static void gst_syncwave_pulse_sink_reset(GstAudioSink* asink) {
  SyncWavePulseSinkPrivate* priv = GST_SYNCWAVE_PULSE_SINK(asink)->priv;
  if (priv->mainloop == NULL) return;
  pa_threaded_mainloop_lock(priv->mainloop);
  /* A new stream on the next write: the indices start again and nothing old plays. */
  drop_stream_locked(GST_SYNCWAVE_PULSE_SINK(asink));
  priv->generation++;
  pa_threaded_mainloop_signal(priv->mainloop, 0);
  pa_threaded_mainloop_unlock(priv->mainloop);
}

static void set_corked(GstSyncWavePulseSink* self, bool corked) {
  SyncWavePulseSinkPrivate* priv = self->priv;
  if (priv->mainloop == NULL) return;
  pa_threaded_mainloop_lock(priv->mainloop);
  priv->corked = corked;
  if (priv->stream != NULL) {
    pa_operation* op = pa_stream_cork(priv->stream, corked ? 1 : 0, NULL, NULL);
    if (op != NULL) pa_operation_unref(op);
    /* The position stands still while corked: fit again from the next reports. */
    std::lock_guard<std::mutex> lk(priv->lock);
    const gint64 offset = priv->sample_offset;
    const bool have = priv->have_offset;
    priv->fit.reset(priv->sample_spec.rate);
    priv->sample_offset = offset;
    priv->have_offset = have;
  }
  pa_threaded_mainloop_signal(priv->mainloop, 0);
  pa_threaded_mainloop_unlock(priv->mainloop);
}

static void gst_syncwave_pulse_sink_pause(GstAudioSink* asink) {
  set_corked(GST_SYNCWAVE_PULSE_SINK(asink), true);
}

static void gst_syncwave_pulse_sink_resume(GstAudioSink* asink) {
  set_corked(GST_SYNCWAVE_PULSE_SINK(asink), false);
}

/* The clock: the fitted play position, in the ring buffer's sample index space. */
static GstClockTime gst_syncwave_pulse_sink_get_time(GstClock*, GstSyncWavePulseSink* self) {
  SyncWavePulseSinkPrivate* priv = self->priv;
  std::lock_guard<std::mutex> lk(priv->lock);
  if (!priv->fit.valid() || !priv->have_offset || priv->sample_spec.rate == 0)
    return GST_CLOCK_TIME_NONE;
  const double frame =
      priv->fit.position_at(g_get_monotonic_time() * 1000) + (double)priv->sample_offset;
  if (frame <= 0) return 0;
  return (GstClockTime)std::llround(frame * GST_SECOND / priv->sample_spec.rate);
}

/* The syncwave-device-position query (syncwave-device-position.h): where the device
 * is, for syncwavesink's placement. Answered on the streaming thread, from this
 * element's own clock line and its base class's next_sample and ring buffer. */
static gboolean gst_syncwave_pulse_sink_query(GstBaseSink* bsink, GstQuery* query) {
  if (!syncwave_is_device_position_query(query))
    return GST_BASE_SINK_CLASS(parent_class)->query(bsink, query);
  GstSyncWavePulseSink* self = GST_SYNCWAVE_PULSE_SINK(bsink);
  GstAudioBaseSink* base = GST_AUDIO_BASE_SINK(bsink);
  const GstClockTime position = gst_syncwave_pulse_sink_get_time(NULL, self);
  if (!GST_CLOCK_TIME_IS_VALID(position)) return FALSE;
  GST_OBJECT_LOCK(self);
  const guint64 next_sample = base->next_sample;
  GstAudioRingBuffer* rb = base->ringbuffer ? GST_AUDIO_RING_BUFFER(gst_object_ref(base->ringbuffer)) : NULL;
  GST_OBJECT_UNLOCK(self);
  if (next_sample == G_MAXUINT64) {
    if (rb) gst_object_unref(rb);
    return FALSE;
  }
  GstClockTime queue = GST_CLOCK_TIME_NONE;
  if (rb != NULL && gst_audio_ring_buffer_is_acquired(rb) && rb->spec.info.rate > 0)
    queue = gst_util_uint64_scale_int(gst_audio_ring_buffer_delay(rb), GST_SECOND,
                                      rb->spec.info.rate);
  if (rb) gst_object_unref(rb);
  syncwave_device_position_query_set(query, position, next_sample, queue);
  return TRUE;
}

/* ---------------------------------------------------------------- GObject */

static void gst_syncwave_pulse_sink_set_property(GObject* object, guint prop_id,
                                                 const GValue* value, GParamSpec* pspec) {
  SyncWavePulseSinkPrivate* priv = GST_SYNCWAVE_PULSE_SINK(object)->priv;
  GST_OBJECT_LOCK(object);
  switch (prop_id) {
    case PROP_DEVICE: {
      const gchar* s = g_value_get_string(value);
      priv->device = s ? s : "";
      priv->device_checked = false;
      break;
    }
    case PROP_SERVER: {
      const gchar* s = g_value_get_string(value);
      priv->server = s ? s : "";
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(object);
}

static void gst_syncwave_pulse_sink_get_property(GObject* object, guint prop_id, GValue* value,
                                                 GParamSpec* pspec) {
  SyncWavePulseSinkPrivate* priv = GST_SYNCWAVE_PULSE_SINK(object)->priv;
  switch (prop_id) {
    case PROP_DEVICE:
      GST_OBJECT_LOCK(object);
      g_value_set_string(value, priv->device.empty() ? NULL : priv->device.c_str());
      GST_OBJECT_UNLOCK(object);
      break;
    case PROP_SERVER:
      GST_OBJECT_LOCK(object);
      g_value_set_string(value, priv->server.empty() ? NULL : priv->server.c_str());
      GST_OBJECT_UNLOCK(object);
      break;
    case PROP_STATS: {
      std::lock_guard<std::mutex> lk(priv->lock);
      GstStructure* st = gst_structure_new_empty("syncwavepulsesink-stats");
      gst_structure_set(st, "position-reports", G_TYPE_UINT64, (guint64)priv->fit.reports(), NULL);
      gst_structure_set(st, "position-reports-dropped", G_TYPE_UINT64,
                        (guint64)priv->fit.dropped(), NULL);
      gst_structure_set(st, "position-restarts", G_TYPE_UINT64, (guint64)priv->fit.restarts(),
                        NULL);
      gst_structure_set(st, "position-residual-us", G_TYPE_DOUBLE,
                        priv->fit.residual_ns() / 1000.0, NULL);
      gst_structure_set(st, "device-drift-ppm", G_TYPE_DOUBLE, priv->fit.drift_ppm(), NULL);
      gst_structure_set(st, "underruns", G_TYPE_UINT64, (guint64)priv->underruns, NULL);
      gst_structure_set(st, "streams", G_TYPE_UINT64, (guint64)priv->streams, NULL);
      g_value_take_boxed(value, st);
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_syncwave_pulse_sink_finalize(GObject* object) {
  delete GST_SYNCWAVE_PULSE_SINK(object)->priv;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_syncwave_pulse_sink_init(GstSyncWavePulseSink* self) {
  self->priv = new SyncWavePulseSinkPrivate();
  /* 5 ms segments: the server holds two (10 ms), the ring buffer's reader runs that
   * far ahead of the play position, and data must be in the ring before it. */
  g_object_set(self, "latency-time", (gint64)DEFAULT_LATENCY_TIME_US, "buffer-time",
               (gint64)DEFAULT_BUFFER_TIME_US, NULL);
  /* The base class's clock counts segments handed to write(); this one is the
   * device's fitted position. */
  GstAudioBaseSink* bsink = GST_AUDIO_BASE_SINK(self);
  if (bsink->provided_clock) gst_object_unref(bsink->provided_clock);
  bsink->provided_clock =
      gst_audio_clock_new("GstSyncWavePulseSinkClock",
                          (GstAudioClockGetTimeFunc)gst_syncwave_pulse_sink_get_time, self, NULL);
}

static void gst_syncwave_pulse_sink_class_init(GstSyncWavePulseSinkClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstAudioSinkClass* asink_class = GST_AUDIO_SINK_CLASS(klass);

  gobject_class->set_property = gst_syncwave_pulse_sink_set_property;
  gobject_class->get_property = gst_syncwave_pulse_sink_get_property;
  gobject_class->finalize = gst_syncwave_pulse_sink_finalize;

  g_object_class_install_property(
      gobject_class, PROP_DEVICE,
      g_param_spec_string("device", "Device",
                          "PulseAudio sink name to play to (NULL: the server's default)", NULL,
                          (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_SERVER,
      g_param_spec_string("server", "Server", "PulseAudio server to connect to (NULL: default)",
                          NULL, (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "Position reports (received, dropped as off the line), restarts of "
                         "the fit, its residual (us), the device's drift (ppm), underruns",
                         GST_TYPE_STRUCTURE,
                         (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_set_static_metadata(
      element_class, "SyncWave PulseAudio sink", "Sink/Audio",
      "Plays to PulseAudio and reports the exact frame the device plays, from the server's "
      "timing reports",
      "SyncWave developers");

  GST_BASE_SINK_CLASS(klass)->query = gst_syncwave_pulse_sink_query;
  asink_class->open = gst_syncwave_pulse_sink_open;
  asink_class->prepare = gst_syncwave_pulse_sink_prepare;
  asink_class->unprepare = gst_syncwave_pulse_sink_unprepare;
  asink_class->close = gst_syncwave_pulse_sink_close;
  asink_class->write = gst_syncwave_pulse_sink_write;
  asink_class->delay = gst_syncwave_pulse_sink_delay;
  asink_class->reset = gst_syncwave_pulse_sink_reset;
  asink_class->stop = gst_syncwave_pulse_sink_reset;
  asink_class->pause = gst_syncwave_pulse_sink_pause;
  asink_class->resume = gst_syncwave_pulse_sink_resume;

  GST_DEBUG_CATEGORY_INIT(gst_syncwave_pulse_sink_debug, "syncwavepulsesink", 0,
                          "SyncWave PulseAudio sink");
}
