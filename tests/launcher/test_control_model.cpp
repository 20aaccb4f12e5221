// SPDX-License-Identifier: LGPL-2.1-or-later
// The control surface's logic (launcher/control_model): what a client may change and
// how every bad value is refused, the receiver table and its JSON, the rate limit.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "control_model.h"

namespace c = syncwave::control;

namespace {

c::ChangeRequest ok(const std::string& body, int latency = 60) {
  c::ChangeRequest r;
  std::string error;
  EXPECT_TRUE(c::parse_change(body, latency, &r, &error)) << body << ": " << error;
  return r;
}

std::string refused(const std::string& body, int latency = 60) {
  c::ChangeRequest r;
  std::string error;
  EXPECT_FALSE(c::parse_change(body, latency, &r, &error)) << body;
  EXPECT_FALSE(error.empty()) << body;
  return error;
}

}  // namespace

TEST(ControlModel, AcceptsEachSetting) {
  EXPECT_DOUBLE_EQ(*ok("{\"volume\": 0.25}").volume, 0.25);
  EXPECT_TRUE(*ok("{\"mute\":true}").mute);
  EXPECT_FALSE(*ok(" { \"mute\" : false } ").mute);
  EXPECT_EQ(*ok("{\"delay_ms\": -60}").delay_ms, -60);
  EXPECT_EQ(*ok("{\"delay_ms\": 2000}").delay_ms, 2000);
  EXPECT_EQ(*ok("{\"latency_ms\": 120}").latency_ms, 120);
  EXPECT_EQ(*ok("{\"name\": \"Living room\"}").name, "Living room");
  const c::ChangeRequest all =
      ok("{\"volume\":1.5,\"mute\":false,\"delay_ms\":0,\"latency_ms\":5,\"name\":\"a.b_c-d\"}");
  EXPECT_TRUE(all.volume && all.mute && all.delay_ms && all.latency_ms && all.name);
  EXPECT_DOUBLE_EQ(*ok("{\"volume\":1e-1}").volume, 0.1);
}

TEST(ControlModel, RefusesBadValuesWithOneSentence) {
  EXPECT_NE(refused("{\"volume\": 1.6}").find("from 0 to 1.5"), std::string::npos);
  refused("{\"volume\": -0.1}");
  refused("{\"volume\": \"loud\"}");
  refused("{\"volume\": true}");
  refused("{\"mute\": 1}");
  refused("{\"mute\": \"true\"}");
  EXPECT_NE(refused("{\"delay_ms\": -61}").find("-60"), std::string::npos);
  refused("{\"delay_ms\": 2001}");
  refused("{\"delay_ms\": 1.5}");
  refused("{\"latency_ms\": 4}");
  refused("{\"latency_ms\": 5001}");
  refused("{\"name\": \"\"}");
  refused("{\"name\": \" lead\"}");
  refused("{\"name\": \"a/b\"}");
  refused("{\"name\": \"" + std::string(64, 'x') + "\"}");
  refused("{\"name\": \"caf\\u00e9\"}");  // escaped non-ASCII: refused
  EXPECT_EQ(*ok("{\"name\": \"K\xc3\xbc" "che\"}").name, "K\xc3\xbc" "che");  // raw UTF-8
  refused("{\"name\": \"a\xc3\"}");      // a cut sequence
  refused("{\"name\": \"a\xc0\xaf" "b\"}");  // overlong
  refused("{\"name\": \"x\\u0000y\"}");
  refused("{\"name\": 5}");
  EXPECT_NE(refused("{\"command\": \"rm -rf /\"}").find("unknown setting"), std::string::npos);
  EXPECT_NE(refused("{\"volume\":0.5,\"volume\":0.6}").find("twice"), std::string::npos);
}

TEST(ControlModel, RefusesWhatIsNotOneFlatObject) {
  for (const char* body :
       {"", " ", "null", "[]", "[{\"volume\":1}]", "{", "}", "{\"volume\"}", "{\"volume\":}",
        "{\"volume\":0.5,}", "{\"volume\":0.5} x", "{\"volume\":{\"x\":1}}", "{\"volume\":[1]}",
        "{volume:1}", "{'volume':1}", "{\"volume\":01}", "{\"volume\":.5}", "{\"volume\":1.}",
        "{\"volume\":-}", "{\"volume\":1e}", "{\"volume\":NaN}", "{\"volume\":Infinity}",
        "{\"volume\":1e999}", "{\"mute\":tru}", "{\"name\":\"unterminated}", "{\"name\":\"\\x\"}",
        "{\"name\":\"\\u12\"}", "{}"})
    refused(body);
  refused(std::string("{\"name\":\"a\tb\"}"));  // raw control character in a string
  refused("{\"volume\":0.5" + std::string(c::kMaxBodyBytes, ' ') + "}");
}

