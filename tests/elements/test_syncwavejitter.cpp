// SPDX-License-Identifier: LGPL-2.1-or-later
// syncwavejitter through GstHarness with a GstTestClock: in order, reorder,
// duplicates, late packets, a gap reported by a loss event at its deadline, a gap
// filled in time, restarts (timestamp jump, new header), a long silence without a
// flood of loss events, the latency query, two senders on one port, slave mode.
//
// Synced mode and a harness element (base_time 0): the test clock reads the
// sender's timebase, PTS = timestamp * 1000, and a packet plays at PTS + latency.
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <gst/gst.h>
#include <gst/net/gstnetaddressmeta.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "syncwave-lost-event.h"
#include "wire_format.h"

namespace wire = syncwave::wire;

namespace {

class GstEnv : public ::testing::Environment {
 public:
  void SetUp() override { gst_init(nullptr, nullptr); }
};
const auto* const kGstEnv = ::testing::AddGlobalTestEnvironment(new GstEnv);

constexpr guint64 kT0 = 1700000000000000ull;  // sender µs of packet 0
constexpr GstClockTime kPacket = 10 * GST_MSECOND;
constexpr GstClockTime kLatency = 60 * GST_MSECOND;
constexpr GstClockTime kMargin = 2 * GST_MSECOND;  // decode margin of the loss deadline

guint64 ts(int i) {
  return kT0 + static_cast<guint64>(i) * 10000;
}
GstClockTime pts(int i) {
  return ts(i) * 1000;
}

std::vector<uint8_t> header_bytes(wire::Compression c = wire::Compression::kRaw,
                                  uint32_t rate = 48000) {
  auto h = wire::serialize_header({rate, 2, c});
  return {h.begin(), h.end()};
}

// 10 ms of stereo float32 at 48 kHz.
std::vector<uint8_t> audio_bytes(guint64 ts_us) {
  std::vector<float> samples(480 * 2, 0.25f);
  return wire::serialize_audio(wire::PacketType::kRaw, ts_us,
                               reinterpret_cast<const uint8_t*>(samples.data()),
                               samples.size() * sizeof(float));
}

GstBuffer* datagram(const std::vector<uint8_t>& d, GstClockTime arrival = GST_CLOCK_TIME_NONE) {
  GstBuffer* b = gst_buffer_new_memdup(d.data(), d.size());
  GST_BUFFER_DTS(b) = arrival;
  return b;
}

void add_sender(GstBuffer* b, const char* host, guint16 port) {
  GInetAddress* a = g_inet_address_new_from_string(host);
  GSocketAddress* sa = g_inet_socket_address_new(a, port);
  gst_buffer_add_net_address_meta(b, sa);
  g_object_unref(sa);
  g_object_unref(a);
}

GstStructure* stats(GstHarness* h) {
  GstStructure* s = nullptr;
  g_object_get(h->element, "stats", &s, NULL);
  return s;
}

guint64 stat(GstHarness* h, const char* field) {
  GstStructure* s = stats(h);
  guint64 v = 0;
  EXPECT_TRUE(gst_structure_get_uint64(s, field, &v)) << field;
  gst_structure_free(s);
  return v;
}

struct Loss {
  guint64 timestamp_us;
  GstClockTime duration;
  GstClockTime pts;
};

// Loss events delivered so far (other events are dropped).
std::vector<Loss> take_losses(GstHarness* h) {
  std::vector<Loss> v;
  while (GstEvent* e = gst_harness_try_pull_event(h)) {
    Loss l;
    if (syncwave_lost_event_parse(e, &l.timestamp_us, &l.duration, &l.pts)) v.push_back(l);
    gst_event_unref(e);
  }
  return v;
}

class JitterTest : public ::testing::Test {
 protected:
  GstHarness* h = nullptr;

  // props: "name=value" pairs set before any data flows.
  void start(std::vector<const char*> props = {}) {
    h = gst_harness_new("syncwavejitter");
    for (const char* p : props) {
      std::string kv(p);
      size_t eq = kv.find('=');
      gst_util_set_object_arg(G_OBJECT(h->element), kv.substr(0, eq).c_str(),
                              kv.substr(eq + 1).c_str());
    }
    gst_harness_use_testclock(h);
    gst_harness_set_src_caps_str(h, "application/x-syncwave");
    gst_harness_set_time(h, pts(0));
    push_header();
    gst_buffer_unref(gst_harness_pull(h));  // the header goes straight through
  }
  void TearDown() override {
    if (h) gst_harness_teardown(h);
  }

