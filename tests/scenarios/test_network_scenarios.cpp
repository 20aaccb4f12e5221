// SPDX-License-Identifier: LGPL-2.1-or-later
// Hostile-network scenarios over real UDP sockets on 127.0.0.1: a sender that
// behaves as the original SyncWave (raw float32, 10 ms packets, wall-clock stamps)
// carrying a self-describing ramp, the impairment relay in between, and receivers
// (udpsrc ! syncwavejitter ! syncwavedepay ! appsink) on the wall clock. What came
// out is checked sample by sample: continuity, the capture time of every intact
// buffer against its output time (the same on every receiver: sync), and the
// elements' counters against what the relay did (replayed offline from its seed).

#include <dirent.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "impair_model.h"
#include "impair_relay.h"
#include "scenario_util.h"
#include "wire_format.h"

using namespace syncwave;
using namespace syncwave::scenario;

namespace {

constexpr int64_t kOneSampleNs = 1000000000 / kRate + 1;
constexpr unsigned kLatencyMs = 60;

// Under ASan/UBSan the receiver runs several times slower: performance promises
// (CPU, memory, keeping up with a flood) are measured in the normal build only.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

class Scenario : public ::testing::Test {
 protected:
  void SetUp() override {
    gst_init(nullptr, nullptr);
    std::string missing;
    if (!has_elements({"syncwavejitter", "syncwavedepay", "udpsrc", "appsink"}, &missing))
      GTEST_SKIP() << "element " << missing << " is not available yet";
  }
};

// Runs a relay on its own thread for the lifetime of the object.
class RelayThread {
 public:
  RelayThread() {
    std::string err;
    EXPECT_TRUE(relay.open("127.0.0.1", 0, &err)) << err;
    relay.set_recording(true);
  }
  void add(uint16_t port, const std::string& settings, uint64_t seed) {
    impair::Settings s;
    std::string err;
    ASSERT_TRUE(impair::apply_settings(&s, settings, &err)) << err;
    ASSERT_TRUE(relay.add_destination("127.0.0.1", port, s, seed, &err)) << err;
    settings_.push_back(s);
    seeds_.push_back(seed);
  }
  void start() {
    thread_ = std::thread([this] { relay.run(); });
  }
  ~RelayThread() { stop(); }
  void stop() {
    if (thread_.joinable()) {
      relay.stop();
      thread_.join();
    }
  }
  // What the relay did to datagram `i` for destination `d`: which datagrams were
  // lost or duplicated is replayed offline from the seed (and checked against what
  // was sent); the order is the one the relay actually sent in, which depends on
  // arrival times as well.
  struct Fate {
    std::vector<int> copies;      // per datagram: 0 lost, 1 forwarded, 2 duplicated
    std::vector<uint64_t> order;  // datagram indices in forwarding order (dups included)
  };
  Fate replay(size_t d, size_t datagrams) const {
    impair::ImpairModel m(settings_[d], seeds_[d]);
    Fate f;
    f.copies.assign(datagrams, 0);
    for (size_t i = 0; i < datagrams; i++) m.arrive(i * 10000, std::vector<uint8_t>(1));
    for (const auto& del : m.pop_due(UINT64_MAX - 1)) f.copies[del.seq]++;
    f.order = relay.sent_order(d);
    std::vector<int> sent(datagrams, 0);
    for (uint64_t seq : f.order) {
      if (seq < datagrams) sent[seq]++;
    }
    EXPECT_EQ(sent, f.copies) << "the relay did not do what its seed says";
    return f;
  }
  impair::Relay relay;

