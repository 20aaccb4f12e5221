#include "raw_concealer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace syncwave {

namespace {

constexpr double kPi = 3.14159265358979323846;

float load_f32le(const uint8_t* p) {
  const uint32_t u = static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                     (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

void store_f32le(uint8_t* p, float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(u >> (8 * i));
}

}  // namespace

void RawConcealer::configure(uint16_t channels, size_t fade_frames) {
  channels_ = channels;
  fade_frames_ = fade_frames;
  history_.assign(static_cast<size_t>(channels_) * fade_frames_, 0.0f);
  reset();
}

void RawConcealer::reset() {
  history_frames_ = 0;
  fade_in_pos_ = fade_frames_;
}

float RawConcealer::fade(size_t i, size_t len) {
  if (i >= len) return 0.0f;
  return static_cast<float>(0.5 * (1.0 + std::cos(kPi * (i + 0.5) / len)));
}

void RawConcealer::observe(const uint8_t* data, size_t frames) {
  if (channels_ == 0 || fade_frames_ == 0 || data == nullptr) return;
  const size_t ch = channels_;
  const size_t take = std::min(frames, fade_frames_);
  // Shift the history left to make room, keeping at most fade_frames_ frames.
  const size_t keep = std::min(history_frames_, fade_frames_ - take);
  if (keep > 0 && history_frames_ > keep) {
    std::memmove(history_.data(), history_.data() + (history_frames_ - keep) * ch,
                 keep * ch * sizeof(float));
  }
  const uint8_t* src = data + (frames - take) * ch * 4;
  for (size_t i = 0; i < take * ch; i++) history_[keep * ch + i] = load_f32le(src + 4 * i);
  history_frames_ = keep + take;
}

void RawConcealer::conceal(uint8_t* out, size_t frames) {
  if (channels_ == 0 || out == nullptr) return;
  const size_t ch = channels_;
  const size_t len = std::min(history_frames_, fade_frames_);
  for (size_t i = 0; i < frames; i++) {
    const float g = fade(i, len);
    for (size_t c = 0; c < ch; c++) {
      float v = 0.0f;
      if (g > 0.0f) v = g * history_[(history_frames_ - 1 - i) * ch + c];
      store_f32le(out + (i * ch + c) * 4, v);
    }
  }
  history_frames_ = 0;
  fade_in_pos_ = 0;
}

void RawConcealer::apply_fade_in(uint8_t* data, size_t frames) {
  if (channels_ == 0 || data == nullptr) return;
  const size_t ch = channels_;
  for (size_t i = 0; i < frames && fade_in_pos_ < fade_frames_; i++, fade_in_pos_++) {
    const float g = 1.0f - fade(fade_in_pos_, fade_frames_);
    for (size_t c = 0; c < ch; c++) {
      uint8_t* p = data + (i * ch + c) * 4;
      store_f32le(p, g * load_f32le(p));
    }
  }
}

}  // namespace syncwave
