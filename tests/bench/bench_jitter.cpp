// SPDX-License-Identifier: LGPL-2.1-or-later
// bench-jitter: jitter-buffering cost, syncwavejitter against rtpjitterbuffer on
// the same arrival pattern of 10 ms Opus packets (in order with +-1 ms jitter; 5 %
// reordered; 2 % lost), both at latency 60 ms, rtpjitterbuffer with do-lost=true
// so both emit loss events. Driven through GstHarness on a GstTestClock: the
// clock is set to each packet's arrival time before it is pushed, and every clock
// wait that is due by then is released. `identity` runs the same driving loop
// alone and is the overhead to subtract.
//
// Output: one JSON object per case, pattern and round:
//   {"bench":"jitter","case":..,"pattern":..,"round":..,"cpu_s":..,"packets":..,
//    "pushed":..,"outputs":..,"lost_events":..}
//
// Usage: bench-jitter [--rounds=N] [--packets=N] [--case=NAME] [--pattern=NAME]

#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <gst/gst.h>
#include <gst/rtp/rtp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "wire_format.h"

namespace {

namespace wire = syncwave::wire;

// Capture time of packet 0 on the shared clock: an epoch-like value, so that
// sender timestamps in microseconds look like real ones.
constexpr GstClockTime kT0 = 1700000000ull * GST_SECOND;
constexpr GstClockTime kTransit = 5 * GST_MSECOND;

struct Arrival {
  size_t index;       // packet index (capture order)
  GstClockTime time;  // arrival clock time
};

std::vector<Arrival> make_pattern(const std::string& name, size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<Arrival> out;
  for (size_t i = 0; i < n; i++) {
    GstClockTime t = kT0 + i * 10 * GST_MSECOND + kTransit +
                     static_cast<GstClockTime>(u(rng) * 2.0 * GST_MSECOND);
    if (name == "loss2" && i > 10 && u(rng) < 0.02) continue;
    out.push_back({i, t});
  }
  if (name == "reorder5") {
    for (size_t k = 10; k + 1 < out.size(); k++) {
      if (u(rng) < 0.05) {
        std::swap(out[k].index, out[k + 1].index);
        k++;
      }
    }
  }
  return out;
}

struct Stream {
  std::vector<GstBuffer*> rtp;       // per packet index
  std::vector<GstBuffer*> syncwave;  // per packet index
  GstBuffer* sw_header = nullptr;
};

Stream make_stream(const std::vector<GstBuffer*>& opus) {
  Stream s;
  for (size_t i = 0; i < opus.size(); i++) {
    GstMapInfo m;
    gst_buffer_map(opus[i], &m, GST_MAP_READ);
    GstBuffer* r = gst_rtp_buffer_new_allocate(m.size, 0, 0);
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    gst_rtp_buffer_map(r, GST_MAP_WRITE, &rtp);
    gst_rtp_buffer_set_payload_type(&rtp, 96);
    gst_rtp_buffer_set_seq(&rtp, static_cast<guint16>(1000 + i));
    gst_rtp_buffer_set_timestamp(&rtp, static_cast<guint32>(12345 + i * 480));
    gst_rtp_buffer_set_ssrc(&rtp, 0x5eed);
    memcpy(gst_rtp_buffer_get_payload(&rtp), m.data, m.size);
    gst_rtp_buffer_unmap(&rtp);
    s.rtp.push_back(r);
    uint64_t ts_us = (kT0 + i * 10 * GST_MSECOND) / 1000;
    std::vector<uint8_t> d = wire::serialize_audio(wire::PacketType::kOpus, ts_us, m.data, m.size);
    s.syncwave.push_back(gst_buffer_new_memdup(d.data(), d.size()));
    gst_buffer_unmap(opus[i], &m);
  }
  wire::StreamHeader hdr;
  hdr.compression = wire::Compression::kOpus;
  auto h = wire::serialize_header(hdr);
  s.sw_header = gst_buffer_new_memdup(h.data(), h.size());
  return s;
}

struct Case {
  std::string name;
  std::string pipeline;
  std::string caps;
  bool syncwave;  // feed SYNC datagrams (else RTP)
  const char* needs;
};

void release_due(GstTestClock* tc, GstClockTime now) {
  GstClockID id;
  while (gst_test_clock_peek_next_pending_id(tc, &id)) {
    GstClockTime t = gst_clock_id_get_time(id);
    if (t > now) {
      gst_clock_id_unref(id);
      break;
    }
    gst_test_clock_process_id(tc, id);
  }
}

guint64 drain(GstHarness* h, guint64* lost) {
  guint64 n = 0;
  while (GstBuffer* b = gst_harness_try_pull(h)) {
    n++;
    gst_buffer_unref(b);
  }
  while (GstEvent* e = gst_harness_try_pull_event(h)) {
    if (GST_EVENT_TYPE(e) == GST_EVENT_CUSTOM_DOWNSTREAM || GST_EVENT_TYPE(e) == GST_EVENT_GAP)
      (*lost)++;
    gst_event_unref(e);
  }
  return n;
}

void run_case(const Case& c, const std::string& pattern_name, const std::vector<Arrival>& pattern,
              const Stream& s, int round, bool quiet) {
  if (c.needs && !bench::have_element(c.needs)) {
    if (!quiet)
      std::printf(
          "{\"bench\":\"jitter\",\"case\":\"%s\",\"pattern\":\"%s\",\"round\":%d,"
          "\"available\":false,\"missing\":\"%s\"}\n",
          c.name.c_str(), pattern_name.c_str(), round, c.needs);
    return;
  }
  double cpu0 = bench::process_cpu_s();
  GstHarness* h = gst_harness_new_parse(c.pipeline.c_str());
  gst_harness_use_testclock(h);
  GstTestClock* tc = gst_harness_get_testclock(h);
  gst_harness_set_time(h, kT0);
  gst_harness_set_src_caps_str(h, c.caps.c_str());
  guint64 outputs = 0, lost = 0, pushed = 0;
  size_t since_header = 1000;
  for (const Arrival& a : pattern) {
    gst_harness_set_time(h, a.time);
    release_due(tc, a.time);
    GstClockTime running = a.time;  // base time 0 in the harness
    if (c.syncwave && since_header >= 1000) {
      for (int k = 0; k < (pushed == 0 ? 5 : 1); k++) {
        GstBuffer* hb = gst_buffer_copy(s.sw_header);
        GST_BUFFER_PTS(hb) = GST_BUFFER_DTS(hb) = running;
        gst_harness_push(h, hb);
      }
      since_header = 0;
    }
    GstBuffer* b = gst_buffer_copy(c.syncwave ? s.syncwave[a.index] : s.rtp[a.index]);
    GST_BUFFER_PTS(b) = GST_BUFFER_DTS(b) = running;
    gst_harness_push(h, b);
    pushed++;
    since_header++;
    outputs += drain(h, &lost);
  }
  // Let everything fall due, then end the stream.
  GstClockTime t = pattern.back().time;
  for (int k = 0; k < 15; k++) {
    t += 10 * GST_MSECOND;
    gst_harness_set_time(h, t);
    release_due(tc, t);
    g_usleep(100);
    outputs += drain(h, &lost);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  outputs += drain(h, &lost);
  gst_object_unref(tc);
  gst_harness_teardown(h);
  double cpu = bench::process_cpu_s() - cpu0;
  if (!quiet)
    std::printf(
        "{\"bench\":\"jitter\",\"case\":\"%s\",\"pattern\":\"%s\",\"round\":%d,"
        "\"available\":true,\"cpu_s\":%.6f,\"packets\":%zu,\"pushed\":%" G_GUINT64_FORMAT
        ",\"outputs\":%" G_GUINT64_FORMAT ",\"lost_events\":%" G_GUINT64_FORMAT "}\n",
        c.name.c_str(), pattern_name.c_str(), round, cpu, pattern.size(), pushed, outputs, lost);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  int rounds = 5;
  size_t packets = 6000;
  std::string only_case, only_pattern;
  for (int i = 1; i < argc; i++) {
    if (!std::strncmp(argv[i], "--rounds=", 9))
      rounds = std::atoi(argv[i] + 9);
    else if (!std::strncmp(argv[i], "--case=", 7))
      only_case = argv[i] + 7;
    else if (!std::strncmp(argv[i], "--pattern=", 10))
      only_pattern = argv[i] + 10;
    else if (!std::strncmp(argv[i], "--packets=", 10))
      packets = std::strtoul(argv[i] + 10, 0, 10);
    else {
      std::fprintf(stderr,
                   "usage: bench-jitter [--rounds=N] [--packets=N] [--case=NAME] "
                   "[--pattern=inorder|reorder5|loss2]\n");
      return 2;
    }
  }
  std::vector<float> pcm = bench::noise(bench::kRate * 10, 2);
  GstCaps* opus_caps = nullptr;
  std::vector<GstBuffer*> opus = bench::opus_packets(pcm, packets, 128000, &opus_caps);
  gst_caps_unref(opus_caps);
  Stream s = make_stream(opus);
  const std::string rtp_caps =
      "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=96";
  std::vector<Case> cases = {
      {"syncwavejitter", "syncwavejitter latency=60", "application/x-syncwave", true,
       "syncwavejitter"},
      {"rtpjitterbuffer", "rtpjitterbuffer latency=60 do-lost=true", rtp_caps, false,
       "rtpjitterbuffer"},
      {"identity", "identity", "application/x-syncwave", true, nullptr},
  };
  std::vector<std::string> names = {"inorder", "reorder5", "loss2"};
  std::vector<std::vector<Arrival>> patterns;
  for (size_t p = 0; p < names.size(); p++)
    patterns.push_back(make_pattern(names[p], s.rtp.size(), 7 + p));
  // Warm-up, untimed.
  std::vector<Arrival> few(patterns[0].begin(), patterns[0].begin() + 100);
  for (const Case& c : cases)
    if (only_case.empty() || c.name == only_case) run_case(c, "warmup", few, s, -1, true);
  for (int r = 0; r < rounds; r++)
    for (size_t p = 0; p < names.size(); p++)
      for (size_t k = 0; k < cases.size(); k++) {
        const Case& c = cases[(k + r) % cases.size()];
        if (!only_case.empty() && c.name != only_case) continue;
        if (!only_pattern.empty() && names[p] != only_pattern) continue;
        run_case(c, names[p], patterns[p], s, r, false);
      }
  for (auto* v : {&s.rtp, &s.syncwave, &opus})
    for (GstBuffer* b : *v) gst_buffer_unref(b);
  gst_buffer_unref(s.sw_header);
  return 0;
}
