// SPDX-License-Identifier: LGPL-2.1-or-later
// libFuzzer target: the secure framing (core/secure_channel.h). The input is a script
// of steps, each an op byte and a length-prefixed chunk (2 bytes LE), run against one
// Opener with a fixed key, a Sealer with that key and one with another key:
//   op % 8 == 0  the chunk as a datagram off the network (garbage, plain, 0xF5...)
//            1  the chunk sealed, then opened
//            2  an earlier sealed datagram again (a replay)
//            3  the sealer continues from a counter read from the chunk
//            4  the sealer restarts with a stream id read from the chunk
//            5  an earlier sealed datagram with one byte changed
//            6  an earlier sealed datagram cut to a length read from the chunk
//            7  the chunk sealed with the other key
// Checks what must hold for any input:
//   - open never reads out of bounds (ASan: exact-size heap copies), never crashes;
//   - only datagrams sealed with the key open, to exactly what was sealed, and every
//     opened plaintext goes through wire::parse() as a receiver's would;
//   - a changed, cut or foreign-key datagram never opens;
//   - while at most kMaxStreams streams were seen, the verdict on every sealed datagram
//     is the one a reference model of the replay window gives (replayed / too old /
//     accepted), so a forged datagram never moved a window;
//   - the stream table never holds more than kMaxStreams streams.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "secure_channel.h"
#include "wire_format.h"

using namespace syncwave;
using secure::Reject;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

secure::Key make_key(uint8_t seed) {
  secure::Key k{};
  for (size_t i = 0; i < k.size(); i++) k[i] = static_cast<uint8_t>(seed + 31 * i);
  return k;
}

uint64_t read_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n && i < 8; i++) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

struct Sent {
  std::vector<uint8_t> datagram;
  std::vector<uint8_t> plaintext;
};

// The replay window as a set: what a receiver must answer for a sealed datagram.
struct Model {
  struct Stream {
    uint64_t highest = 0;
    std::set<uint64_t> seen;
  };
  std::map<uint64_t, Stream> streams;
  bool exact() const { return streams.size() <= secure::kMaxStreams; }
  Reject expect(uint64_t id, uint64_t counter) const {
    auto it = streams.find(id);
    if (it == streams.end()) return Reject::kNone;
    const Stream& s = it->second;
    if (counter < s.highest && s.highest - counter >= secure::kWindowSize) return Reject::kTooOld;
    return s.seen.count(counter) ? Reject::kReplayed : Reject::kNone;
  }
  void accept(uint64_t id, uint64_t counter) {
    Stream& s = streams[id];
    if (s.seen.empty() || counter > s.highest) s.highest = counter;
    s.seen.insert(counter);
  }
};

struct Harness {
  secure::Opener opener{make_key(1)};
  std::unique_ptr<secure::Sealer> sealer = std::make_unique<secure::Sealer>(make_key(1), 1);
  secure::Sealer foreign{make_key(2), 1};
  std::deque<Sent> history;  // the last 64 sealed datagrams
  Model model;

  // Opens an exact-size copy; returns the verdict.
  Reject open(const std::vector<uint8_t>& d, std::vector<uint8_t>* plain) {
    std::vector<uint8_t> copy(d);
    uint8_t* p = copy.empty() ? nullptr : copy.data();
    const secure::OpenResult r = opener.open_in_place(p, copy.size());
    check(r.reject < Reject::kCount);
    check(secure::reject_name(r.reject) != nullptr);
    check(opener.streams() <= secure::kMaxStreams);
    if (r.reject == Reject::kNone) {
      check(r.plaintext == p + secure::kHeaderSize);
      check(r.size + secure::kOverhead == copy.size());
      plain->assign(r.plaintext, r.plaintext + r.size);
      const wire::ParseResult parsed = wire::parse(r.plaintext, r.size);
      check(parsed.kind != wire::Kind::kMalformed || parsed.error != wire::Error::kNone);
    } else {
      check(r.plaintext == nullptr && r.size == 0);
    }
    return r.reject;
  }

  // A datagram sealed with the key: the verdict must be the model's.
  void open_sealed(const Sent& s) {
    secure::Framing f;
    check(secure::parse_framing(s.datagram.data(), s.datagram.size(), &f) == Reject::kNone);
    const Reject expected = model.expect(f.stream_id, f.counter);
    std::vector<uint8_t> plain;
    const Reject got = open(s.datagram, &plain);
    if (model.exact()) check(got == expected);
    if (got == Reject::kNone) {
      check(plain == s.plaintext);
      model.accept(f.stream_id, f.counter);
    } else {
      check(got == Reject::kReplayed || got == Reject::kTooOld);
    }
  }

  void seal(const uint8_t* data, size_t size) {
    Sent s;
    s.datagram = sealer->seal(data, size);
    if (s.datagram.empty()) {
      check(size == 0 || size > secure::kMaxPlaintextSize || sealer->next_counter() == UINT64_MAX);
      return;
    }
    s.plaintext.assign(data, data + size);
    open_sealed(s);
    history.push_back(std::move(s));
    if (history.size() > 64) history.pop_front();
  }

  const Sent* pick(const uint8_t* data, size_t size) const {
    if (history.empty()) return nullptr;
    return &history[read_le(data, size < 2 ? size : 2) % history.size()];
  }

  void step(uint8_t op, const uint8_t* data, size_t size) {
    std::vector<uint8_t> plain;
    switch (op % 8) {
      case 0:
        open(std::vector<uint8_t>(data, data + size), &plain);
        break;
      case 1:
        seal(data, size);
        break;
      case 2:
        if (const Sent* s = pick(data, size)) open_sealed(*s);
        break;
      case 3:
        sealer->set_next_counter(read_le(data, size));
        break;
      case 4:
        sealer = std::make_unique<secure::Sealer>(make_key(1), read_le(data, size));
        break;
      case 5:
        if (const Sent* s = pick(data, size)) {
          std::vector<uint8_t> t = s->datagram;
          const size_t at = read_le(data + (size > 2 ? 2 : size), size > 4 ? 2 : 0) % t.size();
          const uint8_t mask = size > 4 ? data[4] : 0x01;
          t[at] ^= mask ? mask : 0x80;
          check(open(t, &plain) != Reject::kNone);
        }
        break;
      case 6:
        if (const Sent* s = pick(data, size)) {
          std::vector<uint8_t> t = s->datagram;
          t.resize(read_le(data + (size > 2 ? 2 : size), size > 4 ? 2 : 0) % t.size());
          check(open(t, &plain) != Reject::kNone);
        }
        break;
      case 7: {
        const std::vector<uint8_t> d = foreign.seal(data, size);
        if (!d.empty()) check(open(d, &plain) != Reject::kNone);
        break;
      }
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!secure::available()) return 0;
  Harness h;
  // The whole input as one datagram first: a single stray packet.
  std::vector<uint8_t> plain;
  h.open(std::vector<uint8_t>(data, data + size), &plain);
  size_t pos = 0;
  while (pos + 3 <= size) {
    const uint8_t op = data[pos];
    const size_t want = wire::read_u16le(data + pos + 1);
    pos += 3;
    const size_t len = want < size - pos ? want : size - pos;
    h.step(op, data + pos, len);
    pos += len;
  }
  return 0;
}
