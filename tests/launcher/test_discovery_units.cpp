// SPDX-License-Identifier: LGPL-2.1-or-later
// discovery.h's plain logic: TXT records (hostile ones included), names, the table of
// peers, the targets a sender follows, the receiver's choice of sender and `list`'s
// output. No daemon, no network.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config.h"
#include "discovery.h"
#include "options.h"

using namespace syncwave::launcher;

namespace {

ServiceInstance instance(Role role, const std::string& name, const std::string& address,
                         int port, int iface = 2, int protocol = 0,
                         std::vector<std::string> txt = {}) {
  ServiceInstance s;
  s.role = role;
  s.name = name;
  s.address = address;
  s.port = port;
  s.interface_index = iface;
  s.protocol = protocol;
  s.host = name + ".local";
  s.txt = std::move(txt);
  return s;
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(DiscoveryTxt, ReceiverAnnouncementRoundTrips) {
  Announcement a = receiver_announcement("kitchen", 5555, {"raw", "opus"}, "waiting");
  EXPECT_EQ(a.role, Role::kReceiver);
  EXPECT_EQ(a.port, 5555);
  std::vector<std::string> txt = encode_txt(a.txt);
  EXPECT_EQ(txt, (std::vector<std::string>{"codecs=raw,opus", "state=waiting",
                                           std::string("version=") + VERSION}));
  TxtInfo info = decode_txt(txt);
  EXPECT_EQ(info.version, VERSION);
  EXPECT_EQ(info.codecs, (std::vector<std::string>{"raw", "opus"}));
  EXPECT_EQ(info.state, "waiting");
  EXPECT_EQ(info.clock_port, -1);
}

TEST(DiscoveryTxt, SenderAnnouncementCarriesClockPortAndFormat) {
  SendOptions s;
  s.codec = Codec::kRaw;
  s.clock_port = 6000;
  s.port = 6001;
  Announcement a = sender_announcement("studio", s, "sending");
  EXPECT_EQ(a.role, Role::kSender);
  EXPECT_EQ(a.port, 6000);  // SRV: the clock port
  TxtInfo info = decode_txt(encode_txt(a.txt));
  EXPECT_EQ(info.clock_port, 6000);
  EXPECT_EQ(info.data_port, 6001);
  EXPECT_EQ(info.format, "raw/48000/2");
  EXPECT_EQ(info.state, "sending");
}

TEST(DiscoveryTxt, OverlongRecordsAreNotEncoded) {
  std::map<std::string, std::string> txt = {{"state", std::string(300, 'x')}, {"a", "b"}};
  EXPECT_EQ(encode_txt(txt), (std::vector<std::string>{"a=b"}));
}

TEST(DiscoveryTxt, HostileRecordsAreDroppedOrCleaned) {
  const std::string nul_value = std::string("state=pla\0ying", 14);
  TxtInfo info = decode_txt({
      "",                                  // empty string
      "=novalue",                          // empty key
      "flag",                              // a boolean attribute: ignored
      std::string("ver\x01sion=1", 10),    // control byte in the key
      "VERSION=9.9",                       // key case does not matter: first one wins
      "version=evil",                      // duplicate: ignored
      nul_value,                           // NUL inside a value
      "codecs=OPUS,mp3,,raw,opus,\xff",    // unknown and repeated codecs dropped
      "clock-port=99999999999999999999",   // not a port
      "port=-5",                           // not a port
      "format=" + std::string(1000, 'f'),  // longer than a TXT string can be
  });
  EXPECT_EQ(info.version, "9.9");
  EXPECT_EQ(info.state, "pla?ying");
  EXPECT_EQ(info.codecs, (std::vector<std::string>{"opus", "raw"}));
  EXPECT_EQ(info.clock_port, -1);
  EXPECT_EQ(info.data_port, -1);
  EXPECT_EQ(info.format, "");
}

TEST(DiscoveryTxt, ValuesAreCutAndControlCharactersReplaced) {
  TxtInfo info = decode_txt({"state=" + std::string(200, 's'), "version=1\n2\x1b[31m"});
  EXPECT_EQ(info.state.size(), kMaxTxtValueBytes);
  EXPECT_EQ(info.version, "1?2?[31m");
  EXPECT_EQ(decode_txt({"clock-port=5556"}).clock_port, 5556);
  EXPECT_EQ(decode_txt({"clock-port=65536"}).clock_port, -1);
  EXPECT_EQ(decode_txt({"clock-port=0"}).clock_port, 0);
}

TEST(DiscoveryText, DisplayTextKeepsValidUtf8AndCutsAtACharacter) {
  EXPECT_EQ(display_text("K\xc3\xbc" "che", 63), "K\xc3\xbc" "che");
  EXPECT_EQ(display_text("K\xc3\xbc", 2), "K");  // never half a character
  EXPECT_EQ(display_text("a\xc3", 63), "a?");     // truncated sequence
  EXPECT_EQ(display_text("\xc0\xaf", 63), "??");  // overlong form
  EXPECT_EQ(display_text("\xed\xa0\x80", 63), "???");  // a surrogate
  EXPECT_EQ(display_text("a\xc2\x85" "b", 63), "a?b");  // C1 control (NEL)
  EXPECT_EQ(display_text("tab\there\r\n", 63), "tab?here??");
  EXPECT_EQ(display_text(std::string(100, 'x'), 63).size(), 63u);
}

TEST(DiscoveryText, ServiceNames) {
  std::string error;
  EXPECT_TRUE(valid_service_name("kitchen", &error));
  EXPECT_TRUE(valid_service_name("Living Room #2", &error));
  EXPECT_TRUE(valid_service_name("K\xc3\xbc" "che", &error));
  EXPECT_TRUE(valid_service_name(std::string(63, 'n'), &error));
  EXPECT_FALSE(valid_service_name(std::string(64, 'n'), &error));
  EXPECT_NE(error.find("--name="), std::string::npos) << error;
  EXPECT_NE(error.find("63 bytes"), std::string::npos) << error;
  EXPECT_FALSE(valid_service_name("", &error));
  EXPECT_FALSE(valid_service_name("a\nb", &error));
  EXPECT_NE(error.find("control"), std::string::npos) << error;
  EXPECT_FALSE(valid_service_name("a\xff", &error));
  EXPECT_NE(error.find("UTF-8"), std::string::npos) << error;

  EXPECT_EQ(default_service_name("kitchen.example.org"), "kitchen");
  EXPECT_EQ(default_service_name(""), "syncwave");
  EXPECT_EQ(default_service_name(std::string(100, 'h')).size(), 63u);
}

TEST(DiscoveryText, AnnouncedReceiverState) {
  EXPECT_EQ(announced_receiver_state(""), "waiting");
  EXPECT_EQ(announced_receiver_state("waiting"), "waiting");
  EXPECT_EQ(announced_receiver_state("waiting for header"), "waiting");
  EXPECT_EQ(announced_receiver_state("synced"), "playing");
  EXPECT_EQ(announced_receiver_state("late"), "playing");
  EXPECT_EQ(announced_receiver_state("quiet"), "idle");
}

TEST(DiscoveryOptions, NameListAndFrom) {
  Options o;
  o.command = Command::kReceive;
  std::string error;
  EXPECT_TRUE(apply_option(o, "name", "kitchen", &error)) << error;
  EXPECT_EQ(o.receive.name, "kitchen");
  EXPECT_FALSE(apply_option(o, "name", std::string(70, 'x'), &error));
  EXPECT_NE(error.find("--name="), std::string::npos) << error;
  EXPECT_TRUE(apply_option(o, "from", "Studio PC", &error)) << error;  // a sender's name
  EXPECT_TRUE(apply_option(o, "from", "10.0.0.2:40000", &error)) << error;
  EXPECT_FALSE(apply_option(o, "from", std::string(300, 'x'), &error));

  Options s;
  s.command = Command::kSend;
  EXPECT_TRUE(apply_option(s, "name", "studio", &error)) << error;
  EXPECT_TRUE(s.send.discover());  // no destination: follow the receivers found
  EXPECT_TRUE(validate_options(s, &error)) << error;
  EXPECT_TRUE(apply_option(s, "target", "10.0.0.5", &error));
  EXPECT_FALSE(s.send.discover());

  Options l;
  l.command = command_from_name("list");
  ASSERT_EQ(l.command, Command::kList);
  EXPECT_STREQ(command_name(Command::kList), "list");
  EXPECT_TRUE(apply_option(l, "json", "", &error)) << error;
  EXPECT_TRUE(l.list.json);
  EXPECT_TRUE(apply_option(l, "timeout", "0.5", &error)) << error;
  EXPECT_DOUBLE_EQ(l.list.timeout_s, 0.5);
  EXPECT_FALSE(apply_option(l, "timeout", "0", &error));
  EXPECT_NE(error.find("--timeout='0'"), std::string::npos) << error;
  EXPECT_FALSE(apply_option(l, "target", "h", &error));
  EXPECT_FALSE(apply_option(l, "duration", "1", &error));
}

TEST(PeerTable, OneServiceSeenOnTwoInterfacesIsOnePeerUntilBothGo) {
  PeerTable t;
  EXPECT_TRUE(t.update(instance(Role::kReceiver, "kitchen", "10.0.0.5", 5555, 2)));
  EXPECT_FALSE(t.update(instance(Role::kReceiver, "kitchen", "10.0.0.5", 5555, 3)));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_FALSE(t.remove(Role::kReceiver, "kitchen", 2, 0));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_TRUE(t.remove(Role::kReceiver, "kitchen", 3, 0));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.remove(Role::kReceiver, "kitchen", 3, 0));  // already gone
}

TEST(PeerTable, PrefersIPv4AndReportsChanges) {
  PeerTable t;
  t.update(instance(Role::kReceiver, "den", "fe80::1", 5555, 1, 1));
  t.update(instance(Role::kReceiver, "den", "10.0.0.7", 5555, 2, 0));
  ASSERT_EQ(t.peers().size(), 1u);
  EXPECT_EQ(t.peers()[0].address, "10.0.0.7");
  // A service of this computer is also seen on lo: the LAN address stands for it.
  PeerTable own;
  own.update(instance(Role::kSender, "studio", "127.0.0.1", 5556, 1, 0));
  own.update(instance(Role::kSender, "studio", "10.0.0.2", 5556, 4, 0));
  own.update(instance(Role::kSender, "studio", "fe80::2", 5556, 4, 1));
  ASSERT_EQ(own.peers().size(), 1u);
  EXPECT_EQ(own.peers()[0].address, "10.0.0.2");
  PeerTable lo_only;
  lo_only.update(instance(Role::kSender, "studio", "fe80::2", 5556, 4, 1));
  lo_only.update(instance(Role::kSender, "studio", "127.0.0.1", 5556, 1, 0));
  EXPECT_EQ(lo_only.peers()[0].address, "127.0.0.1");
  // A TXT change (the state) is a change; the same again is not.
  EXPECT_TRUE(t.update(instance(Role::kReceiver, "den", "10.0.0.7", 5555, 2, 0, {"state=playing"})));
  EXPECT_FALSE(
      t.update(instance(Role::kReceiver, "den", "10.0.0.7", 5555, 2, 0, {"state=playing"})));
  EXPECT_EQ(t.peers()[0].info.state, "playing");
  // A new address is a change.
  EXPECT_TRUE(t.update(instance(Role::kReceiver, "den", "10.0.0.8", 5555, 2, 0, {"state=playing"})));
}

TEST(PeerTable, IgnoresInstancesWithoutNameAddressOrValidPort) {
  PeerTable t;
  EXPECT_FALSE(t.update(instance(Role::kReceiver, "", "10.0.0.5", 5555)));
  EXPECT_FALSE(t.update(instance(Role::kReceiver, "x", "", 5555)));
  EXPECT_FALSE(t.update(instance(Role::kReceiver, "x", "10.0.0.5", 70000)));
  EXPECT_FALSE(t.update(instance(Role::kReceiver, "x", "10.0.0.5", -1)));
  EXPECT_EQ(t.size(), 0u);
}

TEST(PeerTable, SendersFirstThenReceiversByName) {
  PeerTable t;
  t.update(instance(Role::kReceiver, "b", "10.0.0.2", 5555));
  t.update(instance(Role::kSender, "z", "10.0.0.9", 5556));
  t.update(instance(Role::kReceiver, "a", "10.0.0.1", 5555));
  // A sender and a receiver may share a name (two service types).
  t.update(instance(Role::kSender, "a", "10.0.0.1", 5556));
  std::vector<Peer> p = t.peers();
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].role, Role::kSender);
  EXPECT_EQ(p[0].name, "a");
  EXPECT_EQ(p[1].name, "z");
  EXPECT_EQ(p[2].role, Role::kReceiver);
  EXPECT_EQ(p[2].name, "a");
  EXPECT_EQ(p[3].name, "b");
}

