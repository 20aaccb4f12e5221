// SPDX-License-Identifier: LGPL-2.1-or-later
// SyncWave wire format, version 1: byte-exact with the original Rust+Python SyncWave.
//
// Pure C++: no GStreamer, no GLib. Everything the network sends passes through
// parse() first; it never reads past the datagram, never trusts a length field and
// reports problems as values.
//
//   sender                                   receiver
//     | --- header x5 ------------------------> |  configure rate/channels/codec
//     | --- audio, audio, audio ... ----------> |
//     | --- header (every 1000 audio packets) -> |
//     | --- header x5 (format change) ---------> |  renegotiate
//
//   Header datagram, 12 bytes:
//   +------+------+------+------+---------+------------------+-------------+-------------+
//   | 'S'  | 'Y'  | 'N'  | 'C'  | version | sample rate u32LE| channels u16LE| compression |
//   +------+------+------+------+---------+------------------+-------------+-------------+
//     0      1      2      3       4         5..8               9..10          11
//
//   Audio datagram, 11 + size bytes:
//   +------+----------------------+-------------+--------------------+
//   | type | timestamp u64 LE (us)| size u16 LE | data (size bytes)  |
//   +------+----------------------+-------------+--------------------+
//     0      1..8                   9..10         11..
//
// See docs/wire-format.md for the rules and what a receiver does with each error.

#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace syncwave {
namespace wire {

constexpr std::array<uint8_t, 4> kMagic = {'S', 'Y', 'N', 'C'};
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderSize = 12;
constexpr size_t kAudioHeaderSize = 11;
constexpr size_t kMaxPayloadSize = 0xffff;
constexpr size_t kMaxDatagramSize = kAudioHeaderSize + kMaxPayloadSize;

// Limits a receiver accepts in a header.
constexpr uint32_t kMinSampleRate = 1000;
constexpr uint32_t kMaxSampleRate = 384000;
constexpr uint16_t kMaxChannels = 64;

// Sender cadence.
constexpr unsigned kDefaultHeaderRepeat = 5;
constexpr unsigned kDefaultHeaderInterval = 1000;

constexpr size_t kBytesPerSample = 4;  // float32 little-endian

enum class Compression : uint8_t { kRaw = 0, kOpus = 1 };
enum class PacketType : uint8_t { kRaw = 0, kOpus = 1 };

struct StreamHeader {
  uint32_t sample_rate = 48000;
  uint16_t channels = 2;
  Compression compression = Compression::kRaw;

  bool operator==(const StreamHeader& o) const {
    return sample_rate == o.sample_rate && channels == o.channels &&
           compression == o.compression;
  }
  bool operator!=(const StreamHeader& o) const { return !(*this == o); }
};

// A view into the datagram it was parsed from: valid as long as that memory is.
struct AudioPacket {
  PacketType type = PacketType::kRaw;
  uint64_t timestamp_us = 0;
  const uint8_t* data = nullptr;
  size_t size = 0;
};

enum class Kind { kHeader, kRawAudio, kOpusAudio, kMalformed };

// Why a datagram was rejected. Keep in step with error_name() and docs/wire-format.md.
enum class Error : uint8_t {
  kNone = 0,
  kEmpty,               // zero-length datagram
  kTruncated,           // shorter than the fixed part of its kind, or than its size field
  kSizeMismatch,        // longer than its size field (or a header longer than 12 bytes)
  kBadMagic,            // starts with 'S' but is not "SYNC"
  kUnknownType,         // first byte is neither 0, 1 nor 'S'
  kUnknownVersion,      // header version is not 1
  kUnknownCompression,  // header compression is not 0 or 1
  kBadSampleRate,       // header sample rate 0 or outside [1000, 384000]
  kBadChannels,         // header channels 0 or above 64
  kEmptyPayload,        // audio packet with size 0
  kMisaligned,          // raw payload not a whole number of frames (needs the header)
  kCodecMismatch,       // packet type differs from the header's compression
  kBadOpus,             // Opus payload whose TOC/frame count is invalid (RFC 6716 3.1)
  kCount
};

const char* error_name(Error e);

struct ParseResult {
  Kind kind = Kind::kMalformed;
  Error error = Error::kNone;
  StreamHeader header;  // valid when kind == kHeader
  AudioPacket audio;    // valid when kind is kRawAudio or kOpusAudio
};

// Classifies one datagram. Header fields are range-checked here; checks that need
// the stream's header (frame alignment, codec match, Opus TOC) are in validate().
ParseResult parse(const uint8_t* data, size_t size);

// Checks an audio packet against the stream header in force. kNone when it fits.
Error validate(const AudioPacket& packet, const StreamHeader& header);

// Serialization. The write_* functions return the number of bytes written, or 0
// when the output does not fit in `capacity` (or the payload exceeds 65535 bytes).
std::array<uint8_t, kHeaderSize> serialize_header(const StreamHeader& header);
size_t write_audio(PacketType type, uint64_t timestamp_us, const uint8_t* payload,
                   size_t payload_size, uint8_t* out, size_t capacity);
std::vector<uint8_t> serialize_audio(PacketType type, uint64_t timestamp_us,
                                     const uint8_t* payload, size_t payload_size);

// Durations. Raw: from payload size, channels and rate, in nanoseconds (0 when the
// header is unusable). Opus: number of 48 kHz samples in the packet from its TOC
// byte and, for code 3, its frame-count byte; 0 when the packet is invalid.
uint64_t raw_duration_ns(size_t payload_size, const StreamHeader& header);
uint64_t raw_frames(size_t payload_size, const StreamHeader& header);
uint32_t opus_packet_samples_48k(const uint8_t* data, size_t size);
uint64_t opus_packet_duration_ns(const uint8_t* data, size_t size);
// Samples of one Opus frame for a TOC configuration number (0..31), at 48 kHz.
uint32_t opus_frame_samples_48k(uint8_t config);
// Whether a packet can carry in-band FEC: only SILK-only and hybrid frames (TOC
// configurations 0..15) have LBRR data; CELT-only ones (16..31) never do. False for an
// empty packet.
bool opus_packet_may_carry_fec(const uint8_t* data, size_t size);

// Duration of any audio packet under `header` (0 when invalid).
uint64_t packet_duration_ns(const AudioPacket& packet, const StreamHeader& header);

// Little-endian helpers (exposed for tests and tools).
inline uint16_t read_u16le(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t read_u32le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t read_u64le(const uint8_t* p) {
  return static_cast<uint64_t>(read_u32le(p)) |
         (static_cast<uint64_t>(read_u32le(p + 4)) << 32);
}
inline void write_u16le(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void write_u32le(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void write_u64le(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace wire
}  // namespace syncwave
