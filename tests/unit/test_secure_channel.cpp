// SPDX-License-Identifier: LGPL-2.1-or-later
// The secure framing (core/secure_channel.h): golden vectors, every rejection reason,
// the replay window's edges, stream restarts and what a v1 parser makes of it.
//
// The golden bytes were computed independently of libsodium: the key with the Argon2
// reference implementation (Debian's `argon2` tool:
//   echo -n "correct horse battery staple" | argon2 "SyncWave secure1" -id -t 2 -m 16 -p 1 -l 32),
// the datagrams with Python: HChaCha20 written out by hand plus the `cryptography`
// package's ChaCha20-Poly1305 (checked first against draft-irtf-cfrg-xchacha-03 A.3.1).

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "secure_channel.h"
#include "wire_format.h"

using namespace syncwave;
using secure::Key;
using secure::Opener;
using secure::Reject;
using secure::ReplayWindow;
using secure::Sealer;

namespace {

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  return out;
}

Key key_from_hex(const std::string& hex) {
  Key k{};
  const auto v = from_hex(hex);
  std::copy(v.begin(), v.end(), k.begin());
  return k;
}

// Argon2id("correct horse battery staple") with the format's salt and limits.
const char* kGoldenKeyHex = "dec716fe60d232fa024fd555409e370f72fd35a0c752d956eb6d0e611976b66b";
constexpr uint64_t kGoldenStream = 0x0123456789abcdULL;

Key golden_key() {
  return key_from_hex(kGoldenKeyHex);
}
Key other_key() {
  Key k = golden_key();
  k[0] ^= 1;
  return k;
}

std::vector<uint8_t> v1_header() {
  const auto h = wire::serialize_header({48000, 2, wire::Compression::kRaw});
  return {h.begin(), h.end()};
}

// Raw audio: two float samples 0.5, -1.0 stamped 1764000000123456 us.
std::vector<uint8_t> v1_audio() {
  const float samples[2] = {0.5f, -1.0f};
  return wire::serialize_audio(wire::PacketType::kRaw, 1764000000123456ULL,
                               reinterpret_cast<const uint8_t*>(samples), sizeof samples);
}

std::vector<uint8_t> seal_one(Sealer& s, const std::vector<uint8_t>& plain) {
  return s.seal(plain.data(), plain.size());
}

bool contains(const std::vector<uint8_t>& hay, const uint8_t* needle, size_t n) {
  return std::search(hay.begin(), hay.end(), needle, needle + n) != hay.end();
}

}  // namespace

TEST(SecureChannel, Available) {
  ASSERT_TRUE(secure::available());
}

TEST(SecureChannel, KeyDerivationGolden) {
  Key k{};
  ASSERT_TRUE(secure::derive_key("correct horse battery staple", &k));
  EXPECT_EQ(k, golden_key());
  Key k2{};
  ASSERT_TRUE(secure::derive_key("correct horse battery stapl", &k2));
  EXPECT_NE(k2, k);
  EXPECT_FALSE(secure::derive_key("", &k2));
}

TEST(SecureChannel, SealGolden) {
  Sealer s(golden_key(), kGoldenStream);
  s.set_next_counter(5);
  EXPECT_EQ(seal_one(s, v1_header()),
            from_hex("f501cdab896745230100000500000000000000507fa407f147b731784969d16813ba4eb820e4"
                     "03afe52bf917f67ae0"));
  ASSERT_EQ(v1_audio(), from_hex("00402264415944060008000000003f000080bf"));
  EXPECT_EQ(seal_one(s, v1_audio()),
            from_hex("f501cdab8967452301000006000000000000000093e64d244b3647467179b9e6c32b0d515c0a"
                     "55c67771dfc4df2ff1280e05a2a10143"));
  EXPECT_EQ(s.next_counter(), 7u);
}

