// SPDX-License-Identifier: LGPL-2.1-or-later
// The network scenarios through the element users run: `udpsrc ! syncwavesink` with
// its defaults but `latency`, playing into a private PulseAudio null sink, fed by
// gst-launch senders as users write them (a live source, `syncwavepay ! udpsink`
// with udpsink's defaults) through the impairment relay. Judged by what the sink
// played, recorded from its monitor:
//   - 10 % loss, +-20 ms jitter, 2 % duplication at latency 120, raw and Opus with
//     in-band FEC: after the start, no silent stretch longer than one packet;
//   - a receiver started while the sender runs is heard within a second.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <tuple>

#include "audio_analysis.h"
#include "gst_test_util.h"
#include "impair_relay.h"
#include "monitor_recorder.h"
#include "pulse_daemon.h"
#include "scenario_util.h"
#include "timing.h"
#include "udp_port.h"

namespace {

namespace impair = syncwave::impair;

constexpr int kRate = 48000;

const char* const kRawEncoder = "audioconvert ! audio/x-raw,format=F32LE,rate=48000,channels=2";
const char* const kOpusFecEncoder = "opusenc inband-fec=true packet-loss-percentage=10";

GstElement* launch(const std::string& desc) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  if (err) ADD_FAILURE() << desc << ": " << err->message;
  g_clear_error(&err);
  return p;
}

// The relay on its own thread.
class RelayThread {
 public:
  RelayThread(uint16_t to, const std::string& settings, uint64_t seed) {
    std::string err;
    ok_ = relay_.open("127.0.0.1", 0, &err);
    impair::Settings s;
    ok_ = ok_ && impair::apply_settings(&s, settings, &err) &&
          relay_.add_destination("127.0.0.1", to, s, seed, &err);
    error_ = err;
    if (ok_) thread_ = std::thread([this] { relay_.run(); });
  }
  ~RelayThread() {
    if (thread_.joinable()) {
      relay_.stop();
      thread_.join();
    }
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  uint16_t port() const { return relay_.port(); }

 private:
  impair::Relay relay_;
  std::thread thread_;
  bool ok_ = false;
  std::string error_;
};

// A receiver as users start it, playing into the null sink, and its sender.
struct Stream {
  GstElement* rx = nullptr;
  GstElement* tx = nullptr;

  static std::string receiver(int port, int clock_port, const std::string& sink, int latency) {
    return "udpsrc port=" + std::to_string(port) +
           " buffer-size=1048576 ! syncwavesink name=rx latency=" + std::to_string(latency) +
           " device=" + sink + " auto-clock-port=" + std::to_string(clock_port);
  }
  static std::string sender(const std::string& encoder, int port, int clock_port) {
    return "audiotestsrc is-live=true freq=440 volume=0.5 ! " + encoder +
           " ! syncwavepay time-provider-port=" + std::to_string(clock_port) +
           " ! udpsink host=127.0.0.1 port=" + std::to_string(port);
  }
  // Runs the bus for `ms`, redistributing latency as gst-launch-1.0 does.
  void run(int ms) {
    GstBus* bus = gst_element_get_bus(rx);
    const gint64 end = g_get_monotonic_time() + ms * 1000;
    while (g_get_monotonic_time() < end) {
      GstMessage* m = gst_bus_timed_pop_filtered(
          bus, 50 * GST_MSECOND, (GstMessageType)(GST_MESSAGE_LATENCY | GST_MESSAGE_ERROR));
      if (m == nullptr) continue;
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_LATENCY) {
        gst_bin_recalculate_latency(GST_BIN(rx));
      } else {
        GError* err = nullptr;
        gst_message_parse_error(m, &err, nullptr);
        ADD_FAILURE() << "receiver error: " << (err ? err->message : "?");
        g_clear_error(&err);
      }
      gst_message_unref(m);
    }
    gst_object_unref(bus);
  }
  std::string stats() {
    GstElement* bin = gst_bin_get_by_name(GST_BIN(rx), "rx");
    GstStructure* st = nullptr;
    g_object_get(bin, "stats", &st, NULL);
    gst_object_unref(bin);
    gchar* s = st ? gst_structure_to_string(st) : g_strdup("(none)");
    std::string out = s;
    g_free(s);
    if (st) gst_structure_free(st);
    return out;
  }
  ~Stream() {
    for (GstElement* e : {tx, rx}) {
      if (!e) continue;
      gst_element_set_state(e, GST_STATE_NULL);
      gst_object_unref(e);
    }
  }
};

