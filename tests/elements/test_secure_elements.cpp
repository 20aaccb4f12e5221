// SPDX-License-Identifier: LGPL-2.1-or-later
// Secure streams through the elements (docs/wire-format.md, "Secure framing"):
// syncwavepay with a secret seals every datagram (no plaintext header or sample data on
// the wire, within the MTU); syncwavejitter with the right secret outputs exactly what a
// plain jitter outputs for the plain stream; with a wrong secret, with none, or given
// plain datagrams it outputs nothing and counts by reason; replays after the sender
// stopped are not played; a forged flood leaves the stream intact; a restarted sender
// with a new stream id is followed as in plain mode; syncwavesink forwards the secret,
// and its sender detection only ever sees authenticated datagrams.
//
// GstHarness with a GstTestClock in synced mode (base time 0): PTS = timestamp * 1000,
// a packet plays at PTS + latency. The test seals and opens with core/secure_channel.h
// and the golden key of "correct horse battery staple" (tests/unit/test_secure_channel.cpp),
// so only the elements derive keys.
#include <gio/gio.h>
#include <gst/app/app.h>
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <gst/gst.h>
#include <gst/net/gstnetaddressmeta.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "secure_channel.h"
#include "udp_port.h"
#include "wire_format.h"

namespace wire = syncwave::wire;
namespace secure = syncwave::secure;

namespace {

class GstEnv : public ::testing::Environment {
 public:
  void SetUp() override { gst_init(nullptr, nullptr); }
};
const auto* const kGstEnv = ::testing::AddGlobalTestEnvironment(new GstEnv);

const char* kSecret = "correct horse battery staple";
const char* kWrongSecret = "correct horse battery stable";

secure::Key golden_key() {
  const char* hex = "dec716fe60d232fa024fd555409e370f72fd35a0c752d956eb6d0e611976b66b";
  secure::Key k{};
  for (size_t i = 0; i < k.size(); i++)
    k[i] = (uint8_t)std::stoul(std::string(hex + 2 * i, 2), nullptr, 16);
  return k;
}
secure::Key other_key() {
  secure::Key k = golden_key();
  k[31] ^= 0x40;
  return k;
}

using Bytes = std::vector<uint8_t>;

constexpr guint64 kT0 = 1700000000000000ull;  // sender µs of packet 0
constexpr GstClockTime kLatency = 60 * GST_MSECOND;

guint64 ts(int i) {
  return kT0 + static_cast<guint64>(i) * 10000;
}
GstClockTime pts(int i) {
  return ts(i) * 1000;
}

Bytes header_bytes() {
  auto h = wire::serialize_header({48000, 2, wire::Compression::kRaw});
  return {h.begin(), h.end()};
}

// 10 ms of stereo float32 at 48 kHz; the samples tell the packet: i + n / 65536.
Bytes audio_bytes(int i) {
  std::vector<float> samples(480 * 2);
  for (size_t n = 0; n < samples.size(); n++) samples[n] = i + (n % 480) / 65536.0f;
  return wire::serialize_audio(wire::PacketType::kRaw, ts(i),
                               reinterpret_cast<const uint8_t*>(samples.data()),
                               samples.size() * sizeof(float));
}

bool contains(const Bytes& hay, const uint8_t* needle, size_t n) {
  return std::search(hay.begin(), hay.end(), needle, needle + n) != hay.end();
}

Bytes bytes_of(GstBuffer* b) {
  Bytes v(gst_buffer_get_size(b));
  gst_buffer_extract(b, 0, v.data(), v.size());
  return v;
}

GstBuffer* datagram(const Bytes& d, const char* host = "127.0.0.1", guint16 port = 40000) {
  GstBuffer* b = gst_buffer_new_memdup(d.data(), d.size());
  GInetAddress* a = g_inet_address_new_from_string(host);
  GSocketAddress* sa = g_inet_socket_address_new(a, port);
  gst_buffer_add_net_address_meta(b, sa);
  g_object_unref(sa);
  g_object_unref(a);
  return b;
}

GstStructure* stats_of(GstElement* e) {
  GstStructure* s = nullptr;
  g_object_get(e, "stats", &s, NULL);
  return s;
}
guint64 stat_u64(GstElement* e, const char* field) {
  GstStructure* s = stats_of(e);
  guint64 v = 0;
  EXPECT_TRUE(gst_structure_get_uint64(s, field, &v)) << field;
  gst_structure_free(s);
  return v;
}
guint stat_uint(GstElement* e, const char* field) {
  GstStructure* s = stats_of(e);
  guint v = 0;
  EXPECT_TRUE(gst_structure_get_uint(s, field, &v)) << field;
  gst_structure_free(s);
  return v;
}
bool stat_bool(GstElement* e, const char* field) {
  GstStructure* s = stats_of(e);
  gboolean v = FALSE;
  EXPECT_TRUE(gst_structure_get_boolean(s, field, &v)) << field;
  gst_structure_free(s);
  return v;
}

// One datagram out of the jitter: its bytes and PTS.
struct Out {
  Bytes bytes;
  GstClockTime pts;
  bool operator==(const Out& o) const { return bytes == o.bytes && pts == o.pts; }
};

// A syncwavejitter in a harness on a test clock, with a bus to read its messages.
struct Jitter {
  GstHarness* h;
  GstBus* bus;
  explicit Jitter(const char* secret) {
    h = gst_harness_new("syncwavejitter");
    if (secret) g_object_set(h->element, "secret", secret, NULL);
    bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    gst_harness_use_testclock(h);
    gst_harness_set_src_caps_str(h, "application/x-syncwave");
    gst_harness_set_time(h, pts(0));
  }
  ~Jitter() {
    gst_harness_teardown(h);
    gst_object_unref(bus);
  }
  void push(GstBuffer* b) { ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK); }
  Out pull() {
    GstBuffer* b = gst_harness_pull(h);
    Out o{b ? bytes_of(b) : Bytes{}, b ? GST_BUFFER_PTS(b) : GST_CLOCK_TIME_NONE};
    if (b) gst_buffer_unref(b);
    return o;
  }
  // Everything already output (the src task has had time to push it when the caller
  // pulled something after it, or nothing was accepted at all).
  std::vector<Out> pull_ready() {
    std::vector<Out> v;
    while (GstBuffer* b = gst_harness_try_pull(h)) {
      v.push_back({bytes_of(b), GST_BUFFER_PTS(b)});
      gst_buffer_unref(b);
    }
    return v;
  }
  // Warnings and "syncwave-secure-rejected" messages posted so far (one pass: popping
  // one type discards the others).
  std::vector<std::string> warning_texts, rejected_addresses, rejected_reasons;
  void read_bus() {
    while (GstMessage* m = gst_bus_pop(bus)) {
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING) {
        GError* e = nullptr;
        gst_message_parse_warning(m, &e, nullptr);
        warning_texts.push_back(e ? e->message : "");
        if (e) g_error_free(e);
      } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT) {
        const GstStructure* s = gst_message_get_structure(m);
        if (gst_structure_has_name(s, "syncwave-secure-rejected")) {
          rejected_addresses.push_back(gst_structure_get_string(s, "address"));
          rejected_reasons.push_back(gst_structure_get_string(s, "reason"));
        }
      }
      gst_message_unref(m);
    }
  }
  std::vector<std::string> warnings() {
    read_bus();
    return warning_texts;
  }
  guint64 stat(const char* f) { return stat_u64(h->element, f); }
};