 private:
  std::thread thread_;
  std::vector<impair::Settings> settings_;
  std::vector<uint64_t> seeds_;
};

struct Expected {
  uint64_t lost = 0;
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  size_t longest_loss_run = 0;
  uint64_t last_received = 0;  // index of the last audio packet delivered
};

// The counts a receiver can see: losses between the first and the last audio
// packet it received, duplicates of audio, audio packets that came after a later one.
Expected expected_from(const RelayThread::Fate& f, const std::vector<uint64_t>& audio_index) {
  Expected e;
  std::vector<int> audio_copies;
  std::vector<int64_t> audio_of_dgram(f.copies.size(), -1);
  for (size_t k = 0; k < audio_index.size(); k++) {
    audio_copies.push_back(f.copies[audio_index[k]]);
    audio_of_dgram[audio_index[k]] = static_cast<int64_t>(k);
  }
  size_t first = 0, last = audio_copies.size();
  while (first < audio_copies.size() && audio_copies[first] == 0) first++;
  while (last > first && audio_copies[last - 1] == 0) last--;
  e.last_received = last > 0 ? last - 1 : 0;
  size_t run = 0;
  for (size_t k = first; k < last; k++) {
    if (audio_copies[k] == 0) {
      e.lost++;
      run++;
      e.longest_loss_run = std::max(e.longest_loss_run, run);
    } else {
      run = 0;
    }
    if (audio_copies[k] == 2) e.duplicates++;
  }
  int64_t max_seen = -1;
  std::set<int64_t> seen;
  for (uint64_t d : f.order) {
    const int64_t k = audio_of_dgram[d];
    if (k < 0) continue;
    if (seen.count(k)) continue;  // a duplicate, counted above
    seen.insert(k);
    if (k < max_seen) e.reordered++;
    max_seen = std::max(max_seen, k);
  }
  return e;
}

std::string dump(GstStructure* s) {
  if (!s) return "(no stats)";
  gchar* t = gst_structure_to_string(s);
  std::string r = t;
  g_free(t);
  return r;
}

void expect_continuous(const Analysis& a, const char* who) {
  EXPECT_GT(a.buffers, 0u) << who;
  EXPECT_EQ(a.gaps, 0u) << who << ": output has holes";
  EXPECT_EQ(a.overlaps, 0u) << who << ": output overlaps itself";
}

void expect_in_sync(const Analysis& a, const char* who) {
  EXPECT_GT(a.intact, 0u) << who;
  EXPECT_LE(a.max_sync_error_ns, kOneSampleNs)
      << who << ": a sample is not played at its capture time + latency";
}

double capture0(const RampSender& s, uint64_t first_sample = 0, uint32_t rate = kRate) {
  return static_cast<double>(s.start_us()) - first_sample * 1e6 / rate;
}

void wait_ms(unsigned ms) {
  g_usleep(ms * 1000);
}

// Sum of utime+stime (in clock ticks) of this process's threads, except `skip`.
long cpu_ticks_except(pid_t skip) {
  long total = 0;
  DIR* d = opendir("/proc/self/task");
  if (!d) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (atoi(e->d_name) == skip) continue;
    std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/stat");
    std::string line;
    std::getline(f, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; i++) {
      if (i == 14) utime = std::stol(field);
      if (i == 15) stime = std::stol(field);
    }
    total += utime + stime;
  }
  closedir(d);
  return total;
}

}  // namespace