  void push_header(wire::Compression c = wire::Compression::kRaw, uint32_t rate = 48000) {
    ASSERT_EQ(gst_harness_push(h, datagram(header_bytes(c, rate))), GST_FLOW_OK);
  }
  // Packet i arrives now (test clock), optionally at an explicit time.
  void push(int i) { ASSERT_EQ(gst_harness_push(h, datagram(audio_bytes(ts(i)))), GST_FLOW_OK); }
  void set_time(GstClockTime t) { gst_harness_set_time(h, t); }
  GstClockTime time() {
    GstTestClock* tc = gst_harness_get_testclock(h);
    GstClockTime t = gst_clock_get_time(GST_CLOCK(tc));
    gst_object_unref(tc);
    return t;
  }
  bool wait_pending(guint timeout_ms) {
    GstTestClock* tc = gst_harness_get_testclock(h);
    bool pending = gst_test_clock_timed_wait_for_multiple_pending_ids(tc, 1, timeout_ms, nullptr);
    gst_object_unref(tc);
    return pending;
  }
  // Pulls the next buffer and checks that it is packet i.
  void expect_packet(int i, bool discont = false) {
    GstBuffer* b = gst_harness_pull(h);
    ASSERT_NE(b, nullptr);
    GstMapInfo map;
    ASSERT_TRUE(gst_buffer_map(b, &map, GST_MAP_READ));
    wire::ParseResult r = wire::parse(map.data, map.size);
    gst_buffer_unmap(b, &map);
    EXPECT_EQ(r.kind, wire::Kind::kRawAudio);
    EXPECT_EQ(r.audio.timestamp_us, ts(i));
    EXPECT_EQ(GST_BUFFER_PTS(b), pts(i));
    EXPECT_EQ(GST_BUFFER_DURATION(b), kPacket);
    EXPECT_EQ(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT), discont) << "packet " << i;
    gst_buffer_unref(b);
  }
};

}  // namespace

TEST_F(JitterTest, InOrderPacketsGoOutAtOnceWithTheirRunningTime) {
  start();
  for (int i = 0; i < 5; i++) {
    set_time(pts(i) + 2 * GST_MSECOND);
    push(i);
    expect_packet(i, i == 0);
  }
  EXPECT_EQ(stat(h, "pushed"), 5u);
  GstStructure* s = stats(h);
  gboolean mismatch = TRUE;
  EXPECT_TRUE(gst_structure_get_boolean(s, "clock-mismatch", &mismatch));
  EXPECT_FALSE(mismatch);
  gst_structure_free(s);
  EXPECT_EQ(stat(h, "lost"), 0u);
  EXPECT_TRUE(take_losses(h).empty());
}

TEST_F(JitterTest, ReorderedPacketsAreReleasedInOrder) {
  start();
  push(0);
  push(2);
  push(1);
  push(4);
  push(3);
  for (int i = 0; i < 5; i++) expect_packet(i, i == 0);
  EXPECT_EQ(stat(h, "reordered"), 2u);
  EXPECT_EQ(stat(h, "lost"), 0u);
  EXPECT_TRUE(take_losses(h).empty());
}

TEST_F(JitterTest, DuplicatesAreDropped) {
  start();
  push(0);
  push(0);
  push(2);
  push(2);
  push(1);
  push(1);
  for (int i = 0; i < 3; i++) expect_packet(i, i == 0);
  EXPECT_EQ(stat(h, "duplicates"), 3u);
  EXPECT_EQ(stat(h, "pushed"), 3u);
}

TEST_F(JitterTest, PacketPastItsPlayoutTimeIsDropped) {
  start();
  set_time(pts(0) + kLatency + 1);
  push(0);  // should have played already
  push(1);  // plays at pts(1) + latency, still ahead
  expect_packet(1, true);
  EXPECT_EQ(stat(h, "late"), 1u);
  EXPECT_EQ(stat(h, "pushed"), 1u);
}

TEST_F(JitterTest, GapIsReportedAtItsDeadlineInOrder) {
  start();
  set_time(pts(0) + GST_MSECOND);
  push(0);
  push(2);
  expect_packet(0, true);
  EXPECT_TRUE(take_losses(h).empty());

  // The element waits on the clock for packet 1's deadline, then reports it.
  gst_harness_crank_single_clock_wait(h);
  EXPECT_EQ(time(), pts(1) + kLatency - kMargin);
  expect_packet(2);
  auto losses = take_losses(h);  // everything sent before packet 2
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_EQ(losses[0].timestamp_us, ts(1));
  EXPECT_EQ(losses[0].duration, kPacket);
  EXPECT_EQ(losses[0].pts, pts(1));
  EXPECT_EQ(stat(h, "lost"), 1u);

  // Packet 1 arrives after all: its slot is gone.
  push(1);
  push(3);
  expect_packet(3);
  EXPECT_EQ(stat(h, "late"), 1u);
}

// Blocks until the next loss event (other events are dropped).
Loss pull_loss(GstHarness* h) {
  Loss l{0, 0, GST_CLOCK_TIME_NONE};
  while (GstEvent* e = gst_harness_pull_event(h)) {
    const bool loss = syncwave_lost_event_parse(e, &l.timestamp_us, &l.duration, &l.pts);
    gst_event_unref(e);
    if (loss) break;
  }
  return l;
}

// unheard-loss (set by syncwavesink for opusdec's in-band FEC hold): the expected
// packet is reported at its own deadline although no later packet arrived, at most
// that much in a row.
TEST_F(JitterTest, UnheardLossIsReportedAtItsDeadlineWithoutALaterPacket) {
  start({"unheard-loss=20"});
  set_time(pts(0) + GST_MSECOND);
  push(0);
  expect_packet(0, true);
  for (int i = 1; i <= 2; i++) {
    gst_harness_crank_single_clock_wait(h);
    EXPECT_EQ(time(), pts(i) + kLatency - kMargin);
    const Loss l = pull_loss(h);
    EXPECT_EQ(l.timestamp_us, ts(i));
    EXPECT_EQ(l.duration, kPacket);
    EXPECT_EQ(l.pts, pts(i));
  }
  EXPECT_EQ(stat(h, "lost"), 2u);
  // Packet 1 shows up after all: its slot is gone; packet 3 plays in its own.
  push(1);
  push(3);
  expect_packet(3);
  EXPECT_EQ(stat(h, "late"), 1u);
  EXPECT_EQ(stat(h, "lost"), 2u);
}