TEST(SecureChannel, OpenGolden) {
  Opener o(golden_key());
  std::vector<uint8_t> plain;
  EXPECT_EQ(o.open(from_hex("f501cdab896745230100000500000000000000507fa407f147b731784969d16813ba4e"
                            "b820e403afe52bf917f67ae0")
                       .data(),
                   47, &plain),
            Reject::kNone);
  EXPECT_EQ(plain, v1_header());
  auto audio = from_hex(
      "f501cdab8967452301000006000000000000000093e64d244b3647467179b9e6c32b0d515c0a55c67771dfc4df"
      "2ff1280e05a2a10143");
  const auto r = o.open_in_place(audio.data(), audio.size());
  ASSERT_EQ(r.reject, Reject::kNone);
  EXPECT_EQ(r.stream_id, kGoldenStream);
  EXPECT_EQ(r.counter, 6u);
  EXPECT_FALSE(r.new_stream);  // the header opened it
  EXPECT_EQ(r.plaintext, audio.data() + secure::kHeaderSize);
  EXPECT_EQ(std::vector<uint8_t>(r.plaintext, r.plaintext + r.size), v1_audio());
  EXPECT_EQ(o.opened(), 2u);
  EXPECT_EQ(o.rejected_total(), 0u);
}

// What a v1 receiver does with a secure datagram: SyncWave's parser reports an unknown
// type; the original receiver (which takes any datagram that is not a 12-byte header as
// audio) reads a size field of 0 at bytes 9..10 and plays nothing; a secure header is no
// "SYNC" header for either.
TEST(SecureChannel, V1ParsersRejectSecureDatagrams) {
  Sealer s(golden_key(), Sealer::random_stream_id());
  for (const auto& plain : {v1_header(), v1_audio()}) {
    const auto d = seal_one(s, plain);
    ASSERT_EQ(d.size(), plain.size() + secure::kOverhead);
    const wire::ParseResult r = wire::parse(d.data(), d.size());
    EXPECT_EQ(r.kind, wire::Kind::kMalformed);
    EXPECT_EQ(r.error, wire::Error::kUnknownType);
    EXPECT_NE(d[0], 0);
    EXPECT_NE(d[0], 1);
    EXPECT_NE(std::memcmp(d.data(), "SYNC", 4), 0);
    EXPECT_EQ(wire::read_u16le(d.data() + 9), 0);
  }
}

// Nothing of the v1 datagram is readable: no "SYNC", no rate, no timestamp, no sample.
TEST(SecureChannel, NoPlaintextInSealedDatagrams) {
  Sealer s(golden_key(), Sealer::random_stream_id());
  std::vector<float> samples(346);
  for (size_t i = 0; i < samples.size(); i++) samples[i] = (i % 48) / 65536.0f;
  const uint64_t ts = 1764000000123456ULL;
  const auto audio = wire::serialize_audio(
      wire::PacketType::kRaw, ts, reinterpret_cast<uint8_t*>(samples.data()), samples.size() * 4);
  const auto sealed_audio = seal_one(s, audio);
  const auto sealed_header = seal_one(s, v1_header());
  uint8_t ts_bytes[8];
  wire::write_u64le(ts_bytes, ts);
  uint8_t rate[4];
  wire::write_u32le(rate, 48000);
  for (const auto* d : {&sealed_audio, &sealed_header}) {
    EXPECT_FALSE(contains(*d, reinterpret_cast<const uint8_t*>("SYNC"), 4));
    EXPECT_FALSE(contains(*d, rate, 4));
    EXPECT_FALSE(contains(*d, ts_bytes + 2, 6));
  }
  // No 8-byte run of the samples (two floats) survives.
  const auto* sb = reinterpret_cast<const uint8_t*>(samples.data());
  for (size_t i = 0; i + 8 <= samples.size() * 4; i += 4)
    ASSERT_FALSE(contains(sealed_audio, sb + i, 8)) << "sample bytes at " << i;
}

TEST(SecureChannel, RoundTripEverySize) {
  Sealer s(golden_key(), 42);
  Opener o(golden_key());
  std::mt19937 rng(1);
  for (size_t n : {size_t{1}, size_t{11}, size_t{12}, size_t{1365}, secure::kMaxPlaintextSize}) {
    std::vector<uint8_t> plain(n);
    for (auto& b : plain) b = static_cast<uint8_t>(rng());
    const auto d = seal_one(s, plain);
    ASSERT_EQ(d.size(), n + secure::kOverhead);
    std::vector<uint8_t> out;
    ASSERT_EQ(o.open(d.data(), d.size(), &out), Reject::kNone);
    EXPECT_EQ(out, plain);
  }
}