TEST(DiscoveredTargets, EveryReceiverOnceSendersIgnored) {
  PeerTable t;
  t.update(instance(Role::kReceiver, "b", "10.0.0.2", 5555));
  t.update(instance(Role::kReceiver, "a", "10.0.0.1", 6000));
  t.update(instance(Role::kReceiver, "a-alias", "10.0.0.1", 6000));  // same destination
  t.update(instance(Role::kReceiver, "a2", "10.0.0.1", 6001));       // same host, other port
  t.update(instance(Role::kReceiver, "zero", "10.0.0.3", 0));         // no port: skipped
  t.update(instance(Role::kReceiver, "group", "10.0.0.4", 5555, 2, 0,
                    {"multicast=239.255.0.1"}));  // listens on a group: skipped
  t.update(instance(Role::kSender, "s", "10.0.0.9", 5556));
  std::vector<Endpoint> targets = discovered_targets(t.peers());
  EXPECT_EQ(targets, (std::vector<Endpoint>{
                         {"10.0.0.1", 6000}, {"10.0.0.1", 6001}, {"10.0.0.2", 5555}}));
}

TEST(DiscoveredTargets, DiffSaysWhatToAddAndRemove) {
  std::vector<Endpoint> before = {{"10.0.0.1", 5555}, {"10.0.0.2", 5555}};
  std::vector<Endpoint> after = {{"10.0.0.2", 5555}, {"10.0.0.3", 5555}};
  TargetChanges c = diff_targets(before, after);
  EXPECT_EQ(c.added, (std::vector<Endpoint>{{"10.0.0.3", 5555}}));
  EXPECT_EQ(c.removed, (std::vector<Endpoint>{{"10.0.0.1", 5555}}));
  TargetChanges none = diff_targets(after, after);
  EXPECT_TRUE(none.added.empty());
  EXPECT_TRUE(none.removed.empty());
}

