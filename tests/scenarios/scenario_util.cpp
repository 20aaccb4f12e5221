// SPDX-License-Identifier: LGPL-2.1-or-later
#include "scenario_util.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <malloc.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "wire_format.h"

namespace syncwave {
namespace scenario {

float ramp_value(uint64_t n, int channel) {
  const float v = static_cast<float>(n % 48000) / 65536.0f;
  return channel == 1 ? -v : v;
}

int64_t ramp_index(float v) {
  const double x = static_cast<double>(v) * 65536.0;
  const double r = std::round(x);
  if (r < 0 || r >= 48000 || x != r) return -1;
  return static_cast<int64_t>(r);
}

bool has_elements(std::initializer_list<const char*> names, std::string* missing) {
  for (const char* n : names) {
    GstElementFactory* f = gst_element_factory_find(n);
    if (!f) {
      if (missing) *missing = n;
      return false;
    }
    gst_object_unref(f);
  }
  return true;
}

Udp::Udp() {
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  const int buf = 4 * 1024 * 1024;
  setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
}

Udp::~Udp() {
  close(fd_);
}

void Udp::send_to(uint16_t port, const uint8_t* data, size_t size) const {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  sendto(fd_, data, size, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
}

RampSender::RampSender(uint16_t dest_port, const Config& c) : dest_(dest_port), c_(c) {}

RampSender::~RampSender() {
  wait();
}

void RampSender::start(unsigned packets) {
  start_us_ = static_cast<uint64_t>(g_get_real_time()) + 20000;  // a little ahead
  audio_index_.clear();
  thread_ = std::thread([this, packets] { run(packets); });
}

void RampSender::wait() {
  if (thread_.joinable()) thread_.join();
}

void RampSender::run(unsigned packets) {
  wire::StreamHeader h;
  h.sample_rate = c_.rate;
  h.channels = c_.channels;
  const auto header = wire::serialize_header(h);
  uint64_t dgram = 0;
  for (int i = 0; i < 5; i++, dgram++) udp_.send_to(dest_, header.data(), header.size());
  std::mt19937 rng(static_cast<uint32_t>(c_.first_sample + dest_));
  std::vector<uint8_t> payload(kPacketFrames * c_.channels * 4);
  const uint64_t packet_us = kPacketFrames * 1000000ull / c_.rate;
  for (unsigned k = 0; k < packets; k++) {
    const uint64_t due = start_us_ + k * kPacketFrames * 1000000ull / c_.rate;
    const int64_t wait = static_cast<int64_t>(due) - g_get_real_time();
    if (wait > 0) g_usleep(static_cast<gulong>(wait));
    if (k > 0 && k % c_.header_interval == 0) {
      udp_.send_to(dest_, header.data(), header.size());
      dgram++;
    }
    const uint64_t n0 = c_.first_sample + static_cast<uint64_t>(k) * kPacketFrames;
    for (uint32_t f = 0; f < kPacketFrames; f++) {
      for (uint16_t ch = 0; ch < c_.channels; ch++) {
        const float v = ramp_value(n0 + f, ch & 1);
        std::memcpy(&payload[(f * c_.channels + ch) * 4], &v, 4);
      }
    }
    int64_t stamp = static_cast<int64_t>(due) + c_.ts_offset_us;
    if (c_.timestamp_jitter_us) {
      stamp += static_cast<int64_t>(rng() % (2 * c_.timestamp_jitter_us + 1)) -
               static_cast<int64_t>(c_.timestamp_jitter_us);
    }
    const auto pkt = wire::serialize_audio(wire::PacketType::kRaw, static_cast<uint64_t>(stamp),
                                           payload.data(), payload.size());
    audio_index_.push_back(dgram++);
    udp_.send_to(dest_, pkt);
    sent_++;
  }
  (void)packet_us;
}

Receiver::Receiver(unsigned latency_ms, const std::string& jitter_props) {
  const std::string desc =
      "udpsrc name=src buffer-size=4194304 ! "
      "application/x-syncwave ! syncwavejitter name=jitter latency=" +
      std::to_string(latency_ms) + " " + jitter_props +
      " ! syncwavedepay name=depay ! appsink name=sink sync=false";
  GError* err = nullptr;
  pipeline_ = gst_parse_launch(desc.c_str(), &err);
  if (err) {
    errors_.push_back(err->message);
    g_error_free(err);
  }
}

Receiver::~Receiver() {
  stop();
  if (pipeline_) gst_object_unref(pipeline_);
  if (socket_) g_object_unref(socket_);
  if (clock_) gst_object_unref(clock_);
}

GstFlowReturn Receiver::on_sample(GstAppSink* sink, gpointer self) {
  auto* r = static_cast<Receiver*>(self);
  GstSample* sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_OK;
  OutBuffer o;
  GstBuffer* b = gst_sample_get_buffer(sample);
  GstCaps* caps = gst_sample_get_caps(sample);
  if (caps) {
    const GstStructure* s = gst_caps_get_structure(caps, 0);
    gst_structure_get_int(s, "rate", &o.rate);
    gst_structure_get_int(s, "channels", &o.channels);
  }
  o.pts = GST_BUFFER_PTS(b);
  o.duration = GST_BUFFER_DURATION(b);
  o.discont = GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT);
  GstMapInfo map;
  if (gst_buffer_map(b, &map, GST_MAP_READ)) {
    o.samples.resize(map.size / 4);
    std::memcpy(o.samples.data(), map.data, o.samples.size() * 4);
    gst_buffer_unmap(b, &map);
  }
  gst_sample_unref(sample);
  std::lock_guard<std::mutex> g(r->lock_);
  r->out_.push_back(std::move(o));
  return GST_FLOW_OK;
}

gboolean Receiver::on_bus(GstBus*, GstMessage* msg, gpointer self) {
  auto* r = static_cast<Receiver*>(self);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError* e = nullptr;
    gst_message_parse_error(msg, &e, nullptr);
    std::lock_guard<std::mutex> g(r->lock_);
    r->errors_.push_back(e ? e->message : "error");
    if (e) g_error_free(e);
  }
  return TRUE;
}

bool Receiver::start(std::string* error) {
  if (!pipeline_) {
    if (error) *error = errors_.empty() ? "no pipeline" : errors_[0];
    return false;
  }
  GInetAddress* lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress* addr = g_inet_socket_address_new(lo, 0);
  socket_ =
      g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, nullptr);
  g_socket_bind(socket_, addr, FALSE, nullptr);
  g_object_unref(addr);
  g_object_unref(lo);
  GSocketAddress* bound = g_socket_get_local_address(socket_, nullptr);
  port_ = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  g_object_unref(bound);
  GstElement* src = gst_bin_get_by_name(GST_BIN(pipeline_), "src");
  g_object_set(src, "socket", socket_, "close-socket", FALSE, nullptr);
  gst_object_unref(src);