TEST(SecureChannel, SealRefusesWhatDoesNotFit) {
  Sealer s(golden_key(), 1);
  std::vector<uint8_t> plain(100, 7), out(200);
  EXPECT_EQ(s.seal(plain.data(), 0, out.data(), out.size()), 0u);
  EXPECT_EQ(s.seal(plain.data(), 100, out.data(), 100 + secure::kOverhead - 1), 0u);
  EXPECT_EQ(s.next_counter(), 0u);  // nothing was sent
  EXPECT_EQ(s.seal(plain.data(), 100, out.data(), 100 + secure::kOverhead), 135u);
  std::vector<uint8_t> big(secure::kMaxPlaintextSize + 1);
  EXPECT_TRUE(s.seal(big.data(), big.size()).empty());
  // The last counter is never used: the stream needs a new id then.
  s.set_next_counter(UINT64_MAX - 1);
  EXPECT_FALSE(s.seal(plain.data(), 10).empty());
  EXPECT_TRUE(s.seal(plain.data(), 10).empty());
}

TEST(SecureChannel, StreamIdIs56BitsAndRandom) {
  Sealer s(golden_key(), ~uint64_t{0});
  EXPECT_EQ(s.stream_id(), secure::kStreamIdMask);
  const uint64_t a = Sealer::random_stream_id(), b = Sealer::random_stream_id();
  EXPECT_NE(a, b);
  EXPECT_EQ(a & ~secure::kStreamIdMask, 0u);
}

// ---------------------------------------------------------------------------------
// Every rejection reason, counted.

TEST(SecureChannel, PlainDatagramsAreRejected) {
  Opener o(golden_key());
  std::vector<uint8_t> out;
  EXPECT_EQ(o.open(v1_header().data(), 12, &out), Reject::kPlain);
  const auto audio = v1_audio();
  EXPECT_EQ(o.open(audio.data(), audio.size(), &out), Reject::kPlain);
  EXPECT_EQ(o.open(nullptr, 0, &out), Reject::kPlain);
  const uint8_t junk[3] = {0xF4, 1, 0};
  EXPECT_EQ(o.open(junk, 3, &out), Reject::kPlain);
  EXPECT_EQ(o.rejected(Reject::kPlain), 4u);
  EXPECT_TRUE(out.empty());
}

TEST(SecureChannel, TruncatedDatagramsAreRejected) {
  Sealer s(golden_key(), 9);
  Opener o(golden_key());
  const auto d = seal_one(s, v1_header());
  std::vector<uint8_t> out;
  for (size_t n = 1; n < secure::kHeaderSize + 1 + secure::kTagSize; n++)
    EXPECT_EQ(o.open(d.data(), n, &out), Reject::kTruncated) << n;
  // Longer than the minimum but cut short: the tag does not verify.
  EXPECT_EQ(o.open(d.data(), d.size() - 1, &out), Reject::kAuthFailed);
  EXPECT_EQ(o.rejected(Reject::kTruncated), secure::kHeaderSize + secure::kTagSize);
  EXPECT_EQ(o.open(d.data(), d.size(), &out), Reject::kNone);
}

TEST(SecureChannel, BadVersionIsRejected) {
  Sealer s(golden_key(), 9);
  Opener o(golden_key());
  auto d = seal_one(s, v1_header());
  std::vector<uint8_t> out;
  auto v2 = d;
  v2[1] = 2;
  EXPECT_EQ(o.open(v2.data(), v2.size(), &out), Reject::kBadVersion);
  EXPECT_EQ(o.open(v2.data(), 2, &out), Reject::kBadVersion);  // before the length
  for (size_t i : {9, 10}) {
    auto g = d;
    g[i] = 1;
    EXPECT_EQ(o.open(g.data(), g.size(), &out), Reject::kBadVersion) << i;
  }
  EXPECT_EQ(o.rejected(Reject::kBadVersion), 4u);
  EXPECT_EQ(o.open(d.data(), d.size(), &out), Reject::kNone);
}