TEST_F(JitterTest, SeveralMissingPacketsMakeOneLossEventEach) {
  start();
  push(0);
  push(4);
  expect_packet(0, true);
  gst_harness_crank_single_clock_wait(h);
  expect_packet(4);
  auto losses = take_losses(h);
  ASSERT_EQ(losses.size(), 3u);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(losses[i].timestamp_us, ts(1 + i));
    EXPECT_EQ(losses[i].duration, kPacket);
    EXPECT_EQ(losses[i].pts, pts(1 + i));
  }
  EXPECT_EQ(stat(h, "lost"), 3u);
}

TEST_F(JitterTest, GapFilledBeforeItsDeadlineIsNotLoss) {
  start();
  push(0);
  push(2);
  expect_packet(0, true);
  set_time(pts(1) + kLatency - kMargin - 1);
  push(1);
  expect_packet(1);
  expect_packet(2);
  EXPECT_TRUE(take_losses(h).empty());
  EXPECT_EQ(stat(h, "lost"), 0u);
}

TEST_F(JitterTest, OutageIsReportedWhenTheStreamReturns) {
  start();
  push(0);
  expect_packet(0, true);
  // 300 ms without packets: no timer, nothing reported while nothing arrives.
  EXPECT_FALSE(wait_pending(100));
  set_time(pts(31) + 2 * GST_MSECOND);
  push(31);
  expect_packet(31);
  auto losses = take_losses(h);
  ASSERT_EQ(losses.size(), 30u);
  for (int i = 0; i < 30; i++) {
    EXPECT_EQ(losses[i].timestamp_us, ts(1 + i));
    EXPECT_EQ(losses[i].duration, kPacket);
    EXPECT_EQ(losses[i].pts, pts(1 + i));
  }
  EXPECT_EQ(stat(h, "lost"), 30u);
  EXPECT_EQ(stat(h, "late"), 0u);
}

TEST_F(JitterTest, TimestampJumpRestartsTheStream) {
  start();
  push(0);
  push(1);
  expect_packet(0, true);
  expect_packet(1);
  // The sender restarted 10 s later on its clock; so is ours.
  set_time(pts(1000));
  push(1000);
  expect_packet(1000, true);
  push(1001);
  expect_packet(1001);
  EXPECT_EQ(stat(h, "resets"), 1u);
  EXPECT_EQ(stat(h, "lost"), 0u);
  EXPECT_TRUE(take_losses(h).empty());
  // (Backward jumps: unit-tested; a test clock cannot go back.)
}

TEST_F(JitterTest, NewHeaderRestartsTheStream) {
  start();
  push(0);
  push(1);
  push(3);  // held behind a gap
  expect_packet(0, true);
  expect_packet(1);
  // The sender switches to 44.1 kHz: what was held goes out first, then the header.
  push_header(wire::Compression::kRaw, 44100);
  expect_packet(3, true);
  GstBuffer* b = gst_harness_pull(h);
  GstMapInfo map;
  ASSERT_TRUE(gst_buffer_map(b, &map, GST_MAP_READ));
  wire::ParseResult r = wire::parse(map.data, map.size);
  gst_buffer_unmap(b, &map);
  gst_buffer_unref(b);
  ASSERT_EQ(r.kind, wire::Kind::kHeader);
  EXPECT_EQ(r.header.sample_rate, 44100u);

  // 441 frames of stereo float32: 10 ms at 44.1 kHz.
  std::vector<float> samples(441 * 2, 0.5f);
  auto d = wire::serialize_audio(wire::PacketType::kRaw, ts(5),
                                 reinterpret_cast<const uint8_t*>(samples.data()),
                                 samples.size() * sizeof(float));
  ASSERT_EQ(gst_harness_push(h, datagram(d)), GST_FLOW_OK);
  b = gst_harness_pull(h);
  EXPECT_EQ(GST_BUFFER_PTS(b), pts(5));
  EXPECT_TRUE(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref(b);
  EXPECT_EQ(stat(h, "resets"), 1u);
  EXPECT_TRUE(take_losses(h).empty());

  // The same header again changes nothing.
  push_header(wire::Compression::kRaw, 44100);
  gst_buffer_unref(gst_harness_pull(h));
  EXPECT_EQ(stat(h, "resets"), 1u);
}

TEST_F(JitterTest, LongSilenceDoesNotFloodLossEvents) {
  start();
  push(0);
  push(1);
  expect_packet(0, true);
  expect_packet(1);
  // The sender goes quiet: no timer runs, no loss is reported.
  EXPECT_FALSE(wait_pending(100));
  // 2 s later it comes back on the same timeline: a discontinuity, not loss.
  set_time(pts(200));
  push(200);
  expect_packet(200, true);
  push(201);
  expect_packet(201);
  EXPECT_TRUE(take_losses(h).empty());
  EXPECT_EQ(stat(h, "lost"), 0u);
  // 800 ms (under latency + 1 s): also a discontinuity, without a reset.
  set_time(pts(282));
  push(282);
  expect_packet(282, true);
  EXPECT_TRUE(take_losses(h).empty());
  EXPECT_EQ(stat(h, "lost"), 0u);
  EXPECT_EQ(stat(h, "discontinuities"), 1u);
}

TEST_F(JitterTest, LatencyQueryAddsTheLatency) {
  start();
  EXPECT_EQ(gst_harness_query_latency(h), kLatency);
  g_object_set(h->element, "latency", 150u, NULL);
  EXPECT_EQ(gst_harness_query_latency(h), 150 * GST_MSECOND);
  gst_harness_set_upstream_latency(h, 10 * GST_MSECOND);
  EXPECT_EQ(gst_harness_query_latency(h), 160 * GST_MSECOND);
}

TEST_F(JitterTest, LocksOntoTheFirstSenderAndReportsOthers) {
  start();
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);

  for (int i = 0; i < 4; i++) {
    GstBuffer* mine = datagram(audio_bytes(ts(i)));
    add_sender(mine, "127.0.0.1", 40000);
    gst_harness_push(h, mine);
    GstBuffer* other = datagram(audio_bytes(ts(i) + 3000));
    add_sender(other, "127.0.0.1", 40001);
    gst_harness_push(h, other);
  }
  GstBuffer* third = datagram(audio_bytes(ts(5)));
  add_sender(third, "192.0.2.7", 5555);
  gst_harness_push(h, third);
  for (int i = 0; i < 4; i++) expect_packet(i, i == 0);

  EXPECT_EQ(stat(h, "foreign-packets"), 5u);
  GstStructure* s = stats(h);
  EXPECT_STREQ(gst_structure_get_string(s, "sender"), "127.0.0.1:40000");
  gst_structure_free(s);

  std::vector<std::string> announced;
  while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT)) {
    const GstStructure* ms = gst_message_get_structure(m);
    if (gst_structure_has_name(ms, "syncwave-foreign-sender")) {
      announced.push_back(gst_structure_get_string(ms, "address"));
      EXPECT_STREQ(gst_structure_get_string(ms, "locked"), "127.0.0.1:40000");
    }
    gst_message_unref(m);
  }
  EXPECT_EQ(announced, (std::vector<std::string>{"127.0.0.1:40001", "192.0.2.7:5555"}));
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
}