// A sealed stream: header then packets 0..n-1, each as plain and as sealed.
struct Stream {
  std::vector<Bytes> plain, sealed;
  Stream(secure::Sealer& sealer, int first, int n, bool with_header = true) {
    if (with_header) add(sealer, header_bytes());
    for (int i = first; i < first + n; i++) add(sealer, audio_bytes(i));
  }
  void add(secure::Sealer& sealer, const Bytes& p) {
    plain.push_back(p);
    sealed.push_back(sealer.seal(p.data(), p.size()));
  }
};

}  // namespace

// ---------------------------------------------------------------------------------
// syncwavepay

TEST(SecurePay, SealsEveryDatagramAndLeavesNoPlaintextOnTheWire) {
  GstHarness* h = gst_harness_new("syncwavepay");
  g_object_set(h->element, "secret", kSecret, NULL);
  gst_harness_set_src_caps_str(h,
                               "audio/x-raw,format=F32LE,layout=interleaved,rate=48000,channels=2");
  std::vector<float> in;
  for (int b = 0; b < 10; b++) {
    std::vector<float> v(480 * 2);
    for (size_t n = 0; n < v.size(); n++) v[n] = 0.25f + (b * 960 + n) * 1e-6f;
    in.insert(in.end(), v.begin(), v.end());
    GstBuffer* buf = gst_buffer_new_memdup(v.data(), v.size() * sizeof(float));
    GST_BUFFER_PTS(buf) = b * 10 * GST_MSECOND;
    ASSERT_EQ(gst_harness_push(h, buf), GST_FLOW_OK);
  }
  secure::Opener opener(golden_key());
  std::vector<Bytes> wire_out, opened;
  while (GstBuffer* b = gst_harness_try_pull(h)) {
    wire_out.push_back(bytes_of(b));
    gst_buffer_unref(b);
  }
  ASSERT_GT(wire_out.size(), 5u);
  Bytes samples_seen;
  for (const Bytes& d : wire_out) {
    EXPECT_LE(d.size(), 1400u);  // the default mtu holds with the framing
    EXPECT_EQ(d[0], secure::kMarker);
    EXPECT_EQ(wire::parse(d.data(), d.size()).error, wire::Error::kUnknownType);
    Bytes p;
    ASSERT_EQ(opener.open(d.data(), d.size(), &p), secure::Reject::kNone);
    opened.push_back(p);
  }
  // What was sealed is the v1 stream: five headers, then audio carrying the input.
  for (size_t i = 0; i < 5; i++)
    EXPECT_EQ(wire::parse(opened[i].data(), opened[i].size()).kind, wire::Kind::kHeader);
  Bytes payload;
  for (size_t i = 5; i < opened.size(); i++) {
    const auto r = wire::parse(opened[i].data(), opened[i].size());
    ASSERT_EQ(r.kind, wire::Kind::kRawAudio);
    payload.insert(payload.end(), r.audio.data, r.audio.data + r.audio.size);
  }
  ASSERT_EQ(payload.size(), in.size() * 4);
  EXPECT_EQ(std::memcmp(payload.data(), in.data(), payload.size()), 0);
  // Sniffing the wire: no "SYNC", no rate, no timestamp, no 8 bytes of any sample pair.
  uint8_t rate[4];
  wire::write_u32le(rate, 48000);
  for (size_t i = 0; i < wire_out.size(); i++) {
    const Bytes& d = wire_out[i];
    EXPECT_FALSE(contains(d, reinterpret_cast<const uint8_t*>("SYNC"), 4)) << i;
    EXPECT_FALSE(contains(d, rate, 4)) << i;
    if (i >= 5) {
      EXPECT_FALSE(contains(d, opened[i].data() + 1, 6)) << "timestamp in " << i;
    }
  }
  const auto* pcm = reinterpret_cast<const uint8_t*>(in.data());
  for (size_t off = 0; off + 8 <= in.size() * 4; off += 4)
    for (const Bytes& d : wire_out) ASSERT_FALSE(contains(d, pcm + off, 8)) << off;

  EXPECT_TRUE(stat_bool(h->element, "secure"));
  EXPECT_EQ(stat_u64(h->element, "sealed"), wire_out.size());
  EXPECT_EQ(stat_u64(h->element, "packets") + stat_u64(h->element, "headers"), wire_out.size());
  gst_harness_teardown(h);
}

