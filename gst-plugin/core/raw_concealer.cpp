// SPDX-License-Identifier: LGPL-2.1-or-later
#include "raw_concealer.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

namespace syncwave {

namespace {

constexpr double kPi = 3.14159265358979323846;
// Normalized correlation from which the history counts as periodic.
constexpr double kVoicedCorrelation = 0.6;
// Periods looped at most (G.711 Appendix I: 1, then 2, then 3).
constexpr size_t kMaxPeriods = 3;
// Coarse candidates refined at the full rate.
constexpr size_t kCandidates = 5;
// Rate of the coarse pitch search (box decimation to about this).
constexpr uint32_t kCoarseRate = 8000;
// Channels the pitch decision looks at (the first ones): bounds its cost at 64 channels.
constexpr size_t kAnalysisChannels = 8;

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

// A finite float for any double (NaN -> 0, beyond the float range -> its limit).
float to_finite_float(double v) {
  if (!(v == v)) return 0.0f;
  return static_cast<float>(
      std::clamp(v, -static_cast<double>(FLT_MAX), static_cast<double>(FLT_MAX)));
}

float sanitize(float v) {
  return std::isfinite(v) ? v : 0.0f;
}

// Raised cosine from 0 to 1 over len frames, at frame i (i < len).
double rise(size_t i, size_t len) {
  return 0.5 * (1.0 - std::cos(kPi * (i + 0.5) / len));
}

size_t ms_frames(uint32_t rate, uint32_t tenths_ms) {
  return static_cast<size_t>((static_cast<uint64_t>(rate) * tenths_ms + 5000) / 10000);
}

}  // namespace

void RawConcealer::configure(uint16_t channels, size_t fade_frames, uint32_t sample_rate) {
  channels_ = channels;
  fade_frames_ = fade_frames;
  uint64_t rate = sample_rate != 0 ? sample_rate : static_cast<uint64_t>(fade_frames) * 200;
  rate_ = static_cast<uint32_t>(std::min<uint64_t>(rate, 384000));
  if (rate_ == 0 || channels_ == 0) {
    min_lag_ = max_lag_ = window_ = full_level_ = silent_at_ = unvoiced_len_ = capacity_ = 0;
  } else {
    min_lag_ = std::max<size_t>(2, ms_frames(rate_, 25));
    max_lag_ = std::max(min_lag_ + 1, ms_frames(rate_, 150));
    window_ = std::max<size_t>(1, ms_frames(rate_, 100));
    full_level_ = ms_frames(rate_, 100);
    silent_at_ = std::max(full_level_ + 1, ms_frames(rate_, 600));
    unvoiced_len_ = std::max<size_t>(1, ms_frames(rate_, 200));
    // Three periods, the quarter period before them, and the correlation window.
    capacity_ = std::max(kMaxPeriods * max_lag_ + max_lag_ / 4 + 2, window_ + max_lag_);
  }
  const size_t ch = channels_;
  hist_.assign((capacity_ + capacity_ / 2 + 1) * ch, 0.0f);
  snap_.assign(capacity_ * ch, 0.0f);
  last_out_.assign(ch, 0.0f);
  offset_.assign(ch, 0.0);
  reset();
}

void RawConcealer::reset() {
  hist_start_ = 0;
  hist_frames_ = 0;
  std::fill(last_out_.begin(), last_out_.end(), 0.0f);
  mode_ = Mode::kIdle;
  observed_since_conceal_ = true;
  snap_frames_ = 0;
  source_ = Source::kSilence;
  loss_pos_ = 0;
  xfade_pos_ = 0;
  switch_left_ = 0;
  mixed_frames_ = 0;
}

void RawConcealer::append(const uint8_t* data, size_t frames) {
  const size_t ch = channels_;
  const size_t buffer_frames = hist_.size() / ch;
  const size_t take = std::min(frames, capacity_);
  const uint8_t* src = data + (frames - take) * ch * 4;
  if (hist_start_ + hist_frames_ + take > buffer_frames) {
    const size_t keep = std::min(hist_frames_, capacity_ - take);
    std::memmove(hist_.data(), hist_.data() + (hist_start_ + hist_frames_ - keep) * ch,
                 keep * ch * sizeof(float));
    hist_start_ = 0;
    hist_frames_ = keep;
  }
  float* dst = hist_.data() + (hist_start_ + hist_frames_) * ch;
  for (size_t i = 0; i < take * ch; i++) dst[i] = sanitize(load_f32le(src + 4 * i));
  hist_frames_ += take;
  if (hist_frames_ > capacity_) {
    hist_start_ += hist_frames_ - capacity_;
    hist_frames_ = capacity_;
  }
}

void RawConcealer::observe(const uint8_t* data, size_t frames) {
  observed_since_conceal_ = true;
  if (channels_ == 0 || capacity_ == 0 || data == nullptr || frames == 0) return;
  append(data, frames);
  // The history holds what was played: the crossfaded frames apply_fade_in() made of the
  // start of this packet, not the packet's own (else a concealment-to-packet splice).
  const size_t ch = channels_;
  const size_t take = std::min(frames, capacity_);
  const size_t mixed = std::min(mixed_frames_, frames);
  for (size_t i = frames - take; i < mixed; i++) {
    float* dst = hist_.data() + (hist_start_ + hist_frames_ - frames + i) * ch;
    std::copy(mixed_.begin() + i * ch, mixed_.begin() + (i + 1) * ch, dst);
  }
  mixed_frames_ = 0;
  // Played as is unless a crossfade into it is under way (then apply_fade_in knows).
  if (mode_ != Mode::kRecovering) {
    const float* last = hist_.data() + (hist_start_ + hist_frames_ - 1) * ch;
    std::copy(last, last + ch, last_out_.begin());
  }
}

double RawConcealer::correlation(size_t frames, size_t lag, size_t window) const {
  const size_t ch = channels_;
  const size_t used = std::min<size_t>(ch, kAnalysisChannels);
  const float* a = snap_.data() + (frames - window) * ch;
  const float* b = a - lag * ch;
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (size_t i = 0; i < window * ch; i += ch) {
    for (size_t c = 0; c < used; c++) {
      ab += static_cast<double>(a[i + c]) * b[i + c];
      aa += static_cast<double>(a[i + c]) * a[i + c];
      bb += static_cast<double>(b[i + c]) * b[i + c];
    }
  }
  const double norm = std::sqrt(aa * bb);
  return norm > 1e-20 ? ab / norm : 0.0;
}

void RawConcealer::estimate_pitch(size_t frames, size_t* lag, double* corr) const {
  const size_t ch = channels_;
  const size_t lag_hi = std::min(max_lag_, frames - min_lag_);
  const size_t window = std::min(window_, frames - lag_hi);
  *lag = 0;
  *corr = 0.0;
  const size_t dec = std::max<size_t>(1, rate_ / kCoarseRate);
  std::vector<size_t> candidates;
  if (dec == 1) {
    for (size_t l = min_lag_; l <= lag_hi; l++) candidates.push_back(l);
  } else {
    // Box-decimated copy of the end of the snapshot, per channel.
    const size_t n = frames / dec;
    const size_t base = frames - n * dec;
    const size_t used = std::min<size_t>(ch, kAnalysisChannels);
    std::vector<double> d(n * used, 0.0);
    for (size_t j = 0; j < n; j++)
      for (size_t k = 0; k < dec; k++)
        for (size_t c = 0; c < used; c++) d[j * used + c] += snap_[(base + j * dec + k) * ch + c];
    const size_t wd = std::max<size_t>(1, window / dec);
    const size_t lo = (min_lag_ + dec - 1) / dec;
    const size_t hi = std::min(lag_hi / dec, n - wd);
    std::vector<std::pair<double, size_t>> peaks;
    std::vector<double> r;
    for (size_t k = lo; k <= hi; k++) {
      const double* a = d.data() + (n - wd) * used;
      const double* b = a - k * used;
      double ab = 0.0, aa = 0.0, bb = 0.0;
      for (size_t i = 0; i < wd * used; i++) {
        ab += a[i] * b[i];
        aa += a[i] * a[i];
        bb += b[i] * b[i];
      }
      const double norm = std::sqrt(aa * bb);
      r.push_back(norm > 1e-20 ? ab / norm : 0.0);
    }
    for (size_t i = 0; i < r.size(); i++) {
      const bool left = i == 0 || r[i] >= r[i - 1];
      const bool right = i + 1 == r.size() || r[i] >= r[i + 1];
      if (left && right) peaks.emplace_back(r[i], lo + i);
    }
    std::sort(peaks.begin(), peaks.end(), [](const auto& x, const auto& y) {
      return x.first > y.first || (x.first == y.first && x.second < y.second);
    });
    if (peaks.size() > kCandidates) peaks.resize(kCandidates);
    // Refine each around its lag: in steps of dec / 8 first, then to the frame.
    const size_t step = std::max<size_t>(1, dec / 8);
    for (const auto& p : peaks) {
      const size_t center = p.second * dec;
      const size_t from = std::max(min_lag_, center > dec ? center - dec : 0);
      const size_t to = std::min(lag_hi, center + dec);
      size_t best = from;
      double best_c = -2.0;
      for (size_t l = from; l <= to; l += step) {
        const double c = correlation(frames, l, window);
        if (c > best_c) {
          best_c = c;
          best = l;
        }
      }
      const size_t lo2 = std::max(from, best > step ? best - step + 1 : 0);
      const size_t hi2 = std::min(to, best + step - 1);
      for (size_t l = lo2; l <= hi2; l++) candidates.push_back(l);
    }
  }
  for (size_t l : candidates) {
    const double c = correlation(frames, l, window);
    if (c > *corr) {
      *corr = c;
      *lag = l;
    }
  }
  // Best at the shortest lag and rising below it: no period in range, only audio that
  // changes slowly (bass below 66 Hz, a drift). Looping 2.5 ms of it would buzz at 400 Hz.
  if (*lag == min_lag_ && correlation(frames, min_lag_ - 1, window) > *corr) *lag = 0;
}

void RawConcealer::start_loss() {
  const size_t ch = channels_;
  const size_t n = hist_frames_;
  std::copy(hist_.begin() + hist_start_ * ch, hist_.begin() + (hist_start_ + n) * ch,
            snap_.begin());
  snap_frames_ = n;
  loss_pos_ = 0;
  switch_left_ = 0;
  periods_ = 1;
  period_ = 0;
  correlation_ = 0.0;
  voiced_ = false;
  loop_ = Loop{};
  scale_ = 1.0;
  const float* pred = nullptr;  // the sample the concealment continues from
  if (n == 0 || capacity_ == 0) {
    source_ = Source::kSilence;
    offset_len_ = std::max<size_t>(1, min_lag_);
  } else if (n < 2 * min_lag_) {
    source_ = Source::kMirror;
    pred = snap_.data() + (n - 1) * ch;
    offset_len_ = n;
  } else {
    source_ = Source::kLoop;
    size_t lag = 0;
    double scale = 1.0;
    estimate_pitch(n, &lag, &correlation_);
    voiced_ = lag > 0 && correlation_ >= kVoicedCorrelation;
    size_t len, ov;
    if (voiced_) {
      period_ = lag;
      len = lag;
      ov = std::min(std::max<size_t>(1, lag / 4), n - len);
    } else {
      len = std::min(unvoiced_len_, n - n / 4);
      ov = std::min(std::max<size_t>(1, std::min(len / 4, min_lag_)), n - len);
      // The loop reaches back further than the last window: no louder than that window
      // (a note that just ended, a fade) so the concealment does not bring back old audio.
      const size_t recent = std::min(window_, n);
      double e_recent = 0.0, e_loop = 0.0;
      for (size_t i = (n - recent) * ch; i < n * ch; i++) e_recent += double(snap_[i]) * snap_[i];
      for (size_t i = (n - len) * ch; i < n * ch; i++) e_loop += double(snap_[i]) * snap_[i];
      e_recent /= recent;
      e_loop /= len;
      if (e_loop > e_recent) scale = e_loop > 0.0 ? std::sqrt(e_recent / e_loop) : 0.0;
    }
    loop_.start = n - len;
    loop_.len = len;
    loop_.ov = ov;
    loop_.pos = 0;
    scale_ = scale;
    pred = snap_.data() + (loop_.start - 1) * ch;
    offset_len_ = std::max<size_t>(1, ov);
  }
  for (size_t c = 0; c < ch; c++)
    offset_[c] = static_cast<double>(last_out_[c]) - (pred ? scale_ * pred[c] : 0.0);
}

double RawConcealer::loop_sample(const Loop& l, size_t c) const {
  const size_t ch = channels_;
  const size_t q = l.pos;
  double v = snap_[(l.start + q) * ch + c];
  if (l.ov > 0 && q >= l.len - l.ov) {
    const double w = (q - (l.len - l.ov) + 0.5) / l.ov;
    v = (1.0 - w) * v + w * snap_[(l.start + q - l.len) * ch + c];
  }
  return v;
}

void RawConcealer::next_frame(double* frame) {
  const size_t ch = channels_;
  double gain = 1.0;
  if (loss_pos_ >= silent_at_) {
    gain = 0.0;
  } else if (loss_pos_ >= full_level_) {
    gain = 1.0 - static_cast<double>(loss_pos_ - full_level_) / (silent_at_ - full_level_);
  }
  const double off = loss_pos_ < offset_len_ ? 1.0 - rise(loss_pos_, offset_len_) : 0.0;
  if (gain == 0.0) {
    std::fill(frame, frame + ch, 0.0);
    if (loss_pos_ < silent_at_ + 1) loss_pos_++;
    return;
  }
  // Voiced: widen the loop to 2, then 3 periods, every 10 ms, at the same phase.
  if (source_ == Source::kLoop && voiced_ && periods_ < kMaxPeriods &&
      loss_pos_ == full_level_ * periods_ && (periods_ + 1) * period_ + loop_.ov <= snap_frames_) {
    old_loop_ = loop_;
    periods_++;
    loop_.len = periods_ * period_;
    loop_.start = snap_frames_ - loop_.len;
    switch_left_ = std::max<size_t>(1, loop_.ov);
  }
  for (size_t c = 0; c < ch; c++) {
    double v = 0.0;
    switch (source_) {
      case Source::kSilence:
        break;
      case Source::kMirror:
        if (loss_pos_ < snap_frames_)
          v = (1.0 - rise(loss_pos_, snap_frames_)) *
              snap_[(snap_frames_ - 1 - loss_pos_) * ch + c];
        break;
      case Source::kLoop:
        v = loop_sample(loop_, c);
        if (switch_left_ > 0) {
          const size_t len = std::max<size_t>(1, loop_.ov);
          const double w = rise(len - switch_left_, len);
          v = w * v + (1.0 - w) * loop_sample(old_loop_, c);
        }
        break;
    }
    frame[c] = gain * (scale_ * v + off * offset_[c]);
  }
  if (source_ == Source::kLoop) {
    loop_.pos = (loop_.pos + 1) % loop_.len;
    if (switch_left_ > 0) {
      old_loop_.pos = (old_loop_.pos + 1) % old_loop_.len;
      switch_left_--;
    }
  }
  loss_pos_++;
}

void RawConcealer::conceal(uint8_t* out, size_t frames) {
  if (channels_ == 0 || out == nullptr) return;
  const size_t ch = channels_;
  if (mode_ != Mode::kConcealing || observed_since_conceal_) start_loss();
  std::vector<double> frame(ch);
  for (size_t i = 0; i < frames; i++) {
    next_frame(frame.data());
    for (size_t c = 0; c < ch; c++) {
      const float v = to_finite_float(frame[c]);
      store_f32le(out + (i * ch + c) * 4, v);
      if (i + 1 == frames) last_out_[c] = v;
    }
  }
  // The history runs on through the concealment, so that the next loss (perhaps one
  // good packet later) analyses audio without a splice in it.
  if (capacity_ > 0 && frames > 0) append(out, frames);
  mode_ = Mode::kConcealing;
  observed_since_conceal_ = false;
  xfade_pos_ = 0;
}

void RawConcealer::apply_fade_in(uint8_t* data, size_t frames) {
  if (channels_ == 0 || data == nullptr || !fade_in_pending()) return;
  const size_t ch = channels_;
  mode_ = Mode::kRecovering;
  std::vector<double> frame(ch);
  mixed_frames_ = 0;
  if (mixed_.size() < std::min(frames, fade_frames_) * ch)
    mixed_.resize(std::min(frames, fade_frames_) * ch);
  for (size_t i = 0; i < frames && xfade_pos_ < fade_frames_; i++, xfade_pos_++) {
    next_frame(frame.data());
    const double w = rise(xfade_pos_, fade_frames_);
    for (size_t c = 0; c < ch; c++) {
      uint8_t* p = data + (i * ch + c) * 4;
      const float v = to_finite_float(w * load_f32le(p) + (1.0 - w) * frame[c]);
      store_f32le(p, v);
      last_out_[c] = sanitize(v);
      mixed_[i * ch + c] = sanitize(v);
    }
    mixed_frames_ = i + 1;
  }
  if (xfade_pos_ >= fade_frames_) mode_ = Mode::kIdle;
}

}  // namespace syncwave
