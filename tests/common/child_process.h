// SPDX-License-Identifier: LGPL-2.1-or-later
// A child process for tests: argv run with extra environment variables, stdout and
// stderr to files (LOG_PREFIX.out, LOG_PREFIX.err), stdin from /dev/null. The
// destructor kills it. POSIX only.
//
//   syncwave_test::Child tx({launcher, "send", "--source=test"}, {{"PULSE_SERVER", s}},
//                           dir + "/tx");
//   ...
//   EXPECT_EQ(tx.stop(SIGINT, 5), 0) << tx.err();
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace syncwave_test {

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
        const std::string& log_prefix)
      : out_(log_prefix + ".out"), err_(log_prefix + ".err") {
    pid_ = fork();
    if (pid_ == 0) {
      const int out = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int null = open("/dev/null", O_RDONLY);
      dup2(out, 1);
      dup2(err, 2);
      dup2(null, 0);
      for (const auto& kv : env) setenv(kv.first.c_str(), kv.second.c_str(), 1);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { stop(SIGKILL, 0); }

  // Sends `sig`, waits up to `timeout_s`, then kills. Returns the exit code, 128+signal
  // or -1 when it had to be killed.
  int stop(int sig, double timeout_s) {
    if (pid_ <= 0) return code_;
    kill(pid_, sig);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        pid_ = -1;
        return code_ = -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    return code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
    pid_ = -1;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  std::string out() const { return read_text_file(out_); }
  std::string err() const { return read_text_file(err_); }

 private:
  pid_t pid_ = -1;
  int code_ = -1;
  std::string out_, err_;
};

}  // namespace syncwave_test
