// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pulse_daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace syncwave_test {

namespace {

bool socket_answers(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

bool on_path(const char* binary) {
  const std::string cmd = std::string("command -v ") + binary + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return static_cast<bool>(f);
}

// wireplumber's main.lua.d/90-enable-all.lua without the ALSA, V4L2 and libcamera
// monitors: a headless test machine has no devices, and the null sinks are all we
// play to. The metadata module stays (pipewire-pulse keeps the default sink there).
constexpr const char* kWireplumberMain =
    "load_module(\"metadata\")\n"
    "default_access.enable()\n"
    "device_defaults.enable()\n"
    "stream_defaults.enable()\n"
    "load_script(\"intended-roles.lua\")\n"
    "load_script(\"suspend-node.lua\")\n";

// Runs under dbus-run-session: the three daemons, each one's output to the log, until
// SIGTERM or until the test process ($SYNCWAVE_TEST_OWNER) is gone, so that a killed
// test leaves nothing running. wireplumber and pipewire-pulse start once pipewire's
// socket exists.
constexpr const char* kPipeWireScript =
    "log=\"$XDG_RUNTIME_DIR/pipewire.log\"\n"
    "P1= P2= P3=\n"
    "trap 'kill $P3 $P2 $P1 2>/dev/null; wait; exit 0' TERM INT HUP\n"
    "pipewire >>\"$log\" 2>&1 & P1=$!\n"
    "i=0\n"
    "while [ ! -S \"$PIPEWIRE_RUNTIME_DIR/pipewire-0\" ] && [ $i -lt 200 ]; do\n"
    "  sleep 0.05; i=$((i + 1))\n"
    "done\n"
    "wireplumber >>\"$log\" 2>&1 & P2=$!\n"
    "pipewire-pulse >>\"$log\" 2>&1 & P3=$!\n"
    "while kill -0 \"$SYNCWAVE_TEST_OWNER\" 2>/dev/null && kill -0 $P1 2>/dev/null; do\n"
    "  sleep 0.5 & wait $!\n"
    "done\n"
    "kill $P3 $P2 $P1 2>/dev/null\n"
    "wait\n";

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

void remove_tree(const std::string& dir) {
  if (dir.empty()) return;
  const std::string cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) {
    // Nothing else to do in a test helper.
  }
}

}  // namespace

PulseDaemon::~PulseDaemon() {
  stop();
}

bool PulseDaemon::available(Server server) {
  return missing(server).empty();
}

std::string PulseDaemon::missing(Server server) {
  struct Need {
    const char* binary;
    const char* package;
  };
  static const Need kPulse[] = {{"pulseaudio", "pulseaudio"}};
  static const Need kPipeWire[] = {{"pipewire", "pipewire-bin"},
                                   {"wireplumber", "wireplumber"},
                                   {"pipewire-pulse", "pipewire-pulse"},
                                   {"dbus-run-session", "dbus-daemon"},
                                   {"pactl", "pulseaudio-utils"}};
  std::string out;
  const auto check = [&out](const Need* needs, size_t n) {
    for (size_t i = 0; i < n; i++) {
      if (on_path(needs[i].binary)) continue;
      if (!out.empty()) out += ", ";
      out += std::string(needs[i].binary) + " (Debian: " + needs[i].package + ")";
    }
  };
  if (server == Server::kPipeWire) {
    check(kPipeWire, sizeof kPipeWire / sizeof kPipeWire[0]);
  } else {
    check(kPulse, sizeof kPulse / sizeof kPulse[0]);
  }
  return out.empty() ? out : "not installed: " + out;
}

const char* PulseDaemon::name(Server server) {
  return server == Server::kPipeWire ? "PipeWire" : "PulseAudio";
}

bool PulseDaemon::start(Server server, unsigned rate, unsigned channels) {
  stop();
  kind_ = server;
  if (!available(server)) {
    error_ = missing(server);
    return false;
  }
  return server == Server::kPipeWire ? start_pipewire(rate, channels)
                                     : start_pulseaudio(rate, channels);
}