TEST(SecureChannel, AnotherKeyFailsAuthentication) {
  Sealer s(other_key(), 9);
  Opener o(golden_key());
  std::vector<uint8_t> out;
  for (int i = 0; i < 10; i++) {
    const auto d = seal_one(s, v1_audio());
    EXPECT_EQ(o.open(d.data(), d.size(), &out), Reject::kAuthFailed);
  }
  EXPECT_EQ(o.rejected(Reject::kAuthFailed), 10u);
  EXPECT_EQ(o.streams(), 0u);  // a stream is only created by an authenticated datagram
  EXPECT_EQ(o.opened(), 0u);
}

// Any single changed bit, in the header (associated data), the ciphertext or the tag.
TEST(SecureChannel, TamperedDatagramsFailAuthentication) {
  Sealer s(golden_key(), 9);
  const auto d = seal_one(s, v1_audio());
  Opener o(golden_key());
  std::vector<uint8_t> out;
  size_t n = 0;
  for (size_t i = 0; i < d.size(); i++) {
    if (i == 0 || i == 1 || i == 9 || i == 10) continue;  // framing, rejected before the AEAD
    for (int bit = 0; bit < 8; bit++) {
      auto t = d;
      t[i] ^= static_cast<uint8_t>(1 << bit);
      ASSERT_EQ(o.open(t.data(), t.size(), &out), Reject::kAuthFailed) << i << "." << bit;
      n++;
    }
  }
  EXPECT_EQ(o.rejected(Reject::kAuthFailed), n);
  // The original still opens: no forgery moved the window.
  EXPECT_EQ(o.open(d.data(), d.size(), &out), Reject::kNone);
  EXPECT_EQ(out, v1_audio());
}

TEST(SecureChannel, ReplayedDatagramsAreRejected) {
  Sealer s(golden_key(), 9);
  Opener o(golden_key());
  std::vector<std::vector<uint8_t>> sent;
  for (int i = 0; i < 50; i++) sent.push_back(seal_one(s, v1_audio()));
  std::vector<uint8_t> out;
  for (const auto& d : sent) ASSERT_EQ(o.open(d.data(), d.size(), &out), Reject::kNone);
  for (const auto& d : sent) EXPECT_EQ(o.open(d.data(), d.size(), &out), Reject::kReplayed);
  EXPECT_EQ(o.rejected(Reject::kReplayed), 50u);
  EXPECT_EQ(o.opened(), 50u);
}

// A forged datagram claiming a counter far ahead does not move the window: the stream
// continues, and the real datagrams are not mistaken for old ones.
TEST(SecureChannel, ForgedCountersNeverMoveTheWindow) {
  Sealer s(golden_key(), 9);
  Opener o(golden_key());
  std::vector<uint8_t> out;
  auto first = seal_one(s, v1_audio());
  ASSERT_EQ(o.open(first.data(), first.size(), &out), Reject::kNone);
  auto forged = seal_one(s, v1_audio());
  wire::write_u64le(forged.data() + 11, 1000000);  // counter far ahead, tag now wrong
  EXPECT_EQ(o.open(forged.data(), forged.size(), &out), Reject::kAuthFailed);
  Sealer attacker(other_key(), 9);  // same stream id, another key
  attacker.set_next_counter(5000);
  const auto f2 = seal_one(attacker, v1_audio());
  EXPECT_EQ(o.open(f2.data(), f2.size(), &out), Reject::kAuthFailed);
  s.set_next_counter(1);
  for (int i = 0; i < 5; i++) {
    const auto d = seal_one(s, v1_audio());
    EXPECT_EQ(o.open(d.data(), d.size(), &out), Reject::kNone) << i;
  }
}

// ---------------------------------------------------------------------------------
// The replay window's edges.

TEST(ReplayWindow, EmptyAcceptsAnything) {
  ReplayWindow w;
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.check(0), Reject::kNone);
  EXPECT_EQ(w.check(UINT64_MAX), Reject::kNone);
  w.accept(12345);
  EXPECT_FALSE(w.empty());
  EXPECT_EQ(w.highest(), 12345u);
  EXPECT_EQ(w.check(12345), Reject::kReplayed);
}

