// SPDX-License-Identifier: LGPL-2.1-or-later
// The clock exchange in secure mode (docs/wire-format.md, "The clock exchange in secure
// mode"): a receiver's net clock asks the sender's time provider for its time in sealed
// datagrams, and takes only answers that authenticate and echo a request it sent and has
// not had answered. A forged, replayed or changed answer never reaches ClockSync
// (core/clock_sync.h): it is counted by reason and ignored. Pure C++ over libsodium: time
// is passed in, no sockets.
//
//   client (receiver)                          provider (sender)
//   request(t1) ──── F6 | 01 | id_c | 00 00 | n_c | seal(t1) ───►  answer(now):
//                                                                    open, replay window
//   open_answer(now) ◄── F6 | 01 | id_p | 00 00 | n_p |             per client stream
//     echo (id_c, n_c) outstanding,        seal(id_c, n_c, t1, remote)
//     t1 matches, answered once
//
//   Datagram: the secure framing's 19-byte header (core/secure_channel.h) with marker
//   0xF6, then the XChaCha20-Poly1305 ciphertext and its 16-byte tag; associated data the
//   header, nonce the header and five zero bytes. Key: the subkey
//   crypto_kdf_derive_from_key(32, 1, "SWclock1", stream key), so that a clock datagram's
//   nonce can never be an audio datagram's. Request plaintext: t1 (u64 LE, the client's
//   send time in ns). Answer plaintext: the request's stream id and counter (u64 LE each),
//   t1, and the provider's time when it answered (u64 LE ns): 32 bytes.
// Built only with the `secure` meson feature (libsodium found).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "secure_channel.h"

namespace syncwave {
namespace secure {

constexpr uint8_t kClockMarker = 0xF6;
constexpr size_t kClockRequestSize = kHeaderSize + 8 + kTagSize;  // 43 bytes
constexpr size_t kClockAnswerSize = kHeaderSize + 32 + kTagSize;  // 67 bytes
// A client keeps its last kClockOutstanding requests; an answer to an older one, or to
// one sent more than kClockAnswerWindowNs ago, is `unknown-request`.
constexpr size_t kClockOutstanding = 16;
constexpr int64_t kClockAnswerWindowNs = 1000000000;

// Why a clock datagram was refused. Keep in step with clock_reject_name().
enum class ClockReject : uint8_t {
  kNone = 0,
  kPlain,           // not 0xF6: a plain GstNetTimePacket, or anything else
  kTruncated,       // 0xF6 but not the size of a request (provider) or an answer (client)
  kBadVersion,      // version not 1, or bytes 9..10 not zero
  kAuthFailed,      // the tag does not verify: another secret, or changed on the way
  kReplayed,        // provider: a request counter seen before; client: answered already
  kTooOld,          // provider: a request counter far behind its client's highest
  kUnknownRequest,  // client: echoes no request it sent in the last second, or t1 differs
  kCount
};
const char* clock_reject_name(ClockReject r);

// The clock subkey of a stream key (crypto_kdf, subkey 1, context "SWclock1").
bool derive_clock_key(const Key& stream_key, Key* clock_key);

// The receiver's half: one random stream id per client, counters from 0.
class ClockClient {
 public:
  explicit ClockClient(const Key& clock_key);
  ~ClockClient();
  ClockClient(const ClockClient&) = delete;
  ClockClient& operator=(const ClockClient&) = delete;

  // The sealed request for send time t1 (ns on the client's clock); empty when libsodium
  // failed or the counters are exhausted.
  std::vector<uint8_t> request(uint64_t t1);
  // An answer that arrived at now_ns (same clock as t1). kNone: *t1 and *remote_ns are
  // the exchange's; the request is answered and forgotten.
  ClockReject open_answer(const uint8_t* data, size_t size, int64_t now_ns, uint64_t* t1,
                          uint64_t* remote_ns);

  uint64_t stream_id() const { return stream_id_; }
  uint64_t accepted() const { return accepted_; }
  uint64_t rejected(ClockReject r) const { return rejected_[static_cast<size_t>(r)]; }
  uint64_t rejected_total() const;

 private:
  struct Outstanding {
    bool used = false;
    uint64_t counter = 0;
    uint64_t t1 = 0;
  };
  ClockReject reject(ClockReject r);

  Key key_;
  uint64_t stream_id_;
  uint64_t next_counter_ = 0;
  std::array<Outstanding, kClockOutstanding> outstanding_{};
  uint64_t accepted_ = 0;
  std::array<uint64_t, static_cast<size_t>(ClockReject::kCount)> rejected_{};
};

// The sender's half: answers every request that authenticates, once.
class ClockServer {
 public:
  explicit ClockServer(const Key& clock_key);
  ~ClockServer();
  ClockServer(const ClockServer&) = delete;
  ClockServer& operator=(const ClockServer&) = delete;

  // The sealed answer to `request`, stamped remote_ns (the provider's time now), in
  // *answer; or the reason it is refused (nothing to send).
  ClockReject answer(const uint8_t* request, size_t size, uint64_t remote_ns,
                     std::vector<uint8_t>* answer);

  uint64_t answered() const { return answered_; }
  uint64_t rejected(ClockReject r) const { return rejected_[static_cast<size_t>(r)]; }
  uint64_t rejected_total() const;
  size_t clients() const { return clients_.size(); }

 private:
  struct Client {
    uint64_t id = 0;
    uint64_t last_use = 0;
    ReplayWindow window;
  };
  ClockReject reject(ClockReject r);

  Key key_;
  uint64_t stream_id_;
  uint64_t next_counter_ = 0;
  std::vector<Client> clients_;
  uint64_t use_tick_ = 0;
  uint64_t answered_ = 0;
  std::array<uint64_t, static_cast<size_t>(ClockReject::kCount)> rejected_{};
};

}  // namespace secure
}  // namespace syncwave