  // The wall clock is the shared timebase of every process on this host.
  clock_ = GST_CLOCK(
      g_object_new(GST_TYPE_SYSTEM_CLOCK, "clock-type", GST_CLOCK_TYPE_REALTIME, nullptr));
  gst_pipeline_use_clock(GST_PIPELINE(pipeline_), clock_);

  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline_), "sink");
  GstAppSinkCallbacks cb{};
  cb.new_sample = on_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, this, nullptr);
  gst_object_unref(sink);
  GstBus* bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(
      bus,
      [](GstBus* b, GstMessage* m, gpointer self) {
        on_bus(b, m, self);
        return GST_BUS_PASS;
      },
      this, nullptr);
  gst_object_unref(bus);
  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    if (error) *error = "cannot set the receiver to PLAYING";
    return false;
  }
  // A live pipeline: PLAYING completes when the first buffer reaches the sink, so do
  // not wait for it here. The base time is set on the way to PLAYING already.
  return true;
}

void Receiver::stop() {
  if (pipeline_) gst_element_set_state(pipeline_, GST_STATE_NULL);
}

GstClockTime Receiver::base_time() const {
  return gst_element_get_base_time(pipeline_);
}

std::vector<OutBuffer> Receiver::buffers() {
  std::lock_guard<std::mutex> g(lock_);
  return out_;
}

std::vector<std::string> Receiver::errors() {
  std::lock_guard<std::mutex> g(lock_);
  return errors_;
}

GstStructure* Receiver::stats(const char* element_name) {
  GstElement* e = gst_bin_get_by_name(GST_BIN(pipeline_), element_name);
  if (!e) return nullptr;
  GstStructure* s = nullptr;
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(e), "stats"))
    g_object_get(e, "stats", &s, nullptr);
  gst_object_unref(e);
  return s;
}