TEST_F(JitterTest, PlaysTheChosenSender) {
  start({"sender=127.0.0.1:40001"});
  for (int i = 0; i < 3; i++) {
    GstBuffer* first = datagram(audio_bytes(ts(i) + 3000));
    add_sender(first, "127.0.0.1", 40000);
    gst_harness_push(h, first);
    GstBuffer* chosen = datagram(audio_bytes(ts(i)));
    add_sender(chosen, "127.0.0.1", 40001);
    gst_harness_push(h, chosen);
  }
  for (int i = 0; i < 3; i++) expect_packet(i, i == 0);
  EXPECT_EQ(stat(h, "foreign-packets"), 3u);
  GstStructure* s = stats(h);
  EXPECT_STREQ(gst_structure_get_string(s, "sender"), "127.0.0.1:40001");
  gst_structure_free(s);
}

TEST_F(JitterTest, ChosenHostOnAnyPort) {
  start({"sender=localhost"});  // a name, resolved on a thread of its own
  // Nothing plays until it resolved (bounded wait, not a timing assertion).
  for (int i = 0; i < 500; i++) {
    GstStructure* st = stats(h);
    gboolean pending = TRUE;
    gst_structure_get_boolean(st, "sender-pending", &pending);
    gst_structure_free(st);
    if (!pending) break;
    g_usleep(10000);
  }
  for (int i = 0; i < 3; i++) {
    GstBuffer* other = datagram(audio_bytes(ts(i) + 3000));
    add_sender(other, "192.0.2.1", 5555);
    gst_harness_push(h, other);
    GstBuffer* chosen = datagram(audio_bytes(ts(i)));
    add_sender(chosen, "127.0.0.1", 41000);
    gst_harness_push(h, chosen);
  }
  for (int i = 0; i < 3; i++) expect_packet(i, i == 0);
  EXPECT_EQ(stat(h, "foreign-packets"), 3u);
}

TEST_F(JitterTest, SilentSenderIsReplacedByTheNextOne) {
  start();
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  GstBuffer* b = datagram(audio_bytes(ts(0)));
  add_sender(b, "127.0.0.1", 40000);
  gst_harness_push(h, b);
  expect_packet(0, true);
  // The sender restarts from a new port 2 s later.
  set_time(pts(200));
  b = datagram(header_bytes());
  add_sender(b, "127.0.0.1", 40002);
  gst_harness_push(h, b);
  b = datagram(audio_bytes(ts(200)));
  add_sender(b, "127.0.0.1", 40002);
  gst_harness_push(h, b);
  gst_buffer_unref(gst_harness_pull(h));  // header
  expect_packet(200, true);
  GstStructure* s = stats(h);
  EXPECT_STREQ(gst_structure_get_string(s, "sender"), "127.0.0.1:40002");
  gst_structure_free(s);
  // Each played sender is announced (syncwavesink follows it): the first with no
  // previous one, then the one that took over.
  std::vector<std::string> played;
  while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT)) {
    const GstStructure* ms = gst_message_get_structure(m);
    if (gst_structure_has_name(ms, "syncwave-sender-changed")) {
      guint port = 0;
      gst_structure_get_uint(ms, "port", &port);
      played.push_back(std::string(gst_structure_get_string(ms, "address")) + " host " +
                       gst_structure_get_string(ms, "host") + " port " + std::to_string(port) +
                       " after '" + gst_structure_get_string(ms, "previous") + "'");
    }
    gst_message_unref(m);
  }
  EXPECT_EQ(played, (std::vector<std::string>{
                        "127.0.0.1:40000 host 127.0.0.1 port 40000 after ''",
                        "127.0.0.1:40002 host 127.0.0.1 port 40002 after '127.0.0.1:40000'"}));
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
}

