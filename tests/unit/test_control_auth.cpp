// SPDX-License-Identifier: LGPL-2.1-or-later
// Control-surface authentication (core/control_auth.h): golden vectors, every
// rejection reason, the skew window's edges and the nonce store's bounds.
//
// The golden values were computed independently of libsodium, with Python's hashlib:
//   control key = blake2b(b"", digest_size=32, key=stream_key,
//                         salt=(1).to_bytes(8, "little") + bytes(8),
//                         person=b"SWcontrl" + bytes(8))
//   (what crypto_kdf_derive_from_key(32, 1, "SWcontrl", stream_key) is), and
//   mac = hmac.new(control_key, signed_text, hashlib.sha256).
// The stream key is docs/wire-format.md's example (passphrase "correct horse battery
// staple").

#include <gtest/gtest.h>

#include <string>

#include "control_auth.h"

using namespace syncwave;
using control_auth::Key;
using control_auth::Reject;
using control_auth::Verifier;

namespace {

const char* kStreamKeyHex = "dec716fe60d232fa024fd555409e370f72fd35a0c752d956eb6d0e611976b66b";
const char* kControlKeyHex = "97dbbe3d85caf85f67d7c07b58a0ad8e46bb8f48fdc68fe74eb1c9a23a964d3c";
constexpr int64_t kT = 1764763200000;  // 2025-12-03 12:00:00 UTC, in ms
const char* kNonce = "000102030405060708090a0b0c0d0e0f";
const char* kPath = "/api/receivers/Kitchen";
const char* kBody = "{\"volume\":0.25}";
const char* kGolden =
    "v1.1764763200000.000102030405060708090a0b0c0d0e0f."
    "8fd83b194b4a19b435934ecffffbe18e16ea8e9a1c023bef4fd6b913cf6bcd0c";

Key control_key() {
  Key k{};
  EXPECT_TRUE(control_auth::key_from_hex(kControlKeyHex, &k));
  return k;
}

std::string nonce(int i) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032x", i);
  return buf;
}

}  // namespace

TEST(ControlAuth, ControlKeyIsTheKdfSubkeyOfTheStreamKey) {
  ASSERT_TRUE(control_auth::available());
  secure::Key stream{};
  Key sk{};
  ASSERT_TRUE(control_auth::key_from_hex(kStreamKeyHex, &sk));
  std::copy(sk.begin(), sk.end(), stream.begin());
  Key ck{};
  ASSERT_TRUE(control_auth::derive_control_key(stream, &ck));
  EXPECT_EQ(control_auth::key_to_hex(ck), kControlKeyHex);
}

TEST(ControlAuth, ControlKeyFromThePassphrase) {
  Key ck{};
  ASSERT_TRUE(control_auth::control_key_from_passphrase("correct horse battery staple", &ck));
  EXPECT_EQ(control_auth::key_to_hex(ck), kControlKeyHex);
  EXPECT_FALSE(control_auth::control_key_from_passphrase("", &ck));
}

TEST(ControlAuth, GoldenTokens) {
  const Key k = control_key();
  EXPECT_EQ(control_auth::signed_text(kT, kNonce, "POST", kPath, kBody),
            std::string("SWAUTH1\n1764763200000\n000102030405060708090a0b0c0d0e0f\nPOST\n") +
                kPath + "\n" + kBody);
  EXPECT_EQ(control_auth::make_token(k, kT, kNonce, "POST", kPath, kBody), kGolden);
  EXPECT_EQ(
      control_auth::make_token(k, kT, "ffeeddccbbaa99887766554433221100", "GET", "/api/events", ""),
      "v1.1764763200000.ffeeddccbbaa99887766554433221100."
      "6735eec7bbba586d95b2542f9dddc8d9183c2fe5709a3b2e9940c9ed103c75f2");
  EXPECT_EQ(control_auth::make_token(k, kT, "00112233445566778899aabbccddeeff", "SWCTL1-S",
                                     "Living room", "{\"mute\":true}"),
            "v1.1764763200000.00112233445566778899aabbccddeeff."
            "ba03dc65c96c3ef85e3e3202afd8484c5decd7c919e527debeb37132fc072a66");
}

TEST(ControlAuth, KeyHex) {
  Key k{};
  EXPECT_TRUE(control_auth::key_from_hex(
      "97DBBE3D85CAF85F67D7C07B58A0AD8E46BB8F48FDC68FE74EB1C9A23A964D3C", &k));
  EXPECT_EQ(control_auth::key_to_hex(k), kControlKeyHex);
  EXPECT_FALSE(control_auth::key_from_hex("", &k));
  EXPECT_FALSE(control_auth::key_from_hex(std::string(kControlKeyHex) + "00", &k));
  EXPECT_FALSE(control_auth::key_from_hex(std::string(kControlKeyHex).substr(2) + "zz", &k));
  EXPECT_EQ(control_auth::key_to_hex(k), kControlKeyHex);  // unchanged by a failed parse
}