TEST(ControlModel, ShellArguments) {
  c::ChangeRequest r;
  std::string error;
  ASSERT_TRUE(c::parse_change_args({"volume=0.25", "mute=false", "delay=-150"}, 200, &r, &error))
      << error;
  EXPECT_DOUBLE_EQ(*r.volume, 0.25);
  EXPECT_FALSE(*r.mute);
  EXPECT_EQ(*r.delay_ms, -150);
  EXPECT_EQ(c::change_to_json(r), "{\"volume\":0.25,\"mute\":false,\"delay_ms\":-150}");
  // What `control` sends is what the API takes.
  c::ChangeRequest back;
  ASSERT_TRUE(c::parse_change(c::change_to_json(r), 200, &back, &error)) << error;
  EXPECT_EQ(*back.delay_ms, -150);
  EXPECT_FALSE(c::parse_change_args({"delay=-150"}, 60, &r, &error));  // below -latency
  EXPECT_FALSE(c::parse_change_args({"volume"}, 60, &r, &error));
  EXPECT_FALSE(c::parse_change_args({"volume=abc"}, 60, &r, &error));
  EXPECT_FALSE(c::parse_change_args({"mute=maybe"}, 60, &r, &error));
  EXPECT_FALSE(c::parse_change_args({"exec=/bin/sh"}, 60, &r, &error));
  EXPECT_FALSE(c::parse_change_args({}, 60, &r, &error));
  ASSERT_TRUE(c::parse_change_args({"name=Kitchen", "latency=80"}, 60, &r, &error)) << error;
  EXPECT_EQ(c::change_to_json(r), "{\"latency_ms\":80,\"name\":\"Kitchen\"}");
}

TEST(ControlModel, TableReportsExpiresAndEscapes) {
  c::ReceiverTable t(5'000'000);
  c::ReceiverReport a;
  a.name = "Kitchen";
  a.address = "10.0.0.5:5555";
  a.state = "synced";
  a.latency_ms = 60;
  a.level_db = {-12.5, -13};
  a.volume = 0.5;
  EXPECT_TRUE(t.report(a, 1'000'000));
  c::ReceiverReport b = a;
  b.name = "Bed room";
  b.mute = true;
  EXPECT_TRUE(t.report(b, 3'000'000));
  c::ReceiverReport bad = a;
  bad.name = "x\"}";
  EXPECT_FALSE(t.report(bad, 3'000'000));
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.to_json(3'500'000),
            "{\"receivers\":[{\"name\":\"Bed room\",\"address\":\"10.0.0.5:5555\",\"state\":"
            "\"synced\",\"latency_ms\":60,\"sync_offset_us\":0,\"lost\":0,\"late\":0,"
            "\"level_db\":[-12.5,-13],\"volume\":0.5,\"mute\":true,\"delay_ms\":0,\"age_ms\":500},"
            "{\"name\":\"Kitchen\",\"address\":\"10.0.0.5:5555\",\"state\":\"synced\","
            "\"latency_ms\":60,\"sync_offset_us\":0,\"lost\":0,\"late\":0,\"level_db\":[-12.5,-13],"
            "\"volume\":0.5,\"mute\":false,\"delay_ms\":0,\"age_ms\":2500}]}");
  EXPECT_EQ(t.expire(6'500'000), 1u);  // Kitchen: 5.5 s
  EXPECT_EQ(t.find("Kitchen"), nullptr);
  ASSERT_NE(t.find("Bed room"), nullptr);
  // A state string from the network is escaped.
  b.state = "a\"b\\c\n";
  t.report(b, 7'000'000);
  EXPECT_NE(t.to_json(7'000'000).find("\"state\":\"a\\\"b\\\\c\\u000a\""), std::string::npos);
}

