// SPDX-License-Identifier: LGPL-2.1-or-later
// bench-paydepay: packetization cost, syncwavepay ! syncwavedepay against
// rtpL16pay ! rtpL16depay (raw) and rtpopuspay ! rtpopusdepay (Opus), in one
// process, driven through GstHarness with pre-made input (Opus pre-encoded, so
// the encoder stays out). Each round runs every case once, in rotating order, so
// machine noise hits all sides alike; `identity` runs the same input through the
// harness alone and is the overhead to subtract.
//
// Output: one JSON object per case and round on stdout:
//   {"bench":"paydepay","case":..,"round":..,"cpu_s":..,"wall_s":..,
//    "audio_s":..,"packets":..,"bytes_in":..,"available":true}
//
// Usage: bench-paydepay [--rounds=N] [--seconds=S] [--case=NAME]

#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

struct Case {
  std::string name;
  std::string pipeline;  // gst_harness_new_parse description; the payloader is named "pay"
  std::string caps;
  std::vector<GstBuffer*>* input;
  std::vector<const char*> needs;
};

GstPadProbeReturn count_probe(GstPad*, GstPadProbeInfo* info, gpointer data) {
  guint64* n = static_cast<guint64*>(data);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) (*n)++;
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST)
    *n += gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
  return GST_PAD_PROBE_OK;
}

void run_case(const Case& c, int round, bool quiet = false) {
  for (const char* e : c.needs) {
    if (!bench::have_element(e)) {
      if (!quiet)
        std::printf(
            "{\"bench\":\"paydepay\",\"case\":\"%s\",\"round\":%d,\"available\":false,"
            "\"missing\":\"%s\"}\n",
            c.name.c_str(), round, e);
      return;
    }
  }
  guint64 packets = 0, outputs = 0, bytes_in = 0;
  double cpu0 = bench::process_cpu_s(), wall0 = bench::wall_s();
  GstHarness* h = gst_harness_new_parse(c.pipeline.c_str());
  gst_harness_use_systemclock(h);
  GstElement* pay = gst_bin_get_by_name(GST_BIN(h->element), "pay");
  if (pay) {
    GstPad* src = gst_element_get_static_pad(pay, "src");
    gst_pad_add_probe(src,
                      (GstPadProbeType)(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      count_probe, &packets, NULL);
    gst_object_unref(src);
    gst_object_unref(pay);
  }
  gst_harness_set_src_caps_str(h, c.caps.c_str());
  for (GstBuffer* b : *c.input) {
    bytes_in += gst_buffer_get_size(b);
    gst_harness_push(h, gst_buffer_ref(b));
    while (GstBuffer* o = gst_harness_try_pull(h)) {
      outputs++;
      gst_buffer_unref(o);
    }
  }
  gst_harness_push_event(h, gst_event_new_eos());
  while (GstBuffer* o = gst_harness_try_pull(h)) {
    outputs++;
    gst_buffer_unref(o);
  }
  gst_harness_teardown(h);
  double cpu = bench::process_cpu_s() - cpu0, wall = bench::wall_s() - wall0;
  if (quiet) return;
  std::printf(
      "{\"bench\":\"paydepay\",\"case\":\"%s\",\"round\":%d,\"available\":true,"
      "\"cpu_s\":%.6f,\"wall_s\":%.6f,\"audio_s\":%.3f,\"packets\":%" G_GUINT64_FORMAT
      ",\"outputs\":%" G_GUINT64_FORMAT ",\"bytes_in\":%" G_GUINT64_FORMAT "}\n",
      c.name.c_str(), round, cpu, wall, c.input->size() / 100.0, packets, outputs, bytes_in);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  int rounds = 5, seconds = 60;
  std::string only;
  for (int i = 1; i < argc; i++) {
    if (!std::strncmp(argv[i], "--rounds=", 9))
      rounds = std::atoi(argv[i] + 9);
    else if (!std::strncmp(argv[i], "--seconds=", 10))
      seconds = std::atoi(argv[i] + 10);
    else if (!std::strncmp(argv[i], "--case=", 7))
      only = argv[i] + 7;
    else {
      std::fprintf(stderr, "usage: bench-paydepay [--rounds=N] [--seconds=S] [--case=NAME]\n");
      return 2;
    }
  }
  const size_t count = static_cast<size_t>(seconds) * 100;
  std::vector<float> pcm = bench::noise(bench::kRate * 10, 1);
  std::vector<GstBuffer*> f32 = bench::f32_buffers(pcm, count);
  std::vector<GstBuffer*> s16 = bench::s16be_buffers(pcm, count);
  GstCaps* opus_caps = nullptr;
  std::vector<GstBuffer*> opus = bench::opus_packets(pcm, count, 128000, &opus_caps);
  gchar* oc = gst_caps_to_string(opus_caps);
  std::string opus_caps_str = oc;
  g_free(oc);
  const std::string f32_caps = "audio/x-raw,format=F32LE,layout=interleaved,rate=48000,channels=2";
  const std::string s16_caps = "audio/x-raw,format=S16BE,layout=interleaved,rate=48000,channels=2";

  std::vector<Case> cases = {
      {"syncwave-raw",
       "syncwavepay name=pay ! syncwavedepay",
       f32_caps,
       &f32,
       {"syncwavepay", "syncwavedepay"}},
      {"rtp-l16", "rtpL16pay name=pay ! rtpL16depay", s16_caps, &s16, {"rtpL16pay", "rtpL16depay"}},
      {"identity-raw", "identity name=pay", f32_caps, &f32, {}},
      {"syncwave-opus",
       "syncwavepay name=pay ! syncwavedepay",
       opus_caps_str,
       &opus,
       {"syncwavepay", "syncwavedepay"}},
      {"rtp-opus",
       "rtpopuspay name=pay ! rtpopusdepay",
       opus_caps_str,
       &opus,
       {"rtpopuspay", "rtpopusdepay"}},
      {"identity-opus", "identity name=pay", opus_caps_str, &opus, {}},
  };
  // Warm-up: load plugins and fault in code once, untimed.
  for (const Case& c : cases) {
    if (!only.empty() && c.name != only) continue;
    std::vector<GstBuffer*> few(c.input->begin(), c.input->begin() + 50);
    Case w = c;
    w.input = &few;
    w.name = "warmup-" + c.name;
    run_case(w, -1, true);
  }
  for (int r = 0; r < rounds; r++) {
    for (size_t k = 0; k < cases.size(); k++) {
      const Case& c = cases[(k + r) % cases.size()];
      if (!only.empty() && c.name != only) continue;
      run_case(c, r);
    }
  }
  for (auto* v : {&f32, &s16, &opus})
    for (GstBuffer* b : *v) gst_buffer_unref(b);
  gst_caps_unref(opus_caps);
  return 0;
}
