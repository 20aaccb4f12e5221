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

bool PulseDaemon::available() {
  return std::system("command -v pulseaudio >/dev/null 2>&1") == 0;
}

bool PulseDaemon::start(unsigned rate, unsigned channels) {
  stop();
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

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "pulseaudio exited: " + this->log();
      return false;
    }
    if (socket_answers(socket_path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  error_ = "pulseaudio did not answer within 10 s: " + this->log();
  stop();
  return false;
}

void PulseDaemon::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
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
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }
  remove_tree(dir_);
  dir_.clear();
}

std::string PulseDaemon::log() const {
  std::ifstream f(dir_ + "/pulseaudio.log");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace syncwave_test
