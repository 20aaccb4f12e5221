// SPDX-License-Identifier: LGPL-2.1-or-later
// The secure clock exchange (core/secure_clock.h): a request and its answer round-trip;
// the datagrams carry no readable time; every way an answer can be forged, replayed,
// changed or misdirected is refused with its reason and leaves the client's state as it
// was; the provider answers each request once and keeps forgeries out of its client table.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "secure_channel.h"
#include "secure_clock.h"

namespace {

using syncwave::secure::ClockClient;
using syncwave::secure::ClockReject;
using syncwave::secure::ClockServer;
using syncwave::secure::Key;
namespace secure = syncwave::secure;

constexpr uint64_t kSecond = 1000000000ull;

Key key_of(uint8_t fill) {
  Key stream{};
  stream.fill(fill);
  Key clock{};
  EXPECT_TRUE(secure::derive_clock_key(stream, &clock));
  return clock;
}

class SecureClock : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!secure::available()) GTEST_SKIP() << "libsodium unavailable";
  }
};

bool contains(const std::vector<uint8_t>& d, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
  for (size_t i = 0; i + 8 <= d.size(); i++)
    if (std::memcmp(d.data() + i, b, 8) == 0) return true;
  return false;
}

TEST_F(SecureClock, SubkeyDiffersFromTheStreamKeyAndIsDeterministic) {
  Key stream{};
  stream.fill(7);
  Key a{}, b{};
  ASSERT_TRUE(secure::derive_clock_key(stream, &a));
  ASSERT_TRUE(secure::derive_clock_key(stream, &b));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, stream);
  Key other{};
  other.fill(8);
  ASSERT_TRUE(secure::derive_clock_key(other, &b));
  EXPECT_NE(a, b);
}

TEST_F(SecureClock, AnExchangeRoundTripsAndHidesTheTimes) {
  const Key k = key_of(1);
  ClockClient client(k);
  ClockServer server(k);
  const uint64_t t1 = 1700000000 * kSecond + 123456789;
  std::vector<uint8_t> req = client.request(t1);
  ASSERT_EQ(req.size(), secure::kClockRequestSize);
  EXPECT_EQ(req[0], secure::kClockMarker);
  EXPECT_FALSE(contains(req, t1)) << "t1 readable in the request";
  const uint64_t remote = 1800000000 * kSecond + 42;
  std::vector<uint8_t> ans;
  ASSERT_EQ(server.answer(req.data(), req.size(), remote, &ans), ClockReject::kNone);
  ASSERT_EQ(ans.size(), secure::kClockAnswerSize);
  EXPECT_FALSE(contains(ans, remote)) << "the provider's time readable in the answer";
  EXPECT_FALSE(contains(ans, t1));
  uint64_t got_t1 = 0, got_remote = 0;
  ASSERT_EQ(client.open_answer(ans.data(), ans.size(), (int64_t)(t1 + 300000), &got_t1, &got_remote),
            ClockReject::kNone);
  EXPECT_EQ(got_t1, t1);
  EXPECT_EQ(got_remote, remote);
  EXPECT_EQ(client.accepted(), 1u);
  EXPECT_EQ(server.answered(), 1u);
  EXPECT_EQ(server.clients(), 1u);
}

// Everything a client refuses, each with its reason; none of them is taken, and the
// genuine answer is still accepted afterwards (the refusals changed nothing).
TEST_F(SecureClock, ClientRefusesForgedReplayedChangedAndMisdirectedAnswers) {
  const Key k = key_of(1);
  ClockClient client(k);
  ClockServer server(k);
  const uint64_t t1 = 5 * kSecond;
  std::vector<uint8_t> req = client.request(t1);
  std::vector<uint8_t> ans;
  ASSERT_EQ(server.answer(req.data(), req.size(), 77 * kSecond, &ans), ClockReject::kNone);
  uint64_t a = 0, b = 0;
  const int64_t now = (int64_t)(t1 + 1000000);

  // A plain GstNetTimePacket (16 bytes) and garbage.
  std::vector<uint8_t> plain(16, 0x11);
  EXPECT_EQ(client.open_answer(plain.data(), plain.size(), now, &a, &b), ClockReject::kPlain);
  EXPECT_EQ(client.open_answer(nullptr, 0, now, &a, &b), ClockReject::kPlain);
  // Cut short, or grown.
  EXPECT_EQ(client.open_answer(ans.data(), ans.size() - 1, now, &a, &b), ClockReject::kTruncated);
  std::vector<uint8_t> longer = ans;
  longer.push_back(0);
  EXPECT_EQ(client.open_answer(longer.data(), longer.size(), now, &a, &b), ClockReject::kTruncated);
  // Another version.
  std::vector<uint8_t> v2 = ans;
  v2[1] = 2;
  EXPECT_EQ(client.open_answer(v2.data(), v2.size(), now, &a, &b), ClockReject::kBadVersion);
  // Every byte of the sealed part changed in turn: auth-failed, and the header's too.
  for (size_t i = 2; i < ans.size(); i++) {
    if (i == 9 || i == 10) continue;
    std::vector<uint8_t> t = ans;
    t[i] ^= 0x01;
    EXPECT_EQ(client.open_answer(t.data(), t.size(), now, &a, &b), ClockReject::kAuthFailed) << i;
  }
  // An answer sealed with another secret.
  {
    ClockServer other(key_of(2));
    std::vector<uint8_t> forged;
    ASSERT_EQ(other.answer(req.data(), req.size(), 1, &forged), ClockReject::kAuthFailed)
        << "another secret's provider cannot even read the request";
  }
  // An answer to another client's request (same secret): it echoes that client's id.
  {
    ClockClient other(k);
    std::vector<uint8_t> oreq = other.request(t1);
    std::vector<uint8_t> oans;
    ASSERT_EQ(server.answer(oreq.data(), oreq.size(), 1, &oans), ClockReject::kNone);
    EXPECT_EQ(client.open_answer(oans.data(), oans.size(), now, &a, &b),
              ClockReject::kUnknownRequest);
  }
  // Too late: more than a second after the request.
  EXPECT_EQ(client.open_answer(ans.data(), ans.size(), (int64_t)(t1 + 2 * kSecond), &a, &b),
            ClockReject::kUnknownRequest);
  EXPECT_EQ(client.accepted(), 0u);

  // The genuine answer, in time: taken once, then a replay is refused.
  ASSERT_EQ(client.open_answer(ans.data(), ans.size(), now, &a, &b), ClockReject::kNone);
  EXPECT_EQ(a, t1);
  EXPECT_EQ(b, 77 * kSecond);
  EXPECT_EQ(client.open_answer(ans.data(), ans.size(), now, &a, &b), ClockReject::kReplayed);
  EXPECT_EQ(client.accepted(), 1u);
  EXPECT_EQ(client.rejected(ClockReject::kAuthFailed), ans.size() - 4);
  EXPECT_GE(client.rejected_total(), ans.size());
}

