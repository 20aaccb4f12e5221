// SPDX-License-Identifier: LGPL-2.1-or-later
// Authentication of the control surface (docs/control.md, "Authentication"): with a
// secret, every control request (the HTTP API, the page's requests, the back channel's
// reports and changes, `syncwave-launch control`) carries a token, a per-request MAC
// under a control key derived from the secret. Pure C++ over libsodium: no GLib, no
// sockets, no clock (the wall-clock time is passed in, milliseconds since 1970). Built
// only with the `secure` meson feature (libsodium found).
//
//   passphrase --Argon2id (secure::derive_key)--> stream key (audio, SWS1)
//   stream key --crypto_kdf_derive_from_key(32, 1, "SWcontrl")--> control key
//
//   client                                              server
//   ts = now (ms), nonce = 16 random bytes              Verifier::verify(token, req, now):
//   mac = HMAC-SHA256(control key,                        missing / malformed
//     "SWAUTH1\n" ts "\n" nonce "\n"                      |ts - now| > 30 s, or ts <= floor: stale
//     METHOD "\n" PATH "\n" BODY)                         mac (constant time): bad-mac
//   token = "v1." ts "." nonce(hex 32) "." mac(hex 64)    nonce seen: replayed
//                                                         else: accepted, nonce kept
//
// Why this and not a fixed token: a fixed token derived from the secret is a password
// sent in the clear over HTTP: anyone who sees one request can send any request
// forever. A MAC over method, path and body can only authorise the request it was made
// for; the timestamp bounds how long it is any good and the nonce store makes it good
// once. Why HMAC-SHA256: the page must compute it in the browser, and WebCrypto is not
// available to a page served over plain http from a LAN address, so the page carries
// its own SHA-256 (a few dozen lines, tested against this module's golden vectors).
// Why a derived key: the control key authorises control only; it cannot open or seal
// the audio, so a phone given the page's key (#key=...) does not hold the stream's
// secret, and a captured request tests a passphrase guess only at Argon2id's cost.
//
// The nonce store: every accepted nonce with its timestamp is kept until the timestamp
// leaves the window; a forgotten nonce (expired, or evicted when kMaxNonces are kept)
// raises the floor to its timestamp, and a token at or below the floor is stale. So a
// token is accepted at most once for the Verifier's lifetime, whatever the clock does;
// only tokens that authenticated are ever stored (forgeries cannot fill it).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "secure_channel.h"

namespace syncwave {
namespace control_auth {

constexpr size_t kKeySize = 32;
using Key = std::array<uint8_t, kKeySize>;

// crypto_kdf_derive_from_key's subkey id and context: fixed by the format.
constexpr uint64_t kSubkeyId = 1;
constexpr const char kContext[9] = "SWcontrl";  // 8 bytes

// A token is good this long either side of the verifier's clock.
constexpr int64_t kMaxSkewMs = 30'000;
// Accepted nonces kept at most (20 requests/s for 60 s from 3 clients, and more).
constexpr size_t kMaxNonces = 4096;
constexpr size_t kNonceBytes = 16;
constexpr size_t kMacBytes = 32;
// "v1." + up to 16 digits + "." + 32 + "." + 64 hex digits.
constexpr size_t kMaxTokenChars = 3 + 16 + 1 + 2 * kNonceBytes + 1 + 2 * kMacBytes;

// Why a request was refused. Keep in step with reject_name() and docs/control.md.
enum class Reject : uint8_t {
  kNone = 0,
  kMissing,    // no token
  kMalformed,  // not "v1.TS.NONCE.MAC", or a method/path with control characters
  kStale,      // the timestamp is more than kMaxSkewMs from now, or at/below the floor
  kBadMac,     // the MAC does not verify: another secret, or a changed request
  kReplayed,   // a genuine token accepted before
  kCount
};
const char* reject_name(Reject r);

// Whether libsodium initialised; every other call needs it.
bool available();

// The control key of a stream key (crypto_kdf_derive_from_key, BLAKE2b).
bool derive_control_key(const secure::Key& stream_key, Key* control_key);
// The same from the passphrase: Argon2id first (slow on purpose, 64 MiB: once).
bool control_key_from_passphrase(const std::string& passphrase, Key* control_key);

// Lower-case hex of the key (what the page takes after #key=), and back; from_hex
// takes exactly 64 hex digits of either case.
std::string key_to_hex(const Key& key);
bool key_from_hex(const std::string& hex, Key* key);

// 16 random bytes as 32 lower-case hex digits.
std::string random_nonce();

// What the MAC covers: "SWAUTH1\n" ts "\n" nonce "\n" method "\n" path "\n" body.
std::string signed_text(int64_t ts_ms, const std::string& nonce, const std::string& method,
                        const std::string& path, const std::string& body);
// "v1.TS.NONCE.MAC" for this request.
std::string make_token(const Key& key, int64_t ts_ms, const std::string& nonce,
                       const std::string& method, const std::string& path, const std::string& body);
// The same with a fresh nonce.
std::string make_token(const Key& key, int64_t ts_ms, const std::string& method,
                       const std::string& path, const std::string& body);

struct Token {
  int64_t ts_ms = 0;
  std::string nonce;  // 32 lower-case hex digits
  std::array<uint8_t, kMacBytes> mac{};
};
// kNone, kMissing (empty) or kMalformed.
Reject parse_token(const std::string& text, Token* token);

class Verifier {
 public:
  explicit Verifier(const Key& key, int64_t max_skew_ms = kMaxSkewMs,
                    size_t max_nonces = kMaxNonces);
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // kNone when `token` authorises this request at `now_ms` (and then the nonce is
  // used up); the reason otherwise, with nothing stored. Checks in this order:
  // missing, malformed, stale, bad-mac, replayed.
  Reject verify(const std::string& token, const std::string& method, const std::string& path,
                const std::string& body, int64_t now_ms);

  uint64_t accepted() const { return accepted_; }
  uint64_t rejected(Reject r) const { return rejected_[static_cast<size_t>(r)]; }
  uint64_t rejected_total() const;
  size_t nonces() const { return by_nonce_.size(); }
  int64_t floor_ms() const { return floor_ms_; }

 private:
  Reject refuse(Reject r);
  void forget_before(int64_t ts_ms);
  void forget_oldest();

  Key key_;
  int64_t max_skew_ms_;
  size_t max_nonces_;
  int64_t floor_ms_ = INT64_MIN;
  std::map<std::string, int64_t> by_nonce_;
  std::multimap<int64_t, std::string> by_time_;
  uint64_t accepted_ = 0;
  std::array<uint64_t, static_cast<size_t>(Reject::kCount)> rejected_{};
};

}  // namespace control_auth
}  // namespace syncwave