bool PulseDaemon::wait_for_socket(const std::string& path, int seconds, const char* what) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = std::string(what) + " exited: " + this->log();
      return false;
    }
    if (socket_answers(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  error_ = std::string(what) + " did not answer within " + std::to_string(seconds) +
           " s: " + this->log();
  stop();
  return false;
}

bool PulseDaemon::start_pulseaudio(unsigned rate, unsigned channels) {
  char tmpl[] = "/tmp/syncwave-pulse-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    error_ = "mkdtemp failed";
    return false;
  }
  dir_ = tmpl;
  const std::string socket_path = dir_ + "/native";
  server_ = "unix:" + socket_path;
  {
    std::ofstream pa(dir_ + "/default.pa");
    pa << "load-module module-native-protocol-unix auth-anonymous=1 socket=" << socket_path << "\n"
       << "load-module module-null-sink sink_name=" << sink_name_
       << " format=float32le rate=" << rate << " channels=" << channels << "\n"
       << "set-default-sink " << sink_name_ << "\n";
  }

  const std::string config = dir_ + "/default.pa";
  const std::string log = dir_ + "/pulseaudio.log";
  const pid_t pid = fork();
  if (pid < 0) {
    error_ = "fork failed";
    return false;
  }
  if (pid == 0) {
    // Dies with the test, even when the test itself is killed.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    setenv("HOME", dir_.c_str(), 1);
    setenv("XDG_RUNTIME_DIR", dir_.c_str(), 1);
    setenv("XDG_CONFIG_HOME", dir_.c_str(), 1);
    setenv("PULSE_RUNTIME_PATH", dir_.c_str(), 1);
    setenv("PULSE_STATE_PATH", dir_.c_str(), 1);
    unsetenv("PULSE_SERVER");
    unsetenv("DBUS_SESSION_BUS_ADDRESS");
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execlp("pulseaudio", "pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
           "--use-pid-file=no", "--disallow-exit", "--log-target=stderr", "-F", config.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_ = pid;
  return wait_for_socket(socket_path, 10, "pulseaudio");
}

bool PulseDaemon::start_pipewire(unsigned rate, unsigned channels) {
  char tmpl[] = "/tmp/syncwave-pw-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    error_ = "mkdtemp failed";
    return false;
  }
  dir_ = tmpl;
  const std::string socket_path = dir_ + "/pulse/native";
  server_ = "unix:" + socket_path;
  const std::string config = dir_ + "/config";
  const std::string mkdirs = "mkdir -p '" + config + "/wireplumber/main.lua.d' '" + config +
                             "/wireplumber/bluetooth.lua.d' '" + config +
                             "/pipewire/pipewire.conf.d' '" + dir_ + "/state'";
  if (std::system(mkdirs.c_str()) != 0 ||
      !write_file(config + "/wireplumber/main.lua.d/90-enable-all.lua", kWireplumberMain) ||
      // No bluez monitor either: an empty file replaces the system's.
      !write_file(config + "/wireplumber/bluetooth.lua.d/90-enable-all.lua", "") ||
      !write_file(config + "/pipewire/pipewire.conf.d/10-syncwave-test.conf",
                  "context.properties = {\n  default.clock.rate = " + std::to_string(rate) +
                      "\n  default.clock.allowed-rates = [ " + std::to_string(rate) + " ]\n}\n") ||
      !write_file(dir_ + "/run.sh", kPipeWireScript)) {
    error_ = "cannot write the PipeWire configuration in " + dir_;
    return false;
  }
  const std::string script = dir_ + "/run.sh";
  const std::string owner = std::to_string(getpid());
  const pid_t pid = fork();
  if (pid < 0) {
    error_ = "fork failed";
    return false;
  }
  if (pid == 0) {
    // Its own process group, so that stop() reaches every daemon and the bus.
    setpgid(0, 0);
    // No PR_SET_PDEATHSIG here: dbus-run-session killed by a signal would leave its
    // dbus-daemon behind. The script watches the test's pid instead and ends, and then
    // dbus-run-session stops the bus itself.
    setenv("HOME", dir_.c_str(), 1);
    setenv("XDG_RUNTIME_DIR", dir_.c_str(), 1);
    setenv("PIPEWIRE_RUNTIME_DIR", dir_.c_str(), 1);
    setenv("XDG_CONFIG_HOME", config.c_str(), 1);
    setenv("XDG_STATE_HOME", (dir_ + "/state").c_str(), 1);
    setenv("PULSE_RUNTIME_PATH", (dir_ + "/pulse").c_str(), 1);
    setenv("SYNCWAVE_TEST_OWNER", owner.c_str(), 1);
    unsetenv("PULSE_SERVER");
    unsetenv("PIPEWIRE_REMOTE");
    unsetenv("DBUS_SESSION_BUS_ADDRESS");
    const int fd = open((dir_ + "/pipewire.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execlp("dbus-run-session", "dbus-run-session", "--", "sh", script.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);  // also here: no race with the first kill
  pid_ = pid;
  if (!wait_for_socket(socket_path, 20, "pipewire-pulse")) return false;

  std::string out;
  const std::string load = "load-module module-null-sink sink_name=" + sink_name_ +
                           " format=float32le rate=" + std::to_string(rate) +
                           " channels=" + std::to_string(channels);
  if (pactl(load, &out) != 0) {
    error_ = "pactl " + load + " failed: " + out + this->log();
    stop();
    return false;
  }
  // The default sink lives in wireplumber's metadata: retry until it is up.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pactl("set-default-sink " + sink_name_) == 0 && pactl("get-default-sink", &out) == 0 &&
        out.find(sink_name_) != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  error_ = "PipeWire: " + sink_name_ + " did not become the default sink within 20 s (" + out +
           "): " + this->log();
  stop();
  return false;
}

int PulseDaemon::pactl(const std::string& args, std::string* output) const {
  const std::string cmd = "env PULSE_SERVER=" + quoted(server_) + " HOME=" + quoted(dir_) +
                          " XDG_RUNTIME_DIR=" + quoted(dir_) + " timeout 10 pactl " + args +
                          " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string text;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  const int status = pclose(p);
  if (output != nullptr) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool PulseDaemon::load_null_sink(const std::string& name, unsigned rate, unsigned channels) {
  std::string out;
  const std::string load = "load-module module-null-sink sink_name=" + name +
                           " format=float32le rate=" + std::to_string(rate) +
                           " channels=" + std::to_string(channels);
  if (pactl(load, &out) != 0) {
    error_ = "pactl " + load + " failed: " + out;
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pactl("list short sinks", &out) == 0 && out.find(name) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  error_ = "null sink " + name + " not listed after 10 s: " + out;
  return false;
}

void PulseDaemon::stop() {
  if (pid_ > 0) {
    // PipeWire: the whole group (dbus-run-session, the bus, the script, the daemons).
    const pid_t target = kind_ == Server::kPipeWire ? -pid_ : pid_;
    kill(target, SIGTERM);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        gone = true;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    if (!gone) {
      kill(target, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (kind_ == Server::kPipeWire) {
      // What is left of the group once dbus-run-session is gone (nothing, normally).
      for (int i = 0; i < 40 && kill(target, 0) == 0; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      kill(target, SIGKILL);
    }
    pid_ = -1;
  }
  remove_tree(dir_);
  dir_.clear();
}

std::string PulseDaemon::log() const {
  std::ifstream f(dir_ + (kind_ == Server::kPipeWire ? "/pipewire.log" : "/pulseaudio.log"));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace syncwave_test
