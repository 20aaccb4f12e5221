// SPDX-License-Identifier: LGPL-2.1-or-later
// bench-plain-sync: the "plain GStreamer" side of the sync comparison. Two
// receivers share one network clock and one base time, the way GStreamer's
// net-clock examples synchronize playback, and play the same file to PulseAudio
// with a stock pulsesink.
//
//   bench-plain-sync serve
//       runs a GstNetTimeProvider for the system clock on 127.0.0.1 at a free port,
//       prints "port=<port> now=<clock time ns>" and runs until stdin closes.
//   bench-plain-sync play --clock-port=P --base-time=NS --device=SINK --file=F
//                         [--seconds=S] [--rate=48000] [--system-clock]
//       plays raw S16LE stereo F through pulsesink device=SINK with a
//       GstNetClientClock to 127.0.0.1:P (or, with --system-clock, the host's
//       monotonic system clock) as pipeline clock and base time NS.

#include <gst/gst.h>
#include <gst/net/net.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int serve() {
  GstClock* clock = gst_system_clock_obtain();
  GstNetTimeProvider* provider = gst_net_time_provider_new(clock, "127.0.0.1", 0);
  if (!provider) {
    std::fprintf(stderr, "cannot start the time provider\n");
    return 1;
  }
  gint port = 0;
  g_object_get(provider, "port", &port, NULL);
  std::printf("port=%d now=%" G_GUINT64_FORMAT "\n", port, gst_clock_get_time(clock));
  std::fflush(stdout);
  char line[64];
  while (std::fgets(line, sizeof line, stdin)) {
  }
  gst_object_unref(provider);
  gst_object_unref(clock);
  return 0;
}

int play(int argc, char** argv) {
  int port = 0, seconds = 30, rate = 48000;
  bool system_clock = false;
  guint64 base_time = 0;
  std::string device, file;
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    auto val = [&](const char* name) -> const char* {
      size_t n = std::strlen(name);
      return a.compare(0, n, name) == 0 ? a.c_str() + n : nullptr;
    };
    if (const char* v = val("--clock-port="))
      port = std::atoi(v);
    else if (const char* v = val("--base-time="))
      base_time = g_ascii_strtoull(v, NULL, 10);
    else if (const char* v = val("--device="))
      device = v;
    else if (const char* v = val("--file="))
      file = v;
    else if (const char* v = val("--seconds="))
      seconds = std::atoi(v);
    else if (const char* v = val("--rate="))
      rate = std::atoi(v);
  }
  if (port <= 0 || base_time == 0 || file.empty()) {
    std::fprintf(stderr, "play needs --clock-port, --base-time and --file\n");
    return 2;
  }
  GstClock* clock = system_clock ? gst_system_clock_obtain()
                                 : gst_net_client_clock_new("bench-plain", "127.0.0.1", port, 0);
  if (!gst_clock_wait_for_sync(clock, 5 * GST_SECOND)) {
    std::fprintf(stderr, "net clock did not sync\n");
    return 1;
  }
  gchar* desc = g_strdup_printf(
      "filesrc location=\"%s\" ! rawaudioparse format=pcm pcm-format=s16le "
      "sample-rate=%d num-channels=2 ! audioconvert ! pulsesink name=sink %s%s",
      file.c_str(), rate, device.empty() ? "" : "device=", device.c_str());
  GError* err = NULL;
  GstElement* pipeline = gst_parse_launch(desc, &err);
  g_free(desc);
  if (!pipeline) {
    std::fprintf(stderr, "pipeline: %s\n", err ? err->message : "?");
    return 1;
  }
  gst_pipeline_use_clock(GST_PIPELINE(pipeline), clock);
  gst_element_set_start_time(pipeline, GST_CLOCK_TIME_NONE);
  gst_element_set_base_time(pipeline, base_time);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* msg =
      gst_bus_timed_pop_filtered(bus, static_cast<GstClockTime>(seconds) * GST_SECOND,
                                 static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  int rc = 0;
  if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError* e = NULL;
    gst_message_parse_error(msg, &e, NULL);
    std::fprintf(stderr, "error: %s\n", e->message);
    g_error_free(e);
    rc = 1;
  }
  if (msg) gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  gst_object_unref(clock);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  if (argc >= 2 && std::strcmp(argv[1], "serve") == 0) return serve();
  if (argc >= 2 && std::strcmp(argv[1], "play") == 0) return play(argc, argv);
  std::fprintf(stderr, "usage: bench-plain-sync serve | play --clock-port=P --base-time=NS ...\n");
  return 2;
}
