// SPDX-License-Identifier: LGPL-2.1-or-later
#include "fft.h"

#include <cmath>
#include <utility>

namespace syncwave {

bool is_power_of_two(size_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

size_t next_power_of_two(size_t n) {
  size_t p = 1;
  while (p < n) {
    if (p > (static_cast<size_t>(-1) >> 1)) return 0;
    p <<= 1;
  }
  return p;
}

Fft::Fft(size_t n) {
  if (!is_power_of_two(n)) return;
  n_ = n;
  twiddle_.resize(n / 2);
  const double pi = std::acos(-1.0);
  for (size_t k = 0; k < n / 2; k++) {
    const double a = -2.0 * pi * static_cast<double>(k) / static_cast<double>(n);
    twiddle_[k] = std::complex<double>(std::cos(a), std::sin(a));
  }
  reversed_.resize(n);
  int bits = 0;
  while ((size_t{1} << bits) < n) bits++;
  for (size_t i = 0; i < n; i++) {
    size_t r = 0;
    for (int b = 0; b < bits; b++) {
      if (i & (size_t{1} << b)) r |= size_t{1} << (bits - 1 - b);
    }
    reversed_[i] = r;
  }
}

void Fft::forward(std::complex<double>* data) const {
  transform(data, false);
}

void Fft::inverse(std::complex<double>* data) const {
  transform(data, true);
  if (n_ == 0 || data == nullptr) return;
  const double scale = 1.0 / static_cast<double>(n_);
  for (size_t i = 0; i < n_; i++) data[i] *= scale;
}

void Fft::forward(std::vector<std::complex<double>>* data) const {
  if (data != nullptr && data->size() == n_) forward(data->data());
}

void Fft::inverse(std::vector<std::complex<double>>* data) const {
  if (data != nullptr && data->size() == n_) inverse(data->data());
}

void Fft::transform(std::complex<double>* data, bool inverse) const {
  if (n_ == 0 || data == nullptr) return;
  for (size_t i = 0; i < n_; i++) {
    const size_t r = reversed_[i];
    if (r > i) std::swap(data[i], data[r]);
  }
  // Butterflies in real arithmetic: std::complex's operator* checks for inf/NaN
  // (__muldc3), several times slower, and inputs here are finite.
  const double sign = inverse ? -1.0 : 1.0;
  for (size_t len = 2; len <= n_; len <<= 1) {
    const size_t half = len / 2;
    const size_t stride = n_ / len;  // twiddle index step at this stage
    for (size_t start = 0; start < n_; start += len) {
      std::complex<double>* lo = data + start;
      std::complex<double>* hi = lo + half;
      for (size_t j = 0; j < half; j++) {
        const double wr = twiddle_[j * stride].real();
        const double wi = sign * twiddle_[j * stride].imag();
        const double hr = hi[j].real(), him = hi[j].imag();
        const double tr = wr * hr - wi * him;
        const double ti = wr * him + wi * hr;
        const double lr = lo[j].real(), li = lo[j].imag();
        hi[j] = std::complex<double>(lr - tr, li - ti);
        lo[j] = std::complex<double>(lr + tr, li + ti);
      }
    }
  }
}

}  // namespace syncwave