TEST_F(JitterTest, SenderTakingOverReplaysItsHeader) {
  start();
  GstBuffer* b = datagram(audio_bytes(ts(0)));
  add_sender(b, "127.0.0.1", 40000);
  gst_harness_push(h, b);
  expect_packet(0, true);
  // A sender on another port announces 44.1 kHz while the first one still holds
  // the lock: it is foreign, its header is kept.
  set_time(pts(10));
  b = datagram(header_bytes(wire::Compression::kRaw, 44100));
  add_sender(b, "127.0.0.1", 40003);
  gst_harness_push(h, b);
  EXPECT_EQ(stat(h, "foreign-packets"), 1u);
  // 600 ms after the first sender's last packet, the new one takes over: its
  // header goes out before its audio.
  set_time(pts(60));
  std::vector<float> samples(441 * 2, 0.5f);
  b = datagram(wire::serialize_audio(wire::PacketType::kRaw, ts(60),
                                     reinterpret_cast<const uint8_t*>(samples.data()),
                                     samples.size() * sizeof(float)));
  add_sender(b, "127.0.0.1", 40003);
  gst_harness_push(h, b);
  GstBuffer* hb = gst_harness_pull(h);
  GstMapInfo map;
  ASSERT_TRUE(gst_buffer_map(hb, &map, GST_MAP_READ));
  wire::ParseResult r = wire::parse(map.data, map.size);
  gst_buffer_unmap(hb, &map);
  gst_buffer_unref(hb);
  ASSERT_EQ(r.kind, wire::Kind::kHeader);
  EXPECT_EQ(r.header.sample_rate, 44100u);
  GstBuffer* ab = gst_harness_pull(h);
  EXPECT_EQ(GST_BUFFER_PTS(ab), pts(60));
  EXPECT_TRUE(GST_BUFFER_FLAG_IS_SET(ab, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref(ab);
  EXPECT_EQ(stat(h, "sender-changes"), 1u);
  EXPECT_EQ(stat(h, "malformed"), 0u);
}

TEST_F(JitterTest, MalformedAndEarlyDatagramsAreDroppedAndCounted) {
  h = gst_harness_new("syncwavejitter");
  gst_harness_use_testclock(h);
  gst_harness_set_src_caps_str(h, "application/x-syncwave");
  gst_harness_set_time(h, pts(0));
  push(0);  // before any header
  const std::vector<uint8_t> garbage = {0x07, 1, 2, 3};
  gst_harness_push(h, datagram(garbage));
  push_header();
  gst_buffer_unref(gst_harness_pull(h));
  auto lying = audio_bytes(ts(1));
  lying[9] = 0xff;  // size field larger than the datagram
  gst_harness_push(h, datagram(lying));
  push(2);
  expect_packet(2, true);
  EXPECT_EQ(stat(h, "before-header"), 1u);
  EXPECT_EQ(stat(h, "malformed"), 2u);
  EXPECT_EQ(stat(h, "malformed-unknown-type"), 1u);
  EXPECT_EQ(stat(h, "malformed-truncated"), 1u);
}

TEST_F(JitterTest, EndOfStreamSendsWhatIsHeldFirst) {
  start();
  push(0);
  push(2);
  push(3);
  expect_packet(0, true);
  gst_harness_push_event(h, gst_event_new_eos());
  expect_packet(2, true);  // after a gap nobody will fill
  expect_packet(3);
  GstEvent* e = nullptr;
  while ((e = gst_harness_pull_event(h)) != nullptr) {
    const bool eos = GST_EVENT_TYPE(e) == GST_EVENT_EOS;
    gst_event_unref(e);
    if (eos) break;
  }
  EXPECT_EQ(gst_harness_push(h, datagram(audio_bytes(ts(4)))), GST_FLOW_EOS);
}

TEST_F(JitterTest, FlushDropsWhatIsHeld) {
  start();
  push(0);
  push(2);
  expect_packet(0, true);
  gst_harness_push_event(h, gst_event_new_flush_start());
  gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  gst_harness_push_event(h, gst_event_new_segment(&seg));
  push(10);
  expect_packet(10, true);
  EXPECT_TRUE(take_losses(h).empty());
}

TEST_F(JitterTest, NewBaseTimeRestartsTheTimeline) {
  start();
  push(0);
  push(1);
  expect_packet(0, true);
  expect_packet(1);
  // PAUSED -> PLAYING (or another clock): running time is now clock - 1 s.
  gst_element_set_base_time(h->element, GST_SECOND);
  push(2);
  GstBuffer* b = gst_harness_pull(h);
  EXPECT_EQ(GST_BUFFER_PTS(b), pts(2) - GST_SECOND);
  EXPECT_TRUE(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref(b);
  EXPECT_TRUE(take_losses(h).empty());
}

TEST_F(JitterTest, SyncedModeOnAClockThatIsNotTheSendersFallsBackToSlaveTiming) {
  h = gst_harness_new("syncwavejitter");
  gst_harness_use_testclock(h);
  gst_harness_set_src_caps_str(h, "application/x-syncwave");
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  // A monotonic-like clock: 5 s, while the sender stamps epoch time.
  const GstClockTime t0 = 5 * GST_SECOND;
  gst_harness_set_time(h, t0);
  push_header();
  gst_buffer_unref(gst_harness_pull(h));
  for (int i = 0; i < 5; i++) {
    const GstClockTime arrival = t0 + i * kPacket + GST_MSECOND;
    gst_harness_set_time(h, arrival);
    ASSERT_EQ(gst_harness_push(h, datagram(audio_bytes(ts(i)), arrival)), GST_FLOW_OK);
    GstBuffer* b = gst_harness_pull(h);
    // Played on arrival times, not held for decades.
    EXPECT_EQ(GST_BUFFER_PTS(b), t0 + i * kPacket + GST_MSECOND);
    EXPECT_EQ(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT), i == 0);
    gst_buffer_unref(b);
  }
  GstStructure* s = stats(h);
  gboolean mismatch = FALSE;
  EXPECT_TRUE(gst_structure_get_boolean(s, "clock-mismatch", &mismatch));
  EXPECT_TRUE(mismatch);
  gst_structure_free(s);
  int warnings = 0;
  while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING)) {
    warnings++;
    gst_message_unref(m);
  }
  EXPECT_EQ(warnings, 1);
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
}

