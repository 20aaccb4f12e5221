// SPDX-License-Identifier: LGPL-2.1-or-later
// RawConcealer: pitch-period continuation with overlap-add, crossfade back, fade on long
// losses; F32LE bytes. Streams are fed as gstsyncwavedepay does: per good packet
// apply_fade_in() on the outgoing copy, then observe() the original; conceal() per loss.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "raw_concealer.h"

using syncwave::RawConcealer;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kRate = 48000;
constexpr size_t kFade = 240;  // 5 ms at 48 kHz, as the depayloader configures it

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

// frames x channels, interleaved; f(frame, channel).
std::vector<float> make_signal(size_t frames, int channels,
                               const std::function<double(size_t, int)>& f) {
  std::vector<float> v(frames * channels);
  for (size_t i = 0; i < frames; i++)
    for (int c = 0; c < channels; c++) v[i * channels + c] = static_cast<float>(f(i, c));
  return v;
}

// Plays `in` in packets of `packet` frames; the packets in `lost` are concealed.
std::vector<float> play(RawConcealer& c, const std::vector<float>& in, int channels, size_t packet,
                        const std::set<size_t>& lost) {
  const size_t frames = in.size() / channels;
  std::vector<float> out(in.size());
  for (size_t p = 0; p * packet < frames; p++) {
    const size_t n = std::min(packet, frames - p * packet);
    const size_t off = p * packet * channels;
    std::vector<uint8_t> b(n * channels * 4);
    if (lost.count(p)) {
      c.conceal(b.data(), n);
    } else {
      std::vector<float> pkt(in.begin() + off, in.begin() + off + n * channels);
      auto orig = to_bytes(pkt);
      b = orig;
      if (c.fade_in_pending()) c.apply_fade_in(b.data(), n);
      c.observe(orig.data(), n);
    }
    auto f = to_floats(b);
    std::copy(f.begin(), f.end(), out.begin() + off);
  }
  return out;
}

// 10 log10(signal energy / error energy) over frames [from, to), one channel or all.
double snr_db(const std::vector<float>& ref, const std::vector<float>& out, int channels,
              size_t from, size_t to, int channel = -1) {
  double s = 0, e = 0;
  for (size_t i = from; i < to; i++)
    for (int c = 0; c < channels; c++) {
      if (channel >= 0 && c != channel) continue;
      const double r = ref[i * channels + c], d = out[i * channels + c] - r;
      s += r * r;
      e += d * d;
    }
  return 10 * std::log10(s / std::max(e, 1e-30));
}

double max_step(const std::vector<float>& v, int channels, size_t from, size_t to) {
  double m = 0;
  for (size_t i = std::max<size_t>(from, 1); i < to; i++)
    for (int c = 0; c < channels; c++)
      m = std::max(m, std::fabs(double(v[i * channels + c]) - v[(i - 1) * channels + c]));
  return m;
}

double rms(const std::vector<float>& v, int channels, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from * channels; i < to * channels; i++) s += double(v[i]) * v[i];
  return std::sqrt(s / ((to - from) * channels));
}

double sine(size_t i, double hz, double phase = 0) {
  return std::sin(2 * kPi * hz * i / kRate + phase);
}

double harmonic(size_t i, int c) {
  // 220 Hz with partials 2, 3, 5; the second channel quieter and phase-shifted.
  const double g = c == 0 ? 1.0 : 0.6;
  const double ph = 0.7 * c;
  return g * (0.4 * sine(i, 220, ph) + 0.2 * sine(i, 440, 2 * ph) + 0.12 * sine(i, 660, 1 + ph) +
              0.06 * sine(i, 1100, 2 + ph));
}

}  // namespace

TEST(RawConcealer, SineIsContinuedWithTheRightPeriodAndPhase) {
  for (double hz : {100.0, 440.0, 1000.0, 3000.0}) {
    RawConcealer c(1, kFade);  // rate from the fade: 5 ms -> 48 kHz
    EXPECT_EQ(c.sample_rate(), 48000u);
    auto in = make_signal(48000 / 2, 1, [&](size_t i, int) { return 0.5 * sine(i, hz); });
    auto out = play(c, in, 1, 480, {20});
    EXPECT_TRUE(c.last_voiced()) << hz;
    // The period found is a whole number of the tone's periods (within a sample).
    const double periods = c.last_period() * hz / kRate;
    EXPECT_NEAR(periods, std::round(periods), hz * 1.0 / kRate * 1.5) << hz;
    EXPECT_GT(c.last_correlation(), 0.99) << hz;
    // The lost 10 ms and the 5 ms crossfade after it.
    EXPECT_GT(snr_db(in, out, 1, 20 * 480, 21 * 480 + kFade), 25.0) << hz;
    EXPECT_LE(max_step(out, 1, 19 * 480, 22 * 480), 1.2 * max_step(in, 1, 19 * 480, 22 * 480))
        << hz;
  }
}

