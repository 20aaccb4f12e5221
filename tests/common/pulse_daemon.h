// A private PulseAudio daemon for tests.
//
// start() runs `pulseaudio -n --daemonize=no --exit-idle-time=-1` in a fresh runtime
// directory (XDG_RUNTIME_DIR, PULSE_RUNTIME_PATH, HOME all private, no system
// daemon touched) with module-native-protocol-unix and a module-null-sink, and waits
// until its socket answers. Clients connect with the `server` property of
// pulsesrc/pulsesink, or with PULSE_SERVER=server(). The destructor stops it.
//
//   syncwave_test::PulseDaemon pulse;
//   if (!pulse.start()) GTEST_SKIP() << pulse.error();
//   g_object_set(sink, "server", pulse.server().c_str(),
//                "device", pulse.sink_name().c_str(), NULL);
#pragma once

#include <sys/types.h>

#include <string>

namespace syncwave_test {

class PulseDaemon {
 public:
  PulseDaemon() = default;
  ~PulseDaemon();
  PulseDaemon(const PulseDaemon&) = delete;
  PulseDaemon& operator=(const PulseDaemon&) = delete;

  // True when a pulseaudio binary is on PATH.
  static bool available();

  // Starts the daemon with one null sink (float32le, `rate` Hz, `channels`). Returns
  // false (see error()) when it cannot start or does not answer within 10 s.
  bool start(unsigned rate = 48000, unsigned channels = 2);
  // Stops the daemon (SIGTERM, then SIGKILL after 5 s) and removes its directory.
  void stop();

  bool running() const { return pid_ > 0; }
  // "unix:/tmp/syncwave-pulse-XXXXXX/native"
  const std::string& server() const { return server_; }
  const std::string& sink_name() const { return sink_name_; }
  std::string monitor_name() const { return sink_name_ + ".monitor"; }
  const std::string& runtime_dir() const { return dir_; }
  const std::string& error() const { return error_; }
  // The daemon's log (stderr), for failure messages.
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::string dir_;
  std::string server_;
  std::string sink_name_ = "syncwave_null";
  std::string error_;
};

}  // namespace syncwave_test
