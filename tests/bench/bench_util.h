// SPDX-License-Identifier: LGPL-2.1-or-later
// Shared helpers of the benchmark programs: test signals, pre-encoded Opus, CPU
// time of the process and JSON output. Benchmarks only, never linked into the
// plugin.
#pragma once

#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <sys/resource.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace bench {

constexpr int kRate = 48000;
constexpr int kChannels = 2;
constexpr int kFramesPer10ms = kRate / 100;

// User + system CPU time of the whole process, in seconds.
inline double process_cpu_s() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

inline double wall_s() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Band-limited noise, deterministic for a seed, in [-0.5, 0.5].
inline std::vector<float> noise(size_t frames, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> out(frames * kChannels);
  float l = 0, r = 0;
  for (size_t i = 0; i < frames; i++) {
    l = 0.9f * l + 0.05f * u(rng);
    r = 0.9f * r + 0.05f * u(rng);
    out[2 * i] = l;
    out[2 * i + 1] = r;
  }
  return out;
}

inline GstBuffer* make_buffer(const void* data, size_t size, GstClockTime pts,
                              GstClockTime duration) {
  GstBuffer* b = gst_buffer_new_memdup(data, size);
  GST_BUFFER_PTS(b) = pts;
  GST_BUFFER_DURATION(b) = duration;
  return b;
}

// 10 ms buffers of F32LE stereo.
inline std::vector<GstBuffer*> f32_buffers(const std::vector<float>& pcm, size_t count) {
  std::vector<GstBuffer*> out;
  for (size_t i = 0; i < count; i++) {
    const float* p =
        pcm.data() + (i * kFramesPer10ms * kChannels) % (pcm.size() - kFramesPer10ms * kChannels);
    out.push_back(
        make_buffer(p, kFramesPer10ms * kChannels * 4, i * 10 * GST_MSECOND, 10 * GST_MSECOND));
  }
  return out;
}

// 10 ms buffers of S16BE stereo (what rtpL16pay takes).
inline std::vector<GstBuffer*> s16be_buffers(const std::vector<float>& pcm, size_t count) {
  std::vector<GstBuffer*> out;
  std::vector<uint8_t> tmp(kFramesPer10ms * kChannels * 2);
  for (size_t i = 0; i < count; i++) {
    const float* p =
        pcm.data() + (i * kFramesPer10ms * kChannels) % (pcm.size() - kFramesPer10ms * kChannels);
    for (int k = 0; k < kFramesPer10ms * kChannels; k++) {
      int16_t s = static_cast<int16_t>(p[k] * 32767.0f);
      tmp[2 * k] = static_cast<uint8_t>(static_cast<uint16_t>(s) >> 8);
      tmp[2 * k + 1] = static_cast<uint8_t>(s & 0xff);
    }
    out.push_back(make_buffer(tmp.data(), tmp.size(), i * 10 * GST_MSECOND, 10 * GST_MSECOND));
  }
  return out;
}

// `count` Opus packets of 10 ms at `bitrate`, encoded once so that encoder cost
// stays out of the measurement. Returns the caps in *caps.
inline std::vector<GstBuffer*> opus_packets(const std::vector<float>& pcm, size_t count,
                                            int bitrate, GstCaps** caps) {
  gchar* desc = g_strdup_printf("audioconvert ! opusenc frame-size=10 bitrate=%d", bitrate);
  GstHarness* h = gst_harness_new_parse(desc);
  g_free(desc);
  gst_harness_set_src_caps_str(h,
                               "audio/x-raw,format=F32LE,layout=interleaved,rate=48000,channels=2");
  std::vector<GstBuffer*> in = f32_buffers(pcm, count + 20);
  std::vector<GstBuffer*> out;
  for (GstBuffer* b : in) {
    gst_harness_push(h, b);
    while (GstBuffer* o = gst_harness_try_pull(h)) {
      if (out.size() < count) {
        GstBuffer* c = gst_buffer_copy_deep(o);
        GST_BUFFER_PTS(c) = out.size() * 10 * GST_MSECOND;
        GST_BUFFER_DTS(c) = GST_CLOCK_TIME_NONE;
        GST_BUFFER_DURATION(c) = 10 * GST_MSECOND;
        GST_BUFFER_OFFSET(c) = GST_BUFFER_OFFSET_NONE;
        GST_BUFFER_OFFSET_END(c) = GST_BUFFER_OFFSET_NONE;
        GST_BUFFER_FLAG_UNSET(c, GST_BUFFER_FLAG_DISCONT);
        out.push_back(c);
      }
      gst_buffer_unref(o);
    }
  }
  GstCaps* c = gst_pad_get_current_caps(h->sinkpad);
  *caps = c;
  gst_harness_teardown(h);
  return out;
}

inline bool have_element(const char* name) {
  GstElementFactory* f = gst_element_factory_find(name);
  if (!f) return false;
  gst_object_unref(f);
  return true;
}

}  // namespace bench
