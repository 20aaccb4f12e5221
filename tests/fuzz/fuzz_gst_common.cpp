// SPDX-License-Identifier: LGPL-2.1-or-later
#include "fuzz_gst_common.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "wire_format.h"

namespace syncwave {
namespace fuzz {

namespace {

// Valid and invalid header values a hostile or broken sender might announce.
constexpr uint32_t kRates[] = {48000, 44100, 8000,     16000, 96000,  384000,
                               0,     1,     10000000, 999,   384001, 0xffffffff};
constexpr uint16_t kChannels[] = {2, 1, 6, 8, 64, 0, 65, 65535};

// Opus TOC bytes for every frame size and packet code.
constexpr uint8_t kOpusTocs[] = {0xfc, 0xf8, 0x78, 0x08, 0x80, 0xe0, 0xfd, 0xfe, 0xff, 0x03};

}  // namespace

void init_gstreamer(const char* element_name) {
  // Only our plugin, a throw-away registry, no forked scanner.
  char registry[] = "/tmp/syncwave-fuzz-registry-XXXXXX";
  const int fd = mkstemp(registry);
  if (fd >= 0) close(fd);
  g_setenv("GST_REGISTRY_1_0", registry, TRUE);
  g_setenv("GST_PLUGIN_SYSTEM_PATH_1_0", "", TRUE);
  g_setenv("GST_PLUGIN_PATH_1_0", "", TRUE);
  g_setenv("GST_PLUGIN_PATH", "", TRUE);
  g_setenv("GST_REGISTRY_FORK", "no", TRUE);
  if (!g_getenv("GST_DEBUG")) g_setenv("GST_DEBUG", "*:0", TRUE);
  gst_init(nullptr, nullptr);
  unlink(registry);
  GError* error = nullptr;
  GstPlugin* plugin = gst_plugin_load_file(SYNCWAVE_PLUGIN_FILE, &error);
  if (!plugin) {
    std::fprintf(stderr, "fuzz: cannot load %s: %s\n", SYNCWAVE_PLUGIN_FILE,
                 error ? error->message : "?");
    std::abort();
  }
  gst_object_unref(plugin);
  GstElement* e = gst_element_factory_make(element_name, nullptr);
  if (!e) {
    std::fprintf(stderr, "fuzz: element %s is not in %s\n", element_name, SYNCWAVE_PLUGIN_FILE);
    std::abort();
  }
  gst_object_unref(e);
}

uint8_t Reader::u8() {
  return pos_ < size_ ? data_[pos_++] : 0;
}

uint16_t Reader::u16() {
  const uint16_t lo = u8();
  return static_cast<uint16_t>(lo | (u8() << 8));
}

uint32_t Reader::u32() {
  const uint32_t lo = u16();
  return lo | (static_cast<uint32_t>(u16()) << 16);
}

std::vector<uint8_t> Reader::bytes(size_t n) {
  const size_t take = pos_ < size_ ? std::min(n, size_ - pos_) : 0;
  std::vector<uint8_t> out(data_ + pos_, data_ + pos_ + take);
  pos_ += take;
  return out;
}

std::vector<uint8_t> DatagramScript::header(Reader& in) {
  const uint8_t sel = in.u8();
  wire::StreamHeader h;
  h.sample_rate = kRates[sel % (sizeof(kRates) / sizeof(kRates[0]))];
  h.channels = kChannels[(sel >> 4) % (sizeof(kChannels) / sizeof(kChannels[0]))];
  const uint8_t flags = in.u8();
  h.compression = static_cast<wire::Compression>(flags & 1);
  auto bytes = wire::serialize_header(h);
  std::vector<uint8_t> out(bytes.begin(), bytes.end());
  if (flags & 0x02) out[11] = static_cast<uint8_t>(flags >> 2);  // unknown compression
  if (flags & 0x04) out[4] = static_cast<uint8_t>(flags >> 3);   // unknown version
  if (flags & 0x08) out.resize(in.u8() % 16);                    // truncated or padded
  const auto parsed = wire::parse(out.data(), out.size());
  if (parsed.kind == wire::Kind::kHeader) {
    rate_ = parsed.header.sample_rate;
    channels_ = parsed.header.channels;
    compression_ = static_cast<uint8_t>(parsed.header.compression);
  }
  return out;
}

std::vector<uint8_t> DatagramScript::audio(Reader& in) {
  const uint8_t flags = in.u8();
  const bool opus = (compression_ == 1) != ((flags & 0x01) != 0);  // bit 0: codec mismatch
  std::vector<uint8_t> payload;
  uint64_t duration_us = 0;
  if (opus) {
    payload = in.bytes(1 + in.u8() % 64);
    if (payload.empty()) payload.push_back(0);
    if (!(flags & 0x02)) payload[0] = kOpusTocs[payload[0] % sizeof(kOpusTocs)];
    duration_us = wire::opus_packet_duration_ns(payload.data(), payload.size()) / 1000;
  } else {
    // A whole number of frames of silence-ish samples unless bit 1 asks for a lie.
    const size_t frame = 4u * (channels_ ? channels_ : 1);
    size_t frames = 1 + in.u8() % 32;
    if (frame * frames > 1400) frames = 1400 / frame ? 1400 / frame : 1;
    payload.assign(frame * frames, 0);
    const auto noise = in.bytes(8);
    if (!noise.empty())
      std::memcpy(payload.data(), noise.data(), std::min(noise.size(), payload.size()));
    if (flags & 0x02) payload.resize(payload.size() - 1 - in.u8() % frame % payload.size());
    if (payload.empty()) payload.push_back(0);
    duration_us = rate_ ? frames * 1000000ull / rate_ : 0;
  }
  // Timestamp: continue the stream, jitter it, jump it, or send it back in time.
  uint64_t ts = next_ts_us_;
  switch ((flags >> 2) & 0x7) {
    case 0:
    case 1:
    case 2:
      break;
    case 3:
      ts += static_cast<int16_t>(in.u16());  // +-32 ms of sender jitter
      break;
    case 4:
      ts += static_cast<uint64_t>(in.u32());  // a gap, up to an hour
      break;
    case 5:
      ts -= std::min<uint64_t>(ts, in.u16() * 10ull);  // back in time
      break;
    case 6: {
      const uint64_t hi = in.u32();  // anything at all
      ts = hi << 32 | in.u32();
      break;
    }
    default:
      ts = 0;
      break;
  }
  next_ts_us_ = ts + duration_us;
  std::vector<uint8_t> out = wire::serialize_audio(
      opus ? wire::PacketType::kOpus : wire::PacketType::kRaw, ts, payload.data(), payload.size());
  if (flags & 0x20) {
    // A size field that lies, in either direction.
    wire::write_u16le(out.data() + 9, in.u16());
  }
  if (flags & 0x40 && out.size() > 1) out.resize(out.size() - 1 - in.u8() % (out.size() - 1));
  return out;
}

std::vector<uint8_t> DatagramScript::next(Reader& in) {
  const uint8_t kind = in.u8();
  switch (kind % 8) {
    case 0:
      return header(in);
    case 7:
      return in.bytes(in.u8());  // raw garbage, including empty datagrams
    default:
      return audio(in);
  }
}

GstBuffer* buffer_from(const std::vector<uint8_t>& bytes) {
  GstBuffer* buf = gst_buffer_new_allocate(nullptr, bytes.size(), nullptr);
  if (!bytes.empty()) gst_buffer_fill(buf, 0, bytes.data(), bytes.size());
  return buf;
}

}  // namespace fuzz
}  // namespace syncwave