TEST_F(JitterTest, SlaveModeGivesSmoothTimesFromJitteryArrivals) {
  start({"mode=slave"});
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> jitter_us(0, 8000);
  // Local running time: 1 s after start, unrelated to the sender timebase in general.
  const GstClockTime base = time() + GST_SECOND;
  GstClockTime prev = GST_CLOCK_TIME_NONE;
  for (int i = 0; i < 400; i++) {
    GstClockTime arrival = base + i * kPacket + 2 * GST_MSECOND + jitter_us(rng) * GST_USECOND;
    set_time(arrival);
    ASSERT_EQ(gst_harness_push(h, datagram(audio_bytes(ts(i)), arrival)), GST_FLOW_OK);
    GstBuffer* b = gst_harness_pull(h);
    GstClockTime p = GST_BUFFER_PTS(b);
    gst_buffer_unref(b);
    // Close to the fastest arrivals: at most the jitter before this arrival and
    // hardly after it (the skew follows a new minimum slowly).
    EXPECT_LE(p, arrival + 2 * GST_MSECOND) << i;
    EXPECT_GE(p + 10 * GST_MSECOND, arrival) << i;
    if (GST_CLOCK_TIME_IS_VALID(prev)) {
      EXPECT_GT(p, prev) << i;
      // Once the skew window is full (2 s), steps are 10 ms within 0.1 ms.
      if (i > 250) {
        EXPECT_NEAR(static_cast<double>(p - prev), 10e6, 1e5) << i;
      }
    }
    prev = p;
  }
  EXPECT_EQ(stat(h, "late"), 0u);
  EXPECT_EQ(stat(h, "lost"), 0u);
  GstStructure* s = stats(h);
  guint64 jitter = 0;
  EXPECT_TRUE(gst_structure_get_uint64(s, "jitter-us", &jitter));
  EXPECT_GT(jitter, 1000u);
  EXPECT_LT(jitter, 5000u);
  EXPECT_TRUE(gst_structure_has_field(s, "clock-offset-us"));
  gst_structure_free(s);
}

namespace {

// A datagram from host:port.
GstBuffer* from(const std::vector<uint8_t>& d, const char* host, guint16 port) {
  GstBuffer* b = datagram(d);
  add_sender(b, host, port);
  return b;
}

// `frames` frames of float32 at `channels`, stamped ts_us.
std::vector<uint8_t> raw_bytes(guint64 ts_us, size_t frames, uint16_t channels) {
  std::vector<float> samples(frames * channels, 0.1f);
  return wire::serialize_audio(wire::PacketType::kRaw, ts_us,
                               reinterpret_cast<const uint8_t*>(samples.data()),
                               samples.size() * sizeof(float));
}

std::vector<uint8_t> opus_bytes(guint64 ts_us) {
  const uint8_t frame[] = {0xfc, 0xff, 0xfe};  // TOC: CELT FB 20 ms, stereo
  return wire::serialize_audio(wire::PacketType::kOpus, ts_us, frame, sizeof frame);
}

std::vector<uint8_t> header_of(uint32_t rate, uint16_t channels, wire::Compression c) {
  auto hd = wire::serialize_header({rate, channels, c});
  return {hd.begin(), hd.end()};
}

}  // namespace

