// SPDX-License-Identifier: LGPL-2.1-or-later
// SyncWave secure framing, version 1 ("SWS1"): every datagram of a stream (headers
// and audio) sealed with XChaCha20-Poly1305 (IETF), the key derived from a passphrase
// with Argon2id. Pure C++ over libsodium: no GStreamer, no GLib, no sockets, no clock.
// Built only with the `secure` meson feature (libsodium found).
//
//   sender                                        receiver
//   v1 datagram (header or audio)                 secure datagram
//     | Sealer::seal(): counter++                   | Opener::open():
//     v                                             |   marker, version, length
//   +------+------+--------------+------+---------+ |   replay window (no state change)
//   | F5   | 01   | stream id    | 00 00| counter | |   AEAD verify + decrypt
//   +------+------+--------------+------+---------+ |   window / stream table update
//   | ciphertext of the v1 datagram | tag (16)    | v
//   +-------------------------------+-------------+ v1 datagram -> wire::parse()
//
//   Secure datagram, 19 + n + 16 bytes (n = the v1 datagram's length, at least 1):
//   offset size  field
//   0      1     marker     0xF5: neither 0, 1 nor 'S', so wire::parse() says unknown-type
//   1      1     version    1
//   2      7     stream id  u56 LE, random per sender start
//   9      2     zero       00 00: an original receiver reads bytes 9..10 as an audio
//                           packet's size field and plays 0 bytes of it
//   11     8     counter    u64 LE, 0 for the stream's first datagram, +1 per datagram
//   19     n     ciphertext of the v1 datagram
//   19+n   16    Poly1305 tag
//   Associated data: bytes 0..18. Nonce (24 bytes): bytes 0..18 and five zero bytes,
//   unique per key because (stream id, counter) is.
//
// Rules (docs/wire-format.md, "Secure framing"):
// - The key is derived once per passphrase (derive_key: Argon2id, the fixed salt and
//   limits below), never per packet.
// - A receiver keeps, per stream id, the highest counter it accepted and a window of the
//   kWindowSize counters below it: a counter seen before is `replayed`, one kWindowSize or
//   more behind the highest is `too-old`. The window is checked before the AEAD (so a
//   replay costs no decryption) and moved only after a datagram authenticated: forged
//   datagrams never change it.
// - Streams are created only by authenticated datagrams; at most kMaxStreams are kept,
//   the least recently used forgotten first. A sender restarted with a new stream id is
//   followed from its first datagram.
// - AEAD cannot tell a wrong key from a tampered datagram: both are `auth-failed`.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace syncwave {
namespace secure {

constexpr uint8_t kMarker = 0xF5;
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderSize = 19;
constexpr size_t kTagSize = 16;
constexpr size_t kOverhead = kHeaderSize + kTagSize;  // 35 bytes per datagram
constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 24;
constexpr uint64_t kStreamIdMask = (uint64_t{1} << 56) - 1;
// The largest v1 datagram sealed: 11 + 65535 bytes.
constexpr size_t kMaxPlaintextSize = 11 + 0xffff;

// Replay window and stream table.
constexpr size_t kWindowSize = 1024;  // counters
constexpr size_t kMaxStreams = 16;

// Key derivation, fixed by the format (libsodium's crypto_pwhash "interactive" limits):
// Argon2id v1.3, 2 passes, 64 MiB, one lane, this 16-byte salt, 32-byte key.
constexpr std::array<uint8_t, 16> kSalt = {'S', 'y', 'n', 'c', 'W', 'a', 'v', 'e',
                                           ' ', 's', 'e', 'c', 'u', 'r', 'e', '1'};
constexpr unsigned long long kOpsLimit = 2;
constexpr size_t kMemLimitBytes = size_t{64} << 20;

using Key = std::array<uint8_t, kKeySize>;

// Why a secure receiver dropped a datagram. Keep in step with reject_name() and
// docs/wire-format.md.
enum class Reject : uint8_t {
  kNone = 0,
  kPlain,       // first byte is not 0xF5: a plain (v1) datagram, or anything else
  kTruncated,   // 0xF5 but shorter than 19 + 1 + 16 bytes
  kBadVersion,  // 0xF5 but version not 1, or bytes 9..10 not zero
  kAuthFailed,  // the tag does not verify: another key, or changed on the way
  kReplayed,    // a counter this receiver accepted before for that stream
  kTooOld,      // a counter kWindowSize or more behind the stream's highest
  kCount
};

const char* reject_name(Reject r);

// Whether libsodium initialised (sodium_init); every other call needs it.
bool available();

// Argon2id over the passphrase with the fixed parameters above. Slow on purpose (about
// 0.1-0.5 s, 64 MiB): call once per passphrase. False when libsodium is unavailable,
// the passphrase is empty or memory is short.
bool derive_key(const std::string& passphrase, Key* key);

// Per-stream replay window: the highest counter accepted and a bitmap of the
// kWindowSize counters up to it (circular, counter mod kWindowSize).
class ReplayWindow {
 public:
  // kNone when `counter` may be accepted; kReplayed or kTooOld otherwise. No change.
  Reject check(uint64_t counter) const;
  // Marks `counter` as seen (after it authenticated); moves the window forward.
  void accept(uint64_t counter);
  bool empty() const { return empty_; }
  uint64_t highest() const { return highest_; }