struct Impaired {
  const char* name;
  const char* encoder;
  int packet_ms;  // what the sender puts in one packet (raw: one MTU, 3.6 ms)
};

using Server = syncwave_test::PulseDaemon::Server;

// Each case runs through PulseAudio and through PipeWire (pipewire-pulse).
class SinkScenario : public ::testing::TestWithParam<std::tuple<Impaired, Server>> {
 protected:
  void SetUp() override {
    std::string missing;
    if (!syncwave::scenario::has_elements({"syncwavesink", "syncwavepulsesink", "opusenc"},
                                          &missing))
      GTEST_SKIP() << missing << " is not available";
    const Server server = std::get<1>(GetParam());
    if (!syncwave_test::PulseDaemon::available(server))
      GTEST_SKIP() << syncwave_test::PulseDaemon::missing(server);
    ASSERT_TRUE(pulse_.start(server)) << pulse_.error() << pulse_.log();
    setenv("PULSE_SERVER", pulse_.server().c_str(), 1);
  }
  void TearDown() override { unsetenv("PULSE_SERVER"); }
  const Impaired& param() const { return std::get<0>(GetParam()); }
  syncwave_test::PulseDaemon pulse_;
};

std::string case_name(const ::testing::TestParamInfo<std::tuple<Impaired, Server>>& i) {
  return std::string(std::get<0>(i.param).name) + "_" +
         syncwave_test::PulseDaemon::name(std::get<1>(i.param));
}

const auto kServers = ::testing::Values(Server::kPulseAudio, Server::kPipeWire);

class ImpairedThroughTheSink : public SinkScenario {};

