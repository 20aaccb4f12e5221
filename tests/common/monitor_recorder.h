// SPDX-License-Identifier: LGPL-2.1-or-later
// What a PulseAudio/PipeWire null sink plays, recorded from its monitor for tests
// that judge a receiver by what it actually played: a pulsesrc pipeline whose
// samples a thread collects (F32LE stereo, 48 kHz). Header-only: it needs
// GStreamer (app), which the rest of tests/common does not.
//
//   syncwave_test::MonitorRecorder rec(pulse.server(), pulse.monitor_name());
//   ... play ...
//   std::vector<float> last = rec.tail(2 * 48000);
//   syncwave_test::SilentRuns runs = syncwave_test::silent_runs(last, 2, 48000, 0.05);
#pragma once

#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace syncwave_test {

class MonitorRecorder {
 public:
  MonitorRecorder(const std::string& server, const std::string& monitor) {
    GError* err = nullptr;
    const std::string desc = "pulsesrc server=" + server + " device=" + monitor +
                             " ! audio/x-raw,format=F32LE,rate=48000,channels=2 ! "
                             "appsink name=cap sync=false max-buffers=0";
    pipe_ = gst_parse_launch(desc.c_str(), &err);
    g_clear_error(&err);
    if (pipe_ == nullptr) return;
    cap_ = gst_bin_get_by_name(GST_BIN(pipe_), "cap");
    gst_element_set_state(pipe_, GST_STATE_PLAYING);
    thread_ = std::thread([this] {
      while (!stop_) {
        GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(cap_), 50 * GST_MSECOND);
        if (!s) continue;
        GstBuffer* b = gst_sample_get_buffer(s);
        const size_t n = gst_buffer_get_size(b) / 4;
        std::lock_guard<std::mutex> lk(lock_);
        const size_t at = samples_.size();
        samples_.resize(at + n);
        gst_buffer_extract(b, 0, samples_.data() + at, n * 4);
        gst_sample_unref(s);
      }
    });
  }
  ~MonitorRecorder() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (pipe_) {
      gst_element_set_state(pipe_, GST_STATE_NULL);
      gst_object_unref(cap_);
      gst_object_unref(pipe_);
    }
  }
  MonitorRecorder(const MonitorRecorder&) = delete;
  MonitorRecorder& operator=(const MonitorRecorder&) = delete;

  bool ok() const { return pipe_ != nullptr; }
  // Stereo frames recorded so far.
  size_t frames() {
    std::lock_guard<std::mutex> lk(lock_);
    return samples_.size() / 2;
  }
  // The last `frames` stereo frames (fewer when less came).
  std::vector<float> tail(size_t frames) {
    std::lock_guard<std::mutex> lk(lock_);
    const size_t n = std::min(samples_.size(), frames * 2);
    return std::vector<float>(samples_.end() - n, samples_.end());
  }
  // Everything from stereo frame `from` on.
  std::vector<float> since(size_t from) {
    std::lock_guard<std::mutex> lk(lock_);
    const size_t at = std::min(samples_.size(), from * 2);
    return std::vector<float>(samples_.begin() + at, samples_.end());
  }

 private:
  GstElement* pipe_ = nullptr;
  GstElement* cap_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex lock_;
  std::vector<float> samples_;
};

// Silent stretches of channel 0: windows of `window` frames whose RMS is below
// `threshold`, merged into runs.
struct SilentRuns {
  size_t windows = 0;       // windows judged
  size_t silent = 0;        // of them silent
  size_t longest = 0;       // longest run of silent windows
  size_t first_sound = 0;   // first non-silent window (windows when none)
};

inline SilentRuns silent_runs(const std::vector<float>& interleaved, int channels,
                              size_t window, double threshold) {
  SilentRuns r;
  const size_t frames = interleaved.size() / channels;
  size_t run = 0;
  bool heard = false;
  for (size_t w = 0; (w + 1) * window <= frames; w++, r.windows++) {
    double sum = 0;
    for (size_t f = w * window; f < (w + 1) * window; f++) {
      const double v = interleaved[f * channels];
      sum += v * v;
    }
    const bool silent = std::sqrt(sum / window) < threshold;
    if (!silent && !heard) {
      heard = true;
      r.first_sound = w;
    }
    if (silent && heard) {
      r.silent++;
      r.longest = std::max(r.longest, ++run);
    } else {
      run = 0;
    }
  }
  if (!heard) r.first_sound = r.windows;
  return r;
}

}  // namespace syncwave_test