TEST(SecurePay, WithoutASecretTheStreamIsPlainV1) {
  GstHarness* h = gst_harness_new("syncwavepay");
  gst_harness_set_src_caps_str(h,
                               "audio/x-raw,format=F32LE,layout=interleaved,rate=48000,channels=2");
  std::vector<float> v(480 * 2, 0.5f);
  GstBuffer* buf = gst_buffer_new_memdup(v.data(), v.size() * 4);
  GST_BUFFER_PTS(buf) = 0;
  ASSERT_EQ(gst_harness_push(h, buf), GST_FLOW_OK);
  GstBuffer* first = gst_harness_pull(h);
  EXPECT_EQ(bytes_of(first), header_bytes());
  gst_buffer_unref(first);
  EXPECT_FALSE(stat_bool(h->element, "secure"));
  EXPECT_EQ(stat_u64(h->element, "sealed"), 0u);
  gst_harness_teardown(h);
}

// A sender that starts again (READY -> PAUSED) is a new stream: another id, counter 0.
TEST(SecurePay, EachStartIsANewStream) {
  GstHarness* h = gst_harness_new("syncwavepay");
  g_object_set(h->element, "secret", kSecret, NULL);
  gst_harness_set_src_caps_str(h,
                               "audio/x-raw,format=F32LE,layout=interleaved,rate=48000,channels=2");
  auto first_framing = [&]() {
    std::vector<float> v(480 * 2, 0.5f);
    GstBuffer* buf = gst_buffer_new_memdup(v.data(), v.size() * 4);
    GST_BUFFER_PTS(buf) = 0;
    EXPECT_EQ(gst_harness_push(h, buf), GST_FLOW_OK);
    GstBuffer* b = gst_harness_pull(h);
    const Bytes d = bytes_of(b);
    gst_buffer_unref(b);
    while ((b = gst_harness_try_pull(h))) gst_buffer_unref(b);
    secure::Framing f;
    EXPECT_EQ(secure::parse_framing(d.data(), d.size(), &f), secure::Reject::kNone);
    return f;
  };
  const secure::Framing a = first_framing();
  gst_element_set_state(h->element, GST_STATE_READY);
  gst_element_set_state(h->element, GST_STATE_PLAYING);
  gst_harness_set_src_caps_str(h,
                               "audio/x-raw,format=F32LE,layout=interleaved,rate=48000,channels=1");
  const secure::Framing b = first_framing();
  EXPECT_EQ(a.counter, 0u);
  EXPECT_EQ(b.counter, 0u);
  EXPECT_NE(a.stream_id, b.stream_id);
  gst_harness_teardown(h);
}