TEST(ControlModel, TableIsBounded) {
  c::ReceiverTable t;
  c::ReceiverReport r;
  for (size_t i = 0; i < c::kMaxReceivers; i++) {
    r.name = "r" + std::to_string(i);
    ASSERT_TRUE(t.report(r, 0));
  }
  r.name = "one too many";
  EXPECT_FALSE(t.report(r, 0));
  r.name = "r0";  // a known one still refreshes
  EXPECT_TRUE(t.report(r, 1));
  r.level_db.assign(1000, -20.0);
  EXPECT_TRUE(t.report(r, 2));
  EXPECT_EQ(t.find("r0")->level_db.size(), 8u);
}

TEST(ControlModel, RateLimitPerClient) {
  c::RateLimiter l(10.0, 20.0, 2);
  int allowed = 0;
  for (int i = 0; i < 100; i++) allowed += l.allow("10.0.0.9", 0);
  EXPECT_EQ(allowed, 20);                   // the burst
  EXPECT_TRUE(l.allow("10.0.0.8", 0));      // another client has its own bucket
  EXPECT_FALSE(l.allow("10.0.0.9", 50'000));  // half a token back
  EXPECT_TRUE(l.allow("10.0.0.9", 200'000));  // 2 tokens back after 0.2 s
  // Bounded: a third client forgets the least recently seen one.
  EXPECT_TRUE(l.allow("10.0.0.7", 200'000));
  EXPECT_TRUE(l.allow("10.0.0.8", 200'000));  // forgotten, so a fresh burst
}

TEST(ControlModel, ReportsRoundTripAndBadOnesAreRefused) {
  c::ReceiverReport r;
  r.name = "Kitchen";
  r.state = "synced";
  r.latency_ms = 60;
  r.sync_offset_us = -12.5;
  r.lost = 3;
  r.late = 1;
  r.level_db = {-20, -21.5};
  r.volume = 0.8;
  r.mute = true;
  r.delay_ms = -40;
  const std::string json = c::report_to_json(r);
  c::ReceiverReport back;
  std::string error;
  ASSERT_TRUE(c::parse_report(json, &back, &error)) << error << " in " << json;
  EXPECT_EQ(back.name, "Kitchen");
  EXPECT_EQ(back.state, "synced");
  EXPECT_EQ(back.latency_ms, 60);
  EXPECT_DOUBLE_EQ(back.sync_offset_us, -12.5);
  EXPECT_EQ(back.lost, 3u);
  EXPECT_EQ(back.late, 1u);
  ASSERT_EQ(back.level_db.size(), 2u);
  EXPECT_DOUBLE_EQ(back.level_db[1], -21.5);
  EXPECT_DOUBLE_EQ(back.volume, 0.8);
  EXPECT_TRUE(back.mute);
  EXPECT_EQ(back.delay_ms, -40);
  // control_refused (with a secret) only when set: a plain report is as before.
  EXPECT_EQ(json.find("control_refused"), std::string::npos);
  EXPECT_FALSE(back.control_refused);
  r.control_refused = 7;
  ASSERT_TRUE(c::parse_report(c::report_to_json(r), &back, &error)) << error;
  EXPECT_EQ(back.control_refused, std::optional<uint64_t>(7));
  c::ReceiverTable table;
  ASSERT_TRUE(table.report(back, 0));
  EXPECT_NE(table.to_json(0).find(",\"control_refused\":7,\"age_ms\""), std::string::npos);
  EXPECT_FALSE(c::parse_report("{\"name\":\"A\",\"control_refused\":-1}", &back, &error));
  // A newer receiver's extra key is ignored; hostile or broken ones are refused.
  EXPECT_TRUE(c::parse_report("{\"name\":\"A\",\"future\":1}", &back, &error)) << error;
  for (const char* bad : {"{}", "{\"state\":\"synced\"}", "{\"name\":\"a/b\"}",
                          "{\"name\":\"A\",\"volume\":9}", "{\"name\":\"A\",\"level_db\":\"x\"}",
                          "{\"name\":\"A\",\"level_db\":\"-1,\"}", "{\"name\":\"A\",\"mute\":1}",
                          "{\"name\":\"A\",\"lost\":-1}", "not json"})
    EXPECT_FALSE(c::parse_report(bad, &back, &error)) << bad;
  EXPECT_FALSE(c::parse_report("{\"name\":\"A\",\"state\":\"" + std::string(2000, 'x') + "\"}",
                               &back, &error));
}
