// SPDX-License-Identifier: LGPL-2.1-or-later
// The SYNC wire format: golden bytes, every malformed case, Opus TOC durations and
// robustness against random input.

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "wire_format.h"

using namespace syncwave::wire;

namespace {

std::vector<uint8_t> header_bytes(uint32_t rate, uint16_t channels, uint8_t compression,
                                  uint8_t version = 1) {
  std::vector<uint8_t> b = {'S', 'Y', 'N', 'C', version, 0, 0, 0, 0, 0, 0, compression};
  write_u32le(b.data() + 5, rate);
  write_u16le(b.data() + 9, channels);
  return b;
}

ParseResult parse_vec(const std::vector<uint8_t>& v) { return parse(v.data(), v.size()); }

}  // namespace

// Golden vectors: what the original Rust sender puts on the wire.
TEST(WireFormat, HeaderGolden) {
  const std::array<uint8_t, 12> raw48k = {'S', 'Y', 'N', 'C', 1, 0x80, 0xbb, 0x00, 0x00,
                                          0x02, 0x00, 0x00};
  EXPECT_EQ(serialize_header({48000, 2, Compression::kRaw}), raw48k);

  const std::array<uint8_t, 12> opus441 = {0x53, 0x59, 0x4e, 0x43, 0x01, 0x44, 0xac,
                                           0x00, 0x00, 0x01, 0x00, 0x01};
  EXPECT_EQ(serialize_header({44100, 1, Compression::kOpus}), opus441);
}

TEST(WireFormat, AudioGolden) {
  const float samples[2] = {0.5f, -1.0f};
  uint8_t payload[8];
  std::memcpy(payload, samples, sizeof(payload));  // little-endian host
  auto pkt = serialize_audio(PacketType::kRaw, 0x0102030405060708ull, payload, sizeof(payload));
  const std::vector<uint8_t> golden = {0x00,                                            // type
                                       0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // ts
                                       0x08, 0x00,                                      // size
                                       0x00, 0x00, 0x00, 0x3f,                          // 0.5f
                                       0x00, 0x00, 0x80, 0xbf};                         // -1.0f
  EXPECT_EQ(pkt, golden);

  const uint8_t opus[3] = {0xfc, 0xaa, 0xbb};
  auto op = serialize_audio(PacketType::kOpus, 1700000000000000ull, opus, sizeof(opus));
  ASSERT_EQ(op.size(), 14u);
  EXPECT_EQ(op[0], 1);
  EXPECT_EQ(read_u64le(op.data() + 1), 1700000000000000ull);
  EXPECT_EQ(read_u16le(op.data() + 9), 3);
  EXPECT_EQ(0, std::memcmp(op.data() + 11, opus, 3));
}

TEST(WireFormat, HeaderRoundTrip) {
  for (uint32_t rate : {8000u, 44100u, 48000u, 96000u, 384000u}) {
    for (uint16_t ch : {1, 2, 6, 64}) {
      for (auto c : {Compression::kRaw, Compression::kOpus}) {
        StreamHeader h{rate, ch, c};
        auto b = serialize_header(h);
        ParseResult r = parse(b.data(), b.size());
        ASSERT_EQ(r.kind, Kind::kHeader) << error_name(r.error);
        EXPECT_EQ(r.error, Error::kNone);
        EXPECT_EQ(r.header, h);
      }
    }
  }
}

TEST(WireFormat, AudioRoundTrip) {
  std::vector<uint8_t> payload(480 * 2 * 4, 0x11);
  auto pkt = serialize_audio(PacketType::kRaw, 123456789, payload.data(), payload.size());
  ParseResult r = parse_vec(pkt);
  ASSERT_EQ(r.kind, Kind::kRawAudio);
  EXPECT_EQ(r.audio.timestamp_us, 123456789u);
  EXPECT_EQ(r.audio.size, payload.size());
  EXPECT_EQ(r.audio.data, pkt.data() + kAudioHeaderSize);
  EXPECT_EQ(validate(r.audio, {48000, 2, Compression::kRaw}), Error::kNone);
  EXPECT_EQ(packet_duration_ns(r.audio, {48000, 2, Compression::kRaw}), 10000000u);
}

