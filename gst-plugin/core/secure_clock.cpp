// SPDX-License-Identifier: LGPL-2.1-or-later
#include "secure_clock.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace syncwave {
namespace secure {

namespace {

constexpr uint64_t kClockSubkeyId = 1;
constexpr char kClockContext[9] = "SWclock1";  // 8 bytes
constexpr size_t kRequestPlain = 8;
constexpr size_t kAnswerPlain = 32;

void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

void put_header(uint8_t* h, uint64_t stream_id, uint64_t counter) {
  h[0] = kClockMarker;
  h[1] = kVersion;
  for (int i = 0; i < 7; i++) h[2 + i] = (uint8_t)(stream_id >> (8 * i));
  h[9] = 0;
  h[10] = 0;
  put_u64(h + 11, counter);
}

// Seals `n` plaintext bytes under a header of (stream_id, counter).
std::vector<uint8_t> seal(const Key& key, uint64_t stream_id, uint64_t counter,
                          const uint8_t* plain, size_t n) {
  std::vector<uint8_t> out(kHeaderSize + n + kTagSize);
  put_header(out.data(), stream_id, counter);
  uint8_t nonce[kNonceSize] = {0};
  std::memcpy(nonce, out.data(), kHeaderSize);
  unsigned long long clen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + kHeaderSize, &clen, plain, n,
                                                 out.data(), kHeaderSize, nullptr, nonce,
                                                 key.data()) != 0 ||
      clen != n + kTagSize)
    return {};
  return out;
}

// Checks the framing of a clock datagram of exactly kHeaderSize + plain_size + kTagSize
// bytes; kNone with its stream id and counter.
ClockReject parse(const uint8_t* data, size_t size, size_t plain_size, uint64_t* stream_id,
                  uint64_t* counter) {
  if (size == 0 || data[0] != kClockMarker) return ClockReject::kPlain;
  if (size != kHeaderSize + plain_size + kTagSize) return ClockReject::kTruncated;
  if (data[1] != kVersion || data[9] != 0 || data[10] != 0) return ClockReject::kBadVersion;
  uint64_t id = 0;
  for (int i = 6; i >= 0; i--) id = (id << 8) | data[2 + i];
  *stream_id = id;
  *counter = get_u64(data + 11);
  return ClockReject::kNone;
}

// Verifies and decrypts a datagram parse() accepted into `plain` (plain_size bytes).
bool open(const Key& key, const uint8_t* data, size_t plain_size, uint8_t* plain) {
  uint8_t nonce[kNonceSize] = {0};
  std::memcpy(nonce, data, kHeaderSize);
  unsigned long long mlen = 0;
  return crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &mlen, nullptr, data + kHeaderSize,
                                                    plain_size + kTagSize, data, kHeaderSize,
                                                    nonce, key.data()) == 0 &&
         mlen == plain_size;
}

uint64_t sum(const uint64_t* counts, size_t n) {
  uint64_t total = 0;
  for (size_t i = 1; i < n; i++) total += counts[i];
  return total;
}

}  // namespace

const char* clock_reject_name(ClockReject r) {
  switch (r) {
    case ClockReject::kNone:
      return "none";
    case ClockReject::kPlain:
      return "plain";
    case ClockReject::kTruncated:
      return "truncated";
    case ClockReject::kBadVersion:
      return "bad-version";
    case ClockReject::kAuthFailed:
      return "auth-failed";
    case ClockReject::kReplayed:
      return "replayed";
    case ClockReject::kTooOld:
      return "too-old";
    case ClockReject::kUnknownRequest:
      return "unknown-request";
    case ClockReject::kCount:
      break;
  }
  return "unknown";
}

bool derive_clock_key(const Key& stream_key, Key* clock_key) {
  if (!available()) return false;
  static_assert(crypto_kdf_KEYBYTES == kKeySize, "the stream key is a KDF master key");
  static_assert(sizeof kClockContext - 1 == crypto_kdf_CONTEXTBYTES, "an 8-byte context");
  return crypto_kdf_derive_from_key(clock_key->data(), clock_key->size(), kClockSubkeyId,
                                    kClockContext, stream_key.data()) == 0;
}

// ---------------------------------------------------------------- client

ClockClient::ClockClient(const Key& clock_key)
    : key_(clock_key), stream_id_(Sealer::random_stream_id()) {}

ClockClient::~ClockClient() { sodium_memzero(key_.data(), key_.size()); }

