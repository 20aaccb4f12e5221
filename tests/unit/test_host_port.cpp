// SPDX-License-Identifier: LGPL-2.1-or-later
// parse_host_port: IPv4, [IPv6]:port, bare IPv6, host names, port ranges, garbage.
#include <gtest/gtest.h>

#include "host_port.h"

using namespace syncwave;

namespace {

HostPort ok(const std::string& text) {
  HostPortResult r = parse_host_port(text);
  EXPECT_TRUE(r.ok()) << text << ": " << host_port_error_message(r.error);
  return r.value;
}

HostPortError err(const std::string& text) {
  return parse_host_port(text).error;
}

}  // namespace

TEST(HostPort, IPv4WithAndWithoutPort) {
  EXPECT_EQ(ok("192.168.1.20"), (HostPort{"192.168.1.20", 0, HostKind::kIPv4}));
  EXPECT_EQ(ok("127.0.0.1:5555"), (HostPort{"127.0.0.1", 5555, HostKind::kIPv4}));
  EXPECT_EQ(ok("0.0.0.0:1"), (HostPort{"0.0.0.0", 1, HostKind::kIPv4}));
  EXPECT_EQ(ok("255.255.255.255:65535").port, 65535);
}

TEST(HostPort, IPv6BracketedAndBare) {
  EXPECT_EQ(ok("[::1]:5556"), (HostPort{"::1", 5556, HostKind::kIPv6}));
  EXPECT_EQ(ok("[::1]"), (HostPort{"::1", 0, HostKind::kIPv6}));
  EXPECT_EQ(ok("::1"), (HostPort{"::1", 0, HostKind::kIPv6}));
  EXPECT_EQ(ok("fe80::1%eth0"), (HostPort{"fe80::1%eth0", 0, HostKind::kIPv6}));
  EXPECT_EQ(ok("[fe80::1%eth0]:7"), (HostPort{"fe80::1%eth0", 7, HostKind::kIPv6}));
  EXPECT_EQ(ok("2001:db8:0:0:0:0:0:1").kind, HostKind::kIPv6);
  EXPECT_EQ(ok("[::ffff:192.0.2.1]:80"), (HostPort{"::ffff:192.0.2.1", 80, HostKind::kIPv6}));
  EXPECT_EQ(ok("ff02::1").kind, HostKind::kIPv6);
}

TEST(HostPort, HostNames) {
  EXPECT_EQ(ok("kitchen.local:6000"), (HostPort{"kitchen.local", 6000, HostKind::kName}));
  EXPECT_EQ(ok("localhost"), (HostPort{"localhost", 0, HostKind::kName}));
  EXPECT_EQ(ok("my_pc-2").kind, HostKind::kName);
  EXPECT_EQ(ok(std::string(253, 'a')).host.size(), 253u);
}

TEST(HostPort, PortsOutOfRangeOrMalformed) {
  for (const char* s : {"h:0", "h:65536", "h:99999", "h:123456", "h:-1", "h:+5", "h: 5", "h:5 ",
                        "h:0x10", "h:", "[::1]:", "[::1]:70000", "1.2.3.4:5a", "h:4294967297"})
    EXPECT_EQ(err(s), HostPortError::kBadPort) << s;
}

TEST(HostPort, Garbage) {
  EXPECT_EQ(err(""), HostPortError::kEmpty);
  EXPECT_EQ(err(":5555"), HostPortError::kMissingHost);
  EXPECT_EQ(err("[]:5555"), HostPortError::kMissingHost);
  for (const char* s : {"[::1", "[::1]x", "[::1]5555", "[kitchen]:1", "a b", "host/x", "h\"",
                        "999.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.", ":::", "1::2::3", "12345::1",
                        "fe80::1%", "::1%a b", "-host", ".host", "h;rm"})
    EXPECT_EQ(err(s), HostPortError::kBadHost) << s;
  EXPECT_EQ(err(std::string(254, 'a')), HostPortError::kBadHost);
  EXPECT_EQ(err(std::string("h\0x", 3)), HostPortError::kBadHost);
}

TEST(HostPort, Format) {
  EXPECT_EQ(format_host_port("10.0.0.7", 40311), "10.0.0.7:40311");
  EXPECT_EQ(format_host_port("::1", 5556), "[::1]:5556");
  EXPECT_EQ(format_host_port("kitchen", 0), "kitchen");
}

TEST(HostPort, ParsePortAlone) {
  uint16_t p = 0;
  EXPECT_TRUE(parse_port("5555", &p));
  EXPECT_EQ(p, 5555);
  EXPECT_FALSE(parse_port("0", &p));
  EXPECT_FALSE(parse_port("65536", &p));
  EXPECT_FALSE(parse_port("", &p));
}
