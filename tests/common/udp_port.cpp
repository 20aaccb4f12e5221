// SPDX-License-Identifier: LGPL-2.1-or-later
#include "udp_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <set>

namespace syncwave_test {

namespace {

uint16_t bound_port() {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  uint16_t port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

// A port the kernel hands out for port 0 is free only until someone binds it: a test
// that asks for two before its first receiver started could get the same one twice
// (LauncherCli.RecordsFlacAndOgg under the sanitizers: "port already in use"). Ports
// handed out before in this process are skipped.
uint16_t free_udp_port() {
  static std::mutex lock;
  static std::set<uint16_t> given;
  std::lock_guard<std::mutex> lk(lock);
  for (int i = 0; i < 64; i++) {
    const uint16_t port = bound_port();
    if (port == 0) return 0;
    if (given.insert(port).second) return port;
  }
  return 0;
}

}  // namespace syncwave_test
