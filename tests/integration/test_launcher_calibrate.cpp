// SPDX-License-Identifier: LGPL-2.1-or-later
// `syncwave-launch calibrate` end to end (issue 15): real receivers, a private
// PulseAudio room, the room's monitor as the microphone. Everything on 127.0.0.1.
//
//   receive --name=A ──► null sink spk_a ─► remap (left) ─► module-loopback  40 ms ─► room left
//   receive --name=B ──► null sink spk_b ─► remap (left) ─► module-loopback 160 ms ─► room right
//   pink noise ──────────────────────────────────────────────────────────────────────► room
//   calibrate --microphone=room.monitor (its mono downmix hears both)
//
// The loopbacks hold their latency (adjust_time=0, see test_pulse_calibration.cpp). A
// goes to the room's left channel and B to its right, so that after calibrate the
// alignment is judged from the room's monitor alone: the receivers, restarted with
// their names (their delays from their config files), play one white-noise stream from
// `syncwave-launch send`, and the lag between the room's two channels (their
// cross-correlation's peak) is what a listener at the microphone would hear between
// the two loudspeakers. The error cases: a speaker not connected to the room, a
// microphone that hears nothing, and a room too loud for quiet speakers; each must
// exit 1, say why, and change no receiver's config.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "child_process.h"
#include "fft.h"
#include "gst_test_util.h"
#include "monitor_recorder.h"
#include "pulse_daemon.h"
#include "timing.h"
#include "udp_port.h"

namespace {

using syncwave_test::Child;
using syncwave_test::PulseDaemon;

constexpr int kRate = 48000;

struct Outcome {
  int code = -1;
  std::string out, err;
  double seconds = 0;
};

// The lag of `left` behind `right`, seconds (positive: left later), from the peak of
// their cross-correlation within +-max_lag_s, with a parabola through its neighbours.
double channel_lag(const std::vector<float>& stereo, double max_lag_s) {
  const size_t n = stereo.size() / 2;
  const size_t size = syncwave::next_power_of_two(2 * n);
  std::vector<std::complex<double>> l(size), r(size);
  for (size_t i = 0; i < n; i++) {
    l[i] = stereo[2 * i];
    r[i] = stereo[2 * i + 1];
  }
  syncwave::Fft fft(size);
  fft.forward(&l);
  fft.forward(&r);
  for (size_t k = 0; k < size; k++) l[k] *= std::conj(r[k]);
  fft.inverse(&l);
  // c[lag] = sum l[t + lag] r[t]: lag k at index k (negative ones wrap around).
  const long max_lag = static_cast<long>(max_lag_s * kRate);
  auto at = [&](long lag) {
    return l[static_cast<size_t>((lag + static_cast<long>(size)) % static_cast<long>(size))].real();
  };
  long best = 0;
  for (long lag = -max_lag; lag <= max_lag; lag++)
    if (at(lag) > at(best)) best = lag;
  const double ym = at(best - 1), y0 = at(best), yp = at(best + 1);
  const double d = ym - 2 * y0 + yp;
  const double off = d < 0 ? std::max(-0.5, std::min(0.5, 0.5 * (ym - yp) / d)) : 0.0;
  return (static_cast<double>(best) + off) / kRate;
}

double rms(const std::vector<float>& stereo, int channel) {
  double sum = 0;
  const size_t n = stereo.size() / 2;
  for (size_t i = 0; i < n; i++) sum += double(stereo[2 * i + channel]) * stereo[2 * i + channel];
  return n ? std::sqrt(sum / n) : 0.0;
}

}  // namespace

