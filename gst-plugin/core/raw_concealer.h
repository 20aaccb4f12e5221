// Concealment of lost spans in interleaved float32 little-endian audio.
//
// Instead of a click into silence and a click back, a lost span is filled with the
// last received audio played backwards (continuous at the seam) under a raised-cosine
// fade-out, then silence; the first packet after the span is faded in.
//
//   ... last packet | mirrored tail, fading out | silence ... | next packet, fading in
//
// Usage: observe() every packet that goes out, conceal() to fill a gap (it arms the
// fade-in), apply_fade_in() on the packets that follow (a no-op when nothing is armed).
// Pure C++: no GStreamer. Samples are bytes in F32LE on any host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace syncwave {

class RawConcealer {
 public:
  RawConcealer() = default;
  RawConcealer(uint16_t channels, size_t fade_frames) { configure(channels, fade_frames); }

  // Sets the layout and the fade length (frames); forgets history and any armed fade-in.
  void configure(uint16_t channels, size_t fade_frames);
  void reset();

  uint16_t channels() const { return channels_; }
  size_t fade_frames() const { return fade_frames_; }
  size_t frame_bytes() const { return channels_ * 4u; }

  // Remembers the end of an outgoing packet (`frames` whole frames of F32LE bytes).
  void observe(const uint8_t* data, size_t frames);

  // Writes `frames` frames of concealment to `out` (frames * frame_bytes() bytes) and
  // arms the fade-in for the next packets.
  void conceal(uint8_t* out, size_t frames);

  bool fade_in_pending() const { return fade_in_pos_ < fade_frames_; }
  // Fades in place the start of the audio after a concealed span; may span packets.
  void apply_fade_in(uint8_t* data, size_t frames);

 private:
  static float fade(size_t i, size_t len);  // raised cosine, 1 -> 0 over len frames

  uint16_t channels_ = 0;
  size_t fade_frames_ = 0;
  std::vector<float> history_;  // last history_frames_ frames, interleaved, oldest first
  size_t history_frames_ = 0;
  size_t fade_in_pos_ = 0;  // frames of fade-in applied so far; == fade_frames_ when idle
};

}  // namespace syncwave