// 10 % loss, 5 % reordering, 2 % duplication, +-20 ms jitter at the default latency:
// continuous playback, counters equal to what the relay did, two receivers in sync.
TEST_F(Scenario, ImpairedNetworkTwoReceiversStayInSync) {
  // The configured latency covers the path: 25 ms +- 20 ms, plus 15 ms for a
  // reordered packet, is at most 60 ms; 100 ms leaves room for a busy machine.
  const unsigned latency = 100;
  Receiver a(latency), b(latency);
  std::string err;
  ASSERT_TRUE(a.start(&err)) << err;
  ASSERT_TRUE(b.start(&err)) << err;
  const std::string net = "loss=10%,reorder=5%:15ms,duplicate=2%,delay=25ms,jitter=20ms";
  RelayThread relay;
  relay.add(a.port(), net, 101);
  relay.add(b.port(), net, 202);
  relay.start();

  RampSender sender(relay.relay.port(), RampSender::Config());
  const unsigned packets = 300;
  sender.start(packets);
  sender.wait();
  wait_ms(200);
  relay.stop();
  wait_ms(latency + 200);
  a.stop();
  b.stop();

  const size_t datagrams = packets + 5;
  ASSERT_EQ(relay.relay.received(), datagrams);
  const Receiver* rx[2] = {&a, &b};
  Analysis an[2];
  for (int i = 0; i < 2; i++) {
    Receiver& r = const_cast<Receiver&>(*rx[i]);
    const char* who = i == 0 ? "receiver A" : "receiver B";
    EXPECT_TRUE(r.errors().empty()) << who << ": " << r.errors()[0];
    const Expected e = expected_from(relay.replay(i, datagrams), sender.audio_datagram_index());
    GstStructure* js = r.stats("jitter");
    GstStructure* ds = r.stats("depay");
    SCOPED_TRACE(std::string(who) + " jitter " + dump(js) + " depay " + dump(ds));
    an[i] = analyze(r.buffers(), r.base_time(), capture0(sender), kRate,
                    sender.packet_end_us(e.last_received));
    // Losses in the stream, plus the concealment after its end (the receiver cannot
    // tell that the sender stopped).
    EXPECT_EQ(stat_u64(js, "lost"), e.lost + an[i].trailing_frames / kPacketFrames);
    EXPECT_EQ(stat_u64(js, "duplicates"), e.duplicates);
    EXPECT_EQ(stat_u64(js, "reordered"), e.reordered);
    EXPECT_EQ(stat_u64(js, "late"), 0u);
    expect_continuous(an[i], who);
    expect_in_sync(an[i], who);
    // Concealment never adds silence beyond the longest run of lost packets.
    EXPECT_LE(an[i].longest_silence_frames, e.longest_loss_run * kPacketFrames) << who;
    // Everything between the first and last packet received came out.
    EXPECT_GE(an[i].frames, (packets - 40) * kPacketFrames) << who;
    if (js) gst_structure_free(js);
    if (ds) gst_structure_free(ds);
  }
  // Same sample, same clock time, on both: compare buffer by buffer where both are intact.
  std::map<uint64_t, int64_t> err_a;
  for (size_t k = 0; k < an[0].intact_first_index.size(); k++)
    err_a[an[0].intact_first_index[k]] = an[0].sync_errors_ns[k];
  size_t common = 0;
  for (size_t k = 0; k < an[1].intact_first_index.size(); k++) {
    auto it = err_a.find(an[1].intact_first_index[k]);
    if (it == err_a.end()) continue;
    common++;
    EXPECT_LE(std::llabs(it->second - an[1].sync_errors_ns[k]), kOneSampleNs);
  }
  EXPECT_GT(common, 100u);
}

// A 300 ms outage on one receiver's path: it conceals, then plays in sync again
// (within one second of the stream returning), like the receiver that saw no outage.
TEST_F(Scenario, OutageIsConcealedAndResynchronized) {
  Receiver a(kLatencyMs), b(kLatencyMs);
  std::string err;
  ASSERT_TRUE(a.start(&err)) << err;
  ASSERT_TRUE(b.start(&err)) << err;
  RelayThread relay;
  relay.add(a.port(), "outage=1s+300ms", 1);
  relay.add(b.port(), "", 2);
  relay.start();
  RampSender sender(relay.relay.port(), RampSender::Config());
  sender.start(250);
  sender.wait();
  wait_ms(kLatencyMs + 200);
  relay.stop();
  a.stop();
  b.stop();

  const impair::Counters c = relay.relay.counters(0);
  EXPECT_GE(c.lost_outage, 29u);
  EXPECT_LE(c.lost_outage, 31u);
  const Analysis aa =
      analyze(a.buffers(), a.base_time(), capture0(sender), kRate, sender.packet_end_us(249));
  const Analysis ab =
      analyze(b.buffers(), b.base_time(), capture0(sender), kRate, sender.packet_end_us(249));
  GstStructure* js = a.stats("jitter");
  SCOPED_TRACE("jitter " + dump(js));
  EXPECT_EQ(stat_u64(js, "lost"), c.lost_outage + aa.trailing_frames / kPacketFrames);
  EXPECT_EQ(stat_u64(js, "late"), 0u);
  if (js) gst_structure_free(js);

  expect_continuous(aa, "receiver with outage");
  expect_in_sync(aa, "receiver with outage");
  expect_in_sync(ab, "clean receiver");
  // After the outage (1.3 s into the stream) intact audio is back within 1 s.
  const uint64_t back = static_cast<uint64_t>(1.3 * kRate);
  bool resumed = false;
  for (uint64_t idx : aa.intact_first_index) {
    if (idx >= back && idx <= back + kRate) resumed = true;
  }
  EXPECT_TRUE(resumed);
  EXPECT_GE(aa.last_index, ab.last_index - kPacketFrames);
}

