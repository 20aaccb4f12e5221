// SPDX-License-Identifier: LGPL-2.1-or-later
#include "control_auth.h"

#include <sodium.h>

#include <cstring>

namespace syncwave {
namespace control_auth {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Exactly 2 * size hex digits into out.
bool decode_hex(const std::string& hex, uint8_t* out, size_t size) {
  if (hex.size() != 2 * size) return false;
  for (size_t i = 0; i < size; i++) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::string encode_hex(const uint8_t* data, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * size);
  for (size_t i = 0; i < size; i++) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

bool lower_hex(const std::string& s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool has_control_bytes(const std::string& s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  return false;
}

std::array<uint8_t, kMacBytes> mac_of(const Key& key, const std::string& text) {
  std::array<uint8_t, kMacBytes> mac{};
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(text.data()),
                                text.size());
  crypto_auth_hmacsha256_final(&st, mac.data());
  sodium_memzero(&st, sizeof st);
  return mac;
}

}  // namespace

const char* reject_name(Reject r) {
  switch (r) {
    case Reject::kNone:
      return "none";
    case Reject::kMissing:
      return "missing";
    case Reject::kMalformed:
      return "malformed";
    case Reject::kStale:
      return "stale";
    case Reject::kBadMac:
      return "bad-mac";
    case Reject::kReplayed:
      return "replayed";
    case Reject::kCount:
      break;
  }
  return "unknown";
}

bool available() {
  return secure::available();
}

bool derive_control_key(const secure::Key& stream_key, Key* control_key) {
  if (!available()) return false;
  static_assert(crypto_kdf_KEYBYTES == secure::kKeySize, "the stream key is a KDF master key");
  static_assert(sizeof kContext - 1 == crypto_kdf_CONTEXTBYTES, "an 8-byte context");
  return crypto_kdf_derive_from_key(control_key->data(), control_key->size(), kSubkeyId, kContext,
                                    stream_key.data()) == 0;
}

bool control_key_from_passphrase(const std::string& passphrase, Key* control_key) {
  secure::Key stream{};
  const bool ok =
      secure::derive_key(passphrase, &stream) && derive_control_key(stream, control_key);
  sodium_memzero(stream.data(), stream.size());
  return ok;
}

std::string key_to_hex(const Key& key) {
  return encode_hex(key.data(), key.size());
}

bool key_from_hex(const std::string& hex, Key* key) {
  Key k{};
  if (!decode_hex(hex, k.data(), k.size())) return false;
  *key = k;
  return true;
}

std::string random_nonce() {
  uint8_t n[kNonceBytes] = {};
  if (available()) randombytes_buf(n, sizeof n);
  return encode_hex(n, sizeof n);
}

std::string signed_text(int64_t ts_ms, const std::string& nonce, const std::string& method,
                        const std::string& path, const std::string& body) {
  return "SWAUTH1\n" + std::to_string(ts_ms) + "\n" + nonce + "\n" + method + "\n" + path + "\n" +
         body;
}

std::string make_token(const Key& key, int64_t ts_ms, const std::string& nonce,
                       const std::string& method, const std::string& path,
                       const std::string& body) {
  const auto mac = mac_of(key, signed_text(ts_ms, nonce, method, path, body));
  return "v1." + std::to_string(ts_ms) + "." + nonce + "." + encode_hex(mac.data(), mac.size());
}

std::string make_token(const Key& key, int64_t ts_ms, const std::string& method,
                       const std::string& path, const std::string& body) {
  return make_token(key, ts_ms, random_nonce(), method, path, body);
}

Reject parse_token(const std::string& text, Token* token) {
  if (text.empty()) return Reject::kMissing;
  if (text.size() > kMaxTokenChars || text.compare(0, 3, "v1.") != 0) return Reject::kMalformed;
  const size_t dot1 = text.find('.', 3);
  if (dot1 == std::string::npos) return Reject::kMalformed;
  const size_t dot2 = text.find('.', dot1 + 1);
  if (dot2 == std::string::npos) return Reject::kMalformed;
  const std::string ts = text.substr(3, dot1 - 3);
  const std::string nonce = text.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string mac = text.substr(dot2 + 1);
  // The timestamp: 1 to 16 decimal digits, no sign, no leading zero (one spelling only).
  if (ts.empty() || ts.size() > 16 || (ts.size() > 1 && ts[0] == '0')) return Reject::kMalformed;
  int64_t v = 0;
  for (char c : ts) {
    if (c < '0' || c > '9') return Reject::kMalformed;
    v = v * 10 + (c - '0');
  }
  if (nonce.size() != 2 * kNonceBytes || !lower_hex(nonce)) return Reject::kMalformed;
  Token t;
  if (!lower_hex(mac) || !decode_hex(mac, t.mac.data(), t.mac.size())) return Reject::kMalformed;
  t.ts_ms = v;
  t.nonce = nonce;
  *token = t;
  return Reject::kNone;
}

Verifier::Verifier(const Key& key, int64_t max_skew_ms, size_t max_nonces)
    : key_(key), max_skew_ms_(max_skew_ms), max_nonces_(max_nonces < 1 ? 1 : max_nonces) {}

uint64_t Verifier::rejected_total() const {
  uint64_t n = 0;
  for (uint64_t r : rejected_) n += r;
  return n;
}

Reject Verifier::refuse(Reject r) {
  rejected_[static_cast<size_t>(r)]++;
  return r;
}

void Verifier::forget_before(int64_t ts_ms) {
  while (!by_time_.empty() && by_time_.begin()->first < ts_ms) forget_oldest();
}

void Verifier::forget_oldest() {
  auto it = by_time_.begin();
  if (it->first > floor_ms_) floor_ms_ = it->first;
  by_nonce_.erase(it->second);
  by_time_.erase(it);
}

Reject Verifier::verify(const std::string& token, const std::string& method,
                        const std::string& path, const std::string& body, int64_t now_ms) {
  Token t;
  const Reject parsed = parse_token(token, &t);
  if (parsed != Reject::kNone) return refuse(parsed);
  if (method.empty() || has_control_bytes(method) || has_control_bytes(path))
    return refuse(Reject::kMalformed);
  forget_before(now_ms - max_skew_ms_);
  const int64_t d = t.ts_ms - now_ms;
  if (d > max_skew_ms_ || d < -max_skew_ms_ || t.ts_ms <= floor_ms_) return refuse(Reject::kStale);
  const auto want = mac_of(key_, signed_text(t.ts_ms, t.nonce, method, path, body));
  if (sodium_memcmp(want.data(), t.mac.data(), want.size()) != 0) return refuse(Reject::kBadMac);
  if (by_nonce_.count(t.nonce)) return refuse(Reject::kReplayed);
  while (by_nonce_.size() >= max_nonces_) forget_oldest();
  // The eviction may have raised the floor to this very timestamp: then it is stale too.
  if (t.ts_ms <= floor_ms_) return refuse(Reject::kStale);
  by_nonce_.emplace(t.nonce, t.ts_ms);
  by_time_.emplace(t.ts_ms, t.nonce);
  accepted_++;
  return Reject::kNone;
}

}  // namespace control_auth
}  // namespace syncwave
