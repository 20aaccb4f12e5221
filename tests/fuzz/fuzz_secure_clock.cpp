// SPDX-License-Identifier: LGPL-2.1-or-later
// libFuzzer target: the secure clock exchange (core/secure_clock.h). The input is a script
// of steps, each an op byte and a length-prefixed chunk (2 bytes LE), against one client
// and one provider sharing a key, and a provider with another key:
//   op % 6 == 0  the chunk to the client as an answer (garbage, plain, 0xF6...)
//            1  the chunk to the provider as a request
//            2  a new request (t1 from the chunk), answered, the answer opened
//            3  an earlier answer to the client again (a replay)
//            4  an earlier answer with one byte changed
//            5  a request answered by the other key's provider
// Checks what must hold for any input:
//   - nothing reads out of bounds (exact-size heap copies), nothing crashes;
//   - an answer the client accepts is a genuine answer to one of its requests, with that
//     request's t1, accepted once;
//   - a changed, replayed or other-key answer is never accepted;
//   - the provider's client table holds at most kMaxStreams clients.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

#include "secure_channel.h"
#include "secure_clock.h"

using namespace syncwave;
using secure::ClockReject;

namespace {

secure::Key key_of(uint8_t fill) {
  secure::Key stream{};
  stream.fill(fill);
  secure::Key k{};
  secure::derive_clock_key(stream, &k);
  return k;
}

uint64_t u64_of(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n && i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!secure::available()) return 0;
  static const secure::Key key = key_of(1), other = key_of(2);
  secure::ClockClient client(key);
  secure::ClockServer server(key), foreign(other);
  // Answers the client accepted: (t1, remote) each once; and the genuine answers kept.
  std::vector<std::pair<std::vector<uint8_t>, uint64_t>> answers;  // answer, its t1
  std::set<std::vector<uint8_t>> accepted;
  const int64_t now = 1000000000;
  size_t i = 0;
  while (i + 3 <= size) {
    const uint8_t op = data[i] % 6;
    const size_t len = std::min<size_t>(size - i - 3, data[i + 1] | (size_t)data[i + 2] << 8);
    std::vector<uint8_t> chunk(data + i + 3, data + i + 3 + len);
    i += 3 + len;
    uint64_t t1 = 0, remote = 0;
    std::vector<uint8_t> out;
    switch (op) {
      case 0: {
        const ClockReject r = client.open_answer(chunk.data(), chunk.size(), now, &t1, &remote);
        if (r == ClockReject::kNone) {
          // Only a genuine answer opens: it must be one the provider made.
          bool genuine = false;
          for (const auto& a : answers) genuine |= a.first == chunk;
          if (!genuine) __builtin_trap();
          if (!accepted.insert(chunk).second) __builtin_trap();
        }
        break;
      }
      case 1:
        server.answer(chunk.data(), chunk.size(), 7, &out);
        break;
      case 2: {
        const uint64_t t = (uint64_t)now - (u64_of(chunk.data(), chunk.size()) % 2000000000ull);
        std::vector<uint8_t> req = client.request(t);
        if (server.answer(req.data(), req.size(), 9, &out) == ClockReject::kNone) {
          answers.emplace_back(out, t);
          const ClockReject r = client.open_answer(out.data(), out.size(), now, &t1, &remote);
          if (r == ClockReject::kNone) {
            if (t1 != t || remote != 9) __builtin_trap();
            if (!accepted.insert(out).second) __builtin_trap();
          }
        }
        break;
      }
      case 3:
        if (!answers.empty()) {
          const auto& a = answers[u64_of(chunk.data(), chunk.size()) % answers.size()];
          const std::vector<uint8_t> copy = a.first;  // exact size
          const ClockReject r = client.open_answer(copy.data(), copy.size(), now, &t1, &remote);
          if (r == ClockReject::kNone && !accepted.insert(copy).second) __builtin_trap();
        }
        break;
      case 4:
        if (!answers.empty() && chunk.size() >= 2) {
          std::vector<uint8_t> t = answers[chunk[0] % answers.size()].first;
          const size_t at = (size_t)chunk[1] % t.size();
          if (at == 9 || at == 10) break;  // framing, refused as bad-version anyway
          t[at] ^= (uint8_t)(chunk.size() > 2 ? (chunk[2] | 1) : 1);
          if (client.open_answer(t.data(), t.size(), now, &t1, &remote) == ClockReject::kNone)
            __builtin_trap();
        }
        break;
      case 5: {
        std::vector<uint8_t> req = client.request((uint64_t)now);
        if (foreign.answer(req.data(), req.size(), 3, &out) == ClockReject::kNone) __builtin_trap();
        break;
      }
    }
    if (server.clients() > secure::kMaxStreams) __builtin_trap();
  }
  return 0;
}
