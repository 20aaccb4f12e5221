// RawConcealer: fade-out of the mirrored tail, silence, fade-in; F32LE bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "raw_concealer.h"

using syncwave::RawConcealer;

namespace {

std::vector<uint8_t> to_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());  // tests run on little-endian hosts
  return b;
}

std::vector<float> to_floats(const std::vector<uint8_t>& b) {
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

}  // namespace

TEST(RawConcealer, ConcealsWithMirroredFadeThenSilence) {
  RawConcealer c(2, 8);
  std::vector<float> in;
  for (int i = 0; i < 16; i++) {
    in.push_back(0.5f);
    in.push_back(-0.25f);
  }
  auto bytes = to_bytes(in);
  c.observe(bytes.data(), 16);
  std::vector<uint8_t> out(20 * 8);
  c.conceal(out.data(), 20);
  auto f = to_floats(out);
  // Starts close to the last sample, decreases monotonically, then silence.
  EXPECT_NEAR(f[0], 0.5f, 0.02f);
  EXPECT_NEAR(f[1], -0.25f, 0.01f);
  for (int i = 1; i < 8; i++) EXPECT_LE(std::fabs(f[2 * i]), std::fabs(f[2 * (i - 1)]));
  for (int i = 8; i < 20; i++) {
    EXPECT_EQ(f[2 * i], 0.0f);
    EXPECT_EQ(f[2 * i + 1], 0.0f);
  }
  EXPECT_TRUE(c.fade_in_pending());
}

TEST(RawConcealer, MirrorsTheTail) {
  RawConcealer c(1, 4);
  std::vector<float> in = {9, 9, 1, 2, 3, 4};
  auto bytes = to_bytes(in);
  c.observe(bytes.data(), 6);
  std::vector<uint8_t> out(4 * 4);
  c.conceal(out.data(), 4);
  auto f = to_floats(out);
  // Mirrored: 4, 3, 2, 1 under a falling gain.
  EXPECT_GT(f[0], 3.5f);
  EXPECT_LT(f[0], 4.0f);
  EXPECT_LT(f[1], 3.0f);
  EXPECT_LT(f[3], 1.0f);
  EXPECT_GT(f[3], 0.0f);
}

TEST(RawConcealer, FadeInSpansPacketsAndEnds) {
  RawConcealer c(1, 10);
  std::vector<uint8_t> tmp(4 * 3);
  c.conceal(tmp.data(), 3);  // no history: silence
  for (float v : to_floats(tmp)) EXPECT_EQ(v, 0.0f);
  std::vector<float> ones(6, 1.0f);
  auto a = to_bytes(ones);
  c.apply_fade_in(a.data(), 6);
  auto fa = to_floats(a);
  EXPECT_LT(fa[0], 0.05f);
  for (int i = 1; i < 6; i++) EXPECT_GT(fa[i], fa[i - 1]);
  EXPECT_TRUE(c.fade_in_pending());
  auto b = to_bytes(ones);
  c.apply_fade_in(b.data(), 6);
  auto fb = to_floats(b);
  EXPECT_GT(fb[0], fa[5]);
  EXPECT_LT(fb[3], 1.0f);
  EXPECT_EQ(fb[4], 1.0f);
  EXPECT_EQ(fb[5], 1.0f);
  EXPECT_FALSE(c.fade_in_pending());
  // Nothing armed: untouched.
  auto d = to_bytes(ones);
  c.apply_fade_in(d.data(), 6);
  for (float v : to_floats(d)) EXPECT_EQ(v, 1.0f);
}

TEST(RawConcealer, HistoryAcrossSmallPackets) {
  RawConcealer c(1, 4);
  for (float v : {1.0f, 2.0f, 3.0f}) {
    auto b = to_bytes({v});
    c.observe(b.data(), 1);
  }
  std::vector<uint8_t> out(4 * 4);
  c.conceal(out.data(), 4);
  auto f = to_floats(out);
  // History holds 3 frames (1, 2, 3): mirrored 3, 2, 1 faded over 3 frames, then 0.
  EXPECT_GT(f[0], 2.5f);
  EXPECT_GT(f[1], 0.5f);
  EXPECT_LT(f[1], 2.0f);
  EXPECT_LT(f[2], 0.2f);
  EXPECT_EQ(f[3], 0.0f);
}

TEST(RawConcealer, ReconfigureForgets) {
  RawConcealer c(2, 4);
  std::vector<uint8_t> silence(8 * 4);
  c.conceal(silence.data(), 4);
  EXPECT_TRUE(c.fade_in_pending());
  c.configure(1, 4);
  EXPECT_FALSE(c.fade_in_pending());
  EXPECT_EQ(c.frame_bytes(), 4u);
}