TEST(SecurePay, SecretIsWriteOnly) {
  for (const char* factory : {"syncwavepay", "syncwavejitter", "syncwavesink"}) {
    GstElement* e = gst_element_factory_make(factory, nullptr);
    ASSERT_NE(e, nullptr) << factory;
    GParamSpec* p = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "secret");
    ASSERT_NE(p, nullptr) << factory;
    EXPECT_TRUE(p->flags & G_PARAM_WRITABLE) << factory;
    EXPECT_FALSE(p->flags & G_PARAM_READABLE) << factory;
    gst_object_unref(gst_object_ref_sink(e));
  }
}

// ---------------------------------------------------------------------------------
// syncwavejitter

// The same stream, plain into a plain jitter and sealed into one with the secret, at
// the same arrival times: the same datagrams come out at the same running times.
TEST(SecureJitter, RightSecretOutputsWhatPlainDoes) {
  secure::Sealer sealer(golden_key(), 0x1234);
  Stream s(sealer, 0, 30);
  Jitter plain(nullptr), sec(kSecret);
  std::vector<Out> a, b;
  for (size_t i = 0; i < s.plain.size(); i++) {
    const GstClockTime t = pts(i == 0 ? 0 : (int)i - 1) + 3 * GST_MSECOND;
    gst_harness_set_time(plain.h, t);
    gst_harness_set_time(sec.h, t);
    plain.push(datagram(s.plain[i]));
    sec.push(datagram(s.sealed[i]));
    a.push_back(plain.pull());
    b.push_back(sec.pull());
  }
  ASSERT_EQ(a.size(), 31u);
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a[0].bytes, header_bytes());
  EXPECT_EQ(a[5].pts, pts(4));
  EXPECT_EQ(sec.stat("pushed"), 30u);
  EXPECT_EQ(sec.stat("secure-opened"), 31u);
  EXPECT_EQ(sec.stat("secure-rejected"), 0u);
  EXPECT_EQ(sec.stat("malformed"), 0u);
  EXPECT_TRUE(stat_bool(sec.h->element, "secure"));
  EXPECT_FALSE(stat_bool(plain.h->element, "secure"));
  EXPECT_TRUE(sec.warnings().empty());
}

TEST(SecureJitter, WrongSecretPlaysNothingAndSaysSoOncePerAddress) {
  secure::Sealer sealer(golden_key(), 0x1234);
  Stream s(sealer, 0, 20);
  Jitter j(kWrongSecret);
  for (size_t i = 0; i < s.sealed.size(); i++) {
    gst_harness_set_time(j.h, pts(i) + GST_MSECOND);
    j.push(datagram(s.sealed[i], i % 2 ? "127.0.0.5" : "127.0.0.6"));
  }
  gst_harness_set_time(j.h, pts(40));
  EXPECT_TRUE(j.pull_ready().empty());
  EXPECT_EQ(j.stat("secure-rejected-auth-failed"), s.sealed.size());
  EXPECT_EQ(j.stat("secure-rejected"), s.sealed.size());
  EXPECT_EQ(j.stat("secure-opened"), 0u);
  EXPECT_EQ(stat_uint(j.h->element, "secure-streams"), 0u);
  EXPECT_EQ(j.stat("headers"), 0u);  // nothing reached the chain
  EXPECT_EQ(j.stat("pushed"), 0u);
  EXPECT_EQ(j.stat("malformed"), 0u);
  auto w = j.warnings();
  std::sort(w.begin(), w.end());
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0], "datagrams from 127.0.0.5 fail authentication: wrong secret?");
  EXPECT_EQ(w[1], "datagrams from 127.0.0.6 fail authentication: wrong secret?");
  auto addrs = j.rejected_addresses;
  std::sort(addrs.begin(), addrs.end());
  EXPECT_EQ(addrs, (std::vector<std::string>{"127.0.0.5", "127.0.0.6"}));
  EXPECT_EQ(j.rejected_reasons, (std::vector<std::string>{"auth-failed", "auth-failed"}));
}

// A receiver without the secret parses secure datagrams as v1: unknown type, dropped
// (as stray datagrams that lock onto no sender: counted foreign, or malformed once a
// sender is played).
TEST(SecureJitter, ReceiverWithoutSecretPlaysNothingOfASecureStream) {
  secure::Sealer sealer(golden_key(), 0x1234);
  Stream s(sealer, 0, 20);
  Jitter j(nullptr);
  for (const Bytes& d : s.sealed) j.push(datagram(d));
  EXPECT_TRUE(j.pull_ready().empty());
  EXPECT_EQ(j.stat("malformed") + j.stat("foreign-packets"), s.sealed.size());
  EXPECT_EQ(j.stat("pushed"), 0u);
  EXPECT_EQ(j.stat("headers"), 0u);
}

TEST(SecureJitter, PlainDatagramsAreNotPlayedBySecureReceivers) {
  Jitter j(kSecret);
  j.push(datagram(header_bytes(), "127.0.0.9"));
  for (int i = 0; i < 20; i++) j.push(datagram(audio_bytes(i), "127.0.0.9"));
  EXPECT_TRUE(j.pull_ready().empty());
  EXPECT_EQ(j.stat("secure-rejected-plain"), 21u);
  EXPECT_EQ(j.stat("headers"), 0u);
  EXPECT_EQ(j.stat("pushed"), 0u);
  const auto w = j.warnings();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0],
            "datagrams from 127.0.0.9 are not secured: is that sender running without the secret?");
}

