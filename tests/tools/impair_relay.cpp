// SPDX-License-Identifier: LGPL-2.1-or-later
#include "impair_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>

namespace syncwave {
namespace impair {

namespace {

constexpr size_t kMaxDatagram = 65536;
constexpr int kSocketBuffer = 4 * 1024 * 1024;

bool resolve(const std::string& host, uint16_t port, int socktype, sockaddr_storage* out,
             socklen_t* out_len, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    if (error) *error = "cannot resolve '" + host + "': " + gai_strerror(rc);
    return false;
  }
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  *out_len = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

void set_nonblocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

uint64_t monotonic_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

struct Relay::Destination {
  Destination(const Settings& s, uint64_t seed) : model(s, seed) {}
  std::string name;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int fd = -1;  // the listening socket when the family matches, else its own
  bool own_fd = false;
  ImpairModel model;
  uint64_t send_errors = 0;
  std::vector<uint64_t> sent_order;
};

Relay::Relay() : buffer_(kMaxDatagram) {
  if (pipe(wake_pipe_) == 0) {
    set_nonblocking(wake_pipe_[0]);
    set_nonblocking(wake_pipe_[1]);
    fcntl(wake_pipe_[0], F_SETFD, FD_CLOEXEC);
    fcntl(wake_pipe_[1], F_SETFD, FD_CLOEXEC);
  }
}

Relay::~Relay() {
  for (auto& d : destinations_) {
    if (d->own_fd && d->fd >= 0) close(d->fd);
  }
  if (fd_ >= 0) close(fd_);
  if (wake_pipe_[0] >= 0) close(wake_pipe_[0]);
  if (wake_pipe_[1] >= 0) close(wake_pipe_[1]);
}

bool Relay::open(const std::string& host, uint16_t port, std::string* error) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!resolve(host, port, SOCK_DGRAM, &addr, &len, error)) return false;
  fd_ = socket(addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    if (error) *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof(kSocketBuffer));
  setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof(kSocketBuffer));
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    if (error)
      *error =
          "cannot listen on " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
    close(fd_);
    fd_ = -1;
    return false;
  }
  set_nonblocking(fd_);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  if (bound.ss_family == AF_INET) {
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  } else {
    port_ = ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  }
  listen_host_ = host;
  return true;
}