// The sender restarts with new timestamps and another format (44.1 kHz mono): the
// receiver follows without being restarted, within one second.
TEST_F(Scenario, SenderRestartWithAnotherFormatIsFollowed) {
  Receiver r(kLatencyMs);
  std::string err;
  ASSERT_TRUE(r.start(&err)) << err;
  {
    RampSender first(r.port(), RampSender::Config());
    first.start(100);
    first.wait();
  }
  wait_ms(300);
  RampSender::Config c;
  c.rate = 44100;
  c.channels = 1;
  c.first_sample = 7000;
  RampSender second(r.port(), c);
  second.start(150);
  second.wait();
  wait_ms(kLatencyMs + 200);
  r.stop();
  EXPECT_TRUE(r.errors().empty()) << r.errors()[0];

  auto out = r.buffers();
  std::vector<OutBuffer> after;
  for (auto& b : out) {
    if (b.rate == 44100 && b.channels == 1) after.push_back(b);
  }
  ASSERT_FALSE(after.empty()) << "the receiver never switched to 44.1 kHz mono";
  const Analysis a2 = analyze(after, r.base_time(), capture0(second, c.first_sample, 44100), 44100);
  expect_in_sync(a2, "after restart");
  ASSERT_GT(a2.intact, 0u);
  // First intact sample of the new stream within 1 s of the restart.
  EXPECT_LT(a2.first_index - c.first_sample, 44100u);
  GstStructure* ds = r.stats("depay");
  EXPECT_GE(stat_u64(ds, "format-changes"), 1u) << dump(ds);
  if (ds) gst_structure_free(ds);
}

// The receiver is started before the sender, and another is started while the
// stream is running: both play in sync, the late one within a second of joining.
TEST_F(Scenario, ReceiverBeforeSenderAndJoiningMidStream) {
  Receiver early(kLatencyMs);
  std::string err;
  ASSERT_TRUE(early.start(&err)) << err;
  wait_ms(300);
  RelayThread relay;  // no impairment: a fan-out
  relay.add(early.port(), "", 1);
  relay.start();
  // A joining receiver needs a header first: the sender repeats it every 0.5 s here
  // (syncwavepay header-interval=50), the original every 1000 packets (10 s).
  RampSender::Config sc;
  sc.header_interval = 50;
  RampSender sender(relay.relay.port(), sc);
  sender.start(250);
  wait_ms(1000);
  Receiver late(kLatencyMs);
  ASSERT_TRUE(late.start(&err)) << err;
  const uint64_t joined_us = static_cast<uint64_t>(g_get_real_time());
  relay.add(late.port(), "", 2);  // the stream reaches it from now on
  sender.wait();
  wait_ms(kLatencyMs + 200);
  relay.stop();
  early.stop();
  late.stop();

  const Analysis ae = analyze(early.buffers(), early.base_time(), capture0(sender));
  expect_continuous(ae, "early receiver");
  expect_in_sync(ae, "early receiver");
  // From the start of the stream: the first packet, or on a starved machine (the
  // sanitizer build with other load) one of the first few, which may come in late.
  EXPECT_LE(ae.first_index, 5 * kPacketFrames);
  const Analysis al = analyze(late.buffers(), late.base_time(), capture0(sender));
  GstStructure* ls = late.stats("jitter");
  SCOPED_TRACE("joining receiver: jitter " + dump(ls) + " relay " + relay.relay.stats_json() +
               " port " + std::to_string(late.port()));
  if (ls) gst_structure_free(ls);
  expect_in_sync(al, "joining receiver");
  ASSERT_GT(al.intact, 0u);
  const double first_capture_us = capture0(sender) + al.first_index * 1e6 / kRate;
  EXPECT_LT(first_capture_us - static_cast<double>(joined_us), 1e6);
}

