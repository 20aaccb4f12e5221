// SPDX-License-Identifier: LGPL-2.1-or-later
// bench-sync-analyze: measures the offset between receivers recorded on the
// channels of one PulseAudio monitor (receiver k on channel k, all playing the
// same noise signal).
//
// Input: raw interleaved S16LE with --channels channels (default 2) at --rate
// (as written by `parec --format=s16le --channels=N --raw`). Output, one line
// per window and channel k >= 1:
//   win <t_s> <offset_samples> <peak_corr> <rms_0> <rms_k> <k>
// where offset > 0 means receiver k plays later than receiver 0, and one line per
// dropout (a run of digital silence of at least --dropout-ms once a channel has
// started playing):
//   dropout <channel> <t_s> <length_s>
//
// The offset is the cross-correlation peak, searched coarse (decimated) over
// +-max-lag and refined at full rate, with parabolic interpolation for the
// fractional part.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string path;
  int rate = 48000;
  int channels = 2;
  double window_ms = 200.0;
  double hop_ms = 100.0;
  double max_lag_ms = 40.0;
  double dropout_ms = 5.0;
  double silence_rms = 30.0;  // S16 units: well below the test signal's level
};

double dot(const float* a, const float* b, size_t n) {
  double acc = 0.0;
  float part = 0.0f;
  for (size_t i = 0; i < n; i++) {
    part += a[i] * b[i];
    if ((i & 1023) == 1023) {
      acc += part;
      part = 0.0f;
    }
  }
  return acc + part;
}

// Correlation of a[start, start+n) with b shifted by lag (b[start+lag+i]).
double corr_at(const std::vector<float>& a, const std::vector<float>& b, size_t start, size_t n,
               long lag) {
  long bs = static_cast<long>(start) + lag;
  if (bs < 0 || static_cast<size_t>(bs) + n > b.size()) return 0.0;
  return dot(a.data() + start, b.data() + bs, n);
}

void decimate(const std::vector<float>& in, std::vector<float>& out, size_t factor) {
  out.resize(in.size() / factor);
  for (size_t i = 0; i < out.size(); i++) {
    float s = 0.0f;
    for (size_t k = 0; k < factor; k++) s += in[i * factor + k];
    out[i] = s / static_cast<float>(factor);
  }
}

int usage() {
  std::fprintf(stderr,
               "usage: bench-sync-analyze FILE.raw [--channels=2] [--rate=48000] [--window-ms=200] "
               "[--hop-ms=100] [--max-lag-ms=40] [--dropout-ms=5]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto val = [&](const char* name) -> const char* {
      size_t n = std::strlen(name);
      return a.compare(0, n, name) == 0 ? a.c_str() + n : nullptr;
    };
    if (const char* v = val("--rate=")) {
      opt.rate = std::atoi(v);
    } else if (const char* v = val("--channels=")) {
      opt.channels = std::atoi(v);
    } else if (const char* v = val("--window-ms=")) {
      opt.window_ms = std::atof(v);
    } else if (const char* v = val("--hop-ms=")) {
      opt.hop_ms = std::atof(v);
    } else if (const char* v = val("--max-lag-ms=")) {
      opt.max_lag_ms = std::atof(v);
    } else if (const char* v = val("--dropout-ms=")) {
      opt.dropout_ms = std::atof(v);
    } else if (a.size() > 2 && a[0] == '-') {
      return usage();
    } else {
      opt.path = a;
    }
  }
  if (opt.path.empty() || opt.rate <= 0 || opt.channels < 2 || opt.channels > 64) return usage();
  const size_t nch = static_cast<size_t>(opt.channels);

  FILE* f = std::fopen(opt.path.c_str(), "rb");
  if (!f) {
    std::perror(opt.path.c_str());
    return 1;
  }
  std::vector<std::vector<float>> ch(nch);
  std::vector<int16_t> buf(4096 * nch);
  size_t got;
  while ((got = std::fread(buf.data(), sizeof(int16_t) * nch, 4096, f)) > 0) {
    for (size_t i = 0; i < got; i++)
      for (size_t c = 0; c < nch; c++) ch[c].push_back(buf[nch * i + c]);
  }
  std::fclose(f);
  const double rate = opt.rate;

  // Dropouts: runs of digital silence after the channel first became audible.
  const size_t min_run = static_cast<size_t>(opt.dropout_ms * rate / 1000.0);
  for (size_t c = 0; c < nch; c++) {
    const std::vector<float>& x = ch[c];
    size_t first = 0;
    while (first < x.size() && std::fabs(x[first]) < 2.0f) first++;
    size_t last = x.size();
    while (last > first && std::fabs(x[last - 1]) < 2.0f) last--;
    size_t run = 0;
    for (size_t i = first; i < last; i++) {
      if (std::fabs(x[i]) < 2.0f) {
        run++;
      } else {
        if (run >= min_run) std::printf("dropout %zu %.4f %.4f\n", c, (i - run) / rate, run / rate);
        run = 0;
      }
    }
  }

  const size_t win = static_cast<size_t>(opt.window_ms * rate / 1000.0);
  const size_t hop = static_cast<size_t>(opt.hop_ms * rate / 1000.0);
  const long max_lag = static_cast<long>(opt.max_lag_ms * rate / 1000.0);
  const size_t dec = 8;
  const std::vector<float>& a = ch[0];
  std::vector<float> ad, bd;
  decimate(a, ad, dec);
  for (size_t c = 1; c < nch; c++) {
    const std::vector<float>& b = ch[c];
    decimate(b, bd, dec);

    for (size_t start = static_cast<size_t>(max_lag); start + win + max_lag < a.size();
         start += hop) {
      double ea = dot(a.data() + start, a.data() + start, win);
      double rms_a = std::sqrt(ea / win);
      double eb = dot(b.data() + start, b.data() + start, win);
      double rms_b = std::sqrt(eb / win);
      double t = (start + win / 2) / rate;
      if (rms_a < opt.silence_rms || rms_b < opt.silence_rms) {
        std::printf("win %.4f nan 0 %.1f %.1f %zu\n", t, rms_a, rms_b, c);
        continue;
      }
      // Coarse search on the decimated signals.
      size_t ds = start / dec, dn = win / dec;
      long dmax = max_lag / static_cast<long>(dec);
      long best_d = 0;
      double best_c = -1e300;
      for (long k = -dmax; k <= dmax; k++) {
        double c = corr_at(ad, bd, ds, dn, k);
        if (c > best_c) {
          best_c = c;
          best_d = k;
        }
      }
      // Refine at full rate around the coarse peak.
      long center = best_d * static_cast<long>(dec);
      long best = center;
      best_c = -1e300;
      for (long k = center - 2 * static_cast<long>(dec); k <= center + 2 * static_cast<long>(dec);
           k++) {
        double c = corr_at(a, b, start, win, k);
        if (c > best_c) {
          best_c = c;
          best = k;
        }
      }
      double cm = corr_at(a, b, start, win, best - 1);
      double cp = corr_at(a, b, start, win, best + 1);
      double denom = cm - 2.0 * best_c + cp;
      double frac = denom != 0.0 ? 0.5 * (cm - cp) / denom : 0.0;
      if (frac > 0.5 || frac < -0.5) frac = 0.0;
      double norm = best_c / std::sqrt(ea * eb);
      std::printf("win %.4f %.4f %.4f %.1f %.1f %zu\n", t, best + frac, norm, rms_a, rms_b, c);
    }
  }
  return 0;
}