// Cut, changed and unknown-version datagrams: dropped and counted by reason; the
// stream they were mixed into plays on.
TEST(SecureJitter, TruncatedTamperedAndBadVersionAreCounted) {
  secure::Sealer sealer(golden_key(), 0x77);
  Stream s(sealer, 0, 10);
  Jitter j(kSecret);
  j.push(datagram(s.sealed[0]));
  EXPECT_EQ(j.pull().bytes, header_bytes());
  int truncated = 0, tampered = 0, version = 0;
  for (size_t i = 1; i < s.sealed.size(); i++) {
    Bytes cut(s.sealed[i].begin(), s.sealed[i].begin() + 20);
    j.push(datagram(cut));
    truncated++;
    Bytes changed = s.sealed[i];
    changed[30] ^= 0x01;
    j.push(datagram(changed));
    tampered++;
    Bytes v2 = s.sealed[i];
    v2[1] = 2;
    j.push(datagram(v2));
    version++;
    gst_harness_set_time(j.h, pts((int)i - 1) + GST_MSECOND);
    j.push(datagram(s.sealed[i]));
    Out o = j.pull();
    EXPECT_EQ(o.bytes, s.plain[i]);
    EXPECT_EQ(o.pts, pts((int)i - 1));
  }
  EXPECT_EQ(j.stat("secure-rejected-truncated"), (guint64)truncated);
  EXPECT_EQ(j.stat("secure-rejected-auth-failed"), (guint64)tampered);
  EXPECT_EQ(j.stat("secure-rejected-bad-version"), (guint64)version);
  EXPECT_EQ(j.stat("pushed"), 10u);
  EXPECT_EQ(j.stat("lost"), 0u);
}

// Captured datagrams re-sent after the sender stopped (and after it restarted as a new
// stream) are not played.
TEST(SecureJitter, ReplayedDatagramsAreNotPlayed) {
  secure::Sealer sealer(golden_key(), 0x99);
  Stream s(sealer, 0, 20);
  Jitter j(kSecret);
  for (size_t i = 0; i < s.sealed.size(); i++) {
    gst_harness_set_time(j.h, pts(i == 0 ? 0 : (int)i - 1) + GST_MSECOND);
    j.push(datagram(s.sealed[i]));
    j.pull();
  }
  EXPECT_EQ(j.stat("pushed"), 20u);
  // The sender stops; two seconds later someone replays what they captured.
  gst_harness_set_time(j.h, pts(220));
  for (const Bytes& d : s.sealed) j.push(datagram(d, "127.0.0.1", 40000));
  for (const Bytes& d : s.sealed) j.push(datagram(d, "127.0.0.77", 5555));
  EXPECT_TRUE(j.pull_ready().empty());
  EXPECT_EQ(j.stat("secure-rejected-replayed"), 2 * s.sealed.size());
  EXPECT_EQ(j.stat("pushed"), 20u);
  EXPECT_EQ(j.stat("headers"), 1u);
  EXPECT_TRUE(j.warnings().empty());  // replays look like network duplicates: counted only

  // The sender restarts (new stream id); the old stream replayed again is still refused.
  secure::Sealer restarted(golden_key(), 0x9a);
  Stream s2(restarted, 220, 5);
  for (size_t i = 0; i < s2.sealed.size(); i++) {
    gst_harness_set_time(j.h, pts(220 + (int)i) + GST_MSECOND);
    j.push(datagram(s2.sealed[i], "127.0.0.1", 40001));
    if (i < 2) j.push(datagram(s.sealed[i + 3]));
  }
  EXPECT_EQ(j.stat("secure-rejected-replayed"), 2 * s.sealed.size() + 2);
}

