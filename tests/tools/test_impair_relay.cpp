// SPDX-License-Identifier: LGPL-2.1-or-later
// The relay over real sockets on 127.0.0.1: what arrives is what the model decided,
// per destination, and the syncwave-impair program reports it as JSON.

#include <arpa/inet.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "impair_relay.h"

using namespace syncwave::impair;

namespace {

// A UDP socket on 127.0.0.1 with a free port.
class UdpSocket {
 public:
  UdpSocket() {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    const int buf = 4 * 1024 * 1024;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  }
  ~UdpSocket() { close(fd_); }
  uint16_t port() const { return port_; }
  void send_to(uint16_t port, const std::vector<uint8_t>& data) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  // Receives until `quiet_ms` pass without a datagram.
  std::vector<std::vector<uint8_t>> drain(int quiet_ms) {
    std::vector<std::vector<uint8_t>> out;
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, quiet_ms) <= 0) break;
      std::vector<uint8_t> buf(65536);
      const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
      if (n < 0) break;
      buf.resize(n);
      out.push_back(std::move(buf));
    }
    return out;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

std::vector<uint8_t> numbered(uint32_t i) {
  std::vector<uint8_t> p(100, 0xab);
  std::memcpy(p.data(), &i, sizeof(i));
  return p;
}

uint32_t number_of(const std::vector<uint8_t>& p) {
  uint32_t i = 0;
  std::memcpy(&i, p.data(), sizeof(i));
  return i;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

uint64_t json_number(const std::string& json, const std::string& key, size_t from = 0) {
  const size_t pos = json.find("\"" + key + "\": ", from);
  if (pos == std::string::npos) return UINT64_MAX;
  return std::stoull(json.substr(pos + key.size() + 4));
}

}  // namespace

TEST(ImpairRelay, ForwardsPerDestinationWhatItsModelDecided) {
  UdpSocket sender, clean, lossy;
  Relay relay;
  std::string err;
  ASSERT_TRUE(relay.open("127.0.0.1", 0, &err)) << err;
  ASSERT_NE(relay.port(), 0);
  Settings none;
  Settings bad;
  ASSERT_TRUE(apply_settings(&bad, "loss=20%,duplicate=5%", &err)) << err;
  ASSERT_TRUE(relay.add_destination("127.0.0.1", clean.port(), none, 1, &err)) << err;
  ASSERT_TRUE(relay.add_destination("127.0.0.1", lossy.port(), bad, 2, &err)) << err;
  std::thread t([&] { relay.run(); });

  const int n = 500;
  for (int i = 0; i < n; i++) {
    sender.send_to(relay.port(), numbered(i));
    if (i % 50 == 0) g_usleep(1000);  // let the relay keep up without losing in the kernel
  }
  auto got_clean = clean.drain(300);
  auto got_lossy = lossy.drain(100);
  relay.stop();
  t.join();

  ASSERT_EQ(relay.received(), static_cast<uint64_t>(n));
  ASSERT_EQ(got_clean.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; i++) EXPECT_EQ(number_of(got_clean[i]), static_cast<uint32_t>(i));

  // The lossy destination received exactly what its model forwarded, and the same
  // packets an offline model with the same seed forwards.
  const Counters c = relay.counters(1);
  EXPECT_EQ(got_lossy.size(), c.forwarded);
  ImpairModel offline(bad, 2);
  std::multiset<uint32_t> expected, actual;
  for (int i = 0; i < n; i++) {
    offline.arrive(i, numbered(i));
    for (const auto& d : offline.pop_due(UINT64_MAX - 1)) expected.insert(number_of(d.data));
  }
  for (const auto& p : got_lossy) actual.insert(number_of(p));
  EXPECT_EQ(actual, expected);
  EXPECT_GT(c.lost_random, 50u);
  EXPECT_GT(c.duplicated, 5u);

  const std::string json = relay.stats_json();
  EXPECT_EQ(json_number(json, "received"), static_cast<uint64_t>(n));
  EXPECT_NE(json.find("127.0.0.1:" + std::to_string(lossy.port())), std::string::npos);
}

TEST(ImpairRelay, DelaysByTheConfiguredAmount) {
  UdpSocket sender, dest;
  Relay relay;
  std::string err;
  ASSERT_TRUE(relay.open("127.0.0.1", 0, &err)) << err;
  Settings s;
  s.delay_us = 150000;
  ASSERT_TRUE(relay.add_destination("127.0.0.1", dest.port(), s, 1, &err));
  std::thread t([&] { relay.run(); });
  const uint64_t start = monotonic_us();
  sender.send_to(relay.port(), numbered(1));
  auto got = dest.drain(1000);
  const uint64_t elapsed = monotonic_us() - start;
  relay.stop();
  t.join();
  ASSERT_EQ(got.size(), 1u);
  // At least the delay; the upper side is only checked loosely (drain's quiet time).
  EXPECT_GE(elapsed, 150000u);
}