TEST(RawConcealer, HarmonicToneIsContinuedOnBothChannels) {
  RawConcealer c(2, kFade);
  auto in = make_signal(48000 / 2, 2, harmonic);
  auto out = play(c, in, 2, 480, {20, 21});  // 20 ms lost
  EXPECT_TRUE(c.last_voiced());
  const double periods = c.last_period() * 220.0 / kRate;
  EXPECT_NEAR(periods, std::round(periods), 0.01);
  for (int ch = 0; ch < 2; ch++) {
    EXPECT_GT(snr_db(in, out, 2, 20 * 480, 22 * 480 + kFade, ch), 12.0) << ch;
    // The first 10 ms is at full level and closely in phase.
    EXPECT_GT(snr_db(in, out, 2, 20 * 480, 21 * 480, ch), 20.0) << ch;
  }
  EXPECT_LE(max_step(out, 2, 19 * 480, 23 * 480), 1.3 * max_step(in, 2, 19 * 480, 23 * 480));
}

TEST(RawConcealer, NoStepAtLossStartOrEndWhenThePeriodDoesNotFit) {
  // A glide (the pitch moves during the history): the continuation is not exact, but the
  // seams at both ends stay smooth.
  RawConcealer c(1, kFade);
  double phase = 0;
  std::vector<float> in;
  for (size_t i = 0; i < 24000; i++) {
    phase += 2 * kPi * (300.0 + 400.0 * i / 24000) / kRate;
    in.push_back(static_cast<float>(0.5 * std::sin(phase) + 0.2 * std::sin(2.7 * phase)));
  }
  auto out = play(c, in, 1, 480, {15, 30, 31});
  const double natural = max_step(in, 1, 0, in.size());
  EXPECT_LE(max_step(out, 1, 0, out.size()), 1.5 * natural);
  for (float v : out) EXPECT_TRUE(std::isfinite(v));
}

TEST(RawConcealer, LongLossFadesToSilenceThenFadesIn) {
  RawConcealer c(1, kFade);
  auto in = make_signal(48000, 1, [](size_t i, int) { return 0.5 * sine(i, 440); });
  std::set<size_t> lost;
  for (size_t p = 20; p < 30; p++) lost.insert(p);  // 100 ms
  auto out = play(c, in, 1, 480, lost);
  const double ref = rms(in, 1, 0, 4800);
  EXPECT_NEAR(rms(out, 1, 20 * 480, 21 * 480), ref, 0.1 * ref);  // 0-10 ms: full level
  EXPECT_LT(rms(out, 1, 23 * 480, 24 * 480), 0.6 * ref);         // 30-40 ms: fading
  EXPECT_GT(rms(out, 1, 23 * 480, 24 * 480), 0.2 * ref);
  for (size_t i = 26 * 480; i < 30 * 480; i++) EXPECT_EQ(out[i], 0.0f) << i;  // >= 60 ms
  // Back: from silence into the signal over the fade, no step.
  EXPECT_LT(std::fabs(out[30 * 480]), 0.01);
  EXPECT_NEAR(rms(out, 1, 31 * 480, 32 * 480), ref, 0.01 * ref);
  EXPECT_LE(max_step(out, 1, 19 * 480, 32 * 480), 1.2 * max_step(in, 1, 0, 4800));
  EXPECT_FALSE(c.fade_in_pending());
}

TEST(RawConcealer, ChannelCountsOneToEight) {
  for (int ch = 1; ch <= 8; ch++) {
    RawConcealer c(ch, kFade);
    // Harmonics of one 150 Hz fundamental, one per channel, each with its own phase.
    auto in = make_signal(24000, ch, [](size_t i, int k) {
      return 0.3 * sine(i, 150.0 * (k + 1), 0.5 * k) * (k % 2 ? -1 : 1);
    });
    auto out = play(c, in, ch, 480, {25});
    EXPECT_TRUE(c.last_voiced()) << ch;
    for (int k = 0; k < ch; k++)
      EXPECT_GT(snr_db(in, out, ch, 25 * 480, 26 * 480 + kFade, k), 20.0)
          << ch << " channels, channel " << k;
  }
}