class LauncherCalibrate : public ::testing::Test {
 protected:
  void SetUp() override {
    gst_init(nullptr, nullptr);
    const char* build = g_getenv("SYNCWAVE_BUILD_ROOT");
    ASSERT_NE(build, nullptr) << "run through meson test";
    launcher_ = std::string(build) + "/launcher/syncwave-launch";
    if (!PulseDaemon::available()) GTEST_SKIP() << "pulseaudio not installed";
    if (!syncwave_test::have("pulsesrc") || !syncwave_test::have("pulsesink"))
      GTEST_SKIP() << "GStreamer pulseaudio plugin missing";
    gchar* d = g_dir_make_tmp("syncwave-calibrate-XXXXXX", nullptr);
    dir_ = d;
    g_free(d);
    ASSERT_TRUE(pulse_.start()) << pulse_.error();
    for (const char* sink : {"spk_a", "spk_b", "room", "nowhere", "music"})
      ASSERT_TRUE(pulse_.load_null_sink(sink)) << pulse_.error();
    std::string out;
    for (const char* side : {"a", "b"}) {
      const std::string channel = std::string(side) == "a" ? "front-left" : "front-right";
      // The channel names must match all the way (remix=no): the remapped source is
      // already the room channel it goes to.
      ASSERT_EQ(pulse_.pactl(std::string("load-module module-remap-source source_name=src_") +
                                 side + " master=spk_" + side +
                                 ".monitor channels=1 master_channel_map=front-left channel_map=" +
                                 channel + " remix=no",
                             &out),
                0)
          << out;
      ASSERT_EQ(
          pulse_.pactl(std::string("load-module module-loopback source=src_") + side +
                           " sink=room latency_msec=" + (channel == "front-left" ? "40" : "160") +
                           " adjust_time=0 channels=1 channel_map=" + channel +
                           " remix=no source_dont_move=true sink_dont_move=true",
                       &out),
          0)
          << out;
    }
    clock_port_ = syncwave_test::free_udp_port();
    control_port_ = syncwave_test::free_udp_port();
    port_a_ = syncwave_test::free_udp_port();
    port_b_ = syncwave_test::free_udp_port();
  }
  void TearDown() override {
    receivers_.clear();
    if (noise_) {
      gst_element_set_state(noise_, GST_STATE_NULL);
      gst_object_unref(noise_);
    }
    if (!dir_.empty()) {
      const std::string cmd = "rm -rf '" + dir_ + "'";
      if (std::system(cmd.c_str()) != 0) {
      }
    }
  }

  // Pink noise into `sink` (the room's, or the stream's music).
  void play_noise(double volume, const std::string& sink = "room",
                  const std::string& wave = "pink-noise") {
    stop_noise();
    char v[32];
    std::snprintf(v, sizeof v, "%g", volume);
    noise_ = syncwave_test::launch("audiotestsrc is-live=true wave=" + wave + " volume=" + v +
                                   " ! audio/x-raw,format=F32LE,rate=48000,channels=2 ! "
                                   "pulsesink server=" +
                                   pulse_.server() + " device=" + sink);
    ASSERT_NE(noise_, nullptr);
    gst_element_set_state(noise_, GST_STATE_PLAYING);
  }
  void stop_noise() {
    if (!noise_) return;
    gst_element_set_state(noise_, GST_STATE_NULL);
    gst_object_unref(noise_);
    noise_ = nullptr;
  }

  std::map<std::string, std::string> env(const std::string& name) const {
    return {{"PULSE_SERVER", pulse_.server()}, {"XDG_CONFIG_HOME", dir_ + "/config-" + name}};
  }