TEST(WireFormat, WriteAudioRespectsCapacity) {
  uint8_t payload[16] = {};
  uint8_t out[26];
  EXPECT_EQ(write_audio(PacketType::kRaw, 1, payload, 16, out, sizeof(out)), 0u);
  uint8_t out2[27];
  EXPECT_EQ(write_audio(PacketType::kRaw, 1, payload, 16, out2, sizeof(out2)), 27u);
  std::vector<uint8_t> big(kMaxPayloadSize + 1);
  EXPECT_TRUE(serialize_audio(PacketType::kRaw, 1, big.data(), big.size()).empty());
  EXPECT_EQ(serialize_audio(PacketType::kRaw, 1, big.data(), kMaxPayloadSize).size(),
            kMaxDatagramSize);
}

// Every malformed case, each with its reason.
TEST(WireFormat, MalformedHeaders) {
  struct Case {
    std::vector<uint8_t> bytes;
    Error expected;
  };
  auto longer = header_bytes(48000, 2, 0);
  longer.push_back(0);
  const Case cases[] = {
      {{}, Error::kEmpty},
      {{'S'}, Error::kBadMagic},
      {{'S', 'Y', 'N'}, Error::kBadMagic},
      {{'S', 'Y', 'N', 'X', 1, 0, 0, 0, 0, 0, 0, 0}, Error::kBadMagic},
      {{'S', 'Y', 'N', 'C', 1, 0x80, 0xbb}, Error::kTruncated},
      {header_bytes(48000, 2, 0, 2), Error::kUnknownVersion},
      {header_bytes(48000, 2, 0, 0), Error::kUnknownVersion},
      {longer, Error::kSizeMismatch},
      {header_bytes(48000, 2, 2), Error::kUnknownCompression},
      {header_bytes(48000, 2, 255), Error::kUnknownCompression},
      {header_bytes(0, 2, 0), Error::kBadSampleRate},
      {header_bytes(999, 2, 0), Error::kBadSampleRate},
      {header_bytes(10000000, 2, 0), Error::kBadSampleRate},
      {header_bytes(384001, 2, 0), Error::kBadSampleRate},
      {header_bytes(48000, 0, 0), Error::kBadChannels},
      {header_bytes(48000, 65, 0), Error::kBadChannels},
      {header_bytes(48000, 65535, 1), Error::kBadChannels},
      {{0x42, 0, 0}, Error::kUnknownType},
      {{0xff}, Error::kUnknownType},
      {{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, Error::kUnknownType},
  };
  for (const Case& c : cases) {
    ParseResult r = parse_vec(c.bytes);
    EXPECT_EQ(r.kind, Kind::kMalformed);
    EXPECT_EQ(r.error, c.expected) << "got " << error_name(r.error) << " want "
                                   << error_name(c.expected) << " for " << c.bytes.size()
                                   << " bytes";
  }
  EXPECT_EQ(parse(nullptr, 12).error, Error::kEmpty);
}

TEST(WireFormat, MalformedAudio) {
  uint8_t payload[8] = {};
  auto good = serialize_audio(PacketType::kRaw, 5, payload, 8);

  // Shorter than the fixed 11 bytes.
  for (size_t n = 1; n < kAudioHeaderSize; n++) {
    EXPECT_EQ(parse(good.data(), n).error, Error::kTruncated) << n;
  }
  // The size field promises more than the datagram holds.
  for (size_t n = kAudioHeaderSize; n < good.size(); n++) {
    EXPECT_EQ(parse(good.data(), n).error, Error::kTruncated) << n;
  }
  // The size field promises less: trailing bytes.
  auto trailing = good;
  trailing.push_back(0);
  EXPECT_EQ(parse_vec(trailing).error, Error::kSizeMismatch);
  // A size field of 65535 on a short datagram must not be trusted.
  auto liar = good;
  write_u16le(liar.data() + 9, 0xffff);
  EXPECT_EQ(parse_vec(liar).error, Error::kTruncated);
  // Zero-length payload.
  auto empty = serialize_audio(PacketType::kRaw, 5, nullptr, 0);
  EXPECT_EQ(parse_vec(empty).error, Error::kEmptyPayload);
}

TEST(WireFormat, ValidateAgainstHeader) {
  const StreamHeader stereo{48000, 2, Compression::kRaw};
  const StreamHeader opus{48000, 2, Compression::kOpus};
  uint8_t buf[12] = {};
  AudioPacket p{PacketType::kRaw, 0, buf, 12};  // 1.5 stereo frames
  EXPECT_EQ(validate(p, stereo), Error::kMisaligned);
  p.size = 8;
  EXPECT_EQ(validate(p, stereo), Error::kNone);
  EXPECT_EQ(validate(p, opus), Error::kCodecMismatch);
  p.size = 12;
  EXPECT_EQ(validate(p, {48000, 3, Compression::kRaw}), Error::kNone);

  uint8_t toc[1] = {0xfc};  // CELT 20 ms, code 0
  AudioPacket o{PacketType::kOpus, 0, toc, 1};
  EXPECT_EQ(validate(o, opus), Error::kNone);
  EXPECT_EQ(validate(o, stereo), Error::kCodecMismatch);
  uint8_t bad[1] = {0x03};  // code 3 without a frame-count byte
  o.data = bad;
  EXPECT_EQ(validate(o, opus), Error::kBadOpus);
}

// RFC 6716 section 3.1: frame sizes for all 32 configurations.
TEST(WireFormat, OpusFrameSizesAllConfigs) {
  const uint32_t expected_us[32] = {
      10000, 20000, 40000, 60000,  // SILK NB
      10000, 20000, 40000, 60000,  // SILK MB
      10000, 20000, 40000, 60000,  // SILK WB
      10000, 20000,                // Hybrid SWB
      10000, 20000,                // Hybrid FB
      2500,  5000,  10000, 20000,  // CELT NB
      2500,  5000,  10000, 20000,  // CELT WB
      2500,  5000,  10000, 20000,  // CELT SWB
      2500,  5000,  10000, 20000,  // CELT FB
  };
  for (uint8_t config = 0; config < 32; config++) {
    EXPECT_EQ(opus_frame_samples_48k(config) * 1000000ull / 48000, expected_us[config])
        << int(config);
    const uint8_t pkt[1] = {static_cast<uint8_t>(config << 3)};  // code 0, one frame
    EXPECT_EQ(opus_packet_duration_ns(pkt, 1), expected_us[config] * 1000ull) << int(config);
  }
}

TEST(WireFormat, OnlySilkAndHybridOpusFramesMayCarryFec) {
  for (uint8_t config = 0; config < 32; config++) {
    const uint8_t packet[2] = {static_cast<uint8_t>(config << 3), 0};
    EXPECT_EQ(opus_packet_may_carry_fec(packet, 2), config < 16) << int(config);
  }
  EXPECT_FALSE(opus_packet_may_carry_fec(nullptr, 0));
  const uint8_t silk = 0;
  EXPECT_FALSE(opus_packet_may_carry_fec(&silk, 0));
}

TEST(WireFormat, OpusFrameCountCodes) {
  const uint8_t celt10 = 30 << 3;  // CELT FB 10 ms
  // Code 1: two equal frames; payload after TOC must split evenly.
  const uint8_t c1[5] = {static_cast<uint8_t>(celt10 | 1), 1, 2, 3, 4};
  EXPECT_EQ(opus_packet_samples_48k(c1, 5), 960u);
  EXPECT_EQ(opus_packet_samples_48k(c1, 4), 0u);
  // Code 2: two frames, first length coded.
  const uint8_t c2[5] = {static_cast<uint8_t>(celt10 | 2), 2, 9, 9, 9};
  EXPECT_EQ(opus_packet_samples_48k(c2, 5), 960u);
  const uint8_t c2bad[3] = {static_cast<uint8_t>(celt10 | 2), 5, 9};
  EXPECT_EQ(opus_packet_samples_48k(c2bad, 3), 0u);
  const uint8_t c2short[2] = {static_cast<uint8_t>(celt10 | 2), 253};  // 2-byte length cut
  EXPECT_EQ(opus_packet_samples_48k(c2short, 2), 0u);
  // Code 3: M frames, CBR.
  const uint8_t c3[8] = {static_cast<uint8_t>(celt10 | 3), 3, 1, 1, 1, 1, 1, 1};
  EXPECT_EQ(opus_packet_samples_48k(c3, 8), 3 * 480u);
  const uint8_t c3zero[2] = {static_cast<uint8_t>(celt10 | 3), 0};
  EXPECT_EQ(opus_packet_samples_48k(c3zero, 2), 0u);
  // 12 frames of 10 ms = 120 ms is the maximum; 13 is invalid.
  std::vector<uint8_t> c3max = {static_cast<uint8_t>(celt10 | 3), 12};
  EXPECT_EQ(opus_packet_samples_48k(c3max.data(), c3max.size()), 5760u);
  std::vector<uint8_t> c3over = {static_cast<uint8_t>(celt10 | 3), 13};
  EXPECT_EQ(opus_packet_samples_48k(c3over.data(), c3over.size()), 0u);
  // Code 3 with padding: 0x40 flag, one padding-length byte of 2, then 2 bytes padding.
  const uint8_t c3pad[7] = {static_cast<uint8_t>(celt10 | 3), 0x40 | 2, 2, 7, 7, 0, 0};
  EXPECT_EQ(opus_packet_samples_48k(c3pad, 7), 960u);
  EXPECT_EQ(opus_packet_samples_48k(c3pad, 6), 0u);  // frames no longer split evenly
  const uint8_t c3padbad[4] = {static_cast<uint8_t>(celt10 | 3), 0x40 | 1, 200, 0};
  EXPECT_EQ(opus_packet_samples_48k(c3padbad, 4), 0u);
  // Code 3 VBR: lengths of all but the last frame.
  const uint8_t c3vbr[6] = {static_cast<uint8_t>(celt10 | 3), 0x80 | 2, 2, 1, 1, 1};
  EXPECT_EQ(opus_packet_samples_48k(c3vbr, 6), 960u);
  const uint8_t c3vbrbad[4] = {static_cast<uint8_t>(celt10 | 3), 0x80 | 2, 9, 1};
  EXPECT_EQ(opus_packet_samples_48k(c3vbrbad, 4), 0u);
  EXPECT_EQ(opus_packet_samples_48k(nullptr, 0), 0u);
}

TEST(WireFormat, RawDuration) {
  const StreamHeader h{44100, 2, Compression::kRaw};
  EXPECT_EQ(raw_frames(441 * 8, h), 441u);
  EXPECT_EQ(raw_duration_ns(441 * 8, h), 10000000u);
  EXPECT_EQ(raw_duration_ns(8, {48000, 0, Compression::kRaw}), 0u);
  EXPECT_EQ(raw_duration_ns(8, {0, 2, Compression::kRaw}), 0u);
}

TEST(WireFormat, ErrorNamesAreDistinct) {
  for (int a = 0; a < static_cast<int>(Error::kCount); a++) {
    for (int b = a + 1; b < static_cast<int>(Error::kCount); b++) {
      EXPECT_STRNE(error_name(static_cast<Error>(a)), error_name(static_cast<Error>(b)));
    }
  }
}

// Random bytes never crash the parser, and whatever it accepts is self-consistent.
// Runs under ASan/UBSan in the sanitizer build, where an out-of-bounds read fails.
TEST(WireFormat, RandomBytesRobustness) {
  std::mt19937 rng(12345);
  const StreamHeader h{48000, 2, Compression::kRaw};
  const StreamHeader ho{48000, 2, Compression::kOpus};
  for (int i = 0; i < 200000; i++) {
    const size_t n = rng() % 64;
    std::vector<uint8_t> buf(n);
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    // Bias towards plausible first bytes so the deeper paths run too.
    if (n > 0 && (i % 3) != 0) buf[0] = static_cast<uint8_t>(i % 3 == 1 ? 0 : 1);
    if (n > 10 && (i % 5) == 0) write_u16le(buf.data() + 9, static_cast<uint16_t>(n - 11));
    // Copy into an exactly sized heap block so ASan catches any over-read.
    std::unique_ptr<uint8_t[]> exact(new uint8_t[n ? n : 1]);
    if (n) std::memcpy(exact.get(), buf.data(), n);
    ParseResult r = parse(n ? exact.get() : nullptr, n);
    switch (r.kind) {
      case Kind::kHeader:
        EXPECT_EQ(n, kHeaderSize);
        break;
      case Kind::kRawAudio:
      case Kind::kOpusAudio:
        EXPECT_EQ(r.audio.size + kAudioHeaderSize, n);
        EXPECT_GT(r.audio.size, 0u);
        (void)validate(r.audio, h);
        (void)validate(r.audio, ho);
        (void)packet_duration_ns(r.audio, ho);
        break;
      case Kind::kMalformed:
        EXPECT_NE(r.error, Error::kNone);
        break;
    }
    (void)opus_packet_samples_48k(n ? exact.get() : nullptr, n);
  }
}
