// SPDX-License-Identifier: LGPL-2.1-or-later
// The receiver as users run it, behind a path slower than its latency: a gst-launch
// sender as the README writes it (udpsink with its defaults), a relay that delays
// every datagram (tests/tools/syncwave-impair), and `udpsrc ! syncwavesink` with its
// defaults into a private PulseAudio null sink. Judged by what the sink plays,
// recorded from its monitor: the tone is heard (no silent window in the last two
// seconds), the receiver plays at a latency that fits the path, and it says so.
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "audio_analysis.h"
#include "gst_test_util.h"
#include "monitor_recorder.h"
#include "pulse_daemon.h"
#include "timing.h"
#include "udp_port.h"

namespace {

using syncwave_test::have;
using syncwave_test::launch;

constexpr int kRate = 48000;

// syncwave-impair as its own process: every datagram to `listen` goes to `to` later.
class Relay {
 public:
  Relay(int listen, int to, int delay_ms) {
    const char* root = g_getenv("SYNCWAVE_BUILD_ROOT");
    std::string exe = std::string(root ? root : ".") + "/tests/tools/syncwave-impair";
    std::string a1 = "--listen=127.0.0.1:" + std::to_string(listen);
    std::string a2 = "--to=127.0.0.1:" + std::to_string(to);
    std::string a3 = "--delay=" + std::to_string(delay_ms) + "ms";
    gchar* argv[] = {(gchar*)exe.c_str(), (gchar*)a1.c_str(), (gchar*)a2.c_str(),
                     (gchar*)a3.c_str(), nullptr};
    GError* err = nullptr;
    if (!g_spawn_async(nullptr, argv, nullptr,
                       (GSpawnFlags)(G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL),
                       nullptr, nullptr, &pid_, &err)) {
      error_ = err ? err->message : "spawn failed";
      g_clear_error(&err);
      pid_ = 0;
    }
    g_usleep(200 * 1000);  // it binds its socket
  }
  ~Relay() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
      g_spawn_close_pid(pid_);
    }
  }
  bool ok() const { return pid_ > 0; }
  const std::string& error() const { return error_; }

 private:
  GPid pid_ = 0;
  std::string error_;
};

struct SlowPath {
  const char* name;
  const char* encoder;  // what the sender line puts before syncwavepay
  int delay_ms;         // the path's constant delay
  int latency_ms;       // the receiver's latency (0: its default)
};

using Server = syncwave_test::PulseDaemon::Server;

class ReceiverBehindASlowPath : public ::testing::TestWithParam<std::tuple<SlowPath, Server>> {};