// Issue 18: while the played sender (A, 48 kHz stereo raw) sends, two others send to
// the same port, interleaved with it, in other formats (B: 44.1 kHz mono raw with a
// header every 5 packets; C: Opus, plus a flood of its datagrams and garbage). Nothing
// of theirs comes out, A's stream is untouched (every packet, in order, its own PTS, no
// DISCONT after the first, no header), and they are counted and announced once each.
TEST_F(JitterTest, InterleavedSendersInOtherFormatsNeverTouchThePlayedStream) {
  start();
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  guint64 foreign = 0;
  for (int i = 0; i < 300; i++) {
    set_time(pts(i) + GST_MSECOND);
    ASSERT_EQ(gst_harness_push(h, from(audio_bytes(ts(i)), "127.0.0.1", 40000)), GST_FLOW_OK);
    if (i % 5 == 0) {
      gst_harness_push(h, from(header_of(44100, 1, wire::Compression::kRaw), "127.0.0.1", 40001));
      foreign++;
    }
    gst_harness_push(h, from(raw_bytes(ts(i) + 2500, 441, 1), "127.0.0.1", 40001));
    foreign++;
    if (i >= 100) {  // the third one starts later
      if (i % 50 == 0) {
        gst_harness_push(h, from(header_of(48000, 2, wire::Compression::kOpus), "10.1.2.3", 5555));
        foreign++;
      }
      for (int k = 0; k < 3; k++)
        gst_harness_push(h, from(opus_bytes(ts(i) - 7000 + k * 20000), "10.1.2.3", 5555));
      const uint8_t junk[] = {1, 2, 3};
      gst_harness_push(h, from({junk, junk + 3}, "10.1.2.3", 5555));
      foreign += 4;
    }
  }
  for (int i = 0; i < 300; i++) expect_packet(i, i == 0);
  EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u);
  EXPECT_EQ(stat(h, "foreign-packets"), foreign);
  EXPECT_EQ(stat(h, "lost"), 0u);
  EXPECT_EQ(stat(h, "late"), 0u);
  EXPECT_EQ(stat(h, "resets"), 0u);
  EXPECT_EQ(stat(h, "format-changes"), 0u);
  EXPECT_EQ(stat(h, "headers"), 1u);
  EXPECT_EQ(stat(h, "malformed"), 0u);  // the foreign junk is foreign, not ours
  EXPECT_TRUE(take_losses(h).empty());
  std::vector<std::string> announced;
  while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT)) {
    const GstStructure* ms = gst_message_get_structure(m);
    if (gst_structure_has_name(ms, "syncwave-foreign-sender"))
      announced.push_back(gst_structure_get_string(ms, "address"));
    gst_message_unref(m);
  }
  EXPECT_EQ(announced, (std::vector<std::string>{"127.0.0.1:40001", "10.1.2.3:5555"}));
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
}