std::vector<uint8_t> ClockClient::request(uint64_t t1) {
  if (next_counter_ == UINT64_MAX) return {};
  const uint64_t counter = next_counter_++;
  uint8_t plain[kRequestPlain];
  put_u64(plain, t1);
  std::vector<uint8_t> out = seal(key_, stream_id_, counter, plain, sizeof plain);
  if (out.empty()) return out;
  // The oldest slot makes room (a ring over the counters).
  Outstanding& slot = outstanding_[counter % kClockOutstanding];
  slot.used = true;
  slot.counter = counter;
  slot.t1 = t1;
  return out;
}

ClockReject ClockClient::reject(ClockReject r) {
  rejected_[static_cast<size_t>(r)]++;
  return r;
}

ClockReject ClockClient::open_answer(const uint8_t* data, size_t size, int64_t now_ns,
                                     uint64_t* t1, uint64_t* remote_ns) {
  uint64_t id = 0, counter = 0;
  const ClockReject framing = parse(data, size, kAnswerPlain, &id, &counter);
  if (framing != ClockReject::kNone) return reject(framing);
  uint8_t plain[kAnswerPlain];
  if (!open(key_, data, kAnswerPlain, plain)) return reject(ClockReject::kAuthFailed);
  const uint64_t echo_id = get_u64(plain);
  const uint64_t echo_counter = get_u64(plain + 8);
  const uint64_t echo_t1 = get_u64(plain + 16);
  if (echo_id != stream_id_ || echo_counter >= next_counter_) return reject(ClockReject::kUnknownRequest);
  Outstanding& slot = outstanding_[echo_counter % kClockOutstanding];
  if (!slot.used || slot.counter != echo_counter) {
    // Answered before (the slot was cleared), or pushed out by newer requests.
    const bool recent = next_counter_ - echo_counter <= kClockOutstanding;
    return reject(recent ? ClockReject::kReplayed : ClockReject::kUnknownRequest);
  }
  if (slot.t1 != echo_t1 || now_ns - (int64_t)slot.t1 > kClockAnswerWindowNs ||
      now_ns < (int64_t)slot.t1)
    return reject(ClockReject::kUnknownRequest);
  slot.used = false;
  *t1 = echo_t1;
  *remote_ns = get_u64(plain + 24);
  accepted_++;
  return ClockReject::kNone;
}

uint64_t ClockClient::rejected_total() const { return sum(rejected_.data(), rejected_.size()); }

// ---------------------------------------------------------------- provider

ClockServer::ClockServer(const Key& clock_key)
    : key_(clock_key), stream_id_(Sealer::random_stream_id()) {}

ClockServer::~ClockServer() { sodium_memzero(key_.data(), key_.size()); }

ClockReject ClockServer::reject(ClockReject r) {
  rejected_[static_cast<size_t>(r)]++;
  return r;
}

ClockReject ClockServer::answer(const uint8_t* request, size_t size, uint64_t remote_ns,
                                std::vector<uint8_t>* answer) {
  uint64_t id = 0, counter = 0;
  const ClockReject framing = parse(request, size, kRequestPlain, &id, &counter);
  if (framing != ClockReject::kNone) return reject(framing);
  auto it = std::find_if(clients_.begin(), clients_.end(),
                         [id](const Client& c) { return c.id == id; });
  // The window first: a replay costs no decryption.
  if (it != clients_.end()) {
    const Reject w = it->window.check(counter);
    if (w == Reject::kReplayed) return reject(ClockReject::kReplayed);
    if (w == Reject::kTooOld) return reject(ClockReject::kTooOld);
  }
  uint8_t plain[kRequestPlain];
  if (!open(key_, request, kRequestPlain, plain)) return reject(ClockReject::kAuthFailed);
  if (next_counter_ == UINT64_MAX) return reject(ClockReject::kAuthFailed);
  // Only an authenticated request makes a client entry: forgeries never evict one.
  if (it == clients_.end()) {
    if (clients_.size() >= kMaxStreams) {
      auto lru = std::min_element(clients_.begin(), clients_.end(),
                                  [](const Client& a, const Client& b) { return a.last_use < b.last_use; });
      clients_.erase(lru);
    }
    clients_.push_back(Client{id, 0, ReplayWindow{}});
    it = clients_.end() - 1;
  }
  it->window.accept(counter);
  it->last_use = ++use_tick_;
  uint8_t out[kAnswerPlain];
  put_u64(out, id);
  put_u64(out + 8, counter);
  std::memcpy(out + 16, plain, 8);  // t1
  put_u64(out + 24, remote_ns);
  *answer = seal(key_, stream_id_, next_counter_++, out, sizeof out);
  if (answer->empty()) return reject(ClockReject::kAuthFailed);
  answered_++;
  return ClockReject::kNone;
}

uint64_t ClockServer::rejected_total() const { return sum(rejected_.data(), rejected_.size()); }

}  // namespace secure
}  // namespace syncwave