// The freshness check: a receiver that restarted no longer knows an old stream's counters,
// so a recording of it passes the secure layer. Its capture times are an hour behind the
// clock: a plain receiver would play it on slave timing (clock-mismatch), a secure one
// drops it, counts it (stale) and says so once.
TEST(SecureJitter, AnOldStreamTheReceiverNoLongerRemembersIsNotPlayed) {
  secure::Sealer sealer(golden_key(), 0x77);
  Stream s(sealer, 0, 20);
  const GstClockTime an_hour_later = pts(0) + 3600 * GST_SECOND;

  Jitter sec(kSecret), plain(nullptr);
  for (size_t i = 0; i < s.sealed.size(); i++) {
    const GstClockTime t = an_hour_later + i * 10 * GST_MSECOND;
    gst_harness_set_time(sec.h, t);
    gst_harness_set_time(plain.h, t);
    sec.push(datagram(s.sealed[i]));
    plain.push(datagram(s.plain[i]));
  }
  // Plain mode plays the old stream (the fallback that secure mode must not have).
  for (size_t i = 0; i < s.plain.size(); i++) EXPECT_FALSE(plain.pull().bytes.empty());
  EXPECT_EQ(plain.stat("pushed"), 20u);
  EXPECT_TRUE(stat_bool(plain.h->element, "clock-mismatch"));
  EXPECT_EQ(plain.stat("stale"), 0u);

  // Secure mode: the header goes out (it carries no time), no audio does.
  EXPECT_EQ(sec.pull().bytes, header_bytes());
  EXPECT_TRUE(sec.pull_ready().empty());
  EXPECT_EQ(sec.stat("secure-opened"), 21u);
  EXPECT_EQ(sec.stat("stale"), 20u);
  EXPECT_EQ(sec.stat("pushed"), 0u);
  EXPECT_FALSE(stat_bool(sec.h->element, "clock-mismatch"));
  const std::vector<std::string> w = sec.warnings();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("more than 10 s from the clock"), std::string::npos) << w[0];

  // The live stream, on the clock, still plays (a new stream id from the same sender).
  secure::Sealer live(golden_key(), 0x78);
  std::vector<Bytes> now_stream;
  const std::vector<float> samples(480 * 2, 0.25f);
  for (int i = 0; i < 5; i++) {
    const Bytes p = wire::serialize_audio(wire::PacketType::kRaw,
                                          an_hour_later / 1000 + 200000 + i * 10000,
                                          reinterpret_cast<const uint8_t*>(samples.data()),
                                          samples.size() * sizeof(float));
    now_stream.push_back(live.seal(p.data(), p.size()));
  }
  gst_harness_set_time(sec.h, an_hour_later + 205 * GST_MSECOND);
  for (const Bytes& d : now_stream) sec.push(datagram(d));
  for (int i = 0; i < 5; i++) EXPECT_FALSE(sec.pull().bytes.empty());
  EXPECT_EQ(sec.stat("pushed"), 5u);
  EXPECT_EQ(sec.stat("stale"), 20u);
}

// 20 forged datagrams around every real one (garbage behind the marker, another key's
// datagrams with the stream's id and counters ahead, plain datagrams from the sender's
// own address, replays): the stream comes out as if alone.
TEST(SecureJitter, ForgedFloodDoesNotBreakTheStream) {
  secure::Sealer sealer(golden_key(), 0x4242);
  secure::Sealer forger(other_key(), 0x4242);
  Stream s(sealer, 0, 40);
  std::mt19937 rng(3);
  Jitter clean(kSecret), flooded(kSecret);
  std::vector<Out> a, b;
  guint64 forged = 0;
  for (size_t i = 0; i < s.sealed.size(); i++) {
    const GstClockTime t = pts(i == 0 ? 0 : (int)i - 1) + 2 * GST_MSECOND;
    gst_harness_set_time(clean.h, t);
    gst_harness_set_time(flooded.h, t);
    for (int k = 0; k < 20; k++) {
      Bytes f;
      switch (k % 4) {
        case 0:
          f.resize(1 + rng() % 1400);
          for (auto& x : f) x = (uint8_t)rng();
          f[0] = secure::kMarker;
          if (f.size() > 1) f[1] = secure::kVersion;
          if (f.size() > 10) f[9] = f[10] = 0;
          break;
        case 1:
          forger.set_next_counter(i + 1 + rng() % 50);
          f = forger.seal(s.plain.back().data(), s.plain.back().size());
          break;
        case 2:
          f = audio_bytes((int)i + 5);
          break;
        case 3:
          f = s.sealed[i > 0 ? rng() % i : 0];
          if (i == 0) f[40] ^= 1;
          break;
      }
      flooded.push(datagram(f));
      forged++;
    }
    clean.push(datagram(s.sealed[i]));
    flooded.push(datagram(s.sealed[i]));
    a.push_back(clean.pull());
    b.push_back(flooded.pull());
  }
  EXPECT_TRUE(a == b);
  EXPECT_EQ(flooded.stat("pushed"), 40u);
  EXPECT_EQ(flooded.stat("lost"), 0u);
  EXPECT_EQ(flooded.stat("secure-rejected"), forged);
  EXPECT_EQ(flooded.stat("secure-opened"), s.sealed.size());
  EXPECT_EQ(stat_uint(flooded.h->element, "secure-streams"), 1u);
}

// Datagrams arriving as a buffer list (syncwavepay ! syncwavejitter) are opened too.
TEST(SecureJitter, BufferListsAreOpened) {
  secure::Sealer sealer(golden_key(), 0x55);
  Stream s(sealer, 0, 3);
  Jitter j(kSecret);
  GstBufferList* list = gst_buffer_list_new();
  for (const Bytes& d : s.sealed) gst_buffer_list_add(list, datagram(d));
  ASSERT_EQ(gst_pad_push_list(j.h->srcpad, list), GST_FLOW_OK);
  for (size_t i = 0; i < s.plain.size(); i++) EXPECT_EQ(j.pull().bytes, s.plain[i]) << i;
  EXPECT_EQ(j.stat("secure-opened"), 4u);
}