TEST(ChooseSender, FromOrTheOnlyOne) {
  PeerTable t;
  t.update(instance(Role::kReceiver, "kitchen", "10.0.0.5", 5555));
  EXPECT_EQ(choose_sender(t.peers(), "").kind, SenderChoice::Kind::kNone);
  EXPECT_EQ(choose_sender(t.peers(), "kitchen").kind, SenderChoice::Kind::kNotFound);  // a receiver

  t.update(instance(Role::kSender, "studio", "10.0.0.2", 5556));
  SenderChoice only = choose_sender(t.peers(), "");
  EXPECT_EQ(only.kind, SenderChoice::Kind::kOnly);
  EXPECT_EQ(only.sender.address, "10.0.0.2");

  t.update(instance(Role::kSender, "laptop", "10.0.0.3", 5556));
  SenderChoice several = choose_sender(t.peers(), "");
  EXPECT_EQ(several.kind, SenderChoice::Kind::kAmbiguous);
  EXPECT_EQ(several.count, 2u);
  SenderChoice named = choose_sender(t.peers(), "laptop");
  EXPECT_EQ(named.kind, SenderChoice::Kind::kNamed);
  EXPECT_EQ(named.sender.address, "10.0.0.3");
  EXPECT_EQ(choose_sender(t.peers(), "Laptop").kind, SenderChoice::Kind::kNotFound);
  EXPECT_EQ(choose_sender(t.peers(), "10.0.0.3").kind, SenderChoice::Kind::kNotFound);
}

