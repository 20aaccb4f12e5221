// SPDX-License-Identifier: LGPL-2.1-or-later
// Building blocks of the hostile-network scenario tests: a sender that behaves as
// the original SyncWave does (headers, 10 ms float32 packets stamped with the wall
// clock) and carries a signal whose every sample says which sample it is, a receiver
// pipeline (udpsrc ! syncwavejitter ! syncwavedepay ! appsink) on a realtime clock,
// and the analysis that turns what came out into assertions.
//
// The signal: channel 0 of sample n is (n mod 48000) / 65536 (exact in float32),
// channel 1 is its negation. A decoded buffer therefore tells which sender sample it
// starts with, hence its sender capture time, and the receiver's PTS + base time for
// it must equal that capture time: the same on every receiver.
#pragma once

#include <gio/gio.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace syncwave {
namespace scenario {

constexpr uint32_t kRate = 48000;
constexpr uint32_t kPacketFrames = 480;  // 10 ms
constexpr uint64_t kPacketUs = 10000;

// Sample value of the self-describing signal.
float ramp_value(uint64_t n, int channel);
// Index modulo 48000 from a channel-0 value, or -1 when the value is not on the ramp.
int64_t ramp_index(float v);

bool has_elements(std::initializer_list<const char*> names, std::string* missing);

// A UDP socket on 127.0.0.1 with a free port.
class Udp {
 public:
  Udp();
  ~Udp();
  uint16_t port() const { return port_; }
  int fd() const { return fd_; }
  void send_to(uint16_t port, const uint8_t* data, size_t size) const;
  void send_to(uint16_t port, const std::vector<uint8_t>& d) const {
    send_to(port, d.data(), d.size());
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// The original sender's behaviour, on its own thread, paced by the wall clock.
class RampSender {
 public:
  struct Config {
    uint32_t rate = kRate;
    uint16_t channels = 2;
    uint64_t first_sample = 0;         // signal index of the first sample sent
    int64_t ts_offset_us = 0;          // added to the wall clock in the timestamps
    uint32_t timestamp_jitter_us = 0;  // +- jitter of the stamps (a capture callback)
    unsigned header_interval = 1000;
  };
  RampSender(uint16_t dest_port, const Config& c);
  ~RampSender();
  // Sends `packets` packets in real time (5 headers first), on a thread.
  void start(unsigned packets);
  void wait();
  // Wall-clock µs of the capture time of sample `first_sample` (the first packet's stamp).
  uint64_t start_us() const { return start_us_; }
  uint64_t packets_sent() const { return sent_.load(); }
  // Datagram sequence numbers that carried audio packet k (headers take numbers too).
  const std::vector<uint64_t>& audio_datagram_index() const { return audio_index_; }
  uint16_t source_port() const { return udp_.port(); }
  // Sends any datagram from this sender's socket (same source address: it passes
  // the receiver's sender lock). Thread-safe.
  void send_raw(const std::vector<uint8_t>& d) const { udp_.send_to(dest_, d); }
  // Capture time (wall-clock µs) of the end of audio packet k.
  double packet_end_us(uint64_t k) const {
    return static_cast<double>(start_us_) + (k + 1) * kPacketFrames * 1e6 / c_.rate;
  }

 private:
  void run(unsigned packets);
  Udp udp_;
  uint16_t dest_;
  Config c_;
  std::thread thread_;
  std::atomic<uint64_t> sent_{0};
  uint64_t start_us_ = 0;
  std::vector<uint64_t> audio_index_;
};

struct OutBuffer {
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  GstClockTime duration = GST_CLOCK_TIME_NONE;
  bool discont = false;
  int rate = 0;
  int channels = 0;
  std::vector<float> samples;  // interleaved
};

// udpsrc ! syncwavejitter ! syncwavedepay ! appsink on a realtime system clock (the
// hosts share the wall clock: `synced` mode with clock=system).
class Receiver {
 public:
  explicit Receiver(unsigned latency_ms, const std::string& jitter_props = "");
  ~Receiver();
  bool start(std::string* error);
  void stop();
  uint16_t port() const { return port_; }
  GstClockTime base_time() const;
  std::vector<OutBuffer> buffers();
  // The element's "stats" structure (a copy), or nullptr.
  GstStructure* stats(const char* element_name);
  GstElement* pipeline() const { return pipeline_; }
  std::vector<std::string> errors();

 private:
  static GstFlowReturn on_sample(GstAppSink* sink, gpointer self);
  static gboolean on_bus(GstBus*, GstMessage* msg, gpointer self);
  GstElement* pipeline_ = nullptr;
  GSocket* socket_ = nullptr;
  GstClock* clock_ = nullptr;
  uint16_t port_ = 0;
  std::mutex lock_;
  std::vector<OutBuffer> out_;
  std::vector<std::string> errors_;
};

// What a receiver produced, checked against the ramp.
struct Analysis {
  size_t buffers = 0;
  uint64_t frames = 0;
  size_t intact = 0;  // buffers whose samples are the ramp, unmodified
  size_t gaps = 0;    // PTS discontinuities beyond one sample
  size_t overlaps = 0;
  int64_t max_sync_error_ns = 0;  // |PTS + base - capture time| over intact buffers
  size_t longest_silence_frames = 0;
  uint64_t first_index = 0;  // sender sample index of the first intact buffer
  uint64_t last_index = 0;   // ... and of the last intact buffer's end
  GstClockTime first_pts = GST_CLOCK_TIME_NONE;
  GstClockTime end_pts = GST_CLOCK_TIME_NONE;
  uint64_t trailing_frames = 0;         // output after the stream's end (see analyze())
  std::vector<int64_t> sync_errors_ns;  // per intact buffer, in order
  std::vector<uint64_t> intact_first_index;
};

// `capture_us_of_index0`: wall-clock µs at which signal sample 0 was captured
// (sender start_us - first_sample / rate). Output at or after `stream_end_us` (the
// capture end of the last packet the receiver got; 0 = no limit) is only counted in
// trailing_frames: a receiver cannot know that a stream ended and conceals as for
// a loss until it gives up (500 ms), which is not a gap in the stream.
Analysis analyze(const std::vector<OutBuffer>& out, GstClockTime base_time,
                 double capture_us_of_index0, uint32_t rate = kRate, double stream_end_us = 0);

uint64_t stat_u64(const GstStructure* s, const char* field);

// Resident set size of this process in KiB.
long rss_kib();
// Heap bytes in use (malloc'ed and not freed) in KiB: unlike RSS, not inflated by
// memory the allocator keeps after a burst.
long heap_in_use_kib();

}  // namespace scenario
}  // namespace syncwave