TEST_P(ReceiverBehindASlowPath, IsHeardAndSaysWhatThePathNeeds) {
  const SlowPath& p = std::get<0>(GetParam());
  const Server server = std::get<1>(GetParam());
  if (!have("syncwavepulsesink") || !have("opusenc"))
    GTEST_SKIP() << "needs syncwavepulsesink and opusenc";
  if (!syncwave_test::PulseDaemon::available(server))
    GTEST_SKIP() << syncwave_test::PulseDaemon::missing(server);
  syncwave_test::PulseDaemon pulse;
  ASSERT_TRUE(pulse.start(server)) << pulse.error() << pulse.log();
  setenv("PULSE_SERVER", pulse.server().c_str(), 1);

  const int rx_port = syncwave_test::free_udp_port();
  const int relay_port = syncwave_test::free_udp_port();
  const int clock_port = syncwave_test::free_udp_port();
  Relay relay(relay_port, rx_port, p.delay_ms);
  ASSERT_TRUE(relay.ok()) << relay.error();

  std::string rx_desc = "udpsrc port=" + std::to_string(rx_port) +
                        " buffer-size=1048576 ! syncwavesink name=rx device=" + pulse.sink_name() +
                        " auto-clock-port=" + std::to_string(clock_port);
  if (p.latency_ms > 0) rx_desc += " latency=" + std::to_string(p.latency_ms);
  GstElement* rx = launch(rx_desc);
  ASSERT_NE(rx, nullptr);
  ASSERT_NE(gst_element_set_state(rx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  syncwave_test::MonitorRecorder rec(pulse.server(), pulse.monitor_name());
  ASSERT_TRUE(rec.ok());

  // The sender as users write it: a live source, udpsink with its defaults.
  GstElement* tx = launch(std::string("audiotestsrc is-live=true freq=440 volume=0.5 ! ") +
                          p.encoder + " ! syncwavepay time-provider-port=" +
                          std::to_string(clock_port) + " ! udpsink host=127.0.0.1 port=" +
                          std::to_string(relay_port));
  ASSERT_NE(tx, nullptr);
  ASSERT_NE(gst_element_set_state(tx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  // Let it find its latency, then judge the last two seconds of what was played.
  GstBus* bus = gst_element_get_bus(rx);
  std::string warning;
  const gint64 end = g_get_monotonic_time() + 6 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < end) {
    GstMessage* m = gst_bus_timed_pop_filtered(
        bus, 100 * GST_MSECOND, (GstMessageType)(GST_MESSAGE_WARNING | GST_MESSAGE_LATENCY));
    if (m == nullptr) continue;
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_LATENCY) {
      gst_bin_recalculate_latency(GST_BIN(rx));  // as gst-launch-1.0 does
    } else {
      GError* err = nullptr;
      gst_message_parse_warning(m, &err, nullptr);
      if (err && strstr(err->message, "too low for this path")) warning = err->message;
      g_clear_error(&err);
    }
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  std::vector<float> tail = rec.tail(2 * kRate);

  GstElement* bin = gst_bin_get_by_name(GST_BIN(rx), "rx");
  GstStructure* st = nullptr;
  g_object_get(bin, "stats", &st, NULL);
  ASSERT_NE(st, nullptr);
  guint played = 0, configured = 0;
  gst_structure_get_uint(st, "played-latency-ms", &played);
  gst_structure_get_uint(st, "configured-latency-ms", &configured);
  const std::string playback = gst_structure_get_string(st, "playback");
  gst_structure_free(st);
  gst_object_unref(bin);
  gst_element_set_state(tx, GST_STATE_NULL);
  gst_element_set_state(rx, GST_STATE_NULL);
  gst_object_unref(tx);
  gst_object_unref(rx);
  unsetenv("PULSE_SERVER");

  ASSERT_EQ(tail.size(), 2u * 2 * kRate) << "the monitor delivered less than two seconds";
  // Heard: every 10 ms window of the last two seconds carries the tone.
  const syncwave_test::SilentRuns silent = syncwave_test::silent_runs(tail, 2, 480, 0.05);
  EXPECT_EQ(silent.first_sound, 0u) << "playing at " << played << " ms";
  EXPECT_LT(silent.silent, silent.windows / 2) << "mostly silent; playing at " << played << " ms";
  EXPECT_TIMELY(silent.silent <= 2u) << silent.silent
                                     << " silent 10 ms windows in the last 2 s; playing at "
                                     << played << " ms";
  EXPECT_EQ(syncwave_test::strongest_frequency(tail.data(), tail.size() / 2, 2, kRate,
                                               {220, 440, 880}),
            440);
  // It never says "no-audio" while the tone plays; "late" is a real-time bound (under the
  // sanitizers the output underran in one CI run: 3 silent windows, rightly "late").
  EXPECT_NE(playback, "no-audio");
  EXPECT_TIMELY(playback == "playing") << playback;
  // The path is slower than the latency asked for: it plays later, and says so.
  if (p.delay_ms >= (int)configured) {
    EXPECT_GT(played, configured);
    EXPECT_NE(warning.find("ms after capture"), std::string::npos) << warning;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Paths, ReceiverBehindASlowPath,
    ::testing::Combine(::testing::Values(
        // The README's raw line to a receiver at its default latency, 80 ms away.
        SlowPath{"raw_80ms_default_latency",
                 "audioconvert ! audio/x-raw,format=F32LE,rate=48000,channels=2", 80, 0},
        // Opus with in-band FEC (opusenc's 20 ms frames) through 40 ms, latency 120:
        // it played one second, then silence.
        SlowPath{"opus_fec_40ms_latency_120",
                 "opusenc inband-fec=true packet-loss-percentage=10", 40, 120},
        // Opus through a path slower than the default latency.
        SlowPath{"opus_100ms_default_latency", "opusenc", 100, 0}),
                       ::testing::Values(Server::kPulseAudio, Server::kPipeWire)),
    [](const ::testing::TestParamInfo<std::tuple<SlowPath, Server>>& info) {
      return std::string(std::get<0>(info.param).name) + "_" +
             syncwave_test::PulseDaemon::name(std::get<1>(info.param));
    });

}  // namespace