  // `receive --name=NAME` into `sink`, reporting to the calibrate/send control port.
  void start_receiver(const std::string& name, int port, const std::string& sink,
                      const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {launcher_,
                                     "receive",
                                     "--name=" + name,
                                     "--port=" + std::to_string(port),
                                     "--device=" + sink,
                                     "--clock-port=" + std::to_string(clock_port_),
                                     "--control-port=" + std::to_string(control_port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    receivers_.push_back(std::make_unique<Child>(argv, env(name), dir_ + "/rx-" + name));
  }
  void stop_receivers() {
    for (auto& r : receivers_) r->stop(SIGINT, 5);
    receivers_.clear();
  }

  Outcome calibrate(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {launcher_,
                                     "calibrate",
                                     "--receiver=A@127.0.0.1:" + std::to_string(port_a_),
                                     "--receiver=B@127.0.0.1:" + std::to_string(port_b_),
                                     "--clock-port=" + std::to_string(clock_port_),
                                     "--control-port=" + std::to_string(control_port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Outcome run;
    const gint64 start = g_get_monotonic_time();
    Child c(argv, {{"PULSE_SERVER", pulse_.server()}}, dir_ + "/calibrate");
    for (int i = 0; i < 600 && c.running(); i++) g_usleep(100000);
    run.seconds = (g_get_monotonic_time() - start) / 1e6;
    run.code = c.stop(SIGINT, 5);
    run.out = c.out();
    run.err = c.err();
    std::printf("calibrate (%.1f s, exit %d):\n%s%s", run.seconds, run.code, run.out.c_str(),
                run.err.c_str());
    return run;
  }

  // calibrate() on this room. module-loopback, this room's air, sometimes moves by 1-2 ms
  // between two repeats when the machine is loaded (its own resync; about one loaded run
  // in four: A measured 29.48, 29.48 and then 27.60 ms in a full suite run). calibrate
  // then rightly refuses that receiver (spread-too-large) and changes nothing; that is
  // the test room, not the command, so the room is measured again, at most twice.
  Outcome calibrate_room(const std::vector<std::string>& extra) {
    Outcome run = calibrate(extra);
    for (int again = 0; again < 2 && run.code != 0 &&
                        (run.out + run.err).find("spread-too-large") != std::string::npos;
         again++) {
      std::printf("the room's loopback moved between repeats: calibrating again\n");
      run = calibrate(extra);
    }
    return run;
  }

  // The receiver's [room NAME] group, as it kept it ("" when it kept nothing).
  std::string room_config(const std::string& name) const {
    return syncwave_test::read_text_file(dir_ + "/config-" + name + "/syncwave/syncwave.conf");
  }

  std::string launcher_, dir_;
  PulseDaemon pulse_;
  GstElement* noise_ = nullptr;
  int clock_port_ = 0, control_port_ = 0, port_a_ = 0, port_b_ = 0;
  std::vector<std::unique_ptr<Child>> receivers_;
};

TEST_F(LauncherCalibrate, TwoReceiversPlayAlignedInTheRoomAfterwards) {
  play_noise(0.05);
  start_receiver("A", port_a_, "spk_a");
  start_receiver("B", port_b_, "spk_b");
  Outcome run = calibrate_room({"--microphone=room.monitor", "--verbose"});
  ASSERT_EQ(run.code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("acoustic delay"), std::string::npos) << run.out;
  // A is 120 ms closer: it is delayed by about that much; B, the latest, keeps its delay.
  const std::string a = room_config("A");
  const size_t at = a.find("delay=");
  ASSERT_NE(at, std::string::npos) << a;
  const int delay_a = std::atoi(a.c_str() + at + 6);
  // The loopbacks were asked for 40 and 160 ms, but what they settle at depends on the
  // load when they start (under the sanitizers a fresh-clone CI run measured, and
  // applied, 80 ms; the room was then aligned to 0.001 ms). The truth is the room
  // itself, judged below; here only that A, the nearer, was delayed.
  std::printf("A delayed by %d ms (the loopbacks were asked for 120 ms apart)\n", delay_a);
  EXPECT_GT(delay_a, 20);
  EXPECT_LT(delay_a, 250);
  EXPECT_EQ(room_config("B").find("delay="), std::string::npos) << room_config("B");
  EXPECT_TIMELY(run.seconds < 15.0) << run.seconds << " s";

  // Restarted with their names, playing one stream: aligned in the room.
  stop_receivers();
  stop_noise();
  start_receiver("A", port_a_, "spk_a");
  start_receiver("B", port_b_, "spk_b");
  play_noise(0.3, "music", "white-noise");
  Child sender({launcher_, "send", "--source=device:music.monitor", "--codec=raw",
                "--target=127.0.0.1:" + std::to_string(port_a_),
                "--target=127.0.0.1:" + std::to_string(port_b_),
                "--clock-port=" + std::to_string(clock_port_), "--control-port=0", "--quiet"},
               {{"PULSE_SERVER", pulse_.server()}}, dir_ + "/tx");
  syncwave_test::MonitorRecorder rec(pulse_.server(), "room.monitor");
  ASSERT_TRUE(rec.ok());
  // Receivers lock to the sender's clock within a few seconds; judge the last 2 s of 7.
  g_usleep(7 * G_USEC_PER_SEC);
  const std::vector<float> room = rec.tail(2 * kRate);
  ASSERT_GE(room.size(), static_cast<size_t>(3 * kRate))
      << "the room's monitor recorded too little";
  const double level_a = rms(room, 0), level_b = rms(room, 1);
  ASSERT_GT(level_a, 0.01) << "A is not heard in the room\n" << receivers_[0]->err();
  ASSERT_GT(level_b, 0.01) << "B is not heard in the room\n" << receivers_[1]->err();
  const double lag = channel_lag(room, 0.3);
  std::printf("in the room: A - B = %+.3f ms (A's delay %d ms)\n", lag * 1000, delay_a);
  EXPECT_LT(std::abs(lag), 0.0005) << "A - B = " << lag * 1000 << " ms";
  EXPECT_NE(receivers_[0]->err().find("from the config file"), std::string::npos)
      << receivers_[0]->err();
  EXPECT_TRUE(sender.running()) << sender.err();
}

TEST_F(LauncherCalibrate, ASpeakerOutsideTheRoomIsRefusedAndNothingChanges) {
  play_noise(0.05);
  start_receiver("A", port_a_, "spk_a");
  start_receiver("B", port_b_, "nowhere");  // not connected to the room
  const Outcome run = calibrate({"--microphone=room.monitor", "--verbose"});
  EXPECT_EQ(run.code, 1);
  EXPECT_NE(run.out.find("B: not-heard"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("Nothing was changed for it"), std::string::npos) << run.out;
  EXPECT_EQ(room_config("A").find("delay="), std::string::npos) << room_config("A");
  EXPECT_EQ(room_config("B").find("delay="), std::string::npos) << room_config("B");
}

TEST_F(LauncherCalibrate, AMicrophoneThatHearsNothingChangesNothing) {
  start_receiver("A", port_a_, "spk_a");
  start_receiver("B", port_b_, "spk_b");
  const Outcome run = calibrate({"--microphone=nowhere.monitor"});
  EXPECT_EQ(run.code, 1);
  EXPECT_NE(run.out.find("A: not-heard"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("B: not-heard"), std::string::npos) << run.out;
  EXPECT_EQ(room_config("A").find("delay="), std::string::npos) << room_config("A");
  EXPECT_EQ(room_config("B").find("delay="), std::string::npos) << room_config("B");
}

TEST_F(LauncherCalibrate, QuietSpeakersInALoudRoomChangeNothing) {
  // Full-scale pink noise, receivers at -28 dB: the sweeps come out 14-18 dB over the
  // noise, under the 20 dB a measurement needs (mostly too-noisy, some not-heard; at
  // -30 dB all are not-heard, at -26 dB up to 19.7 dB: too close to 20).
  play_noise(1.0);
  start_receiver("A", port_a_, "spk_a", {"--volume=0.04"});
  start_receiver("B", port_b_, "spk_b", {"--volume=0.04"});
  const Outcome run = calibrate({"--microphone=room.monitor", "--verbose"});
  EXPECT_EQ(run.code, 1);
  for (const char* name : {"A", "B"}) {
    const std::string line = std::string(name) + ": ";
    const bool refused = run.out.find(line + "too-noisy") != std::string::npos ||
                         run.out.find(line + "not-heard") != std::string::npos;
    EXPECT_TRUE(refused) << name << "\n" << run.out;
    EXPECT_EQ(room_config(name).find("delay="), std::string::npos) << room_config(name);
  }
}

TEST_F(LauncherCalibrate, AReceiverThatIsNotThereIsNamed) {
  start_receiver("A", port_a_, "spk_a");
  // No B: calibrate waits for its report, then says where it looked.
  const Outcome run = calibrate({"--microphone=room.monitor", "--dry-run"});
  EXPECT_EQ(run.code, 1);
  EXPECT_NE(run.out.find("B: no report from it at 127.0.0.1:" + std::to_string(port_b_)),
            std::string::npos)
      << run.out;
}

TEST_F(LauncherCalibrate, AReferenceThatWouldMakeAnotherTooEarlyChangesNothing) {
  // Aligned to A, B would need about -120 ms: more than its 60 ms latency allows.
  play_noise(0.05);
  start_receiver("A", port_a_, "spk_a");
  start_receiver("B", port_b_, "spk_b");
  const Outcome run = calibrate({"--microphone=room.monitor", "--reference=A"});
  EXPECT_EQ(run.code, 1);
  EXPECT_NE(run.out.find("outside -latency..2000 ms"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("(already aligned)"), std::string::npos) << run.out;  // A, the reference
  EXPECT_EQ(room_config("A").find("delay="), std::string::npos) << room_config("A");
  EXPECT_EQ(room_config("B").find("delay="), std::string::npos) << room_config("B");
}

// Secure receivers (--secret): calibrate with the same secret seals its probes and signs
// its delay changes, and they take them; without it they play nothing of it, and it
// changes nothing.
TEST_F(LauncherCalibrate, SecureReceiversAreCalibratedWithTheirSecret) {
  play_noise(0.05);
  start_receiver("A", port_a_, "spk_a", {"--secret=calibrate this room"});
  start_receiver("B", port_b_, "spk_b", {"--secret=calibrate this room"});
  Outcome plain = calibrate({"--microphone=room.monitor", "--dry-run"});
  EXPECT_EQ(plain.code, 1);
  EXPECT_NE(plain.out.find("A: no report"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("plays only a calibrate given it too"), std::string::npos)
      << plain.out;
  EXPECT_EQ(room_config("A").find("delay="), std::string::npos) << room_config("A");

  Outcome run = calibrate_room({"--microphone=room.monitor", "--secret=calibrate this room"});
  ASSERT_EQ(run.code, 0) << run.out << run.err;
  const std::string a = room_config("A");
  const size_t at = a.find("delay=");
  ASSERT_NE(at, std::string::npos) << a;
  EXPECT_GT(std::atoi(a.c_str() + at + 6), 20) << a;
  EXPECT_EQ(room_config("B").find("delay="), std::string::npos) << room_config("B");
  // The passphrase is not printed.
  EXPECT_EQ((run.out + run.err).find("calibrate this room"), std::string::npos)
      << run.out << run.err;
}