bool Relay::add_destination(const std::string& host, uint16_t port, const Settings& settings,
                            uint64_t seed, std::string* error) {
  auto d = std::make_unique<Destination>(settings, seed);
  if (!resolve(host, port, SOCK_DGRAM, &d->addr, &d->addr_len, error)) return false;
  d->name = host + ":" + std::to_string(port);
  sockaddr_storage listen_addr{};
  socklen_t listen_len = sizeof(listen_addr);
  if (fd_ >= 0 && getsockname(fd_, reinterpret_cast<sockaddr*>(&listen_addr), &listen_len) == 0 &&
      listen_addr.ss_family == d->addr.ss_family) {
    d->fd = fd_;
  } else {
    d->fd = socket(d->addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (d->fd < 0) {
      if (error) *error = std::string("socket: ") + std::strerror(errno);
      return false;
    }
    d->own_fd = true;
    set_nonblocking(d->fd);
  }
  std::lock_guard<std::mutex> guard(lock_);
  destinations_.push_back(std::move(d));
  return true;
}

size_t Relay::destination_count() const {
  std::lock_guard<std::mutex> guard(lock_);
  return destinations_.size();
}

void Relay::receive_all(uint64_t now_us) {
  for (;;) {
    const ssize_t n = recv(fd_, buffer_.data(), buffer_.size(), 0);
    if (n < 0) break;  // EAGAIN, or an ICMP error from a previous send: nothing to read
    std::lock_guard<std::mutex> guard(lock_);
    received_++;
    for (auto& d : destinations_) d->model.arrive(now_us, buffer_.data(), static_cast<size_t>(n));
  }
}

void Relay::send_due(uint64_t now_us) {
  for (size_t i = 0;; i++) {
    Destination* d = nullptr;
    std::vector<Delivery> due;
    {
      std::lock_guard<std::mutex> guard(lock_);
      if (i >= destinations_.size()) break;
      d = destinations_[i].get();
      due = d->model.pop_due(now_us);
      if (recording_) {
        for (const auto& delivery : due) d->sent_order.push_back(delivery.seq);
      }
    }
    for (const auto& delivery : due) {
      const ssize_t n = sendto(d->fd, delivery.data.data(), delivery.data.size(), 0,
                               reinterpret_cast<const sockaddr*>(&d->addr), d->addr_len);
      if (n < 0) {
        std::lock_guard<std::mutex> guard(lock_);
        d->send_errors++;
        send_errors_++;
      }
    }
  }
}

void Relay::run(const std::function<bool()>& on_wake) {
  while (!stopping_.load()) {
    const uint64_t now = monotonic_us();
    send_due(now);
    uint64_t next = std::numeric_limits<uint64_t>::max();
    {
      std::lock_guard<std::mutex> guard(lock_);
      for (auto& d : destinations_) next = std::min(next, d->model.next_due());
    }
    timespec timeout{};
    timespec* timeout_ptr = nullptr;
    if (next != std::numeric_limits<uint64_t>::max()) {
      const uint64_t wait = next > now ? next - now : 0;
      timeout.tv_sec = static_cast<time_t>(wait / 1000000u);
      timeout.tv_nsec = static_cast<long>((wait % 1000000u) * 1000u);
      timeout_ptr = &timeout;
    }
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    const int rc = ppoll(fds, 2, timeout_ptr, nullptr);
    if (rc < 0 && errno != EINTR) break;
    if (rc > 0 && (fds[0].revents & (POLLIN | POLLERR))) receive_all(monotonic_us());
    if (rc > 0 && (fds[1].revents & POLLIN)) {
      char drain[64];
      while (read(wake_pipe_[0], drain, sizeof(drain)) > 0) {
      }
      if (on_wake && !on_wake()) break;
    }
  }
  // Flush what is already due so that counters match what left the relay.
  send_due(monotonic_us());
}

void Relay::stop() {
  stopping_.store(true);
  wake();
}

void Relay::wake() {
  const char c = 1;
  if (wake_pipe_[1] >= 0) {
    ssize_t ignored = write(wake_pipe_[1], &c, 1);
    (void)ignored;
  }
}

Counters Relay::counters(size_t destination) const {
  std::lock_guard<std::mutex> guard(lock_);
  if (destination >= destinations_.size()) return Counters();
  return destinations_[destination]->model.counters();
}

void Relay::set_recording(bool on) {
  std::lock_guard<std::mutex> guard(lock_);
  recording_ = on;
}

std::vector<uint64_t> Relay::sent_order(size_t destination) const {
  std::lock_guard<std::mutex> guard(lock_);
  if (destination >= destinations_.size()) return {};
  return destinations_[destination]->sent_order;
}

uint64_t Relay::received() const {
  std::lock_guard<std::mutex> guard(lock_);
  return received_;
}

std::string Relay::stats_json() const {
  std::lock_guard<std::mutex> guard(lock_);
  std::string out = "{\"listen-port\": " + std::to_string(port_) +
                    ", \"received\": " + std::to_string(received_) +
                    ", \"send-errors\": " + std::to_string(send_errors_) + ", \"destinations\": [";
  for (size_t i = 0; i < destinations_.size(); i++) {
    const auto& d = destinations_[i];
    if (i) out += ", ";
    std::string counters = d->model.counters_json();
    // Prepend the address and this destination's send errors to its counter object.
    out += "{\"address\": \"" + d->name + "\", \"send-errors\": " + std::to_string(d->send_errors) +
           ", " + counters.substr(1);
  }
  out += "]}";
  return out;
}

}  // namespace impair
}  // namespace syncwave
