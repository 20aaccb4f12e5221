// SPDX-License-Identifier: LGPL-2.1-or-later
// Shared by the element fuzz targets: GStreamer set-up (only our plugin, from the
// build tree) and a reader that turns fuzz input into a script of datagrams.
#pragma once

#include <gst/gst.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace syncwave {
namespace fuzz {

// gst_init with a private registry and our plugin only. Aborts when the element
// cannot be made: a fuzz run must not silently test nothing.
void init_gstreamer(const char* element_name);

// Reads fixed-size values from the input; past the end it yields zeros.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t u8();
  uint16_t u16();
  uint32_t u32();
  // Up to n bytes (fewer at the end of the input).
  std::vector<uint8_t> bytes(size_t n);

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Builds one datagram from the input. The stream state (format in force, next
// timestamp) lets it produce mostly plausible packets, with every kind of lie mixed
// in: the mix is what reaches deep into the element rather than its first check.
class DatagramScript {
 public:
  explicit DatagramScript(uint64_t start_us) : next_ts_us_(start_us) {}
  std::vector<uint8_t> next(Reader& in);
  uint64_t next_ts_us() const { return next_ts_us_; }

 private:
  std::vector<uint8_t> header(Reader& in);
  std::vector<uint8_t> audio(Reader& in);
  uint32_t rate_ = 48000;
  uint16_t channels_ = 2;
  uint8_t compression_ = 0;
  uint64_t next_ts_us_;
};

GstBuffer* buffer_from(const std::vector<uint8_t>& bytes);

}  // namespace fuzz
}  // namespace syncwave