TEST(ControlAuth, RandomNoncesAreHexAndDiffer) {
  const std::string a = control_auth::random_nonce(), b = control_auth::random_nonce();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  control_auth::Token t;
  EXPECT_EQ(
      control_auth::parse_token(control_auth::make_token(control_key(), kT, "GET", "/", ""), &t),
      Reject::kNone);
}

TEST(ControlAuth, AcceptsTheGoldenTokenOnce) {
  Verifier v(control_key());
  EXPECT_EQ(v.verify(kGolden, "POST", kPath, kBody, kT), Reject::kNone);
  EXPECT_EQ(v.verify(kGolden, "POST", kPath, kBody, kT + 1), Reject::kReplayed);
  EXPECT_EQ(v.accepted(), 1u);
  EXPECT_EQ(v.rejected(Reject::kReplayed), 1u);
  EXPECT_EQ(v.nonces(), 1u);
}

TEST(ControlAuth, MissingAndMalformed) {
  Verifier v(control_key());
  EXPECT_EQ(v.verify("", "POST", kPath, kBody, kT), Reject::kMissing);
  const std::string mac = std::string(kGolden).substr(std::string(kGolden).rfind('.') + 1);
  for (const std::string& bad : {
           std::string("v2.1764763200000.") + kNonce + "." + mac,
           std::string("1764763200000.") + kNonce + "." + mac,
           std::string("v1.") + kNonce + "." + mac,                    // no timestamp
           std::string("v1..") + kNonce + "." + mac,                   // empty timestamp
           std::string("v1.-1764763200000.") + kNonce + "." + mac,     // a sign
           std::string("v1.01764763200000.") + kNonce + "." + mac,     // a leading zero
           std::string("v1.17647632000000000.") + kNonce + "." + mac,  // 17 digits
           std::string("v1.1764763200000.") + std::string(kNonce).substr(1) + "." + mac,
           std::string("v1.1764763200000.") + "000102030405060708090A0B0C0D0E0F." + mac,
           std::string("v1.1764763200000.") + kNonce + "." + mac.substr(1),
           std::string("v1.1764763200000.") + kNonce + "." + mac + "0",
           std::string("v1.1764763200000.") + kNonce + "." + mac + ".x",
           std::string(kGolden) + std::string(300, 'a'),
           std::string("v1.1764763200000.") + kNonce,
           std::string("Bearer ") + kGolden,
           std::string("v1.") + std::string(1, '\0') + "." + kNonce + "." + mac,
       })
    EXPECT_EQ(v.verify(bad, "POST", kPath, kBody, kT), Reject::kMalformed) << bad;
  // Control characters in the method or path would make the signed text ambiguous.
  EXPECT_EQ(v.verify(kGolden, "POST", "/api/receivers/Kit\nchen", kBody, kT), Reject::kMalformed);
  EXPECT_EQ(v.verify(kGolden, "", kPath, kBody, kT), Reject::kMalformed);
  EXPECT_EQ(v.rejected(Reject::kMissing), 1u);
  EXPECT_EQ(v.rejected(Reject::kMalformed), 18u);
  EXPECT_EQ(v.nonces(), 0u);
  // Still good afterwards: nothing was stored.
  EXPECT_EQ(v.verify(kGolden, "POST", kPath, kBody, kT), Reject::kNone);
}

TEST(ControlAuth, WrongKeyOrChangedRequestIsABadMac) {
  Key other = control_key();
  other[0] ^= 1;
  Verifier v(other);
  EXPECT_EQ(v.verify(kGolden, "POST", kPath, kBody, kT), Reject::kBadMac);
  Verifier right(control_key());
  EXPECT_EQ(right.verify(kGolden, "POST", kPath, "{\"volume\":0}", kT), Reject::kBadMac);
  EXPECT_EQ(right.verify(kGolden, "POST", "/api/receivers/Bedroom", kBody, kT), Reject::kBadMac);
  EXPECT_EQ(right.verify(kGolden, "GET", kPath, kBody, kT), Reject::kBadMac);
  std::string flipped = kGolden;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_EQ(right.verify(flipped, "POST", kPath, kBody, kT), Reject::kBadMac);
  // Another timestamp or nonce under the same MAC.
  std::string later = kGolden;
  later.replace(3, 13, "1764763200001");
  EXPECT_EQ(right.verify(later, "POST", kPath, kBody, kT), Reject::kBadMac);
  std::string renonced = kGolden;
  renonced[17] = 'f';
  EXPECT_EQ(right.verify(renonced, "POST", kPath, kBody, kT), Reject::kBadMac);
  EXPECT_EQ(right.rejected(Reject::kBadMac), 6u);
  EXPECT_EQ(right.nonces(), 0u);
  // A forged token does not use up the nonce of the genuine one.
  EXPECT_EQ(right.verify(kGolden, "POST", kPath, kBody, kT), Reject::kNone);
}

