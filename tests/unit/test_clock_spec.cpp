// SPDX-License-Identifier: LGPL-2.1-or-later
// The clock string: every accepted form, its canonical spelling, and every error.

#include <gtest/gtest.h>

#include "clock_spec.h"

using namespace syncwave;

namespace {

ClockSpec ok(const std::string& s) {
  ClockSpecResult r = parse_clock_spec(s);
  EXPECT_TRUE(r.ok()) << s << ": " << clock_spec_error_name(r.error);
  return r.spec;
}

ClockSpecError err(const std::string& s) {
  return parse_clock_spec(s).error;
}

}  // namespace

TEST(ClockSpec, AutoAndSystem) {
  EXPECT_EQ(ok("auto").kind, ClockKind::kAuto);
  EXPECT_EQ(ok("  AUTO ").kind, ClockKind::kAuto);
  EXPECT_EQ(ok("system").kind, ClockKind::kSystem);
  EXPECT_EQ(ok("system:").kind, ClockKind::kSystem);
  EXPECT_EQ(err("system:foo"), ClockSpecError::kUnexpectedArgument);
  EXPECT_EQ(err("auto://x"), ClockSpecError::kUnexpectedArgument);
}

TEST(ClockSpec, NetForms) {
  ClockSpec a = ok("net://192.168.1.10:6000");
  EXPECT_EQ(a.kind, ClockKind::kNet);
  EXPECT_EQ(a.host, "192.168.1.10");
  EXPECT_EQ(a.port, 6000);
  ClockSpec b = ok("net:sender.local");
  EXPECT_EQ(b.host, "sender.local");
  EXPECT_EQ(b.port, kDefaultNetClockPort);
  ClockSpec c = ok("net:127.0.0.1:5557");
  EXPECT_EQ(c.port, 5557);
  ClockSpec d = ok("NET://[::1]:7000");
  EXPECT_EQ(d.host, "::1");
  EXPECT_EQ(d.port, 7000);
  ClockSpec e = ok("net://fe80::1");
  EXPECT_EQ(e.host, "fe80::1");
  EXPECT_EQ(e.port, kDefaultNetClockPort);
}

TEST(ClockSpec, NtpForms) {
  ClockSpec a = ok("ntp://pool.ntp.org:1234");
  EXPECT_EQ(a.kind, ClockKind::kNtp);
  EXPECT_EQ(a.host, "pool.ntp.org");
  EXPECT_EQ(a.port, 1234);
  EXPECT_EQ(ok("ntp:time.example").port, kDefaultNtpPort);
}

TEST(ClockSpec, PtpForms) {
  EXPECT_EQ(ok("ptp").kind, ClockKind::kPtp);
  EXPECT_EQ(ok("ptp").ptp_domain, 0);
  EXPECT_EQ(ok("ptp:3").ptp_domain, 3);
  EXPECT_EQ(ok("ptp://127").ptp_domain, 127);
  EXPECT_EQ(ok("ptp://255").ptp_domain, 255);
  EXPECT_EQ(err("ptp://256"), ClockSpecError::kBadDomain);
  EXPECT_EQ(err("ptp://-1"), ClockSpecError::kBadDomain);
  EXPECT_EQ(err("ptp:x"), ClockSpecError::kBadDomain);
}

TEST(ClockSpec, Errors) {
  EXPECT_EQ(err(""), ClockSpecError::kEmpty);
  EXPECT_EQ(err("   "), ClockSpecError::kEmpty);
  EXPECT_EQ(err("gps"), ClockSpecError::kUnknownScheme);
  EXPECT_EQ(err("http://x:1"), ClockSpecError::kUnknownScheme);
  EXPECT_EQ(err("net://"), ClockSpecError::kMissingHost);
  EXPECT_EQ(err("net:"), ClockSpecError::kMissingHost);
  EXPECT_EQ(err("net://:5556"), ClockSpecError::kMissingHost);
  EXPECT_EQ(err("net://h:0"), ClockSpecError::kBadPort);
  EXPECT_EQ(err("net://h:65536"), ClockSpecError::kBadPort);
  EXPECT_EQ(err("net://h:12a"), ClockSpecError::kBadPort);
  EXPECT_EQ(err("net://h:"), ClockSpecError::kBadPort);
  EXPECT_EQ(err("net://h:99999999999999999999"), ClockSpecError::kBadPort);
  EXPECT_EQ(err("net://[::1"), ClockSpecError::kBadHost);
  EXPECT_EQ(err("net://[::1]x"), ClockSpecError::kBadHost);
  EXPECT_EQ(err("net://a b:1"), ClockSpecError::kBadHost);
  // The one HOST:PORT parser (host_port.h): what is no address and no name is rejected.
  EXPECT_EQ(err("net://999.1.1.1:5556"), ClockSpecError::kBadHost);
  EXPECT_EQ(err("net://[kitchen]:5556"), ClockSpecError::kBadHost);
  EXPECT_EQ(err("ntp://h:-5"), ClockSpecError::kBadPort);
  EXPECT_EQ(err("ntp://"), ClockSpecError::kMissingHost);
  // A failed parse leaves no half-filled spec behind.
  EXPECT_EQ(parse_clock_spec("net://h:0").spec, ClockSpec{});
}

TEST(ClockSpec, CanonicalRoundTrip) {
  for (const char* s : {"auto", "system", "net://10.0.0.2:5556", "ptp://7", "ntp://t.example:123",
                        "net://[::1]:5556"}) {
    ClockSpec spec = ok(s);
    EXPECT_EQ(to_string(spec), s);
    EXPECT_EQ(ok(to_string(spec)), spec);
  }
  EXPECT_EQ(to_string(ok("net:h")), "net://h:5556");
}

TEST(ClockSpec, ErrorNamesAreNonEmpty) {
  for (int i = 0; i <= static_cast<int>(ClockSpecError::kUnexpectedArgument); i++) {
    EXPECT_NE(std::string(clock_spec_error_name(static_cast<ClockSpecError>(i))), "");
  }
}