// A sender restarted with a new stream id (and a new source port, as a new process
// has) is followed as in plain mode: the same packets come out at the same times.
TEST(SecureJitter, RestartedSenderWithNewStreamIdIsFollowedAsInPlainMode) {
  secure::Sealer first(golden_key(), 0x100), second(golden_key(), 0x200);
  Stream a(first, 0, 20), b(second, 30, 100);
  Jitter plain(nullptr), sec(kSecret);
  std::vector<Out> outs_plain, outs_sec;
  auto step = [&](const Bytes& p, const Bytes& d, GstClockTime t, guint16 port) {
    gst_harness_set_time(plain.h, t);
    gst_harness_set_time(sec.h, t);
    plain.push(datagram(p, "127.0.0.1", port));
    sec.push(datagram(d, "127.0.0.1", port));
  };
  for (size_t i = 0; i < a.sealed.size(); i++)
    step(a.plain[i], a.sealed[i], pts(i == 0 ? 0 : (int)i - 1) + GST_MSECOND, 40000);
  GstClockTime first_b_pts = GST_CLOCK_TIME_NONE;
  for (size_t i = 0; i < b.sealed.size(); i++) {
    step(b.plain[i], b.sealed[i], pts(i == 0 ? 30 : 30 + (int)i - 1) + GST_MSECOND, 40001);
  }
  // In-order packets go out at once: read what both released (headers and packets).
  while (outs_plain.size() < plain.stat("pushed") + plain.stat("headers"))
    outs_plain.push_back(plain.pull());
  while (outs_sec.size() < sec.stat("pushed") + sec.stat("headers")) outs_sec.push_back(sec.pull());
  EXPECT_TRUE(outs_plain == outs_sec);
  for (const Out& o : outs_sec) {
    const auto r = wire::parse(o.bytes.data(), o.bytes.size());
    if (r.kind == wire::Kind::kRawAudio && r.audio.timestamp_us >= ts(30)) {
      first_b_pts = o.pts;
      break;
    }
  }
  ASSERT_NE(first_b_pts, GST_CLOCK_TIME_NONE);
  EXPECT_LE(first_b_pts, pts(30) + GST_SECOND);  // followed within a second
  EXPECT_EQ(stat_uint(sec.h->element, "secure-streams"), 2u);
}

// ---------------------------------------------------------------------------------
// syncwavesink