// Two senders on one port: one of them is played (the first heard), never a mix,
// and the other is reported.
TEST_F(Scenario, TwoSendersOnOnePortAreNeverMixed) {
  Receiver r(kLatencyMs);
  std::string err;
  ASSERT_TRUE(r.start(&err)) << err;
  RampSender a(r.port(), RampSender::Config());
  RampSender::Config cb;
  cb.first_sample = 12345;  // a different sample/time relation: any mix shows as an error
  RampSender b(r.port(), cb);
  a.start(200);
  wait_ms(200);
  b.start(150);
  a.wait();
  b.wait();
  wait_ms(kLatencyMs + 200);
  r.stop();
  const Analysis an = analyze(r.buffers(), r.base_time(), capture0(a));
  expect_continuous(an, "receiver");
  expect_in_sync(an, "receiver (sender A's timeline)");
  EXPECT_GE(an.last_index, 195u * kPacketFrames);
  GstStructure* js = r.stats("jitter");
  // Every datagram of the other sender (5 headers, 150 packets) is counted, none played.
  EXPECT_EQ(stat_u64(js, "foreign-packets"), 155u) << dump(js);
  if (js) gst_structure_free(js);
}

// Two senders on one port, the second one chosen (`sender=HOST:PORT`): only it is
// played, though the other started first.
TEST_F(Scenario, TwoSendersOnOnePortTheChosenOneIsPlayed) {
  Receiver r(kLatencyMs);
  std::string err;
  ASSERT_TRUE(r.start(&err)) << err;
  RampSender::Config cb;
  cb.first_sample = 12345;
  RampSender a(r.port(), RampSender::Config());
  RampSender b(r.port(), cb);
  GstElement* jitter = gst_bin_get_by_name(GST_BIN(r.pipeline()), "jitter");
  const std::string chosen = "127.0.0.1:" + std::to_string(b.source_port());
  g_object_set(jitter, "sender", chosen.c_str(), nullptr);
  gst_object_unref(jitter);
  a.start(200);
  wait_ms(200);
  b.start(150);
  a.wait();
  b.wait();
  wait_ms(kLatencyMs + 200);
  r.stop();
  const Analysis an = analyze(r.buffers(), r.base_time(), capture0(b, cb.first_sample), kRate,
                              b.packet_end_us(149));
  expect_continuous(an, "receiver");
  expect_in_sync(an, "receiver (the chosen sender's timeline)");
  EXPECT_GE(an.intact, 140u);
  GstStructure* js = r.stats("jitter");
  EXPECT_EQ(stat_u64(js, "foreign-packets"), 205u) << dump(js);  // all of A's datagrams
  if (js) gst_structure_free(js);
}

namespace {

struct Malformed {
  const char* reason;
  std::vector<uint8_t> bytes;
};

std::vector<Malformed> malformed_set(uint64_t ts_us) {
  auto header = [](uint32_t rate, uint16_t ch, uint8_t comp, uint8_t version) {
    std::vector<uint8_t> h = {'S', 'Y', 'N', 'C', version, 0, 0, 0, 0, 0, 0, comp};
    wire::write_u32le(h.data() + 5, rate);
    wire::write_u16le(h.data() + 9, ch);
    return h;
  };
  std::vector<uint8_t> raw(480 * 8, 0);
  auto audio = wire::serialize_audio(wire::PacketType::kRaw, ts_us, raw.data(), raw.size());
  auto longer = audio;
  wire::write_u16le(longer.data() + 9, 0xffff);  // size field claims more than sent
  auto shorter = audio;
  wire::write_u16le(shorter.data() + 9, 100);  // claims less than sent
  auto misaligned = wire::serialize_audio(wire::PacketType::kRaw, ts_us, raw.data(), 7);
  const uint8_t opus[3] = {0xfc, 1, 2};
  auto mismatch = wire::serialize_audio(wire::PacketType::kOpus, ts_us, opus, 3);
  return {
      {"empty", {}},
      {"truncated", {0x00, 1, 2, 3}},
      {"bad-magic", {'S', 'Y', 'N', 'K', 1, 0, 0, 0, 0, 0, 0, 0}},
      {"unknown-type", {0x42, 0, 0, 0}},
      {"unknown-version", header(48000, 2, 0, 2)},
      {"unknown-compression", header(48000, 2, 7, 1)},
      {"bad-sample-rate", header(0, 2, 0, 1)},
      {"bad-sample-rate", header(10000000, 2, 0, 1)},
      {"bad-channels", header(48000, 0, 0, 1)},
      {"bad-channels", header(48000, 65535, 0, 1)},
      {"truncated", longer},
      {"size-mismatch", shorter},
      {"misaligned", misaligned},
      {"codec-mismatch", mismatch},
  };
}

}  // namespace