TEST(ImpairProgram, ReportsCountersOnSigusr1AndExit) {
  UdpSocket sender, dest;
  gchar* dir = g_dir_make_tmp("impair-XXXXXX", nullptr);
  ASSERT_NE(dir, nullptr);
  const std::string port_file = std::string(dir) + "/port";
  const std::string stats_file = std::string(dir) + "/stats.json";
  const std::string to = "--to=127.0.0.1:" + std::to_string(dest.port()) + ",loss=50%";
  const std::string pf = "--port-file=" + port_file;
  const std::string sf = "--stats-file=" + stats_file;
  const gchar* argv[] = {SYNCWAVE_IMPAIR_PATH,
                         "--listen=127.0.0.1:0",
                         to.c_str(),
                         "--seed=3",
                         "--quiet",
                         pf.c_str(),
                         sf.c_str(),
                         nullptr};
  GPid pid = 0;
  GError* error = nullptr;
  ASSERT_TRUE(g_spawn_async(nullptr, const_cast<gchar**>(argv), nullptr, G_SPAWN_DO_NOT_REAP_CHILD,
                            nullptr, nullptr, &pid, &error))
      << (error ? error->message : "");

  std::string port_text;
  for (int i = 0; i < 500 && port_text.empty(); i++) {
    g_usleep(10000);
    port_text = read_file(port_file);
  }
  ASSERT_FALSE(port_text.empty());
  const uint16_t port = static_cast<uint16_t>(std::stoi(port_text));

  const int n = 200;
  for (int i = 0; i < n; i++) sender.send_to(port, numbered(i));
  auto got = dest.drain(300);

  kill(pid, SIGUSR1);
  std::string stats;
  for (int i = 0; i < 500 && json_number(stats, "received") != static_cast<uint64_t>(n); i++) {
    g_usleep(10000);
    stats = read_file(stats_file);
  }
  EXPECT_EQ(json_number(stats, "received"), static_cast<uint64_t>(n)) << stats;
  const size_t dest_pos = stats.find("destinations");
  EXPECT_EQ(json_number(stats, "forwarded", dest_pos), got.size()) << stats;
  EXPECT_EQ(json_number(stats, "lost-random", dest_pos) + got.size(), static_cast<uint64_t>(n));

  // The same seed gives the same losses as the model offline.
  Settings s;
  s.loss = 0.5;
  ImpairModel offline(s, 3);
  for (int i = 0; i < n; i++) offline.arrive(i, numbered(i));
  EXPECT_EQ(offline.counters().lost_random, json_number(stats, "lost-random", dest_pos));

  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  g_spawn_close_pid(pid);
  g_unlink(port_file.c_str());
  g_unlink(stats_file.c_str());
  g_rmdir(dir);
  g_free(dir);
}

TEST(ImpairProgram, BadArgumentsExitTwo) {
  const gchar* argv[] = {SYNCWAVE_IMPAIR_PATH, "--to=127.0.0.1:9", "--loss=2", nullptr};
  gint status = 0;
  gchar* err_text = nullptr;
  ASSERT_TRUE(g_spawn_sync(nullptr, const_cast<gchar**>(argv), nullptr, G_SPAWN_DEFAULT, nullptr,
                           nullptr, nullptr, &err_text, &status, nullptr));
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(std::string(err_text).find("loss"), std::string::npos) << err_text;
  g_free(err_text);
}

TEST(ImpairRelay, DestinationAddedWhileRunningGetsTheStreamFromThen) {
  UdpSocket sender, first, second;
  Relay relay;
  std::string err;
  ASSERT_TRUE(relay.open("127.0.0.1", 0, &err)) << err;
  ASSERT_TRUE(relay.add_destination("127.0.0.1", first.port(), Settings(), 1, &err));
  std::thread t([&] { relay.run(); });
  for (int i = 0; i < 10; i++) sender.send_to(relay.port(), numbered(i));
  auto got_first = first.drain(200);
  ASSERT_TRUE(relay.add_destination("127.0.0.1", second.port(), Settings(), 2, &err));
  for (int i = 10; i < 20; i++) sender.send_to(relay.port(), numbered(i));
  auto more_first = first.drain(200);
  auto got_second = second.drain(100);
  relay.stop();
  t.join();
  EXPECT_EQ(got_first.size() + more_first.size(), 20u);
  ASSERT_EQ(got_second.size(), 10u);
  EXPECT_EQ(number_of(got_second[0]), 10u);
}