TEST(ControlAuth, SkewWindowEdges) {
  const Key k = control_key();
  Verifier v(k);
  const int64_t s = control_auth::kMaxSkewMs;
  EXPECT_EQ(v.verify(kGolden, "POST", kPath, kBody, kT + s), Reject::kNone);  // 30 s old: good
  Verifier v2(k);
  EXPECT_EQ(v2.verify(kGolden, "POST", kPath, kBody, kT - s), Reject::kNone);  // 30 s ahead
  Verifier v3(k);
  EXPECT_EQ(v3.verify(kGolden, "POST", kPath, kBody, kT + s + 1), Reject::kStale);
  EXPECT_EQ(v3.verify(kGolden, "POST", kPath, kBody, kT - s - 1), Reject::kStale);
  EXPECT_EQ(v3.rejected(Reject::kStale), 2u);
  EXPECT_EQ(v3.nonces(), 0u);
}

TEST(ControlAuth, AReplayAfterTheNonceExpiredIsStaleEvenIfTheClockGoesBack) {
  const Key k = control_key();
  Verifier v(k);
  ASSERT_EQ(v.verify(kGolden, "POST", kPath, kBody, kT), Reject::kNone);
  // A later request, after the golden one left the window: its nonce is forgotten and
  // the floor is raised to its timestamp.
  const int64_t later = kT + control_auth::kMaxSkewMs + 1;
  ASSERT_EQ(v.verify(control_auth::make_token(k, later, nonce(1), "GET", "/api/receivers", ""),
                     "GET", "/api/receivers", "", later),
            Reject::kNone);
  EXPECT_EQ(v.nonces(), 1u);
  EXPECT_EQ(v.floor_ms(), kT);
  // The wall clock steps back to the golden token's time: still refused.
  EXPECT_EQ(v.verify(kGolden, "POST", kPath, kBody, kT), Reject::kStale);
  // A fresh token just above the floor is fine.
  EXPECT_EQ(v.verify(control_auth::make_token(k, kT + 1, nonce(2), "POST", kPath, kBody), "POST",
                     kPath, kBody, kT),
            Reject::kNone);
}

TEST(ControlAuth, TheNonceStoreIsBoundedAndFailsClosed) {
  const Key k = control_key();
  Verifier v(k, control_auth::kMaxSkewMs, 4);
  for (int i = 0; i < 4; i++)
    ASSERT_EQ(v.verify(control_auth::make_token(k, kT + i, nonce(i), "GET", "/", ""), "GET", "/",
                       "", kT + 10),
              Reject::kNone);
  EXPECT_EQ(v.nonces(), 4u);
  // A fifth evicts the oldest (ts kT) and raises the floor to it.
  const std::string oldest = control_auth::make_token(k, kT, nonce(0), "GET", "/", "");
  ASSERT_EQ(v.verify(control_auth::make_token(k, kT + 5, nonce(5), "GET", "/", ""), "GET", "/", "",
                     kT + 10),
            Reject::kNone);
  EXPECT_EQ(v.nonces(), 4u);
  EXPECT_EQ(v.floor_ms(), kT);
  // The evicted one cannot come back.
  EXPECT_EQ(v.verify(oldest, "GET", "/", "", kT + 10), Reject::kStale);
  // A genuine token older than everything kept, when full: evicting would put the floor
  // at or above it, so it is stale and nothing it evicted can return either.
  EXPECT_EQ(v.verify(control_auth::make_token(k, kT + 1, nonce(9), "GET", "/", ""), "GET", "/", "",
                     kT + 10),
            Reject::kStale);
  EXPECT_EQ(v.verify(control_auth::make_token(k, kT + 1, nonce(1), "GET", "/", ""), "GET", "/", "",
                     kT + 10),
            Reject::kStale);
  EXPECT_LE(v.nonces(), 4u);
  // Fresh requests still pass.
  EXPECT_EQ(v.verify(control_auth::make_token(k, kT + 20, nonce(20), "GET", "/", ""), "GET", "/",
                     "", kT + 20),
            Reject::kNone);
}

TEST(ControlAuth, CountsByReason) {
  const Key k = control_key();
  Verifier v(k);
  v.verify("", "GET", "/", "", kT);
  v.verify("junk", "GET", "/", "", kT);
  v.verify(control_auth::make_token(k, kT - 60'000, "GET", "/", ""), "GET", "/", "", kT);
  v.verify(control_auth::make_token(k, kT, "GET", "/", ""), "POST", "/", "", kT);
  const std::string ok = control_auth::make_token(k, kT, "GET", "/", "");
  v.verify(ok, "GET", "/", "", kT);
  v.verify(ok, "GET", "/", "", kT);
  for (Reject r :
       {Reject::kMissing, Reject::kMalformed, Reject::kStale, Reject::kBadMac, Reject::kReplayed})
    EXPECT_EQ(v.rejected(r), 1u) << control_auth::reject_name(r);
  EXPECT_EQ(v.rejected_total(), 5u);
  EXPECT_EQ(v.accepted(), 1u);
  EXPECT_STREQ(control_auth::reject_name(Reject::kBadMac), "bad-mac");
  EXPECT_STREQ(control_auth::reject_name(Reject::kStale), "stale");
}