// Sums a counter over the receive chain's elements (absent fields count 0).
uint64_t chain_sum(Receiver& r, const std::string& field) {
  uint64_t total = 0;
  for (const char* name : {"jitter", "depay"}) {
    GstStructure* st = r.stats(name);
    const uint64_t v = stat_u64(st, field.c_str());
    if (v != UINT64_MAX) total += v;
    if (st) gst_structure_free(st);
  }
  return total;
}

// Whether any element of the chain reports malformed datagrams by reason for what
// reaches it first (syncwavejitter drops malformed datagrams before syncwavedepay).
bool jitter_counts_by_reason(Receiver& r) {
  GstStructure* js = r.stats("jitter");
  const bool has = js && gst_structure_has_field(js, "malformed-truncated");
  if (js) gst_structure_free(js);
  return has;
}

// Headers announcing 0 Hz, 10 MHz, 0 or 65535 channels, unknown versions or codecs,
// and audio whose size field lies, from the sender's own address in the middle of
// its stream: rejected, counted, and the format never changes.
TEST_F(Scenario, LyingHeadersAndSizesAreRejectedAndCounted) {
  Receiver r(kLatencyMs);
  std::string err;
  ASSERT_TRUE(r.start(&err)) << err;
  RampSender sender(r.port(), RampSender::Config());
  const unsigned packets = 150;
  sender.start(packets);
  wait_ms(500);
  std::map<std::string, uint64_t> sent;
  uint64_t total = 0;
  for (int round = 0; round < 10; round++) {
    for (const auto& m : malformed_set(static_cast<uint64_t>(g_get_real_time()))) {
      sender.send_raw(m.bytes);
      sent[m.reason]++;
      total++;
    }
    wait_ms(20);
  }
  sender.wait();
  wait_ms(kLatencyMs + 200);
  r.stop();

  GstStructure* js = r.stats("jitter");
  GstStructure* ds = r.stats("depay");
  SCOPED_TRACE("jitter " + dump(js) + " depay " + dump(ds));
  EXPECT_EQ(chain_sum(r, "malformed"), total);
  if (jitter_counts_by_reason(r)) {
    for (const auto& kv : sent)
      EXPECT_EQ(chain_sum(r, "malformed-" + kv.first), kv.second) << kv.first;
  } else {
    std::printf(
        "NOTE: syncwavejitter counts malformed datagrams only in total; per-reason "
        "counters exist in syncwavedepay, which never sees them\n");
  }
  EXPECT_EQ(stat_u64(ds, "format-changes"), 0u);
  EXPECT_EQ(stat_u64(js, "format-changes"), 0u);
  const auto out = r.buffers();
  for (const auto& b : out) {
    EXPECT_EQ(b.rate, 48000);
    EXPECT_EQ(b.channels, 2);
  }
  const Analysis a =
      analyze(out, r.base_time(), capture0(sender), kRate, sender.packet_end_us(packets - 1));
  expect_continuous(a, "receiver");
  expect_in_sync(a, "receiver");
  EXPECT_EQ(a.intact, a.buffers);
  EXPECT_EQ(stat_u64(js, "lost"), a.trailing_frames / kPacketFrames);
  if (js) gst_structure_free(js);
  if (ds) gst_structure_free(ds);
}