TEST(ReplayWindow, EdgesOfTheWindow) {
  ReplayWindow w;
  const uint64_t top = 5000;
  w.accept(top);
  // kWindowSize - 1 behind: still inside, once.
  EXPECT_EQ(w.check(top - (secure::kWindowSize - 1)), Reject::kNone);
  w.accept(top - (secure::kWindowSize - 1));
  EXPECT_EQ(w.check(top - (secure::kWindowSize - 1)), Reject::kReplayed);
  // kWindowSize behind and more: too old.
  EXPECT_EQ(w.check(top - secure::kWindowSize), Reject::kTooOld);
  EXPECT_EQ(w.check(0), Reject::kTooOld);
  // Everything in between not seen yet is accepted (late, reordered).
  for (uint64_t c = top - (secure::kWindowSize - 2); c < top; c++) {
    ASSERT_EQ(w.check(c), Reject::kNone) << c;
    w.accept(c);
  }
  for (uint64_t c = top - (secure::kWindowSize - 1); c <= top; c++)
    ASSERT_EQ(w.check(c), Reject::kReplayed) << c;
  EXPECT_EQ(w.highest(), top);
}

TEST(ReplayWindow, StartsNearZero) {
  ReplayWindow w;
  w.accept(3);
  EXPECT_EQ(w.check(0), Reject::kNone);  // 3 behind, inside: not "too old" by underflow
  w.accept(0);
  EXPECT_EQ(w.check(0), Reject::kReplayed);
  EXPECT_EQ(w.check(1), Reject::kNone);
}

// Moving forward reuses the circular bitmap's slots: a slot that held an old counter
// must read as unseen for the new counter in it.
TEST(ReplayWindow, ForwardMovesClearReusedSlots) {
  for (uint64_t step : {uint64_t{1}, uint64_t{63}, uint64_t{64}, uint64_t{65}, uint64_t{1023},
                        uint64_t{1024}, uint64_t{1025}, uint64_t{5000}}) {
    ReplayWindow w;
    for (uint64_t c = 0; c < secure::kWindowSize; c++) w.accept(c);  // every slot set
    const uint64_t next = secure::kWindowSize - 1 + step;
    w.accept(next);
    EXPECT_EQ(w.highest(), next);
    for (uint64_t c = next > secure::kWindowSize - 1 ? next - (secure::kWindowSize - 1) : 0;
         c < next; c++) {
      const Reject expect = c < secure::kWindowSize ? Reject::kReplayed : Reject::kNone;
      ASSERT_EQ(w.check(c), expect) << "step " << step << " counter " << c;
    }
    EXPECT_EQ(w.check(next - secure::kWindowSize), Reject::kTooOld) << step;
  }
}

TEST(ReplayWindow, SparseWrapAroundTheBitmap) {
  ReplayWindow w;
  std::vector<uint64_t> accepted;
  for (uint64_t c = 100; c < 10000; c += 7) {
    ASSERT_EQ(w.check(c), Reject::kNone) << c;
    w.accept(c);
    accepted.push_back(c);
  }
  const uint64_t top = w.highest();
  for (uint64_t c = top - (secure::kWindowSize - 1); c <= top; c++) {
    const bool seen = (c - 100) % 7 == 0;
    ASSERT_EQ(w.check(c), seen ? Reject::kReplayed : Reject::kNone) << c;
  }
}

TEST(ReplayWindow, CountersNearTheTop) {
  ReplayWindow w;
  w.accept(UINT64_MAX - 1);
  EXPECT_EQ(w.check(UINT64_MAX), Reject::kNone);
  w.accept(UINT64_MAX);
  EXPECT_EQ(w.check(UINT64_MAX), Reject::kReplayed);
  EXPECT_EQ(w.check(UINT64_MAX - 1), Reject::kReplayed);
  EXPECT_EQ(w.check(UINT64_MAX - 2), Reject::kNone);
  EXPECT_EQ(w.check(UINT64_MAX - secure::kWindowSize), Reject::kTooOld);
  EXPECT_EQ(w.check(0), Reject::kTooOld);
}

TEST(SecureChannel, TooOldDatagramsAreRejected) {
  Sealer s(golden_key(), 9);
  Opener o(golden_key());
  std::vector<uint8_t> out;
  const auto old = seal_one(s, v1_audio());  // counter 0, held back
  s.set_next_counter(secure::kWindowSize);
  const auto now = seal_one(s, v1_audio());
  ASSERT_EQ(o.open(now.data(), now.size(), &out), Reject::kNone);
  EXPECT_EQ(o.open(old.data(), old.size(), &out), Reject::kTooOld);
  EXPECT_EQ(o.rejected(Reject::kTooOld), 1u);
}

