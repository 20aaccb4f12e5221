// SPDX-License-Identifier: LGPL-2.1-or-later
// A private sound server for tests: PulseAudio, or PipeWire behind pipewire-pulse.
//
// start() runs the server in a fresh runtime directory (XDG_RUNTIME_DIR, HOME and the
// config dirs all private, no system daemon touched) with one null sink, and waits
// until it answers. Clients connect with the `server` property of pulsesrc/pulsesink,
// or with PULSE_SERVER=server(). The destructor stops it.
//
//  - Server::kPulseAudio: `pulseaudio -n --daemonize=no --exit-idle-time=-1` with
//    module-native-protocol-unix and a module-null-sink.
//  - Server::kPipeWire: `dbus-run-session` running pipewire, wireplumber (its ALSA,
//    bluez, V4L2 and libcamera monitors off) and pipewire-pulse, as a default Debian 12
//    desktop has them; the null sink is loaded through pipewire-pulse (`pactl
//    load-module module-null-sink`) and made the default sink.
//
//   syncwave_test::PulseDaemon pulse;
//   if (!syncwave_test::PulseDaemon::available(server)) GTEST_SKIP() << ...missing();
//   if (!pulse.start(server)) GTEST_SKIP() << pulse.error();
//   g_object_set(sink, "server", pulse.server().c_str(),
//                "device", pulse.sink_name().c_str(), NULL);
#pragma once

#include <sys/types.h>

#include <string>

namespace syncwave_test {

class PulseDaemon {
 public:
  enum class Server { kPulseAudio, kPipeWire };

  PulseDaemon() = default;
  ~PulseDaemon();
  PulseDaemon(const PulseDaemon&) = delete;
  PulseDaemon& operator=(const PulseDaemon&) = delete;

  // True when the binaries `server` needs are on PATH (pulseaudio; or pipewire,
  // wireplumber, pipewire-pulse, dbus-run-session and pactl).
  static bool available(Server server = Server::kPulseAudio);
  // What is missing for `server`, for a skip message: "pipewire-pulse not installed
  // (Debian: pipewire-pulse)", or "" when available().
  static std::string missing(Server server);
  // "PulseAudio" or "PipeWire" (usable in gtest parameter names).
  static const char* name(Server server);

  // Starts the server with one null sink (float32le, `rate` Hz, `channels`). Returns
  // false (see error()) when it cannot start or does not answer within 10 s (20 s for
  // PipeWire, which starts three daemons).
  bool start(unsigned rate = 48000, unsigned channels = 2) {
    return start(Server::kPulseAudio, rate, channels);
  }
  bool start(Server server, unsigned rate = 48000, unsigned channels = 2);
  // Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its directory.
  void stop();

  bool running() const { return pid_ > 0; }
  Server kind() const { return kind_; }
  // "unix:/tmp/syncwave-pulse-XXXXXX/native" (PulseAudio) or
  // "unix:/tmp/syncwave-pw-XXXXXX/pulse/native" (pipewire-pulse).
  const std::string& server() const { return server_; }
  const std::string& sink_name() const { return sink_name_; }
  std::string monitor_name() const { return sink_name_ + ".monitor"; }
  const std::string& runtime_dir() const { return dir_; }
  const std::string& error() const { return error_; }
  // The server's log (stderr of every daemon), for failure messages.
  std::string log() const;

  // Runs `pactl ARGS` against this server (PULSE_SERVER=server(), 10 s timeout).
  // Returns its exit status; its stdout and stderr go to *output when given.
  int pactl(const std::string& args, std::string* output = nullptr) const;
  // Loads one more null sink `name` (float32le) and waits until the server lists it.
  // Its monitor is name + ".monitor". Returns false (see error()) on failure.
  bool load_null_sink(const std::string& name, unsigned rate = 48000, unsigned channels = 2);

 private:
  bool start_pulseaudio(unsigned rate, unsigned channels);
  bool start_pipewire(unsigned rate, unsigned channels);
  bool wait_for_socket(const std::string& path, int seconds, const char* what);

  Server kind_ = Server::kPulseAudio;
  pid_t pid_ = -1;  // for PipeWire also the process group of every daemon
  std::string dir_;
  std::string server_;
  std::string sink_name_ = "syncwave_null";
  std::string error_;
};

}  // namespace syncwave_test