TEST_P(ImpairedThroughTheSink, NoSilenceLongerThanAPacket) {
  const int rx_port = syncwave_test::free_udp_port();
  const int clock_port = syncwave_test::free_udp_port();
  RelayThread relay(rx_port, "loss=10%,duplicate=2%,delay=25ms,jitter=20ms", 7);
  ASSERT_TRUE(relay.ok()) << relay.error();
  Stream s;
  s.rx = launch(Stream::receiver(rx_port, clock_port, pulse_.sink_name(), 120));
  ASSERT_NE(s.rx, nullptr);
  ASSERT_NE(gst_element_set_state(s.rx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  syncwave_test::MonitorRecorder rec(pulse_.server(), pulse_.monitor_name());
  ASSERT_TRUE(rec.ok());
  s.tx = launch(Stream::sender(param().encoder, relay.port(), clock_port));
  ASSERT_NE(s.tx, nullptr);
  ASSERT_NE(gst_element_set_state(s.tx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  s.run(8000);
  // The last four seconds: after start-up, the clock's first second, and the latency
  // the path needs (for Opus FEC at 120 ms the playout monitor may move it, once or
  // twice, a second apart, within the first seconds: each move is one hole; under the
  // sanitizers later than on the plain build).
  const std::vector<float> tail = rec.tail(4 * kRate);
  ASSERT_EQ(tail.size(), 4u * 2 * kRate) << "the monitor delivered less than four seconds";
  // 5 ms windows: a silent stretch longer than one packet spans more than
  // packet / 5 ms + 1 of them.
  const syncwave_test::SilentRuns runs = syncwave_test::silent_runs(tail, 2, 240, 0.05);
  EXPECT_EQ(runs.first_sound, 0u) << s.stats();
  // One window more than a packet spans: a CI run under load had one run of 2 windows
  // (raw, 4 ms packets, 5 silent windows in 4 s); the holes this guards against were
  // 20-55 ms.
  EXPECT_TIMELY(runs.longest <= (size_t)(param().packet_ms / 5 + 2))
      << "longest silent run " << runs.longest << " windows, " << runs.silent << " silent 5 ms windows; " << s.stats();
  const std::string st = s.stats();
  const size_t at = st.find("played-latency-ms=(uint)");
  std::printf("%s: %zu silent 5 ms windows of %zu, longest run %zu (played at %s ms)\n",
              param().name, runs.silent, runs.windows, runs.longest,
              at == std::string::npos ? "?" : st.substr(at + 24, st.find(',', at) - at - 24).c_str());
  EXPECT_EQ(syncwave_test::strongest_frequency(tail.data(), tail.size() / 2, 2, kRate,
                                               {220, 440, 880}),
            440);
}

// Opus with in-band FEC (20 ms packets): opusdec holds each packet until the next one
// (or the next loss) reaches it, so syncwavesink reports losses one packet earlier
// (issue 11: 34-43 silent 5 ms windows in 4 s before, runs up to 55 ms).
INSTANTIATE_TEST_SUITE_P(
    OpusFec, ImpairedThroughTheSink,
    ::testing::Combine(::testing::Values(Impaired{"opus_fec", kOpusFecEncoder, 20}), kServers),
    case_name);

INSTANTIATE_TEST_SUITE_P(Codecs, ImpairedThroughTheSink,
                         ::testing::Combine(::testing::Values(Impaired{"raw", kRawEncoder, 4}),
                                            kServers),
                         case_name);

class LateJoin : public SinkScenario {};

TEST_P(LateJoin, AReceiverStartedWhileTheSenderRunsIsHeardWithinASecond) {
  const int rx_port = syncwave_test::free_udp_port();
  const int clock_port = syncwave_test::free_udp_port();
  Stream s;
  s.tx = launch(Stream::sender(param().encoder, rx_port, clock_port));
  ASSERT_NE(s.tx, nullptr);
  ASSERT_NE(gst_element_set_state(s.tx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  syncwave_test::MonitorRecorder rec(pulse_.server(), pulse_.monitor_name());
  ASSERT_TRUE(rec.ok());
  g_usleep(2500 * 1000);  // the sender has sent its first headers long ago
  const size_t joined = rec.frames();
  s.rx = launch(Stream::receiver(rx_port, clock_port, pulse_.sink_name(), 60));
  ASSERT_NE(s.rx, nullptr);
  ASSERT_NE(gst_element_set_state(s.rx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  s.run(3000);
  const std::vector<float> after = rec.since(joined);
  ASSERT_GE(after.size(), 2u * 2 * kRate) << "the monitor delivered too little";
  const syncwave_test::SilentRuns runs = syncwave_test::silent_runs(after, 2, 480, 0.05);
  // Within a second (measured 2026-12-02: Opus 70-90 ms, raw 550-580 ms on both
  // servers: raw waits for the next header, every 500 ms; before the bin's output
  // stopped prerolling, raw took 0.88-1.13 s).
  EXPECT_LT(runs.first_sound, runs.windows) << "nothing heard; " << s.stats();
  EXPECT_TIMELY(runs.first_sound < 100u) << "first sound after " << runs.first_sound * 10
                                         << " ms; " << s.stats();
  std::printf("late join (%s): first sound %zu ms after the receiver started\n",
              param().name, runs.first_sound * 10);
}

INSTANTIATE_TEST_SUITE_P(Codecs, LateJoin,
                         ::testing::Combine(::testing::Values(Impaired{"raw", kRawEncoder, 4},
                                                              Impaired{"opus", "opusenc", 20}),
                                            kServers),
                         case_name);

}  // namespace