// An answer echoing a counter this client never sent, or one pushed out by newer
// requests, is unknown; one request's answer cannot stand for another's.
TEST_F(SecureClock, OnlyTheLastRequestsCanBeAnswered) {
  const Key k = key_of(3);
  ClockClient client(k);
  ClockServer server(k);
  std::vector<std::vector<uint8_t>> answers;
  for (uint64_t i = 0; i < secure::kClockOutstanding + 4; i++) {
    std::vector<uint8_t> req = client.request(kSecond + i * 1000);
    std::vector<uint8_t> ans;
    ASSERT_EQ(server.answer(req.data(), req.size(), i, &ans), ClockReject::kNone);
    answers.push_back(ans);
  }
  uint64_t a = 0, b = 0;
  const int64_t now = (int64_t)(kSecond + 100000);
  // The first four were pushed out by the sixteen after them.
  for (int i = 0; i < 4; i++)
    EXPECT_EQ(client.open_answer(answers[i].data(), answers[i].size(), now, &a, &b),
              ClockReject::kUnknownRequest)
        << i;
  for (size_t i = 4; i < answers.size(); i++) {
    ASSERT_EQ(client.open_answer(answers[i].data(), answers[i].size(), now, &a, &b),
              ClockReject::kNone)
        << i;
    EXPECT_EQ(a, kSecond + i * 1000);
    EXPECT_EQ(b, i);
  }
}

// The provider answers a request once, refuses the rest by reason, and a flood of
// forgeries from random stream ids never makes a client entry.
TEST_F(SecureClock, ProviderAnswersEachRequestOnceAndKeepsForgeriesOut) {
  const Key k = key_of(4);
  ClockClient client(k);
  ClockServer server(k);
  std::vector<uint8_t> req = client.request(9 * kSecond);
  std::vector<uint8_t> ans;
  ASSERT_EQ(server.answer(req.data(), req.size(), 1, &ans), ClockReject::kNone);
  EXPECT_EQ(server.answer(req.data(), req.size(), 2, &ans), ClockReject::kReplayed);
  std::vector<uint8_t> plain(16, 0);
  EXPECT_EQ(server.answer(plain.data(), plain.size(), 3, &ans), ClockReject::kPlain);
  EXPECT_EQ(server.answer(req.data(), req.size() - 1, 3, &ans), ClockReject::kTruncated);
  ClockClient stranger(key_of(5));
  for (int i = 0; i < 1000; i++) {
    ClockClient forger(key_of(5));  // another secret, a new stream id each time
    std::vector<uint8_t> f = forger.request((uint64_t)i);
    EXPECT_EQ(server.answer(f.data(), f.size(), 4, &ans), ClockReject::kAuthFailed);
  }
  EXPECT_EQ(server.clients(), 1u);
  EXPECT_EQ(server.answered(), 1u);
  EXPECT_EQ(server.rejected(ClockReject::kAuthFailed), 1000u);
  // Far behind the client's highest counter: too old.
  for (uint64_t i = 0; i < secure::kWindowSize + 2; i++) {
    std::vector<uint8_t> r = client.request(i);
    ASSERT_EQ(server.answer(r.data(), r.size(), 5, &ans), ClockReject::kNone);
  }
  EXPECT_EQ(server.answer(req.data(), req.size(), 6, &ans), ClockReject::kTooOld);
}

}  // namespace