// Three senders; the played one stops. On the test clock, the next sender's first
// datagram more than 500 ms after A's last takes over: its header (sent while foreign)
// goes out first, then its audio, DISCONT. The third stays foreign.
TEST_F(JitterTest, NextSenderTakesOverWhenThePlayedOneStops) {
  start();
  for (int i = 0; i < 100; i++) {
    set_time(pts(i) + GST_MSECOND);
    gst_harness_push(h, from(audio_bytes(ts(i)), "127.0.0.1", 40000));
    if (i == 10)
      gst_harness_push(h, from(header_of(44100, 1, wire::Compression::kRaw), "127.0.0.1", 40001));
    if (i > 10) gst_harness_push(h, from(raw_bytes(ts(i) + 3000, 441, 1), "127.0.0.1", 40001));
    gst_harness_push(h, from(audio_bytes(ts(i) + 6000), "127.0.0.1", 40002));
  }
  for (int i = 0; i < 100; i++) expect_packet(i, i == 0);
  // A stops after packet 99; B and C go on.
  int first_b = -1;
  for (int i = 100; i < 200 && first_b < 0; i++) {
    set_time(pts(i) + GST_MSECOND);
    gst_harness_push(h, from(raw_bytes(ts(i) + 3000, 441, 1), "127.0.0.1", 40001));
    gst_harness_push(h, from(audio_bytes(ts(i) + 6000), "127.0.0.1", 40002));
    if (stat(h, "sender-changes") == 1) first_b = i;  // decided in the chain function
  }
  ASSERT_GT(first_b, 0);
  // Taken over at the first datagram after 500 ms of silence: 510 ms after A's last.
  EXPECT_EQ(pts(first_b) - pts(99), 510 * GST_MSECOND);
  GstBuffer* hb = gst_harness_pull(h);
  GstMapInfo map;
  ASSERT_TRUE(gst_buffer_map(hb, &map, GST_MAP_READ));
  wire::ParseResult r = wire::parse(map.data, map.size);
  gst_buffer_unmap(hb, &map);
  gst_buffer_unref(hb);
  ASSERT_EQ(r.kind, wire::Kind::kHeader);
  EXPECT_EQ(r.header.sample_rate, 44100u);
  EXPECT_EQ(r.header.channels, 1u);
  GstBuffer* ab = gst_harness_pull(h);
  EXPECT_EQ(GST_BUFFER_PTS(ab), pts(first_b) + 3 * GST_MSECOND);
  EXPECT_TRUE(GST_BUFFER_FLAG_IS_SET(ab, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref(ab);
  GstStructure* s = stats(h);
  EXPECT_STREQ(gst_structure_get_string(s, "sender"), "127.0.0.1:40001");
  gst_structure_free(s);
  EXPECT_EQ(stat(h, "sender-changes"), 1u);
  EXPECT_EQ(stat(h, "lost"), 0u);
  // B plays on, C stays foreign.
  for (int i = first_b + 1; i < first_b + 20; i++) {
    set_time(pts(i) + GST_MSECOND);
    gst_harness_push(h, from(raw_bytes(ts(i) + 3000, 441, 1), "127.0.0.1", 40001));
    gst_harness_push(h, from(audio_bytes(ts(i) + 6000), "127.0.0.1", 40002));
    GstBuffer* b = gst_harness_pull(h);
    EXPECT_EQ(GST_BUFFER_PTS(b), pts(i) + 3 * GST_MSECOND);
    gst_buffer_unref(b);
  }
  EXPECT_EQ(stat(h, "sender-changes"), 1u);
}

// A stray datagram (a port scan) heard first does not become the played sender.
TEST_F(JitterTest, StrayDatagramDoesNotLock) {
  start();
  const uint8_t junk[] = {0x47, 0x45, 0x54, 0x20};
  gst_harness_push(h, from({junk, junk + 4}, "10.9.9.9", 1234));
  for (int i = 0; i < 3; i++) {
    set_time(pts(i) + GST_MSECOND);
    gst_harness_push(h, from(audio_bytes(ts(i)), "127.0.0.1", 40000));
    gst_harness_push(h, from({junk, junk + 4}, "10.9.9.9", 1234));
  }
  for (int i = 0; i < 3; i++) expect_packet(i, i == 0);
  EXPECT_EQ(stat(h, "foreign-packets"), 4u);
}

// `sender` with a port out of range, or garbage: warned about, nothing plays (it never
// truncates 70000 to 4464).
TEST_F(JitterTest, InvalidSenderPlaysNothing) {
  start({"sender=127.0.0.1:70000"});
  set_time(pts(0) + GST_MSECOND);
  gst_harness_push(h, from(audio_bytes(ts(0)), "127.0.0.1", 70000 - 65536));
  gst_harness_push(h, from(audio_bytes(ts(0)), "127.0.0.1", 40000));
  EXPECT_EQ(gst_harness_buffers_in_queue(h), 0u);
  EXPECT_EQ(stat(h, "foreign-packets"), 2u);
  // A valid one set while playing applies at once, with no DNS (a literal).
  g_object_set(h->element, "sender", "[::ffff:127.0.0.1]:40000", NULL);
  g_object_set(h->element, "sender", "127.0.0.1:40000", NULL);
  gst_harness_push(h, from(audio_bytes(ts(1)), "127.0.0.1", 40000));
  expect_packet(1, true);
}

// Issue 11, case 4: an original-style sender stamps each 10 ms chunk when its capture
// callback runs, 0-4 ms late (and, like a Python loop, now and then 3-5 ms); each
// datagram arrives just after it was stamped. Every packet goes out at once, in order,
// with its own stamp as PTS: nothing lost, late or held for a gap's deadline.
TEST_F(JitterTest, JitteryOriginalStyleStampsPlayWhole) {
  start();
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> callback(0, 4000), spike(3000, 5000), pct(0, 99);
  constexpr int kPackets = 1000;
  std::vector<guint64> stamps;
  for (int i = 0; i < kPackets; i++) {
    const int delay = i < 500 ? callback(rng) : (pct(rng) < 3 ? spike(rng) : callback(rng) / 8);
    const guint64 stamp = ts(i) + delay;
    stamps.push_back(stamp);
    set_time(stamp * 1000 + 500 * GST_USECOND);
    ASSERT_EQ(gst_harness_push(h, from(audio_bytes(stamp), "127.0.0.1", 40000)), GST_FLOW_OK);
  }
  EXPECT_EQ(stat(h, "pushed"), static_cast<guint64>(kPackets));
  EXPECT_EQ(stat(h, "lost"), 0u);
  EXPECT_EQ(stat(h, "late"), 0u);
  for (int i = 0; i < kPackets; i++) {
    GstBuffer* b = gst_harness_pull(h);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(GST_BUFFER_PTS(b), stamps[i] * 1000) << i;
    EXPECT_EQ(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT), i == 0) << i;
    gst_buffer_unref(b);
  }
  EXPECT_TRUE(take_losses(h).empty());
}

// The same sender with one packet really missing: it is reported lost (one loss event
// at its deadline), the others play.
TEST_F(JitterTest, JitteryStampsStillRevealAMissingPacket) {
  start();
  std::mt19937 rng(8);
  std::uniform_int_distribution<int> callback(0, 4000);
  for (int i = 0; i < 200; i++) {
    const guint64 stamp = ts(i) + callback(rng);
    set_time(stamp * 1000 + 500 * GST_USECOND);
    if (i != 150) gst_harness_push(h, from(audio_bytes(stamp), "127.0.0.1", 40000));
  }
  // The clock passed the gap's deadline while later packets arrived: reported then.
  for (int i = 0; i < 199; i++) gst_buffer_unref(gst_harness_pull(h));
  EXPECT_EQ(stat(h, "lost"), 1u);
  EXPECT_EQ(stat(h, "late"), 0u);
  auto losses = take_losses(h);
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_EQ(losses[0].duration, kPacket);
}