uint64_t stat_u64(const GstStructure* s, const char* field) {
  if (!s) return UINT64_MAX;
  const GValue* v = gst_structure_get_value(s, field);
  if (!v) return UINT64_MAX;
  if (G_VALUE_HOLDS_UINT64(v)) return g_value_get_uint64(v);
  if (G_VALUE_HOLDS_INT64(v)) return static_cast<uint64_t>(g_value_get_int64(v));
  if (G_VALUE_HOLDS_UINT(v)) return g_value_get_uint(v);
  if (G_VALUE_HOLDS_INT(v)) return static_cast<uint64_t>(g_value_get_int(v));
  return UINT64_MAX;
}

Analysis analyze(const std::vector<OutBuffer>& out, GstClockTime base_time,
                 double capture_us_of_index0, uint32_t rate, double stream_end_us) {
  Analysis a;
  GstClockTime expected = GST_CLOCK_TIME_NONE;
  size_t silence = 0;
  const double frame_ns = 1e9 / rate;
  const bool debug = g_getenv("SCENARIO_DEBUG") != nullptr;
  for (const auto& b : out) {
    if (debug) {
      const int64_t idx = b.samples.empty() ? -2 : ramp_index(b.samples[0]);
      std::printf("buf pts %" GST_TIME_FORMAT " frames %zu discont %d first %.6f idx %lld\n",
                  GST_TIME_ARGS(b.pts), b.channels ? b.samples.size() / b.channels : 0, b.discont,
                  b.samples.empty() ? 0.0 : b.samples[0], (long long)idx);
    }
    if (b.channels <= 0 || b.pts == GST_CLOCK_TIME_NONE) continue;
    const size_t frames = b.samples.size() / b.channels;
    if (stream_end_us > 0 &&
        static_cast<double>(b.pts + base_time) >= stream_end_us * 1000.0 - 1e3) {
      a.trailing_frames += frames;  // concealment after the last packet received
      continue;
    }
    a.buffers++;
    a.frames += frames;
    if (a.first_pts == GST_CLOCK_TIME_NONE) a.first_pts = b.pts;
    if (expected != GST_CLOCK_TIME_NONE) {
      const int64_t d = static_cast<int64_t>(b.pts) - static_cast<int64_t>(expected);
      if (d > frame_ns) a.gaps++;
      if (d < -frame_ns) a.overlaps++;
    }
    const GstClockTime dur = static_cast<GstClockTime>(std::llround(frames * frame_ns));
    expected = b.pts + dur;
    a.end_pts = expected;
    // Silence runs (both channels zero).
    for (size_t f = 0; f < frames; f++) {
      bool zero = true;
      for (int c = 0; c < b.channels; c++) zero = zero && b.samples[f * b.channels + c] == 0.0f;
      silence = zero ? silence + 1 : 0;
      a.longest_silence_frames = std::max(a.longest_silence_frames, silence);
    }
    // Intact ramp?
    if (frames == 0) continue;
    const int64_t idx0 = ramp_index(b.samples[0]);
    if (idx0 < 0) continue;
    bool intact = true;
    for (size_t f = 0; f < frames && intact; f++) {
      const float v0 = b.samples[f * b.channels];
      intact = ramp_index(v0) == static_cast<int64_t>((idx0 + f) % 48000) &&
               (b.channels < 2 || b.samples[f * b.channels + 1] == -v0);
    }
    if (!intact) continue;
    // Full index: the candidate nearest to what the PTS says.
    const double t_ns = static_cast<double>(b.pts + base_time) - capture_us_of_index0 * 1000.0;
    const double approx = t_ns / frame_ns;
    const double k = std::round((approx - idx0) / 48000.0);
    const int64_t n = static_cast<int64_t>(k) * 48000 + idx0;
    const double capture_ns = capture_us_of_index0 * 1000.0 + n * frame_ns;
    const int64_t err =
        static_cast<int64_t>(std::llround(t_ns + capture_us_of_index0 * 1000.0 - capture_ns));
    a.sync_errors_ns.push_back(err);
    a.intact_first_index.push_back(static_cast<uint64_t>(n));
    a.max_sync_error_ns = std::max<int64_t>(a.max_sync_error_ns, std::llabs(err));
    if (a.intact == 0) a.first_index = static_cast<uint64_t>(n);
    a.last_index = static_cast<uint64_t>(n) + frames;
    a.intact++;
  }
  return a;
}

long heap_in_use_kib() {
  const struct mallinfo2 mi = mallinfo2();
  return static_cast<long>(mi.uordblks / 1024);
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace scenario
}  // namespace syncwave
