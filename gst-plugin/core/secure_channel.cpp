// SPDX-License-Identifier: LGPL-2.1-or-later
#include "secure_channel.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace syncwave {
namespace secure {

namespace {

static_assert(kKeySize == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
static_assert(kNonceSize == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
static_assert(kTagSize == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");
static_assert(kSalt.size() == crypto_pwhash_SALTBYTES, "salt size");
static_assert(kWindowSize % 64 == 0, "window in whole words");

constexpr size_t kMinDatagramSize = kHeaderSize + 1 + kTagSize;

void put_u64le(uint8_t* p, uint64_t v, size_t bytes) {
  for (size_t i = 0; i < bytes; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_u64le(const uint8_t* p, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; i++) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

void write_header(uint8_t* out, uint64_t stream_id, uint64_t counter) {
  out[0] = kMarker;
  out[1] = kVersion;
  put_u64le(out + 2, stream_id & kStreamIdMask, 7);
  out[9] = 0;
  out[10] = 0;
  put_u64le(out + 11, counter, 8);
}

// The nonce is the header itself, padded with zeros.
std::array<uint8_t, kNonceSize> make_nonce(const uint8_t* header) {
  std::array<uint8_t, kNonceSize> n{};
  std::memcpy(n.data(), header, kHeaderSize);
  return n;
}

}  // namespace

const char* reject_name(Reject r) {
  switch (r) {
    case Reject::kNone:
      return "none";
    case Reject::kPlain:
      return "plain";
    case Reject::kTruncated:
      return "truncated";
    case Reject::kBadVersion:
      return "bad-version";
    case Reject::kAuthFailed:
      return "auth-failed";
    case Reject::kReplayed:
      return "replayed";
    case Reject::kTooOld:
      return "too-old";
    case Reject::kCount:
      break;
  }
  return "unknown";
}

bool available() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

bool derive_key(const std::string& passphrase, Key* key) {
  if (!available() || passphrase.empty()) return false;
  return crypto_pwhash(key->data(), key->size(), passphrase.data(), passphrase.size(), kSalt.data(),
                       kOpsLimit, kMemLimitBytes, crypto_pwhash_ALG_ARGON2ID13) == 0;
}

// ---------------------------------------------------------------------------------
// ReplayWindow

bool ReplayWindow::test(uint64_t counter) const {
  const size_t bit = static_cast<size_t>(counter % kWindowSize);
  return (bits_[bit / 64] >> (bit % 64)) & 1;
}

void ReplayWindow::set(uint64_t counter, bool on) {
  const size_t bit = static_cast<size_t>(counter % kWindowSize);
  const uint64_t mask = uint64_t{1} << (bit % 64);
  if (on)
    bits_[bit / 64] |= mask;
  else
    bits_[bit / 64] &= ~mask;
}

Reject ReplayWindow::check(uint64_t counter) const {
  if (empty_ || counter > highest_) return Reject::kNone;
  if (highest_ - counter >= kWindowSize) return Reject::kTooOld;
  return test(counter) ? Reject::kReplayed : Reject::kNone;
}

void ReplayWindow::accept(uint64_t counter) {
  const bool far_ahead = counter > highest_ && counter - highest_ >= kWindowSize;
  if (empty_ || far_ahead) {
    bits_.fill(0);
    empty_ = false;
    highest_ = counter;
  } else if (counter > highest_) {
    // The slots between the old highest and the new one now stand for new counters.
    for (uint64_t c = highest_ + 1; c != counter; c++) set(c, false);
    highest_ = counter;
  }
  set(counter, true);
}

// ---------------------------------------------------------------------------------
// Framing

Reject parse_framing(const uint8_t* data, size_t size, Framing* framing) {
  if (size == 0 || data[0] != kMarker) return Reject::kPlain;
  // The version is checked before the length, as in v1: a future framing is reported
  // as such whatever its size.
  if (size >= 2 && data[1] != kVersion) return Reject::kBadVersion;
  if (size < kMinDatagramSize) return Reject::kTruncated;
  if (data[9] != 0 || data[10] != 0) return Reject::kBadVersion;
  framing->stream_id = get_u64le(data + 2, 7);
  framing->counter = get_u64le(data + 11, 8);
  return Reject::kNone;
}

// ---------------------------------------------------------------------------------
// Sealer

Sealer::Sealer(const Key& key, uint64_t stream_id)
    : key_(key), stream_id_(stream_id & kStreamIdMask) {}

Sealer::~Sealer() {
  sodium_memzero(key_.data(), key_.size());
}

uint64_t Sealer::random_stream_id() {
  uint64_t id = 0;
  if (available()) randombytes_buf(&id, sizeof id);
  return id & kStreamIdMask;
}

size_t Sealer::seal(const uint8_t* plaintext, size_t size, uint8_t* out, size_t capacity) {
  if (!available() || size == 0 || size > kMaxPlaintextSize || capacity < size + kOverhead)
    return 0;
  if (next_counter_ == UINT64_MAX) return 0;  // exhausted: a new stream id is needed
  write_header(out, stream_id_, next_counter_);
  const auto nonce = make_nonce(out);
  unsigned long long clen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + kHeaderSize, &clen, plaintext, size, out,
                                                 kHeaderSize, nullptr, nonce.data(),
                                                 key_.data()) != 0)
    return 0;
  next_counter_++;
  return kHeaderSize + static_cast<size_t>(clen);
}

std::vector<uint8_t> Sealer::seal(const uint8_t* plaintext, size_t size) {
  std::vector<uint8_t> out(size + kOverhead);
  out.resize(seal(plaintext, size, out.data(), out.size()));
  return out;
}

// ---------------------------------------------------------------------------------
// Opener

Opener::Opener(const Key& key) : key_(key) {
  streams_.reserve(kMaxStreams);
}

Opener::~Opener() {
  sodium_memzero(key_.data(), key_.size());
}

Opener::Stream* Opener::find(uint64_t id) {
  for (Stream& s : streams_)
    if (s.id == id) return &s;
  return nullptr;
}

OpenResult Opener::reject(OpenResult r, Reject why) {
  r.reject = why;
  r.plaintext = nullptr;
  r.size = 0;
  rejected_[static_cast<size_t>(why)]++;
  return r;
}

uint64_t Opener::rejected_total() const {
  uint64_t n = 0;
  for (size_t i = 1; i < rejected_.size(); i++) n += rejected_[i];
  return n;
}

OpenResult Opener::open_in_place(uint8_t* data, size_t size) {
  OpenResult r;
  Framing f;
  const Reject framing = parse_framing(data, size, &f);
  if (framing != Reject::kNone) return reject(r, framing);
  if (!available()) return reject(r, Reject::kAuthFailed);
  r.stream_id = f.stream_id;
  r.counter = f.counter;

  // Replays are refused before any decryption, and change nothing.
  Stream* stream = find(f.stream_id);
  if (stream) {
    const Reject w = stream->window.check(f.counter);
    if (w != Reject::kNone) return reject(r, w);
  }

  const auto nonce = make_nonce(data);
  unsigned long long mlen = 0;
  uint8_t* body = data + kHeaderSize;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(body, &mlen, nullptr, body, size - kHeaderSize,
                                                 data, kHeaderSize, nonce.data(), key_.data()) != 0)
    return reject(r, Reject::kAuthFailed);

  // Authenticated: now the stream table and its window may change.
  if (!stream) {
    if (streams_.size() >= kMaxStreams) {
      auto lru = std::min_element(
          streams_.begin(), streams_.end(),
          [](const Stream& a, const Stream& b) { return a.last_use < b.last_use; });
      streams_.erase(lru);
    }
    streams_.push_back(Stream{});
    stream = &streams_.back();
    stream->id = f.stream_id;
    r.new_stream = true;
  }
  stream->last_use = ++use_tick_;
  stream->window.accept(f.counter);
  opened_++;
  r.plaintext = body;
  r.size = static_cast<size_t>(mlen);
  return r;
}

Reject Opener::open(const uint8_t* data, size_t size, std::vector<uint8_t>* plaintext) {
  std::vector<uint8_t> copy(data, data + size);
  const OpenResult r = open_in_place(copy.data(), copy.size());
  if (r.reject == Reject::kNone) {
    plaintext->assign(r.plaintext, r.plaintext + r.size);
  } else {
    plaintext->clear();
  }
  return r.reject;
}

}  // namespace secure
}  // namespace syncwave