// 10,000 malformed datagrams per second for 3 s from the sender's own address,
// mixed into its valid stream: it plays undisturbed, they are counted, memory
// stays flat and the receiver's CPU stays bounded.
TEST_F(Scenario, MalformedFloodLeavesTheStreamUndisturbed) {
  Receiver r(kLatencyMs);
  std::string err;
  ASSERT_TRUE(r.start(&err)) << err;
  RampSender sender(r.port(), RampSender::Config());
  const unsigned packets = 450;
  sender.start(packets);
  wait_ms(700);
  const long rss_before = rss_kib();
  std::atomic<pid_t> flood_tid{0};
  std::atomic<uint64_t> flood_sent{0};
  const long ticks_before = cpu_ticks_except(-1);
  const uint64_t t0 = static_cast<uint64_t>(g_get_real_time());
  std::thread flood([&] {
    flood_tid = static_cast<pid_t>(syscall(SYS_gettid));
    const auto set = malformed_set(t0);
    for (uint64_t i = 0; i < 30000; i++) {
      if (i % 10 == 0) {  // 10 per millisecond
        const int64_t wait = static_cast<int64_t>(t0 + i * 100) - g_get_real_time();
        if (wait > 0) g_usleep(wait);
      }
      sender.send_raw(set[i % set.size()].bytes);
      flood_sent++;
    }
  });
  while (flood_tid.load() == 0) g_usleep(1000);
  const pid_t tid = flood_tid.load();
  // Read the receiver's CPU just before the flood thread ends (it is excluded).
  while (flood_sent.load() < 29990) g_usleep(1000);
  const long ticks_after = cpu_ticks_except(tid);
  const double flood_s = (g_get_real_time() - static_cast<int64_t>(t0)) / 1e6;
  flood.join();
  wait_ms(100);
  const long rss_after = rss_kib();
  sender.wait();
  wait_ms(kLatencyMs + 200);
  r.stop();

  GstStructure* js = r.stats("jitter");
  GstStructure* ds = r.stats("depay");
  SCOPED_TRACE("jitter " + dump(js) + " depay " + dump(ds));
  EXPECT_EQ(chain_sum(r, "malformed"), flood_sent.load());
  EXPECT_EQ(stat_u64(ds, "format-changes"), 0u);
  EXPECT_EQ(stat_u64(js, "format-changes"), 0u);
  const double cpu = (ticks_after - ticks_before) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::printf("flood: %" PRIu64
              " datagrams in %.2f s, receiver CPU %.3f s (%.1f %% of a core), "
              "RSS %ld -> %ld KiB%s\n",
              flood_sent.load(), flood_s, cpu, 100.0 * cpu / flood_s, rss_before, rss_after,
              kSanitized ? " (sanitized build: counts only)" : "");
  if (kSanitized) {
    if (js) gst_structure_free(js);
    if (ds) gst_structure_free(ds);
    return;
  }
  EXPECT_EQ(stat_u64(js, "late"), 0u);
  const Analysis a = analyze(r.buffers(), r.base_time(), capture0(sender), kRate,
                             sender.packet_end_us(packets - 1));
  expect_continuous(a, "receiver");
  expect_in_sync(a, "receiver");
  EXPECT_EQ(a.intact, a.buffers);  // nothing concealed, nothing faded
  EXPECT_EQ(a.frames, static_cast<uint64_t>(packets) * kPacketFrames);
  EXPECT_EQ(stat_u64(js, "lost"), a.trailing_frames / kPacketFrames);
  // Memory flat: the flood may not grow the process by more than 8 MiB.
  EXPECT_LT(rss_after - rss_before, 8 * 1024) << "RSS " << rss_before << " -> " << rss_after;
  // CPU bounded: this process minus the flood thread (the receiver, plus a sender
  // thread that sends 100 packets/s) under 60 % of a core while 10k datagrams/s
  // are parsed. The measured figure goes to docs/reliability.md.
  EXPECT_LT(cpu / flood_s, 0.6);
  if (js) gst_structure_free(js);
  if (ds) gst_structure_free(ds);
}