 private:
  bool test(uint64_t counter) const;
  void set(uint64_t counter, bool on);

  bool empty_ = true;
  uint64_t highest_ = 0;
  std::array<uint64_t, kWindowSize / 64> bits_{};
};

// Splits the 19 header bytes; kNone when they are well formed (the tag is not checked).
struct Framing {
  uint64_t stream_id = 0;
  uint64_t counter = 0;
};
Reject parse_framing(const uint8_t* data, size_t size, Framing* framing);

// The sending half: one stream id, counters from 0.
class Sealer {
 public:
  Sealer(const Key& key, uint64_t stream_id);
  ~Sealer();
  Sealer(const Sealer&) = delete;
  Sealer& operator=(const Sealer&) = delete;

  // A random stream id (56 bits, from libsodium's randombytes).
  static uint64_t random_stream_id();

  // Seals one v1 datagram of 1..kMaxPlaintextSize bytes into `out` (which must not
  // overlap it). Returns size + kOverhead, or 0 when it does not fit in `capacity`,
  // the size is out of range or the counters are exhausted.
  size_t seal(const uint8_t* plaintext, size_t size, uint8_t* out, size_t capacity);
  std::vector<uint8_t> seal(const uint8_t* plaintext, size_t size);

  // A new stream with the same key: `stream_id`, counters from 0 again.
  void restart(uint64_t stream_id) {
    stream_id_ = stream_id & kStreamIdMask;
    next_counter_ = 0;
  }

  uint64_t stream_id() const { return stream_id_; }
  uint64_t next_counter() const { return next_counter_; }
  // Tests: continue from `counter`.
  void set_next_counter(uint64_t counter) { next_counter_ = counter; }

 private:
  Key key_;
  uint64_t stream_id_;
  uint64_t next_counter_ = 0;
};

struct OpenResult {
  Reject reject = Reject::kNone;
  uint64_t stream_id = 0;  // valid unless kPlain, kTruncated or kBadVersion
  uint64_t counter = 0;
  bool new_stream = false;  // kNone: the first datagram of a stream id this receiver keeps
  // kNone: the v1 datagram, inside the buffer given to open_in_place().
  uint8_t* plaintext = nullptr;
  size_t size = 0;
};

// The receiving half: every stream sealed with one key.
class Opener {
 public:
  explicit Opener(const Key& key);
  ~Opener();
  Opener(const Opener&) = delete;
  Opener& operator=(const Opener&) = delete;

  // Opens `data` in place: on kNone the v1 datagram is at result.plaintext
  // (data + kHeaderSize, result.size bytes). On a rejection the buffer's contents are
  // unspecified (libsodium clears a failed decryption).
  OpenResult open_in_place(uint8_t* data, size_t size);
  // Copying variant: on kNone `plaintext` holds the v1 datagram.
  Reject open(const uint8_t* data, size_t size, std::vector<uint8_t>* plaintext);

  uint64_t opened() const { return opened_; }
  uint64_t rejected(Reject r) const { return rejected_[static_cast<size_t>(r)]; }
  uint64_t rejected_total() const;
  size_t streams() const { return streams_.size(); }
  // Forgets every stream (the counters stay).
  void reset_streams() { streams_.clear(); }

 private:
  struct Stream {
    uint64_t id = 0;
    uint64_t last_use = 0;
    ReplayWindow window;
  };
  Stream* find(uint64_t id);
  OpenResult reject(OpenResult r, Reject why);

  Key key_;
  std::vector<Stream> streams_;
  uint64_t use_tick_ = 0;
  uint64_t opened_ = 0;
  std::array<uint64_t, static_cast<size_t>(Reject::kCount)> rejected_{};
};

}  // namespace secure
}  // namespace syncwave
