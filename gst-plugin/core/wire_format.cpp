// SPDX-License-Identifier: LGPL-2.1-or-later
#include "wire_format.h"

#include <cstring>

namespace syncwave {
namespace wire {

namespace {

constexpr uint8_t kTypeRaw = 0;
constexpr uint8_t kTypeOpus = 1;

// The longest duration one Opus packet may hold (RFC 6716 3.2.5): 120 ms.
constexpr uint32_t kOpusMaxPacketSamples48k = 5760;

ParseResult malformed(Error e) {
  ParseResult r;
  r.kind = Kind::kMalformed;
  r.error = e;
  return r;
}

ParseResult parse_header(const uint8_t* data, size_t size) {
  if (size < kMagic.size() || std::memcmp(data, kMagic.data(), kMagic.size()) != 0)
    return malformed(Error::kBadMagic);
  if (size < kHeaderSize) return malformed(Error::kTruncated);
  if (data[4] != kVersion) return malformed(Error::kUnknownVersion);
  if (size > kHeaderSize) return malformed(Error::kSizeMismatch);

  StreamHeader h;
  h.sample_rate = read_u32le(data + 5);
  h.channels = read_u16le(data + 9);
  const uint8_t compression = data[11];
  if (compression > static_cast<uint8_t>(Compression::kOpus))
    return malformed(Error::kUnknownCompression);
  h.compression = static_cast<Compression>(compression);
  if (h.sample_rate < kMinSampleRate || h.sample_rate > kMaxSampleRate)
    return malformed(Error::kBadSampleRate);
  if (h.channels == 0 || h.channels > kMaxChannels) return malformed(Error::kBadChannels);

  ParseResult r;
  r.kind = Kind::kHeader;
  r.header = h;
  return r;
}

ParseResult parse_audio(const uint8_t* data, size_t size) {
  if (size < kAudioHeaderSize) return malformed(Error::kTruncated);
  const size_t payload = read_u16le(data + 9);
  const size_t available = size - kAudioHeaderSize;
  if (payload > available) return malformed(Error::kTruncated);
  if (payload < available) return malformed(Error::kSizeMismatch);
  if (payload == 0) return malformed(Error::kEmptyPayload);

  ParseResult r;
  r.kind = data[0] == kTypeRaw ? Kind::kRawAudio : Kind::kOpusAudio;
  r.audio.type = data[0] == kTypeRaw ? PacketType::kRaw : PacketType::kOpus;
  r.audio.timestamp_us = read_u64le(data + 1);
  r.audio.data = data + kAudioHeaderSize;
  r.audio.size = payload;
  return r;
}

// Reads an Opus frame length (RFC 6716 3.2.1). Returns bytes consumed, 0 if truncated.
size_t read_opus_length(const uint8_t* p, size_t avail, size_t* len) {
  if (avail < 1) return 0;
  if (p[0] < 252) {
    *len = p[0];
    return 1;
  }
  if (avail < 2) return 0;
  *len = static_cast<size_t>(p[1]) * 4 + p[0];
  return 2;
}

// Number of frames in a well-formed Opus packet, 0 if malformed (RFC 6716 3.2).
uint32_t opus_frame_count(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t code = data[0] & 0x3;
  switch (code) {
    case 0:
      return 1;
    case 1:
      return ((size - 1) % 2 == 0) ? 2 : 0;
    case 2: {
      size_t len = 0;
      const size_t n = read_opus_length(data + 1, size - 1, &len);
      if (n == 0 || len > size - 1 - n) return 0;
      return 2;
    }
    default: {
      if (size < 2) return 0;
      const uint8_t fc = data[1];
      const uint32_t count = fc & 0x3f;
      const bool vbr = fc & 0x80;
      const bool padded = fc & 0x40;
      if (count == 0) return 0;
      size_t pos = 2;
      size_t padding = 0;
      if (padded) {
        // Each 255 byte adds 254 padding bytes and continues; the last byte ends it.
        for (;;) {
          if (pos >= size) return 0;
          const uint8_t b = data[pos++];
          padding += (b == 255) ? 254 : b;
          if (b != 255) break;
        }
      }
      if (pos > size || padding > size - pos) return 0;
      size_t remaining = size - pos - padding;
      if (vbr) {
        for (uint32_t i = 0; i + 1 < count; i++) {
          size_t len = 0;
          const size_t n = read_opus_length(data + pos, remaining, &len);
          if (n == 0) return 0;
          pos += n;
          remaining -= n;
          if (len > remaining) return 0;
          remaining -= len;
        }
      } else if (remaining % count != 0) {
        return 0;
      }
      return count;
    }
  }
}

}  // namespace

const char* error_name(Error e) {
  switch (e) {
    case Error::kNone: return "none";
    case Error::kEmpty: return "empty";
    case Error::kTruncated: return "truncated";
    case Error::kSizeMismatch: return "size-mismatch";
    case Error::kBadMagic: return "bad-magic";
    case Error::kUnknownType: return "unknown-type";
    case Error::kUnknownVersion: return "unknown-version";
    case Error::kUnknownCompression: return "unknown-compression";
    case Error::kBadSampleRate: return "bad-sample-rate";
    case Error::kBadChannels: return "bad-channels";
    case Error::kEmptyPayload: return "empty-payload";
    case Error::kMisaligned: return "misaligned";
    case Error::kCodecMismatch: return "codec-mismatch";
    case Error::kBadOpus: return "bad-opus";
    case Error::kCount: break;
  }
  return "unknown";
}

ParseResult parse(const uint8_t* data, size_t size) {
  if (data == nullptr || size == 0) return malformed(Error::kEmpty);
  const uint8_t first = data[0];
  if (first == kMagic[0]) return parse_header(data, size);
  if (first == kTypeRaw || first == kTypeOpus) return parse_audio(data, size);
  return malformed(Error::kUnknownType);
}

Error validate(const AudioPacket& packet, const StreamHeader& header) {
  const bool opus_stream = header.compression == Compression::kOpus;
  const bool opus_packet = packet.type == PacketType::kOpus;
  if (opus_stream != opus_packet) return Error::kCodecMismatch;
  if (packet.size == 0 || packet.data == nullptr) return Error::kEmptyPayload;
  if (opus_packet) {
    return opus_packet_samples_48k(packet.data, packet.size) == 0 ? Error::kBadOpus
                                                                   : Error::kNone;
  }
  if (header.channels == 0) return Error::kBadChannels;
  const size_t frame = kBytesPerSample * header.channels;
  return packet.size % frame == 0 ? Error::kNone : Error::kMisaligned;
}

std::array<uint8_t, kHeaderSize> serialize_header(const StreamHeader& header) {
  std::array<uint8_t, kHeaderSize> out{};
  std::memcpy(out.data(), kMagic.data(), kMagic.size());
  out[4] = kVersion;
  write_u32le(out.data() + 5, header.sample_rate);
  write_u16le(out.data() + 9, header.channels);
  out[11] = static_cast<uint8_t>(header.compression);
  return out;
}

size_t write_audio(PacketType type, uint64_t timestamp_us, const uint8_t* payload,
                   size_t payload_size, uint8_t* out, size_t capacity) {
  if (payload_size > kMaxPayloadSize) return 0;
  const size_t total = kAudioHeaderSize + payload_size;
  if (out == nullptr || capacity < total) return 0;
  out[0] = static_cast<uint8_t>(type);
  write_u64le(out + 1, timestamp_us);
  write_u16le(out + 9, static_cast<uint16_t>(payload_size));
  if (payload_size > 0) std::memcpy(out + kAudioHeaderSize, payload, payload_size);
  return total;
}

std::vector<uint8_t> serialize_audio(PacketType type, uint64_t timestamp_us,
                                     const uint8_t* payload, size_t payload_size) {
  if (payload_size > kMaxPayloadSize) return {};
  std::vector<uint8_t> out(kAudioHeaderSize + payload_size);
  write_audio(type, timestamp_us, payload, payload_size, out.data(), out.size());
  return out;
}

uint64_t raw_frames(size_t payload_size, const StreamHeader& header) {
  if (header.channels == 0) return 0;
  return payload_size / (kBytesPerSample * header.channels);
}

uint64_t raw_duration_ns(size_t payload_size, const StreamHeader& header) {
  if (header.sample_rate == 0) return 0;
  return raw_frames(payload_size, header) * 1000000000ull / header.sample_rate;
}

bool opus_packet_may_carry_fec(const uint8_t* data, size_t size) {
  return data != nullptr && size > 0 && (data[0] >> 3) < 16;
}

uint32_t opus_frame_samples_48k(uint8_t config) {
  config &= 0x1f;
  if (config < 12) {
    // SILK-only: 10, 20, 40, 60 ms.
    static constexpr uint32_t kSilk[4] = {480, 960, 1920, 2880};
    return kSilk[config & 3];
  }
  if (config < 16) {
    // Hybrid: 10, 20 ms.
    return (config & 1) ? 960 : 480;
  }
  // CELT-only: 2.5, 5, 10, 20 ms.
  static constexpr uint32_t kCelt[4] = {120, 240, 480, 960};
  return kCelt[config & 3];
}

uint32_t opus_packet_samples_48k(const uint8_t* data, size_t size) {
  if (data == nullptr || size == 0) return 0;
  const uint32_t frames = opus_frame_count(data, size);
  if (frames == 0) return 0;
  const uint32_t samples = frames * opus_frame_samples_48k(data[0] >> 3);
  return samples > kOpusMaxPacketSamples48k ? 0 : samples;
}

uint64_t opus_packet_duration_ns(const uint8_t* data, size_t size) {
  return static_cast<uint64_t>(opus_packet_samples_48k(data, size)) * 1000000000ull / 48000;
}

uint64_t packet_duration_ns(const AudioPacket& packet, const StreamHeader& header) {
  if (packet.type == PacketType::kOpus) return opus_packet_duration_ns(packet.data, packet.size);
  return raw_duration_ns(packet.size, header);
}

}  // namespace wire
}  // namespace syncwave