TEST(RawConcealer, NoiseIsNotTurnedIntoBuzzNorAmplified) {
  RawConcealer c(2, kFade);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<float> in(24000 * 2);
  for (float& v : in) v = u(rng);
  auto out = play(c, in, 2, 480, {20, 21, 22, 23});  // 40 ms
  EXPECT_FALSE(c.last_voiced());
  const size_t from = 20 * 480, to = 24 * 480;
  EXPECT_LE(rms(out, 2, from, to), 1.05 * rms(in, 2, 0, from));
  for (size_t i = from * 2; i < to * 2; i++) EXPECT_LE(std::fabs(out[i]), 1.0f);
  // Buzz would be a strong repetition at a pitch lag (2.5-15 ms).
  const size_t a = from, len = 1920;  // first 40 ms of the concealment (gain > 0.6)
  double best = 0;
  for (size_t lag = 120; lag <= 720; lag++) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = a + lag; i < a + len; i++) {
      const double x = out[i * 2], y = out[(i - lag) * 2];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    best = std::max(best, ab / std::sqrt(aa * bb));
  }
  EXPECT_LT(best, 0.4);
  // Noise still sounds like noise: not a hole.
  EXPECT_GT(rms(out, 2, from, from + 480), 0.7 * rms(in, 2, 0, from));
}

TEST(RawConcealer, LossesOnePacketApartAnalyseWhatWasPlayed) {
  // The second loss reads history that spans the first loss and the crossfade after it:
  // that history must be what was played, not the concealment spliced to the packet.
  // A change of note between the two losses makes the second one unvoiced (a 20 ms
  // loop that reaches back across the first loss); with the splice it stepped by about
  // the signal's steepest slope 10 ms in (measured: 0.98 of it, now 0.09).
  RawConcealer c(1, kFade);
  auto in = make_signal(24000, 1, [](size_t i, int) {
    return i < 9600 ? 0.4 * sine(i, 220)
                    : 0.3 * sine(i, 101) + 0.3 * sine(i, 277) + 0.2 * sine(i, 419);
  });
  auto out = play(c, in, 1, 480, {19, 21});
  EXPECT_FALSE(c.last_voiced());
  EXPECT_LE(max_step(out, 1, 18 * 480, 24 * 480), 0.5 * max_step(in, 1, 0, in.size()));
}

TEST(RawConcealer, SlowAudioBelowThePitchRangeIsNotLoopedAsAShortPeriod) {
  // A 40 Hz sine correlates best at the shortest lag: 2.5 ms of it looped would be a
  // 400 Hz buzz. It is concealed as unvoiced instead (a 20 ms loop, no louder).
  RawConcealer c(1, kFade);
  auto in = make_signal(24000, 1, [](size_t i, int) { return 0.5 * sine(i, 40); });
  auto out = play(c, in, 1, 480, {30, 31});
  EXPECT_FALSE(c.last_voiced());
  EXPECT_LE(rms(out, 1, 30 * 480, 32 * 480), 1.1 * rms(in, 1, 0, 24000));
  for (size_t i = 30 * 480; i < 33 * 480; i++) ASSERT_LE(std::fabs(out[i]), 0.55f);
}

TEST(RawConcealer, LossBeforeAnyHistoryIsSilenceAndFadesIn) {
  RawConcealer c(1, 10);
  std::vector<uint8_t> tmp(4 * 3);
  c.conceal(tmp.data(), 3);
  for (float v : to_floats(tmp)) EXPECT_EQ(v, 0.0f);
  EXPECT_TRUE(c.fade_in_pending());
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
  auto d = to_bytes(ones);  // nothing armed: untouched
  c.apply_fade_in(d.data(), 6);
  for (float v : to_floats(d)) EXPECT_EQ(v, 1.0f);
}

TEST(RawConcealer, ShortHistoryIsMirroredUnderAFade) {
  RawConcealer c(1, kFade);
  std::vector<float> in = {0.1f, 0.2f, 0.3f, 0.4f};  // far less than 5 ms
  auto b = to_bytes(in);
  c.observe(b.data(), 4);
  std::vector<uint8_t> out(8 * 4);
  c.conceal(out.data(), 8);
  auto f = to_floats(out);
  EXPECT_NEAR(f[0], 0.4f, 0.05f);
  for (int i = 1; i < 4; i++) EXPECT_LT(f[i], f[i - 1]);
  for (int i = 4; i < 8; i++) EXPECT_EQ(f[i], 0.0f);
}