// ---------------------------------------------------------------------------------
// Streams.

// A restarted sender (new stream id, counters from 0 again) is followed from its first
// datagram; the old stream's datagrams replayed afterwards are still refused.
TEST(SecureChannel, RestartWithNewStreamIdIsFollowedAtOnce) {
  Opener o(golden_key());
  std::vector<uint8_t> out;
  std::vector<std::vector<uint8_t>> first_run;
  {
    Sealer a(golden_key(), 111);
    for (int i = 0; i < 20; i++) first_run.push_back(seal_one(a, v1_audio()));
  }
  for (const auto& d : first_run) ASSERT_EQ(o.open(d.data(), d.size(), &out), Reject::kNone);
  Sealer b(golden_key(), 222);
  auto d0 = seal_one(b, v1_header());
  const auto r = o.open_in_place(d0.data(), d0.size());
  EXPECT_EQ(r.reject, Reject::kNone);
  EXPECT_TRUE(r.new_stream);
  EXPECT_EQ(r.counter, 0u);
  for (const auto& d : first_run) EXPECT_EQ(o.open(d.data(), d.size(), &out), Reject::kReplayed);
  EXPECT_EQ(o.streams(), 2u);
}

// At most kMaxStreams streams are kept, the least recently used forgotten first.
TEST(SecureChannel, StreamTableIsBounded) {
  Opener o(golden_key());
  std::vector<uint8_t> out;
  std::vector<std::vector<uint8_t>> firsts;
  for (uint64_t id = 1; id <= secure::kMaxStreams + 4; id++) {
    Sealer s(golden_key(), id);
    firsts.push_back(seal_one(s, v1_audio()));
    ASSERT_EQ(o.open(firsts.back().data(), firsts.back().size(), &out), Reject::kNone);
    EXPECT_LE(o.streams(), secure::kMaxStreams);
  }
  EXPECT_EQ(o.streams(), secure::kMaxStreams);
  // The newest kMaxStreams remember their datagrams (newest first: a rejection changes
  // nothing); the four oldest were forgotten, so their replay passes the secure layer
  // (docs/reliability.md, threat model: the jitter buffer's timing is what is left).
  for (size_t i = firsts.size(); i-- > 0;) {
    const Reject expect = i < 4 ? Reject::kNone : Reject::kReplayed;
    EXPECT_EQ(o.open(firsts[i].data(), firsts[i].size(), &out), expect) << i;
  }
  EXPECT_EQ(o.streams(), secure::kMaxStreams);
}

// Random bytes, with and without the marker: never a crash, never an authenticated
// datagram, never a stream.
TEST(SecureChannel, RandomInputIsRejected) {
  Opener o(golden_key());
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(2000), out;
  for (int i = 0; i < 20000; i++) {
    const size_t n = rng() % buf.size();
    for (size_t j = 0; j < n; j++) buf[j] = static_cast<uint8_t>(rng());
    if (n > 0 && i % 2) buf[0] = secure::kMarker;
    if (n > 1 && i % 4 == 1) buf[1] = secure::kVersion;
    if (n > 10 && i % 8 == 1) buf[9] = buf[10] = 0;
    ASSERT_NE(o.open(buf.data(), n, &out), Reject::kNone);
  }
  EXPECT_EQ(o.streams(), 0u);
  EXPECT_EQ(o.rejected_total(), 20000u);
  EXPECT_GT(o.rejected(Reject::kAuthFailed), 0u);
}

TEST(SecureChannel, RejectNames) {
  EXPECT_STREQ(secure::reject_name(Reject::kPlain), "plain");
  EXPECT_STREQ(secure::reject_name(Reject::kTruncated), "truncated");
  EXPECT_STREQ(secure::reject_name(Reject::kBadVersion), "bad-version");
  EXPECT_STREQ(secure::reject_name(Reject::kAuthFailed), "auth-failed");
  EXPECT_STREQ(secure::reject_name(Reject::kReplayed), "replayed");
  EXPECT_STREQ(secure::reject_name(Reject::kTooOld), "too-old");
}
