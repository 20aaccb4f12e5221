// SPDX-License-Identifier: LGPL-2.1-or-later
// libFuzzer target: the wire-format parser. The input is split into datagrams
// (2-byte little-endian length prefix each; a short tail is one more datagram) and
// fed through parse() and validate() the way a receiver does: the header in force
// changes only on a valid header. Checks what must hold for any input:
//   - parse() classifies, never reads out of bounds (ASan), never throws;
//   - an accepted header re-serializes to the same 12 bytes;
//   - an accepted audio packet points inside its datagram, re-serializes to the
//     same bytes, and has a duration that agrees with validate().

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "wire_format.h"

using namespace syncwave::wire;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void one_datagram(const uint8_t* data, size_t size, StreamHeader* current, bool* have_header) {
  // Copy into an exact-size heap buffer so ASan sees any read past the datagram.
  std::vector<uint8_t> dgram(data, data + size);
  const uint8_t* p = dgram.empty() ? nullptr : dgram.data();
  const ParseResult r = parse(p, dgram.size());
  switch (r.kind) {
    case Kind::kMalformed:
      check(r.error != Error::kNone && r.error < Error::kCount);
      check(error_name(r.error) != nullptr);
      break;
    case Kind::kHeader: {
      check(r.error == Error::kNone);
      check(r.header.sample_rate >= kMinSampleRate && r.header.sample_rate <= kMaxSampleRate);
      check(r.header.channels >= 1 && r.header.channels <= kMaxChannels);
      const auto again = serialize_header(r.header);
      check(size == kHeaderSize && std::memcmp(again.data(), p, kHeaderSize) == 0);
      *current = r.header;
      *have_header = true;
      break;
    }
    case Kind::kRawAudio:
    case Kind::kOpusAudio: {
      const AudioPacket& a = r.audio;
      check(a.size > 0 && a.size <= kMaxPayloadSize);
      check(a.data == p + kAudioHeaderSize && a.data + a.size == p + size);
      check((r.kind == Kind::kOpusAudio) == (a.type == PacketType::kOpus));
      const auto again = serialize_audio(a.type, a.timestamp_us, a.data, a.size);
      check(again.size() == size && std::memcmp(again.data(), p, size) == 0);
      if (*have_header) {
        const Error e = validate(a, *current);
        const uint64_t dur = packet_duration_ns(a, *current);
        if (e == Error::kNone) {
          check(dur > 0);
          if (a.type == PacketType::kRaw) {
            check(raw_frames(a.size, *current) * kBytesPerSample * current->channels == a.size);
          } else {
            check(dur <= 120000000ull);
          }
        }
      }
      // Opus TOC parsing must be safe on any payload, stream header or not.
      const uint32_t samples = opus_packet_samples_48k(a.data, a.size);
      check(samples <= 5760);
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  StreamHeader current;
  bool have_header = false;
  // Whole input as one datagram first: the common case for a single stray packet.
  one_datagram(data, size, &current, &have_header);
  have_header = false;
  size_t pos = 0;
  while (pos < size) {
    size_t len = size - pos;
    if (len >= 2) {
      const size_t want = read_u16le(data + pos);
      pos += 2;
      len = want < size - pos ? want : size - pos;
    } else {
      pos += len;
      len = 0;
      break;
    }
    one_datagram(data + pos, len, &current, &have_header);
    pos += len;
  }
  return 0;
}