TEST(RawConcealer, LossLongerThanTheHistory) {
  RawConcealer c(2, kFade);
  // 8 ms of history, then 250 ms lost (the depayloader's longest concealment).
  auto in = make_signal(384, 2, [](size_t i, int k) { return 0.5 * sine(i, 500, k); });
  auto b = to_bytes(in);
  c.observe(b.data(), 384);
  std::vector<uint8_t> out(12000 * 8);
  c.conceal(out.data(), 12000);
  auto f = to_floats(out);
  for (float v : f) ASSERT_TRUE(std::isfinite(v));
  EXPECT_GT(rms(f, 2, 0, 480), 0.3);  // continued, not silent
  for (size_t i = 2880 * 2; i < f.size(); i++) EXPECT_EQ(f[i], 0.0f);
}

TEST(RawConcealer, TinyPacketsGiveTheSameConcealment) {
  auto in = make_signal(9600, 2, harmonic);
  auto bytes = to_bytes(in);
  RawConcealer big(2, kFade), tiny(2, kFade);
  big.observe(bytes.data(), 9600);
  for (size_t i = 0; i < 9600; i++) tiny.observe(bytes.data() + i * 8, 1);
  std::vector<uint8_t> a(1000 * 8), t(1000 * 8);
  big.conceal(a.data(), 1000);
  for (size_t i = 0; i < 1000; i++) tiny.conceal(t.data() + i * 8, 1);
  EXPECT_EQ(a, t);
  // The crossfade back, in one call or frame by frame.
  std::vector<uint8_t> ra = to_bytes(std::vector<float>(2 * 300, 0.25f)), rt = ra;
  big.apply_fade_in(ra.data(), 300);
  for (size_t i = 0; i < 300; i++) tiny.apply_fade_in(rt.data() + i * 8, 1);
  EXPECT_EQ(ra, rt);
  EXPECT_FALSE(big.fade_in_pending());
  EXPECT_FALSE(tiny.fade_in_pending());
}

TEST(RawConcealer, LossAfterAPartialCrossfadeStaysContinuous) {
  RawConcealer c(1, kFade);
  auto in = make_signal(24000, 1, [](size_t i, int) { return 0.5 * sine(i, 440); });
  // Packets of 48 frames: a loss, one good packet (inside the 240-frame crossfade), a loss.
  auto out = play(c, in, 1, 48, {200, 201, 203, 204});
  EXPECT_LE(max_step(out, 1, 190 * 48, 220 * 48), 1.3 * max_step(in, 1, 0, 9600));
  EXPECT_GT(snr_db(in, out, 1, 200 * 48, 210 * 48), 15.0);
}

TEST(RawConcealer, NonFiniteHistoryNeverReachesTheOutput) {
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(),
                       std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity(), FLT_MAX, -FLT_MAX};
  for (float x : bad) {
    RawConcealer c(2, kFade);
    auto in = make_signal(4800, 2, [](size_t i, int) { return 0.5 * sine(i, 440); });
    for (size_t i = 4000; i < 4800; i += 37) in[i] = x;
    in[in.size() - 1] = x;  // the very last sample too
    auto b = to_bytes(in);
    c.observe(b.data(), 4800);
    std::vector<uint8_t> out(2000 * 8);
    c.conceal(out.data(), 2000);
    for (float v : to_floats(out)) ASSERT_TRUE(std::isfinite(v)) << x;
    std::vector<uint8_t> next = to_bytes(std::vector<float>(2 * 480, 0.1f));
    c.apply_fade_in(next.data(), 480);
    for (float v : to_floats(next)) ASSERT_TRUE(std::isfinite(v)) << x;
  }
}

TEST(RawConcealer, ExplicitSampleRate) {
  RawConcealer c(2, 220, 44100);
  EXPECT_EQ(c.sample_rate(), 44100u);
  auto in = make_signal(
      22050, 2, [](size_t i, int k) { return 0.4 * std::sin(2 * kPi * 330 * i / 44100.0 + k); });
  auto out = play(c, in, 2, 441, {30});
  const double periods = c.last_period() * 330.0 / 44100;
  EXPECT_NEAR(periods, std::round(periods), 0.012);
  EXPECT_GT(snr_db(in, out, 2, 30 * 441, 31 * 441), 25.0);
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

TEST(RawConcealer, UnconfiguredOrOpusIsHarmless) {
  RawConcealer none;
  std::vector<uint8_t> b(64);
  none.observe(b.data(), 4);
  none.conceal(b.data(), 4);
  none.apply_fade_in(b.data(), 4);
  EXPECT_FALSE(none.fade_in_pending());
  RawConcealer opus(2, 0);  // what the depayloader sets for Opus
  opus.observe(b.data(), 8);
  std::fill(b.begin(), b.end(), 0xff);
  opus.conceal(b.data(), 8);
  for (float v : to_floats(b)) EXPECT_EQ(v, 0.0f);
  EXPECT_FALSE(opus.fade_in_pending());
}