// The bin passes the secret to its jitter; its own sender detection (the first
// datagram's address, which clock=auto asks for the clock) only sees datagrams that
// authenticated: a forger who speaks first is not taken for the sender.
TEST(SecureSink, ForwardsTheSecretAndOnlyAuthenticatedSendersAreSeen) {
  GstElement* pipe = gst_pipeline_new(nullptr);
  GstElement* src = gst_element_factory_make("appsrc", nullptr);
  GstElement* bin = gst_element_factory_make("syncwavesink", nullptr);
  GstElement* appsink = gst_element_factory_make("appsink", nullptr);
  ASSERT_NE(bin, nullptr);
  GstCaps* caps = gst_caps_new_empty_simple("application/x-syncwave");
  g_object_set(src, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", TRUE, "caps", caps,
               NULL);
  gst_caps_unref(caps);
  g_object_set(appsink, "sync", FALSE, "max-buffers", 1000, NULL);
  g_object_set(bin, "clock", "system", "latency", 20, "audio-sink", appsink, "secret", kSecret,
               NULL);
  gst_bin_add_many(GST_BIN(pipe), src, bin, NULL);
  ASSERT_TRUE(gst_element_link(src, bin));
  ASSERT_NE(gst_element_set_state(pipe, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  secure::Sealer forger(other_key(), 0x66), sender(golden_key(), 0x67);
  const uint64_t t0 = (uint64_t)g_get_real_time() + 20000;
  auto audio_at = [](uint64_t t) {
    std::vector<float> pcm(480 * 2, 0.5f);
    return wire::serialize_audio(wire::PacketType::kRaw, t,
                                 reinterpret_cast<const uint8_t*>(pcm.data()), pcm.size() * 4);
  };
  auto push = [&](const Bytes& d, const char* host) {
    gst_app_src_push_buffer(GST_APP_SRC(src), datagram(d, host, 40000));
  };
  for (int i = 0; i < 5; i++) push(forger.seal(header_bytes().data(), 12), "10.0.0.66");
  for (int i = 0; i < 5; i++) push(sender.seal(header_bytes().data(), 12), "127.0.0.1");
  for (int i = 0; i < 20; i++) {
    const Bytes a = audio_at(t0 + i * 10000);
    push(sender.seal(a.data(), a.size()), "127.0.0.1");
  }
  GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(appsink), 3 * GST_SECOND);
  ASSERT_NE(sample, nullptr) << "nothing played";
  gst_sample_unref(sample);
  GstStructure* s = stats_of(bin);
  EXPECT_STREQ(gst_structure_get_string(s, "sender-host"), "127.0.0.1");
  gboolean on = FALSE;
  EXPECT_TRUE(gst_structure_get_boolean(s, "secure", &on));
  EXPECT_TRUE(on);
  guint64 failed = 0;
  EXPECT_TRUE(gst_structure_get_uint64(s, "secure-rejected-auth-failed", &failed));
  EXPECT_EQ(failed, 5u);
  gst_structure_free(s);
  gst_element_set_state(pipe, GST_STATE_NULL);
  gst_object_unref(pipe);
}

// ---------------------------------------------------------------------------------
// The clock exchange (core/secure_clock.h)

// A sender `syncwavepay time-provider-port=P secret=S` and a receiver whose syncwavesink
// asks net://127.0.0.1:P with `secret`: returns whether the receiver's clock synced
// within `wait`, and the receiver's net clock stats.
struct ClockPair {
  GstElement* tx = nullptr;
  GstElement* rx = nullptr;
  GstElement* bin = nullptr;
  ClockPair(const char* tx_secret, const char* rx_secret) {
    const uint16_t port = syncwave_test::free_udp_port();
    std::string desc =
        "audiotestsrc is-live=true ! audio/x-raw,format=F32LE,rate=48000,channels=2 ! "
        "syncwavepay name=pay time-provider-address=127.0.0.1 time-provider-port=" +
        std::to_string(port) + " ! fakesink";
    GError* err = nullptr;
    tx = gst_parse_launch(desc.c_str(), &err);
    EXPECT_NE(tx, nullptr) << (err ? err->message : "");
    g_clear_error(&err);
    if (tx_secret) {
      GstElement* pay = gst_bin_get_by_name(GST_BIN(tx), "pay");
      g_object_set(pay, "secret", tx_secret, NULL);
      gst_object_unref(pay);
    }
    gst_element_set_state(tx, GST_STATE_PLAYING);

    rx = gst_pipeline_new(nullptr);
    GstElement* src = gst_element_factory_make("appsrc", nullptr);
    bin = gst_element_factory_make("syncwavesink", nullptr);
    GstElement* appsink = gst_element_factory_make("appsink", nullptr);
    GstCaps* caps = gst_caps_new_empty_simple("application/x-syncwave");
    g_object_set(src, "is-live", TRUE, "format", GST_FORMAT_TIME, "caps", caps, NULL);
    gst_caps_unref(caps);
    g_object_set(appsink, "sync", FALSE, "async", FALSE, NULL);
    const std::string clock = "net://127.0.0.1:" + std::to_string(port);
    g_object_set(bin, "clock", clock.c_str(), "clock-timeout", 500u, "audio-sink", appsink, NULL);
    if (rx_secret) g_object_set(bin, "secret", rx_secret, NULL);
    gst_bin_add_many(GST_BIN(rx), src, bin, NULL);
    gst_element_link(src, bin);
    gst_element_set_state(rx, GST_STATE_PLAYING);
  }
  ~ClockPair() {
    gst_element_set_state(rx, GST_STATE_NULL);
    gst_object_unref(rx);
    gst_element_set_state(tx, GST_STATE_NULL);
    gst_object_unref(tx);
  }
  bool synced_within(GstClockTime wait) {
    const gint64 end = g_get_monotonic_time() + (gint64)(wait / 1000);
    while (g_get_monotonic_time() < end) {
      if (stat_bool(bin, "clock-synced")) return true;
      g_usleep(20000);
    }
    return stat_bool(bin, "clock-synced");
  }
};

// With the same secret on both sides the receiver's clock syncs to the sender's sealed
// time provider (the exchange's datagrams are checked in unit-secure-clock).
TEST(SecureClock, SenderAndReceiverWithTheSecretSync) {
  ClockPair p(kSecret, kSecret);
  EXPECT_TRUE(p.synced_within(5 * GST_SECOND));
}

// A receiver with another secret, or none, never syncs to a secure sender: its requests
// go unanswered (wrong key) or are plain packets the provider ignores.
TEST(SecureClock, AnotherSecretOrNoneNeverSyncs) {
  {
    ClockPair p(kSecret, kWrongSecret);
    EXPECT_FALSE(p.synced_within(1500 * GST_MSECOND));
  }
  {
    ClockPair p(kSecret, nullptr);
    EXPECT_FALSE(p.synced_within(1500 * GST_MSECOND));
  }
}

// A secure receiver does not take a plain provider's answers (anyone can answer those):
// its clock stays unsynced, whatever the plain provider says.
TEST(SecureClock, SecureReceiverRefusesAPlainProvider) {
  ClockPair p(nullptr, kSecret);
  EXPECT_FALSE(p.synced_within(1500 * GST_MSECOND));
}