TEST(PeerList, OneLinePerServiceEvenForHostileNames) {
  PeerTable t;
  t.update(instance(Role::kReceiver, "kitchen", "10.0.0.5", 5555, 2, 0, {"state=playing"}));
  t.update(instance(Role::kReceiver, "evil\nname\x1b[2J" + std::string(200, 'x'), "10.0.0.6",
                    5555, 2, 0, {"state=a\nb", "state=second"}));
  t.update(instance(Role::kSender, "studio", "10.0.0.2", 5556, 2, 0,
                    {"format=opus/48000/2", "clock-port=5556", "state=sending"}));
  const std::string text = format_peer_list(t.peers());
  EXPECT_EQ(lines(text), 3) << text;
  EXPECT_NE(text.find("studio"), std::string::npos);
  EXPECT_NE(text.find("10.0.0.2:5556"), std::string::npos);
  EXPECT_NE(text.find("kitchen               10.0.0.5:5555          receiver  playing\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_NE(text.find("a?b"), std::string::npos) << text;
  EXPECT_EQ(format_peer_list({}), "");

  const std::string json = format_peer_json(t.peers());
  EXPECT_EQ(json.front(), '[');
  EXPECT_EQ(lines(json), 5) << json;  // "[", three objects, "]"
  EXPECT_NE(json.find("\"name\":\"studio\",\"role\":\"sender\",\"address\":\"10.0.0.2\","
                      "\"port\":5556"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"format\":\"opus/48000/2\",\"clock_port\":5556"), std::string::npos)
      << json;
  EXPECT_NE(json.find("\"state\":\"playing\",\"version\":null,\"codecs\":[]"), std::string::npos)
      << json;
  const size_t evil = json.find("evil");
  ASSERT_NE(evil, std::string::npos);
  EXPECT_LT(json.find("\"local\"", evil), json.find('\n', evil))
      << "the hostile name stays on its line: " << json;
  EXPECT_EQ(format_peer_json({}), "[]\n");
}

}  // namespace

namespace {

// Random bytes where the network puts names and TXT strings: nothing crashes, and
// list's output stays one line per service (a cheap fuzz; run under ASan/UBSan in CI).
TEST(DiscoveryFuzz, RandomNamesAndTxtNeverBreakTheList) {
  unsigned seed = 12345;
  auto next = [&seed]() {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) & 0x7fff;
  };
  auto random_bytes = [&](size_t max_len) {
    std::string s(next() % (max_len + 1), '\0');
    for (char& c : s) c = static_cast<char>(next() & 0xff);
    return s;
  };
  PeerTable t;
  for (int i = 0; i < 2000; i++) {
    std::vector<std::string> txt;
    for (unsigned k = next() % 8; k > 0; k--) {
      std::string r = random_bytes(300);
      if (next() % 2) r = std::string(next() % 2 ? "state=" : "codecs=") + r;
      txt.push_back(r);
    }
    const Role role = next() % 2 ? Role::kSender : Role::kReceiver;
    t.update(instance(role, random_bytes(80), "10.0.0." + std::to_string(next() % 250), next(),
                      static_cast<int>(next() % 4), 0, txt));
    if (next() % 4 == 0) t.remove(role, random_bytes(3), 0, 0);
    decode_txt(txt);
    std::string err;
    valid_service_name(random_bytes(70), &err);
  }
  const std::vector<Peer> peers = t.peers();
  const std::string text = format_peer_list(peers);
  EXPECT_EQ(lines(text), static_cast<int>(peers.size()));
  const std::string json = format_peer_json(peers);
  EXPECT_EQ(lines(json), static_cast<int>(peers.size()) + 2);
  for (unsigned char c : json) EXPECT_GE(c, 0x0a) << "a control byte in the JSON";
  discovered_targets(peers);
}

}  // namespace
